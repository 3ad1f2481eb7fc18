"""Endpoint declarations, and the glue that turns them into Starlette routes.

An RPC endpoint is a plain function ``handler(state, params) -> dict``: it reads typed parameters,
calls the stores and returns the JSON answer. It runs in a worker thread (the stores block), and
whatever it raises is answered through the one table in :mod:`fitscribe.server.errors`. Each
endpoint also declares its fields, which the glue checks for presence and the OpenAPI document shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fitscribe.errors import InvalidValueError
from fitscribe.server.errors import error_response
from fitscribe.server.params import Params, parse_json_body
from fitscribe.server.state import ServerState

__all__ = ["Field", "Endpoint", "fields", "rpc_routes", "API_PREFIXES", "all_endpoints"]

API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
"""Where the RPC endpoints are served: MLflow's API, and the alias its web UI calls."""

Handler = Callable[[ServerState, Params], dict[str, Any]]
FIELD_TYPES = ("string", "int64", "double", "bool", "strings", "objects", "object")


@dataclass(frozen=True)
class Field:
    """One request field: its MLflow name, type (one of ``FIELD_TYPES``) and whether it is required."""

    name: str
    type: str = "string"
    required: bool = False


def fields(spec: str) -> tuple[Field, ...]:
    """Parse ``"run_id key! value:double! step:int64"`` (``!`` = required, default type string)."""
    result = []
    for token in spec.split():
        required = token.endswith("!")
        name, _, kind = token.rstrip("!").partition(":")
        if (kind or "string") not in FIELD_TYPES:
            raise ValueError(f"unknown field type {kind!r} in {spec!r}")
        result.append(Field(name, kind or "string", required))
    return tuple(result)


@dataclass(frozen=True)
class Endpoint:
    """An RPC endpoint: ``method`` and ``path`` under ``/api/2.0/mlflow/``, its handler and fields.

    ``read_only`` marks a non-GET endpoint that changes nothing (a search sent with POST), so a
    read-only identity may call it; any other non-GET endpoint counts as a write.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    fields: tuple[Field, ...] = ()
    read_only: bool = False


async def _read_params(request: Request, endpoint: Endpoint) -> Params:
    """Collect the parameters: the query string of a GET, else the JSON body, plus path parameters."""
    data: dict[str, Any]
    from_query = request.method in ("GET", "HEAD")
    if not from_query:
        raw = await request.body()
        if raw.strip():
            content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                shown = content_type or "missing"
                raise InvalidValueError(
                    f"Bad Request. Content-Type must be 'application/json' (got {shown}) for a request body."
                )
            data = parse_json_body(raw)
        else:
            from_query = True
    if from_query:
        query = request.query_params
        data = {key: query.getlist(key) for key in query.keys()}
    for key, value in request.path_params.items():
        data[key] = [value] if from_query else value
    params = Params(data, from_query=from_query, headers=request.headers)
    for field in endpoint.fields:
        if field.required and field.name not in params:
            raise params.missing(field.name)
    return params


def _rpc(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler into a Starlette endpoint."""

    async def call(request: Request) -> Response:
        try:
            params = await _read_params(request, endpoint)
            result = await run_in_threadpool(endpoint.handler, request.app.state.server, params)
        except Exception as exc:  # answered through the error table; bugs are logged there
            return error_response(exc)
        return JSONResponse(result)

    call.__name__ = endpoint.handler.__name__
    call.__doc__ = endpoint.summary
    return call


def all_endpoints() -> tuple[Endpoint, ...]:
    """Return every RPC endpoint this server answers."""
    from fitscribe.server.routes import artifacts, experiments, logged_models, metrics, registry, runs

    return (experiments.ENDPOINTS + runs.ENDPOINTS + metrics.ENDPOINTS + artifacts.ENDPOINTS
            + logged_models.ENDPOINTS + registry.ENDPOINTS)


def rpc_routes(endpoints: tuple[Endpoint, ...]) -> list[Route]:
    """Return the Starlette routes of the endpoints, under each of :data:`API_PREFIXES`."""
    return [
        Route(f"{prefix}/{ep.path}", _rpc(ep), methods=[ep.method])
        for prefix in API_PREFIXES
        for ep in endpoints
    ]
