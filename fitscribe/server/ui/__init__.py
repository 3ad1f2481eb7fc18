"""The web UI, served by the tracking server's own Starlette app (no JavaScript build step).

Pages are rendered on the server with Jinja2 (autoescaping on) and enhanced by small hand-written
ES modules from ``static/``; plotly.js comes from the installed ``plotly`` package. Reads are GET
pages and ``/ui/api/...`` JSON; writes (create/rename/delete an experiment, a run's description) go
through the MLflow REST endpoints with ``fetch()``, so the server's auth rules apply unchanged.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["ui_routes"]


def ui_routes() -> list[BaseRoute]:
    """Return every route of the web UI: pages, their JSON API, static files and the chart pages."""
    from fitscribe.server.ui.api import api_routes
    from fitscribe.server.ui.artifacts import artifact_routes
    from fitscribe.server.ui.charts import chart_routes
    from fitscribe.server.ui.pages import page_routes
    from fitscribe.server.ui.static import static_routes

    from fitscribe.server.ui.registry_pages import registry_routes

    return [*page_routes(), *registry_routes(), *artifact_routes(), *api_routes(), *chart_routes(), *static_routes()]
