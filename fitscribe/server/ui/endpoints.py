"""The UI's JSON endpoints, all wrapped alike: run in a worker thread, errors answered through the
server's one error table, never cached, gzipped above a few KB when the browser accepts it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fitscribe.server.errors import error_response

if TYPE_CHECKING:
    from fitscribe.server.state import ServerState

__all__ = ["json_endpoint"]

_JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_GZIP_MIN_BYTES = 4096


def json_endpoint(fn: Callable[[Request, "ServerState"], dict[str, Any]]) -> Callable[[Request], Any]:
    """Wrap ``fn(request, state) -> dict`` into an endpoint run in a worker thread, errors as JSON."""

    def answer(request: Request) -> Response:
        try:
            body = fn(request, request.app.state.server)
        except Exception as exc:  # the server's one error table (bugs are logged there, answered 500)
            response = error_response(exc)
            response.headers.update(_JSON_HEADERS)
            return response
        return _compressed(request, JSONResponse(body, headers=_JSON_HEADERS))

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(answer, request)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


def _compressed(request: Request, response: Response) -> Response:
    """Gzip a JSON answer of more than a few KB when the client accepts it (series compress ~3x)."""
    if len(response.body) < _GZIP_MIN_BYTES or "gzip" not in request.headers.get("accept-encoding", ""):
        return response
    import gzip

    response.body = gzip.compress(response.body, compresslevel=5, mtime=0)
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Length"] = str(len(response.body))
    response.headers["Vary"] = "Accept-Encoding"
    return response
