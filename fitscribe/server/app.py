"""``create_app``: the Starlette application of the tracking server, built from explicit arguments.

Nothing is kept at module level: the stores live in ``app.state.server`` (a
:class:`~fitscribe.server.state.ServerState`), so several apps can live in one process and several
replicas can share one database. The app holds no session state between requests.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Route

from fitscribe.server.errors import EndpointNotFound, MethodNotAllowed, error_response
from fitscribe.server.security import SecurityConfig, SecurityMiddleware, SecurityPolicy
from fitscribe.server.state import ServerState

__all__ = ["create_app"]


def create_app(tracking_uri: str, artifact_uri: str | None = None, *, serve_artifacts: bool = True,
               security: SecurityConfig | None = None, ui: bool = True) -> Starlette:
    """Build the tracking server's ASGI application.

    Nothing is opened here: the tracking store connects on the first request that needs it.

    Args:
        tracking_uri: The tracking store: a folder (embedded SQLite), ``sqlite:///``,
            ``postgresql://`` or ``mysql://`` URI.
        artifact_uri: The artifact destination: where the artifact proxy keeps files (a folder or
            ``file://`` URI). Default: the store's default artifact root.
        serve_artifacts: Serve the artifact proxy under ``/api/2.0/mlflow-artifacts/``; new
            experiments then get ``mlflow-artifacts:/<id>`` locations so clients upload through the
            server. Without it, new experiments get locations under ``artifact_uri`` and clients
            write there directly.
        security: Host check, CORS, authentication and size limits
            (:class:`~fitscribe.server.security.SecurityConfig`); default: local host names only, no
            cross-origin writes, no authentication, the default size limits.
        ui: Serve the web UI (pages at ``/``, ``/experiments/<id>``, ``/runs/<id>``..., JSON under
            ``/ui/api/``, files under ``/static/``); needs jinja2 (``fitscribe[server]``).

    Returns:
        The Starlette application; run it with any ASGI server (``fitscribe server`` uses uvicorn).

    >>> app = create_app("/tmp/fitscribe-doc-store")
    >>> app.state.server.default_artifact_root
    'mlflow-artifacts:/'
    """
    from fitscribe.server.routes import all_endpoints, rpc_routes
    from fitscribe.server.routes.artifacts import proxy_routes
    from fitscribe.server.routes.imports import import_routes

    state = ServerState(tracking_uri, artifact_uri, serve_artifacts)
    endpoints = all_endpoints()
    routes = [
        Route("/health", _health, methods=["GET"]),
        Route("/version", _version, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/api/3.0/mlflow/server-info", _server_info, methods=["GET"]),
        Route("/ajax-api/3.0/mlflow/server-info", _server_info, methods=["GET"]),
        *rpc_routes(endpoints),
        *proxy_routes(),
        *import_routes(),
    ]
    if ui:
        from fitscribe.server.ui import ui_routes

        routes.extend(ui_routes())
    policy = SecurityPolicy(security or SecurityConfig(), endpoints)
    app = Starlette(routes=routes, lifespan=_lifespan, exception_handlers={HTTPException: _http_error},
                    middleware=[Middleware(SecurityMiddleware, policy=policy)])
    app.state.server = state
    app.state.security = policy
    app.state.endpoints = endpoints
    return app


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Flush and close the stores when the server stops."""
    yield
    await run_in_threadpool(app.state.server.close)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Answer routing errors (unknown path, wrong method) with MLflow-style JSON."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        error: Exception = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use {allowed}.")
    elif exc.status_code == 404:
        error = EndpointNotFound(f"No endpoint answers {request.method} {request.url.path} on this server.")
    else:
        return JSONResponse({"error_code": "BAD_REQUEST", "message": str(exc.detail)}, status_code=exc.status_code)
    return error_response(error)


async def _health(request: Request) -> Response:
    """Answer ``OK`` (liveness; touches no store)."""
    return PlainTextResponse("OK")


async def _version(request: Request) -> Response:
    """Answer the fitscribe version."""
    from fitscribe import __version__

    return PlainTextResponse(__version__)


async def _server_info(request: Request) -> Response:
    """Answer MLflow's capability probe: no multipart, no presigned URLs, no workspaces."""
    info: dict[str, Any] = {
        "store_type": "SqlStore", "workspaces_enabled": False, "trace_archival_enabled": False,
        "multipart_uploads_enabled": False, "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False, "presigned_upload_model_id_supported": False,
        "features_enabled": {},
    }
    return JSONResponse(info)


async def _openapi(request: Request) -> Response:
    """Answer the OpenAPI document of this server."""
    from fitscribe import __version__
    from fitscribe.server.openapi import build_openapi

    state: ServerState = request.app.state.server
    doc = build_openapi(request.app.state.endpoints, serve_artifacts=state.serve_artifacts, version=__version__)
    return JSONResponse(doc)
