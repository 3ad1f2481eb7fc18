"""The ``mlflow-artifacts`` artifact store: a run's files streamed through the tracking server's proxy.

A server started with artifact serving gives runs artifact URIs like ``mlflow-artifacts:/1/<run>/artifacts``;
files are then uploaded and downloaded with ``/api/2.0/mlflow-artifacts/artifacts/<path>`` on the
server, which keeps them in its artifact destination. The server's address comes from:

- the URI itself: ``mlflow-artifacts://host:port/<path>`` (http, unless the ``tracking_uri`` option
  is an https URL of the same host), or its explicit form
  ``http(s)://host:port[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>``, which the REST
  tracking store hands out as the runs' artifact URIs;
- else the ``tracking_uri`` option, else ``$FITSCRIBE_TRACKING_URI`` or ``$MLFLOW_TRACKING_URI``.

Uploads and downloads stream in 1 MiB chunks; nothing holds a whole file in memory. Each operation
opens its own connection and closes it (stores are built per call by ``Client``).
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import unquote, urlsplit

from fitscribe.backends.base import ArtifactStore, FileInfo
from fitscribe.errors import ConfigError, InvalidValueError, NotFoundError
from fitscribe.uri import check_relative_path, redact

from .http import PROXY_PREFIX, HttpSession, decode_response, error_for, unavailable

if TYPE_CHECKING:
    import httpx

__all__ = ["MlflowArtifactsStore", "create_artifact_store", "proxy_http_uri", "proxy_scheme_uri", "PROXY_SCHEME"]

PROXY_SCHEME = "mlflow-artifacts"
CHUNK_SIZE = 1024 * 1024


def proxy_http_uri(uri: str, base_url: str) -> str:
    """Return the explicit http(s) form of an ``mlflow-artifacts:`` URI, served by ``base_url``.

    >>> proxy_http_uri("mlflow-artifacts:/1/abc/artifacts", "http://127.0.0.1:5000")
    'http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts'
    """
    parts = urlsplit(uri)
    base = urlsplit(base_url)
    netloc = parts.netloc or base.netloc
    scheme = base.scheme if not parts.netloc or parts.netloc == base.netloc else "http"
    path = parts.path.strip("/")
    prefix = f"{scheme}://{netloc}{base.path.rstrip('/')}{PROXY_PREFIX}"
    return f"{prefix}/{path}" if path else prefix


def proxy_scheme_uri(uri: str, base_url: str) -> str:
    """Return ``mlflow-artifacts:/<path>`` for an explicit proxy URL of ``base_url`` (else ``uri``).

    >>> proxy_scheme_uri("http://h:5000/api/2.0/mlflow-artifacts/artifacts/1", "http://h:5000")
    'mlflow-artifacts:/1'
    """
    prefix = f"{base_url}{PROXY_PREFIX}"
    if uri == prefix or uri.startswith(prefix + "/"):
        return f"{PROXY_SCHEME}:/{uri[len(prefix):].lstrip('/')}"
    return uri


def _split(uri: str, tracking_uri: str | None) -> tuple[str, str]:
    """Return ``(server base URL, root path in the artifact destination)`` for an artifact URI."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        path = parts.path
        marker = path.find(PROXY_PREFIX)
        if marker < 0:
            raise ConfigError(
                f"The artifact URI {redact(uri)!r} is not an artifact proxy URL (…{PROXY_PREFIX}/<path>)."
            )
        base = f"{scheme}://{parts.netloc}{path[:marker]}"
        return base, unquote(path[marker + len(PROXY_PREFIX):]).strip("/")
    if scheme != PROXY_SCHEME:
        raise ConfigError(f"{redact(uri)!r} is not an {PROXY_SCHEME}: URI.")
    server = tracking_uri or os.environ.get("FITSCRIBE_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if parts.netloc:
        return _server_of(server, parts.netloc), unquote(parts.path).strip("/")
    if not server or urlsplit(server).scheme.lower() not in ("http", "https"):
        raise ConfigError(
            f"The artifact URI {uri!r} is served by a tracking server, but no server URL is known: open "
            "the run with Client('http://host:port'), or set FITSCRIBE_TRACKING_URI to the server's URL."
        )
    return server.rstrip("/"), unquote(parts.path).strip("/")


def _server_of(tracking_uri: str | None, netloc: str) -> str:
    """``mlflow-artifacts://host:port/``: that host, with the scheme and prefix of a tracking URI on it."""
    if tracking_uri:
        tracking = urlsplit(tracking_uri)
        if tracking.scheme.lower() in ("http", "https") and tracking.netloc.rsplit("@", 1)[-1] == netloc:
            return tracking_uri.rstrip("/")
    return f"http://{netloc}"


def create_artifact_store(uri: str, **options: Any) -> "MlflowArtifactsStore":
    """Factory registered for the ``mlflow-artifacts``, ``http`` and ``https`` artifact schemes."""
    return MlflowArtifactsStore(uri, tracking_uri=options.get("tracking_uri"))


class MlflowArtifactsStore(ArtifactStore):
    """Files under a root of a tracking server's artifact proxy; an :class:`~fitscribe.backends.base.ArtifactStore`.

    Args:
        root_uri: ``mlflow-artifacts:/<path>``, ``mlflow-artifacts://host:port/<path>`` or
            ``http(s)://host:port[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>``.
        tracking_uri: The tracking server, for ``mlflow-artifacts:/`` URIs without a host.

    Raises:
        ConfigError: The URI names no server and none is known.
    """

    def __init__(self, root_uri: str, tracking_uri: str | None = None) -> None:
        self.root_uri = root_uri
        base, self.root = _split(root_uri, tracking_uri)
        if tracking_uri and urlsplit(tracking_uri).netloc.rsplit("@", 1)[-1] == urlsplit(base).netloc:
            base = tracking_uri  # keep the tracking URI's credentials
        self._session = HttpSession(base)

    def __repr__(self) -> str:
        return f"MlflowArtifactsStore({redact(self.root_uri)!r})"

    def _path(self, artifact_path: str | None) -> str:
        relative = check_relative_path(artifact_path or "")
        return posixpath.join(self.root, relative) if relative else self.root

    @contextmanager
    def _http(self) -> Iterator["httpx.Client"]:
        client = self._session.new_client()
        try:
            yield client
        finally:
            client.close()

    def _request(self, client: "httpx.Client", method: str, path: str, **kwargs: Any) -> "httpx.Response":
        import httpx

        what = f"{method} {path!r} on the artifact proxy of {self._session.base_url}"
        try:
            response = client.request(method, self._session.proxy_url(path), **kwargs)
        except httpx.TransportError as exc:
            raise unavailable(exc, what) from exc
        if response.status_code != 200:
            decode_response(response, what)
        return response

    # -- ArtifactStore ---------------------------------------------------------------------------
    def put(self, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file, or a directory's contents recursively, under ``artifact_path``.

        Raises:
            NotFoundError: ``local_path`` does not exist.
            InvalidValueError: ``artifact_path`` is absolute or climbs out with ``..``.
        """
        dest = self._path(artifact_path)
        if not os.path.exists(local_path):
            raise NotFoundError(f"The local path {local_path!r} does not exist; pass an existing file or directory "
                                "to log as an artifact.")
        with self._http() as client:
            for source, target in sorted(_uploads(local_path, dest)):
                self._upload(client, source, target)

    def _upload(self, client: "httpx.Client", source: str, target: str) -> None:
        import mimetypes

        size = os.path.getsize(source)
        headers = {"Content-Type": mimetypes.guess_type(source)[0] or "application/octet-stream",
                   "Content-Length": str(size)}
        with open(source, "rb") as handle:
            chunks = iter(lambda: handle.read(CHUNK_SIZE), b"")
            self._request(client, "PUT", target, content=chunks, headers=headers)

    def list(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of ``path`` (``[]`` for a file or a missing folder), sorted."""
        relative = check_relative_path(path or "")
        with self._http() as client:
            answer = self._request(client, "GET", "", params={"path": self._path(relative)}).json()
        files = answer.get("files") or []
        if len(files) == 1 and not files[0].get("is_dir") and relative and \
                files[0].get("path") == posixpath.basename(relative):
            return []  # MLflow's servers list a file as itself: "this is a file"
        infos = [FileInfo(posixpath.join(relative, f["path"]) if relative else f["path"], bool(f.get("is_dir")),
                          None if f.get("is_dir") else int(f.get("file_size") or 0)) for f in files]
        return sorted(infos, key=lambda i: i.path)

    def get(self, artifact_path: str, dst_dir: str) -> str:
        """Download a file or folder into ``dst_dir``; return the local path.

        Raises:
            NotFoundError: Nothing exists at ``artifact_path``.
        """
        relative = check_relative_path(artifact_path or "")
        target = os.path.join(dst_dir, posixpath.basename(relative)) if relative else dst_dir
        children = self.list(relative)
        if children or not relative:
            os.makedirs(target, exist_ok=True)
            for child in children:
                self.get(child.path, target) if child.is_dir else self._download(child.path, target)
            return target
        os.makedirs(dst_dir, exist_ok=True)
        return self._download(relative, dst_dir)

    def _download(self, relative: str, dst_dir: str) -> str:
        target = os.path.join(dst_dir, posixpath.basename(relative))
        fd, partial = tempfile.mkstemp(prefix=".fitscribe-download-", dir=dst_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.open(relative):
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return target

    def open(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks; the request is made at once (errors are raised here).

        Raises:
            NotFoundError: No file exists at ``artifact_path``.
            InvalidValueError: The path is a folder.
        """
        relative = check_relative_path(artifact_path)
        if not relative:
            raise InvalidValueError("open() needs the path of a file, not the artifact root.")
        client = self._session.new_client()
        try:
            request = client.build_request("GET", self._session.proxy_url(self._path(relative)))
            response = client.send(request, stream=True)
        except Exception as exc:
            client.close()
            import httpx

            if isinstance(exc, httpx.TransportError):
                raise unavailable(exc, f"GET {relative!r} on {self._session.base_url}") from exc
            raise
        if response.status_code != 200:
            response.read()
            client.close()
            raise error_for(response.status_code, _json_or_none(response), f"GET {relative!r}")
        return _stream(client, response)

    def delete(self, artifact_path: str | None = None) -> None:
        """Delete a file or folder (the whole root if None); deleting nothing is fine."""
        with self._http() as client:
            self._request(client, "DELETE", self._path(artifact_path))


def _uploads(local_path: str, dest: str) -> list[tuple[str, str]]:
    """``(local file, proxy path)`` pairs: a file lands under ``dest``, a folder's contents too."""
    if not os.path.isdir(local_path):
        return [(local_path, posixpath.join(dest, os.path.basename(local_path)))]
    pairs = []
    for folder, _, names in os.walk(local_path):
        for name in names:
            source = os.path.join(folder, name)
            pairs.append((source, posixpath.join(dest, os.path.relpath(source, local_path).replace(os.sep, "/"))))
    return pairs


def _json_or_none(response: "httpx.Response") -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _stream(client: "httpx.Client", response: "httpx.Response") -> Iterator[bytes]:
    """Yield a response's bytes, closing the response and its client at the end (or on close)."""
    try:
        yield from response.iter_bytes(CHUNK_SIZE)
    finally:
        response.close()
        client.close()
