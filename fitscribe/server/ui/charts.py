"""Chart pages (/compare, /metric) and the metric data JSON API of the web UI."""

from __future__ import annotations

from starlette.routing import BaseRoute


def chart_routes() -> list[BaseRoute]:
    """Return the routes of the compare and metric pages and their JSON API."""
    return []
