"""Artifacts: the tracking API's ``artifacts/list``, and the artifact proxy.

The proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``) serves the artifact destination to
clients of runs whose artifact URI is ``mlflow-artifacts:/...``: PUT uploads the request body,
streamed to a hidden temporary file and renamed into place; GET streams a file back, or lists a
folder (``?path=``, basenames only, as MLflow answers); DELETE removes a file or folder. Paths with
``..``, absolute paths, backslashes and ``#`` are refused with 400; paths into the server's own
records (a ``.fitscribe`` folder, e.g. the logged-model records) with 403, and listings hide them.
Files of a sealed model folder (one whose ``MLmodel`` records their sha256) cannot be replaced by
other bytes, added to or deleted: 409, on every kind of destination (a local folder, S3, a plugin's).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import posixpath
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, BinaryIO, Callable, Iterable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fitscribe.errors import BackendError, InvalidValueError, NotFoundError
from fitscribe.server.errors import Conflict, Forbidden, NotSupported, error_response
from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.serialization import file_info_to_json
from fitscribe.server.state import ServerState, check_proxy_path

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore

__all__ = ["ENDPOINTS", "proxy_routes", "PROXY_PREFIXES", "RESERVED_FOLDER", "check_public_path", "refuse_reserved"]

PROXY_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
RESERVED_FOLDER = ".fitscribe"
"""Folders of this name in the artifact destination hold the server's own records: never served."""
_WRITE_CHUNK = 1024 * 1024
_MAX_MLMODEL_BYTES = 1024 * 1024
_PROBE_THREADS = 8
"""At most this many folders above an upload are probed for a sealed MLmodel at once (remote stores)."""
_MODEL_COMPANIONS = frozenset({"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "registered_model_meta"})
"""Files of a model folder that its MLmodel does not hash (fitscribe.flavors.model's unhashed set)."""
SAFE_DOWNLOAD_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
"""Sent with every proxy download: an HTML or SVG artifact opened in a browser runs no script with the
server's origin (``sandbox``), and no file is sniffed into another type."""


def refuse_reserved(relative: str) -> str:
    """Return ``relative`` unless one of its components is a ``.fitscribe`` folder (any case).

    Raises:
        Forbidden: The path reaches into the server's own records.
    """
    if any(part.casefold() == RESERVED_FOLDER for part in relative.split("/")):
        raise Forbidden(f"Invalid path {relative!r}: '{RESERVED_FOLDER}' folders hold the server's own records "
                        "and cannot be read, written or deleted through the artifact API.")
    return relative


def check_public_path(path: str, *, file: bool = False) -> str:
    """Validate an artifact path received over HTTP (:func:`check_proxy_path`) and refuse the server's
    own records (:func:`refuse_reserved`); return it normalised (``""`` for the root)."""
    return refuse_reserved(check_proxy_path(path, file=file))


def _root_path(s: ServerState, root: str) -> str:
    """The path of an ``mlflow-artifacts:`` root inside the artifact destination (``""`` otherwise)."""
    from urllib.parse import unquote, urlsplit

    from fitscribe.server.state import PROXY_SCHEME
    from fitscribe.uri import scheme_key

    if not s.serve_artifacts or scheme_key(root) != PROXY_SCHEME:
        return ""
    return unquote(urlsplit(root).path).strip("/")


def list_under(s: ServerState, root: str, path: str) -> list[Any]:
    """List ``path`` under an artifact root (a run's or a model's), refusing the server's own records."""
    relative = check_public_path(path)
    refuse_reserved(posixpath.join(_root_path(s, root), relative))
    return list(s.artifact_store_for(root).list(relative or None))


def list_artifacts(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the files and folders directly under ``path`` of a run's artifacts (run-relative paths)."""
    root = s.tracking.get_run(p.run_id()).info.artifact_uri
    infos = list_under(s, root, p.text("path") or "")
    out: dict[str, Any] = {"root_uri": root}
    if infos:
        out["files"] = [file_info_to_json(i.path, i.is_dir, i.file_size) for i in infos]
    return out


ENDPOINTS = (
    Endpoint("GET", "artifacts/list", list_artifacts, "List a run's artifacts under a path.",
             fields("run_id run_uuid path page_token")),
)


# -- the proxy ---------------------------------------------------------------------------------
Raw = Callable[[Request, ServerState], Awaitable[Response]]


def _guarded(handler: Raw) -> Callable[[Request], Awaitable[Response]]:
    """Answer a raw handler's exceptions through the error table."""

    async def call(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.server)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except Exception as exc:  # answered through the error table; bugs are logged there
            return error_response(exc)

    call.__name__ = handler.__name__
    call.__doc__ = handler.__doc__
    return call


async def proxy_list(request: Request, s: ServerState) -> Response:
    """List a folder of the artifact destination: ``{"files": [{path: basename, is_dir, file_size}]}``."""
    relative = check_public_path(request.query_params.get("path") or "")
    store = s.proxy_store()
    infos = await run_in_threadpool(store.list, relative or None)
    files = [file_info_to_json(posixpath.basename(i.path), i.is_dir, i.file_size) for i in infos
             if posixpath.basename(i.path).casefold() != RESERVED_FOLDER]
    return JSONResponse({"files": files} if files else {})


async def proxy_download(request: Request, s: ServerState) -> Response:
    """Stream a file of the artifact destination (404 if missing, 400 for a folder)."""
    relative = check_public_path(request.path_params["path"], file=True)
    store = s.proxy_store()
    chunks = await run_in_threadpool(store.open, relative)
    name = posixpath.basename(relative)
    quoted = quote(name)
    disposition = f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    local_path = store.local_path(relative)
    if local_path is not None:
        headers["Content-Length"] = str(await run_in_threadpool(_size, local_path))
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StreamingResponse(chunks, media_type=media_type, headers={**headers, **SAFE_DOWNLOAD_HEADERS})


def _size(path: str) -> int:
    return os.path.getsize(path)


async def _receive(stream: AsyncIterator[bytes], path: str) -> str:
    """Write a request body to ``path`` as it arrives, in writes of about 1 MiB off the event loop;
    return the sha256 (hex) of the body, computed on the way."""
    digest = hashlib.sha256()

    def write(handle: BinaryIO, data: bytes | bytearray) -> None:
        digest.update(data)
        handle.write(data)

    with open(path, "wb") as handle:
        buffer = bytearray()
        async for chunk in stream:
            buffer += chunk
            if len(buffer) >= _WRITE_CHUNK:
                data, buffer = buffer, bytearray()
                await run_in_threadpool(write, handle, data)
        if buffer:
            await run_in_threadpool(write, handle, buffer)
    return digest.hexdigest()


# -- sealed model folders ----------------------------------------------------------------------
# Read through the destination's public ArtifactStore API (open, list), so the rules hold for every
# destination (a local folder, S3, a plugin's store), and read afresh by each request: nothing cached.
def sealed_model_folder(store: ArtifactStore, relative: str) -> tuple[str, dict[str, Any]] | None:
    """Return the model folder sealing ``relative`` (a file or folder path) and its recorded files, or None.

    A folder is sealed once its ``MLmodel`` carries fitscribe's ``files`` block (the sha256 of each
    file, written by fitscribe's ``save_model``/``log_model``); the nearest sealed ``MLmodel`` above
    ``relative`` decides. Models saved by other tools carry no such block and are not sealed.

    Costs one :meth:`~ArtifactStore.open` per folder above ``relative``. On a remote store (S3: two
    small requests each) the folders are probed at once, from a few threads, so that an upload waits
    for one round of requests rather than one per folder; on a local one, in turn from the nearest.
    """
    folders: list[str] = []
    folder = relative
    while folder:
        folder = posixpath.dirname(folder)
        folders.append(folder)

    def probe(above: str) -> dict[str, Any] | None:
        return _sealed_files(store, posixpath.join(above, "MLmodel"))

    if store.local_path() is not None or len(folders) < 2:
        found: Iterable[dict[str, Any] | None] = map(probe, folders)  # lazily: stops at the nearest
    else:
        with ThreadPoolExecutor(max_workers=min(len(folders), _PROBE_THREADS)) as pool:
            found = list(pool.map(probe, folders))
    for folder, files in zip(folders, found):
        if files is not None:
            return folder, files
    return None


def _read_small(store: ArtifactStore, path: str, limit: int) -> bytes | None:
    """Return a file's bytes, or None when it is missing, a folder, unreadable or over ``limit`` bytes."""
    try:
        chunks = store.open(path)
    except (NotFoundError, InvalidValueError):
        return None
    data = bytearray()
    try:
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                return None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return bytes(data)


def _sealed_files(store: ArtifactStore, mlmodel: str) -> dict[str, Any] | None:
    """Return the ``fitscribe.files`` mapping of an MLmodel file, or None (no file, not sealed, unreadable)."""
    import yaml

    text = _read_small(store, mlmodel, _MAX_MLMODEL_BYTES)
    if text is None:
        return None
    try:
        data = yaml.safe_load(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, yaml.YAMLError):
        return None
    block = data.get("fitscribe") if isinstance(data, dict) else None
    files = block.get("files") if isinstance(block, dict) else None
    return files if isinstance(files, dict) and files else None


def _holds_sealed_model(store: ArtifactStore, folder: str) -> bool:
    """Whether a sealed ``MLmodel`` lies anywhere under ``folder`` (one listing per folder below it)."""
    pending = [folder]
    while pending:
        for info in store.list(pending.pop() or None):
            if info.is_dir:
                pending.append(info.path)
            elif posixpath.basename(info.path) == "MLmodel" and _sealed_files(store, info.path) is not None:
                return True
    return False


def _refuse_sealed_delete(store: ArtifactStore, relative: str) -> None:
    """Refuse deleting a file or folder of a sealed model, or a folder holding one (409)."""
    if sealed_model_folder(store, relative) is not None or _holds_sealed_model(store, relative):
        raise Conflict("Refusing to delete files of a sealed model (its MLmodel records their sha256): logged "
                       "models cannot be changed through the artifact proxy; log a new model instead.")


def _stored_sha256(store: ArtifactStore, relative: str) -> str | None:
    """The sha256 of the file stored at ``relative``, None when there is none, ``""`` for a folder."""
    try:
        chunks = store.open(relative)
    except NotFoundError:
        return None
    except InvalidValueError:  # a folder (or a path the store will not read): never equal to a file
        return ""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _refuse_sealed_upload(store: ArtifactStore, relative: str, sha256: str) -> bool:
    """Check an upload of bytes with this sha256 to ``relative``; return True when it changes nothing.

    Inside a sealed model folder, a file the MLmodel records may only be sent with the recorded
    sha256 (a retried upload, or the upload of a model whose MLmodel arrived first). Any other file
    (the MLmodel itself, its unhashed companions) may be sent again with the bytes already stored,
    compared by reading the stored file back (they are small); a missing one only if it is a
    companion (uploads arrive one file at a time). The upload was hashed as it streamed to a
    temporary file, so nothing is written to the destination before this check: a refused upload
    leaves the stored file untouched.

    Raises:
        Conflict: The upload would replace or add a file of a sealed model.
    """
    sealed = sealed_model_folder(store, relative)
    if sealed is None:
        return False
    folder, files = sealed
    name = relative[len(folder) + 1:] if folder else relative
    recorded = files.get(name)
    if recorded is None:
        stored = _stored_sha256(store, relative)
        if stored == sha256:
            return True
        if stored is None and name in _MODEL_COMPANIONS:
            return False
    elif recorded == sha256:
        return False
    raise Conflict("Refusing to change a sealed model (its MLmodel records the sha256 of its files): logged "
                   "models cannot be changed through the artifact proxy; log a new model instead.")


def _move_into_place(source: str, target: str) -> None:
    """Rename an uploaded file over ``target`` (same filesystem), creating its folder."""
    if os.path.isdir(target):
        raise InvalidValueError(f"Cannot upload to {target!r}: a folder of that name exists.")
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidValueError(f"Cannot upload to {target!r}: one of its parent folders is a file.") from None
    try:
        os.replace(source, target)
    except OSError as exc:
        raise BackendError(f"Could not store the upload at {target!r}: {exc}") from exc


async def proxy_upload(request: Request, s: ServerState) -> Response:
    """Store the request body as a file of the artifact destination (replacing any file there).

    The body is streamed to a temporary file (inside a local destination, so that it is renamed into
    place; a local temporary folder for any other store, then sent with ``put``) and hashed on the
    way; files of a sealed model are checked against that hash before anything is stored.
    """
    relative = check_public_path(request.path_params["path"], file=True)
    store = s.proxy_store()
    folder = await run_in_threadpool(store.scratch_folder)
    if folder is not None:  # a local store: stream in place, rename once
        try:
            upload = os.path.join(folder, "upload")
            sha256 = await _receive(request.stream(), upload)
            if not await run_in_threadpool(_refuse_sealed_upload, store, relative, sha256):
                target = await run_in_threadpool(store.local_path, relative)
                await run_in_threadpool(_move_into_place, upload, target)
        finally:
            await run_in_threadpool(shutil.rmtree, folder, True)
        return JSONResponse({})
    with tempfile.TemporaryDirectory(prefix="fitscribe-upload-") as tmp:  # any other store: via put()
        upload = os.path.join(tmp, posixpath.basename(relative))
        sha256 = await _receive(request.stream(), upload)
        if not await run_in_threadpool(_refuse_sealed_upload, store, relative, sha256):
            await run_in_threadpool(store.put, upload, posixpath.dirname(relative) or None)
    return JSONResponse({})


async def proxy_delete(request: Request, s: ServerState) -> Response:
    """Delete a file or folder of the artifact destination (nothing there is fine)."""
    relative = check_public_path(request.path_params["path"])
    if not relative:
        raise InvalidValueError("Refusing to delete the whole artifact destination; name a file or folder.")
    store = s.proxy_store()
    await run_in_threadpool(_refuse_sealed_delete, store, relative)
    await run_in_threadpool(store.delete, relative)
    return JSONResponse({})


async def multipart_unsupported(request: Request, s: ServerState) -> Response:
    """Refuse multipart uploads: MLflow's client then falls back to one PUT."""
    raise NotSupported("Multipart upload is not supported for the current artifact repository")


async def presigned_unsupported(request: Request, s: ServerState) -> Response:
    """Refuse presigned downloads: MLflow's client then downloads through the proxy."""
    raise NotSupported("Presigned URLs are not supported for the current artifact repository")


def proxy_routes() -> list[Route]:
    """Return the artifact proxy's routes under each of :data:`PROXY_PREFIXES`."""
    table: list[tuple[str, str, Raw]] = [
        ("GET", "artifacts", proxy_list),
        ("GET", "artifacts/{path:path}", proxy_download),
        ("PUT", "artifacts/{path:path}", proxy_upload),
        ("DELETE", "artifacts/{path:path}", proxy_delete),
        ("POST", "mpu/create/{path:path}", multipart_unsupported),
        ("GET", "presigned/{path:path}", presigned_unsupported),
    ]
    return [Route(f"{prefix}/{path}", _guarded(handler), methods=[method])
            for prefix in PROXY_PREFIXES for method, path, handler in table]
