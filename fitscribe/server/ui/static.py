"""Static files of the web UI (``/static/<file>``) and plotly.js from the installed ``plotly`` package.

A file asked for with its current hash (``?v=<hash>``, as ``static_url`` writes it) is cached for a
year as immutable; any other request gets ``no-cache`` with an ETag, so browsers revalidate.
plotly.js is served under ``/static/vendor/plotly-<version>.min.js`` (immutable), gzip-compressed
when the browser accepts it; it is never copied into the repository or fetched from a CDN.
"""

from __future__ import annotations

import mimetypes

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from fitscribe.server.ui.templating import STATIC_DIR, assets_of, plotly_js_path

__all__ = ["static_routes", "IMMUTABLE"]

IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def static_routes() -> list[BaseRoute]:
    """Return the routes serving ``/static/...`` and the versioned plotly.js."""
    return [
        Route("/static/vendor/plotly-{version}.min.js", plotly_js, methods=["GET", "HEAD"]),
        Route("/static/{name:path}", static_file, methods=["GET", "HEAD"]),
    ]


def _not_found(what: str) -> Response:
    return PlainTextResponse(f"No static file {what!r} on this server.", status_code=404,
                             headers={"X-Content-Type-Options": "nosniff"})


async def static_file(request: Request) -> Response:
    """Serve one file of the UI's ``static/`` folder (no sub-folders, no hidden files)."""
    name = request.path_params["name"]
    if "/" in name or "\\" in name or name.startswith(".") or not (STATIC_DIR / name).is_file():
        return _not_found(name)
    assets = assets_of(request)
    digest = assets.file_hash(name)
    etag = f'"{digest}"'
    versioned = request.query_params.get("v") == digest
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if versioned else "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    suffix = (STATIC_DIR / name).suffix
    media_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=headers)


async def plotly_js(request: Request) -> Response:
    """Serve plotly.min.js of the installed ``plotly`` package under its versioned URL."""
    assets = assets_of(request)
    if assets.plotly_version is None:
        return PlainTextResponse("plotly is not installed on this server: pip install 'fitscribe[server]'.",
                                 status_code=404)
    if request.path_params["version"] != assets.plotly_version:
        return _not_found(request.url.path)
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        from starlette.concurrency import run_in_threadpool

        body = await run_in_threadpool(assets.plotly_gzipped)
        headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=_TYPES[".js"], headers=headers)
    return FileResponse(plotly_js_path(), media_type=_TYPES[".js"], headers=headers)
