"""The artifact browser: folder listings, previews and downloads of a run's artifacts.

Previews never execute content: text, JSON, YAML, CSV and MLmodel files are parsed on the server and
rendered as escaped text or tables; SVG files are shown in an ``<img>`` (where scripts never run)
and HTML files in an ``<iframe sandbox>`` (no scripts, a unique origin), each beside their source
as text. Raw downloads carry ``Content-Security-Policy: sandbox`` and ``X-Content-Type-Options:
nosniff``, so even a file opened directly runs no script. A folder downloads as a zip, streamed as it is built.
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import posixpath
import zipfile
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from fitscribe.errors import NotFoundError
from fitscribe.server.errors import error_response
from fitscribe.server.state import ServerState, check_proxy_path
from fitscribe.server.ui.pages import page

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore, FileInfo

__all__ = ["artifact_routes", "list_folder", "read_autolog_reports", "preview_kind", "model_card", "ZipStream"]

TEXT_LIMIT = 512 * 1024
CSV_ROWS = 200
REPORT_PREFIX = "fitscribe.autolog.report"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico"}
TEXT_SUFFIXES = {".txt", ".log", ".md", ".py", ".cfg", ".ini", ".toml", ".xml", ".sh",
                 ".rst", ".js", ".css", ".ipynb", ".jsonl", ".env", ".r", ".sql"}
INLINE_KINDS = ("image", "svg", "html")
DOWNLOAD_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "no-store"}


def artifact_routes() -> list[BaseRoute]:
    """Return the artifact preview pages and the download routes."""
    return [
        Route("/runs/{run_id}/artifacts", page(artifact_page), methods=["GET", "HEAD"]),
        Route("/runs/{run_id}/artifacts/{path:path}", page(artifact_page), methods=["GET", "HEAD"]),
        Route("/runs/{run_id}/download", download, methods=["GET", "HEAD"]),
        Route("/runs/{run_id}/download/{path:path}", download, methods=["GET", "HEAD"]),
    ]


def list_folder(store: "ArtifactStore", path: str) -> list["FileInfo"]:
    """List a folder's children, folders first, then files, each by name."""
    return sorted(store.list(path or None), key=lambda i: (not i.is_dir, i.path))


def _entry(store: "ArtifactStore", path: str) -> "FileInfo | None":
    """Return the listing entry of ``path`` (None when nothing is there); the root is a folder."""
    from fitscribe.backends import FileInfo

    if not path:
        return FileInfo("", True, None)
    for info in store.list(posixpath.dirname(path) or None):
        if info.path == path:
            return info
    return None


