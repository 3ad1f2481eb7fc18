"""fitscribe's tracking server: MLflow's REST API 2.0 and artifact proxy on Starlette.

``create_app(tracking_uri, artifact_uri)`` builds the ASGI application; ``fitscribe server`` runs it
with uvicorn. Starlette loads when ``create_app`` is first used, so ``fitscribe server`` can name the
missing extra (``pip install "fitscribe[server]"``) instead of failing on an import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fitscribe.server.app import create_app

        return create_app
    raise AttributeError(f"module 'fitscribe.server' has no attribute {name!r}")
