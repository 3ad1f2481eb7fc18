"""Jinja2 rendering for the web UI: one environment per application, autoescaping every template.

The environment, the hashes of the static files and the plotly.js details live in a
:class:`UiAssets` kept on ``app.state.ui_assets`` (built on first use): nothing is kept at module
level, so two apps in one process do not share anything. Every HTML answer carries a
Content-Security-Policy that allows scripts from this server only (no inline script).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import math
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

from fitscribe import _time

__all__ = ["UiAssets", "assets_of", "render", "page_headers", "PAGE_CSP", "STATIC_DIR", "TEMPLATE_DIR"]

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
"""The policy of every UI page: scripts only from this server (no inline script, no eval)."""

_ASSETS_LOCK = threading.Lock()


def page_headers() -> dict[str, str]:
    """Return the security headers of a UI page (CSP, nosniff, no referrer leaks)."""
    return {
        "Content-Security-Policy": PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


class UiAssets:
    """What the UI of one application needs to render pages: the Jinja environment, static file
    hashes (for versioned URLs) and the plotly.js file of the installed ``plotly`` package."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._gzipped_plotly: bytes | None = None
        self.plotly_version = _plotly_version()
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=True,  # every template, whatever its name
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(static_url=self.static_url, plotly_url=self.plotly_url, quote_path=quote_path)
        self.env.filters.update(time=format_time, ago=format_ago, duration=format_duration, size=format_size,
                                number=format_number)

    def file_hash(self, name: str) -> str:
        """Return the first 12 hex digits of the sha256 of a static file (cached per app)."""
        found = self._hashes.get(name)
        if found is None:
            found = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
            self._hashes[name] = found
        return found

    def static_url(self, name: str) -> str:
        """Return the versioned URL of a static file: ``/static/<name>?v=<hash>`` (cached forever)."""
        return f"/static/{name}?v={self.file_hash(name)}"

    def plotly_url(self) -> str | None:
        """Return the versioned URL of plotly.js, or None when the ``plotly`` package is missing."""
        if self.plotly_version is None:
            return None
        return f"/static/vendor/plotly-{self.plotly_version}.min.js"

    def plotly_gzipped(self) -> bytes:
        """Return plotly.min.js compressed once (1.5 MB instead of 4.8 MB on the wire)."""
        if self._gzipped_plotly is None:
            import gzip

            self._gzipped_plotly = gzip.compress(plotly_js_path().read_bytes(), compresslevel=6, mtime=0)
        return self._gzipped_plotly


def _plotly_version() -> str | None:
    try:
        return importlib.metadata.version("plotly")
    except importlib.metadata.PackageNotFoundError:
        return None


def plotly_js_path() -> Path:
    """Return the path of ``plotly.min.js`` inside the installed ``plotly`` package."""
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def assets_of(request: Request) -> UiAssets:
    """Return the :class:`UiAssets` of the request's application, building them on first use."""
    state = request.app.state
    assets = getattr(state, "ui_assets", None)
    if assets is None:
        with _ASSETS_LOCK:
            assets = getattr(state, "ui_assets", None)
            if assets is None:
                assets = UiAssets()
                state.ui_assets = assets
    return assets


def render(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    """Render template ``name`` with ``context`` into an HTML response with the page's security headers.

    Args:
        request: The request being answered (available to templates as ``request``).
        name: Template file name under ``templates/``.
        context: Template variables.
        status: HTTP status of the answer.
    """
    template = assets_of(request).env.get_template(name)
    html = template.render({"request": request, **context})
    return HTMLResponse(html, status_code=status, headers=page_headers())


# -- filters -------------------------------------------------------------------------------------------
def quote_path(path: str) -> str:
    """Percent-encode an artifact path for a URL, keeping its slashes."""
    return quote(path, safe="/")


def format_time(ms: int | None) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DD HH:MM:SS`` UTC (empty for None)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_ago(ms: int | None, now_ms: int | None = None) -> str:
    """Format how long ago epoch milliseconds ``ms`` was: ``5 min ago``, ``3 d ago``."""
    if ms is None:
        return ""
    seconds = max(0, ((now_ms if now_ms is not None else _time.now_ms()) - ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def format_duration(start: int | None, end: int | None) -> str:
    """Format the time between two epoch-millisecond instants: ``850 ms``, ``12.3 s``, ``4 min 2 s``, ``3 h 5 min``."""
    if start is None or end is None:
        return ""
    ms = max(0, end - start)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_size(n: int | None) -> str:
    """Format a byte count: ``512 B``, ``1.5 KB``, ``3.2 MB``."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - the loop returns


def format_number(value: float | None) -> str:
    """Format a metric value compactly (6 significant digits; NaN and infinities spelled out)."""
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"