def _read(store: "ArtifactStore", path: str, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a file; return them and whether the file was longer."""
    buffer = bytearray()
    chunks = store.open(path)
    try:
        for chunk in chunks:
            buffer.extend(chunk)
            if len(buffer) > limit:
                return bytes(buffer[:limit]), True
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return bytes(buffer), False


def read_autolog_reports(store: "ArtifactStore", root: list["FileInfo"]) -> list[dict[str, Any]]:
    """Return the autolog reports (``fitscribe.autolog.report*.json``) among a run's top-level artifacts."""
    reports = []
    for info in root:
        if info.is_dir or not info.path.startswith(REPORT_PREFIX) or not info.path.endswith(".json"):
            continue
        data, _ = _read(store, info.path, TEXT_LIMIT)
        try:
            content = json.loads(data)
        except ValueError:
            continue
        if isinstance(content, dict):
            reports.append({"path": info.path, "content": content})
    return reports


def preview_kind(path: str) -> str:
    """Return how a file is previewed: ``mlmodel``, ``image``, ``svg``, ``html``, ``json``, ``yaml``,
    ``csv``, ``text`` or ``binary``."""
    name = posixpath.basename(path)
    suffix = posixpath.splitext(name)[1].lower()
    if name == "MLmodel":
        return "mlmodel"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in (".svg", ".html", ".htm"):
        return "svg" if suffix == ".svg" else "html"
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml") or name in ("MLproject",):
        return "yaml"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in TEXT_SUFFIXES or name in ("requirements.txt", "LICENSE", "README"):
        return "text"
    return "binary"


def _decode(data: bytes) -> tuple[str, bool]:
    """Decode bytes as UTF-8; report whether they look binary (NUL bytes or many replacements)."""
    text = data.decode("utf-8", errors="replace")
    binary = "\x00" in text or text.count("\ufffd") > max(8, len(text) // 100)
    return text, binary


def _preview(store: "ArtifactStore", path: str, size: int | None) -> dict[str, Any]:
    """Build the preview of one file for the template."""
    kind = preview_kind(path)
    out: dict[str, Any] = {"kind": kind}
    if kind == "image":
        return out
    data, truncated = _read(store, path, TEXT_LIMIT)
    text, binary = _decode(data)
    out["truncated"] = truncated
    if binary and kind != "mlmodel":
        return {"kind": "binary"}
    out["text"] = text
    if kind == "json" and not truncated:
        try:
            out["text"] = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError as exc:
            out["error"] = f"Not valid JSON ({exc}); shown as text."
    elif kind == "csv":
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
        rows = []
        for i, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
            if i > CSV_ROWS:
                out["truncated"] = True
                break
            rows.append(row)
        out["header"], out["rows"] = (rows[0], rows[1:]) if rows else ([], [])
    elif kind == "mlmodel":
        out["card"] = _model_card(store, path, text)
    return out


def model_card(store: "ArtifactStore", path: str) -> dict[str, Any]:
    """Read the MLmodel file at ``path`` and return its model card (``{"error": ...}`` when unreadable)."""
    try:
        data, _ = _read(store, path, TEXT_LIMIT)
    except (NotFoundError, OSError) as exc:
        return {"error": f"No MLmodel file at {path!r}: {type(exc).__name__}"}
    return _model_card(store, path, data.decode("utf-8", "replace"))


def _model_card(store: "ArtifactStore", path: str, text: str) -> dict[str, Any]:
    """Parse an MLmodel file into a model card: flavors, signature, requirements and the rest."""
    import yaml

    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return {"error": f"The MLmodel file is not valid YAML: {exc}"}
    if not isinstance(meta, dict):
        return {"error": "The MLmodel file does not hold a mapping."}
    card: dict[str, Any] = {"flavors": [], "signature": {}, "requirements": [], "details": []}
    for name, conf in (meta.get("flavors") or {}).items():
        conf = conf if isinstance(conf, dict) else {}
        version = next((str(v) for k, v in conf.items() if k.endswith("_version") and k != "python_version"), "")
        card["flavors"].append({"name": name, "version": version,
                                "details": sorted((k, _text(v)) for k, v in conf.items())})
    for part in ("inputs", "outputs", "params"):
        raw = (meta.get("signature") or {}).get(part)
        if raw:
            try:
                columns = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                columns = [{"name": str(raw)}]
            card["signature"][part] = [_column(c) for c in columns or []]
    folder = posixpath.dirname(path)
    requirements = posixpath.join(folder, "requirements.txt") if folder else "requirements.txt"
    try:
        data, _ = _read(store, requirements, TEXT_LIMIT)
        card["requirements"] = [line.strip() for line in data.decode("utf-8", "replace").splitlines()
                                if line.strip() and not line.lstrip().startswith("#")]
    except (NotFoundError, OSError):
        pass
    card["details"] = sorted((k, _text(v)) for k, v in meta.items() if k not in ("flavors", "signature"))
    return card


def _text(value: Any) -> str:
    """Show a YAML value: mappings and lists as JSON, the rest as text."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def _column(column: Any) -> dict[str, str]:
    """One signature column as name, type and its other fields (JSON)."""
    if not isinstance(column, dict):
        return {"name": str(column), "type": "", "details": ""}
    rest = "; ".join(f"{k}={_text(v)}" for k, v in column.items() if k not in ("name", "type"))
    return {"name": str(column.get("name", "")), "type": str(column.get("type", "")), "details": rest}


def artifact_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """An artifact of a run: a folder listing, or a file's preview with its download link."""
    run = s.tracking.get_run(request.path_params["run_id"])
    path = check_proxy_path(request.path_params.get("path", "").rstrip("/"))
    store = s.artifact_store_for(run.info.artifact_uri)
    entry = _entry(store, path)
    if entry is None:
        raise NotFoundError(f"Run {run.info.run_id} has no artifact {path!r}; open the run page to see its artifacts.")
    crumbs = []
    parts = path.split("/") if path else []
    for i, part in enumerate(parts):
        crumbs.append({"name": part, "path": "/".join(parts[: i + 1])})
    context: dict[str, Any] = {"title": path or "artifacts", "run": run, "path": path, "crumbs": crumbs,
                               "entry": entry}
    if entry.is_dir:
        context["files"] = list_folder(store, path)
    else:
        context["preview"] = _preview(store, path, entry.file_size)
    return "artifact.html", context


# -- downloads -----------------------------------------------------------------------------------------
class ZipStream:
    """A write-only file object collecting what :class:`zipfile.ZipFile` writes, drained chunk by chunk."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        """Keep ``data`` until the next :meth:`drain`."""
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        """Return how many bytes were written so far (zipfile asks for offsets)."""
        return self._offset

    def flush(self) -> None:
        """Nothing to flush: bytes wait for :meth:`drain`."""

    def drain(self) -> bytes:
        """Return and forget what was written since the last call."""
        out, self._parts = b"".join(self._parts), []
        return out


def _walk(store: "ArtifactStore", folder: str) -> Iterator[str]:
    """Yield every file path under a folder, depth first."""
    for info in store.list(folder or None):
        if info.is_dir:
            yield from _walk(store, info.path)
        else:
            yield info.path


def _zip_chunks(store: "ArtifactStore", folder: str) -> Iterator[bytes]:
    """Yield a zip archive of a folder as it is built (files stored under paths relative to the folder)."""
    sink = ZipStream()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=5) as archive:  # type: ignore[arg-type]
        for path in _walk(store, folder):
            name = posixpath.relpath(path, folder) if folder else path
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in store.open(path):
                    member.write(chunk)
                    if sink.tell() > 0:
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def _disposition(name: str, inline: bool) -> str:
    kind = "inline" if inline else "attachment"
    printable = "".join(c if c.isprintable() else "_" for c in name)  # no CR/LF into a header
    ascii_name = printable.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_") or "download"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(printable)}"


async def download(request: Request) -> Response:
    """Stream a run's artifact file (``?inline=1`` for images shown in a page), or a folder as a zip."""
    s: ServerState = request.app.state.server
    try:
        run = await run_in_threadpool(s.tracking.get_run, request.path_params["run_id"])
        path = check_proxy_path(request.path_params.get("path", "").rstrip("/"))
        store = s.artifact_store_for(run.info.artifact_uri)
        entry = await run_in_threadpool(_entry, store, path)
        if entry is None:
            raise NotFoundError(f"Run {run.info.run_id} has no artifact {path!r}.")
    except Exception as exc:  # answered through the server's error table
        return error_response(exc)
    headers = dict(DOWNLOAD_HEADERS)
    if entry.is_dir:
        name = (posixpath.basename(path) or f"{run.info.run_id}-artifacts") + ".zip"
        headers["Content-Disposition"] = _disposition(name, False)
        return StreamingResponse(_zip_chunks(store, path), media_type="application/zip", headers=headers)
    name = posixpath.basename(path)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # shown inline only inside our pages: images in <img>, HTML in a sandboxed <iframe>; the
    # "sandbox" CSP keeps scripts off even when the file is opened directly
    inline = request.query_params.get("inline") == "1" and preview_kind(path) in INLINE_KINDS
    headers["Content-Disposition"] = _disposition(name, inline)
    if entry.file_size is not None:
        headers["Content-Length"] = str(entry.file_size)
    return StreamingResponse(store.open(path), media_type=media_type, headers=headers)
