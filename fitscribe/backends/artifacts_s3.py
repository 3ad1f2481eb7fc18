"""The ``s3`` artifact store: artifacts kept under ``s3://bucket/prefix`` on S3 or any S3-compatible server.

boto3 is imported on first use (``pip install "fitscribe[s3]"``); building a store does no I/O.

Configuration, read when a store is built:

- endpoint: the ``endpoint_url`` option, else ``FITSCRIBE_S3_ENDPOINT_URL``, else MLflow's
  ``MLFLOW_S3_ENDPOINT_URL``, else AWS itself (MinIO, Ceph, moto... need one of these);
- credentials and region: boto3's normal chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
  ``AWS_PROFILE``, ``~/.aws``, instance roles...);
- ``MLFLOW_S3_IGNORE_TLS=true``: do not verify the endpoint's TLS certificate;
- ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``: a JSON object of extra upload arguments, e.g.
  ``{"ServerSideEncryption": "aws:kms"}``;
- multipart: files of ``multipart_threshold`` bytes or more (default 8 MiB) move in parts of
  ``multipart_chunksize`` bytes (default 8 MiB), ``max_concurrency`` at a time (default 10); the
  options, else ``FITSCRIBE_S3_MULTIPART_THRESHOLD`` / ``FITSCRIBE_S3_MULTIPART_CHUNKSIZE``
  (bytes, or with a KB/MB/GB suffix, binary multiples).

Transfers go through boto3's transfer manager, which reads uploads from their file part by part and
writes downloads to a temporary file renamed into place: a file is never held whole in memory.
Clients come from boto3's default session (boto3's own per-process state, so credentials and the
service model load once per process, not once per store); their creation is serialised by a lock
because boto3 sessions are not thread safe.
"""

from __future__ import annotations

import json
import mimetypes
import os
import posixpath
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from fitscribe.backends.base import ArtifactStore, FileInfo
from fitscribe.errors import (
    BackendError,
    ConfigError,
    FitscribeError,
    InvalidValueError,
    MissingDependencyError,
    NotFoundError,
)
from fitscribe.uri import check_relative_path

__all__ = ["S3ArtifactStore", "create_artifact_store", "parse_size"]

ENV_ENDPOINT = ("FITSCRIBE_S3_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
ENV_IGNORE_TLS = "MLFLOW_S3_IGNORE_TLS"
ENV_EXTRA_ARGS = "MLFLOW_S3_UPLOAD_EXTRA_ARGS"
ENV_THRESHOLD = "FITSCRIBE_S3_MULTIPART_THRESHOLD"
ENV_CHUNKSIZE = "FITSCRIBE_S3_MULTIPART_CHUNKSIZE"
MiB = 1024 * 1024
_CLIENT_LOCK = threading.Lock()  # boto3 sessions are not thread safe: one client built at a time
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?)?\s*$", re.IGNORECASE)
_MISSING_KEY = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled")

Progress = Callable[[int], None]
"""A callback receiving the number of bytes moved since its previous call."""


def parse_size(text: str | int, what: str) -> int:
    """Return a size in bytes from an int or a string such as ``"8388608"``, ``"8MB"`` or ``"16MiB"``.

    Suffixes are binary multiples (KB = 1024 bytes), as in boto3's ``TransferConfig``.

    Raises:
        ConfigError: The value is not a positive size.

    >>> parse_size("8MB", "multipart_chunksize")
    8388608
    """
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE_RE.match(text)
        if not match:
            raise ConfigError(f"{what} {text!r} is not a size; write bytes or e.g. '8MB', '64MB', '1GB'.")
        factor = {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[(match.group(2) or " ")[0].upper().strip()]
        value = int(match.group(1)) * factor
    if value <= 0:
        raise ConfigError(f"{what} must be a positive number of bytes, not {text!r}.")
    return value


def create_artifact_store(uri: str, **options: Any) -> "S3ArtifactStore":
    """Factory registered for the ``s3`` artifact scheme; unknown options are ignored."""
    known = ("endpoint_url", "multipart_threshold", "multipart_chunksize", "max_concurrency")
    return S3ArtifactStore(uri, **{k: v for k, v in options.items() if k in known})


class S3ArtifactStore(ArtifactStore):
    """Artifacts under ``s3://bucket/prefix``; implements :class:`~fitscribe.backends.base.ArtifactStore`.

    Args:
        root_uri: ``s3://bucket`` or ``s3://bucket/some/prefix``.
        endpoint_url: The S3 endpoint (default: ``$FITSCRIBE_S3_ENDPOINT_URL``, else
            ``$MLFLOW_S3_ENDPOINT_URL``, else AWS).
        multipart_threshold: Files this size or larger are moved in parts (default 8 MiB).
        multipart_chunksize: The size of each part (default 8 MiB; S3's minimum is 5 MiB).
        max_concurrency: Parts (or files) moved at once (default 10).

    Raises:
        ConfigError: The URI is not ``s3://<bucket>[/prefix]``, or a size is invalid.

    >>> store = S3ArtifactStore("s3://my-bucket/experiments/1")
    >>> store.bucket, store.prefix
    ('my-bucket', 'experiments/1')
    """

    CHUNK_SIZE = MiB
    """Size in bytes of the chunks :meth:`open` yields."""
    reports_progress = True
    """``get`` and ``put`` take a ``progress`` callback (boto3's transfer manager counts the bytes)."""
    PAGE_SIZE = 1000
    """Keys asked for per listing request (S3 answers at most 1,000)."""

    def __init__(
        self,
        root_uri: str,
        *,
        endpoint_url: str | None = None,
        multipart_threshold: int | str | None = None,
        multipart_chunksize: int | str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        parts = urlsplit(root_uri)
        if parts.scheme.lower() != "s3" or not parts.netloc:
            raise ConfigError(
                f"The artifact URI {root_uri!r} is not an S3 URI; write s3://<bucket>[/prefix], e.g. "
                "'s3://my-bucket/fitscribe'."
            )
        self.root_uri = root_uri
        self.bucket = parts.netloc
        self.prefix = check_relative_path(parts.path.strip("/"), "S3 key prefix") if parts.path.strip("/") else ""
        self.endpoint_url = endpoint_url or next((os.environ[n] for n in ENV_ENDPOINT if os.environ.get(n)), None)
        self.verify_tls = os.environ.get(ENV_IGNORE_TLS, "").strip().lower() not in ("1", "true", "yes")
        self.multipart_threshold = parse_size(
            multipart_threshold or os.environ.get(ENV_THRESHOLD) or 8 * MiB, "multipart_threshold")
        self.multipart_chunksize = parse_size(
            multipart_chunksize or os.environ.get(ENV_CHUNKSIZE) or 8 * MiB, "multipart_chunksize")
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, not {max_concurrency}.")
        self.max_concurrency = max_concurrency or 10
        self._extra_args_text = os.environ.get(ENV_EXTRA_ARGS, "")
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.root_uri!r})"

    # -- public API ---------------------------------------------------------------------------

    def put(self, local_path: str, artifact_path: str | None = None, *, progress: Progress | None = None) -> None:
        """Upload a local file, or a directory's contents recursively, under ``artifact_path``.

        A file lands at ``<root>/<artifact_path>/<basename>``; a directory's contents under
        ``<root>/<artifact_path>/``. Large files are uploaded in parts, several at a time, read
        from disk as they go. Existing objects are replaced.

        Args:
            local_path: The file or directory to upload.
            artifact_path: The destination folder, relative to the root; None or ``""`` for the root.
            progress: Called with the number of bytes sent since its previous call (from
                several threads).

        Raises:
            NotFoundError: ``local_path`` does not exist, or the bucket does not exist.
            InvalidValueError: ``artifact_path`` is absolute or climbs out of the root.
            ConfigError: No credentials were found, or ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` is invalid.
            BackendError: The endpoint is unreachable or refused the upload.
        """
        dest = check_relative_path(artifact_path or "")
        if not os.path.exists(local_path):
            raise NotFoundError(
                f"The local path {local_path!r} does not exist; pass an existing file or directory "
                "to log as an artifact."
            )
        extra = self._upload_args()
        pairs = list(_uploads(local_path, dest))
        with self._translate(f"upload {local_path!r} to {self._uri(dest)}"), self._manager() as manager:
            futures = [
                manager.upload(source, self.bucket, self._key(target), extra_args=_with_type(extra, source),
                               subscribers=_subscribers(progress))
                for source, target in pairs
            ]
            _wait(futures)

    def get(self, artifact_path: str, dst_dir: str, *, progress: Progress | None = None) -> str:
        """Download an artifact file or folder into ``dst_dir``, creating it; return the local path.

        Each file is written to a temporary name and renamed into place when complete; large files
        are fetched in ranges, several at a time, and written as they arrive.

        Args:
            artifact_path: The file or folder, relative to the root; ``""`` downloads the whole
                root's contents into ``dst_dir`` itself.
            dst_dir: The local folder to download into.
            progress: Called with the number of bytes received since its previous call.

        Returns:
            ``<dst_dir>/<basename of artifact_path>``, or ``dst_dir`` for the root.

        Raises:
            NotFoundError: No artifact exists at ``artifact_path``, or the bucket does not exist.
            InvalidValueError: ``artifact_path`` is absolute or climbs out of the root, or an
                object under it has a key that would land outside ``dst_dir``.
            BackendError: The endpoint is unreachable or refused the download.
        """
        relative = check_relative_path(artifact_path or "")
        target = os.path.join(dst_dir, posixpath.basename(relative)) if relative else dst_dir
        with self._translate(f"download {self._uri(relative)}"):
            size = self._file_size(relative) if relative else None
            if size is not None:
                files = [(relative, target)]
            else:
                files = [(path, os.path.join(target, *below.split("/"))) for path, below in self._under(relative)]
                if not files and relative and not self._has_children(relative):  # (a marker: an empty folder)
                    raise NotFoundError(self._missing(relative))
                os.makedirs(target, exist_ok=True)
            with self._manager() as manager:
                futures = []
                for path, local in files:
                    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
                    futures.append(manager.download(self.bucket, self._key(path), local,
                                                    subscribers=_subscribers(progress)))
                _wait(futures)
        return target

    def list(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of a folder, sorted by path, following S3's pagination.

        Paths are relative to the root (``plots/a.png``); folders have ``file_size`` None.

        Args:
            path: The folder to list, relative to the root; None or ``""`` for the root.

        Returns:
            The children, or ``[]`` when ``path`` is a file or nothing is under it.

        Raises:
            InvalidValueError: ``path`` is absolute or climbs out of the root.
            NotFoundError: The bucket does not exist.
            BackendError: The endpoint is unreachable or refused the listing.
        """
        relative = check_relative_path(path or "")
        prefix = self._folder_key(relative)
        infos: list[FileInfo] = []
        with self._translate(f"list {self._uri(relative)}"):
            pages = self._client_().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": self.PAGE_SIZE})
            for page in pages:
                for entry in page.get("CommonPrefixes", ()):
                    name = entry["Prefix"][len(prefix):].rstrip("/")
                    if name:
                        infos.append(FileInfo(_join(relative, name), True, None))
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(prefix):]
                    if name:  # not the folder's own marker object
                        infos.append(FileInfo(_join(relative, name), False, int(entry["Size"])))
        return sorted(infos, key=lambda i: i.path)

    def delete(self, artifact_path: str | None = None) -> None:
        """Delete an artifact file or folder; with no path, everything under the root.

        Deleting something that does not exist does nothing.

        Raises:
            InvalidValueError: ``artifact_path`` is absolute or climbs out of the root.
            NotFoundError: The bucket does not exist.
            BackendError: The endpoint is unreachable, or refused to delete some objects.
        """
        relative = check_relative_path(artifact_path or "")
        with self._translate(f"delete {self._uri(relative)}"):
            keys = list(self._keys_under(self._folder_key(relative)))
            if relative:
                keys.append(self._key(relative))
            client = self._client_()
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start:start + 1000]]
                answer = client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                errors = answer.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise BackendError(
                        f"S3 refused to delete {len(errors)} object(s) under {self._uri(relative)}, e.g. "
                        f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                    )

    def open(self, artifact_path: str) -> Iterator[bytes]:
        """Stream an artifact file's bytes in chunks of :attr:`CHUNK_SIZE` (1 MiB).

        The request is made at once, so a missing file is reported here; the body is read as the
        iterator advances and closed when it is exhausted or closed.

        Raises:
            NotFoundError: No file exists at ``artifact_path``, or the bucket does not exist.
            InvalidValueError: The path is a folder, is absolute, or climbs out of the root.
            BackendError: The endpoint is unreachable.
        """
        relative = check_relative_path(artifact_path)
        if not relative:
            raise InvalidValueError("open() needs the path of a file, not the artifact root.")
        with self._translate(f"read {self._uri(relative)}"):
            try:
                body = self._client_().get_object(Bucket=self.bucket, Key=self._key(relative))["Body"]
            except Exception as exc:
                if _code(exc) not in _MISSING_KEY:
                    raise
                if self._has_children(relative):
                    raise InvalidValueError(
                        f"The artifact {relative!r} is a folder, not a file; open a file inside it "
                        "(list() shows them) or download the whole folder with get()."
                    ) from None
                raise NotFoundError(self._missing(relative)) from None
        return self._chunks(body, relative)

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        """The object key of a checked relative path."""
        return f"{self.prefix}/{relative}" if self.prefix and relative else (self.prefix or relative)

    def _folder_key(self, relative: str) -> str:
        """The key prefix of everything under a folder (``""`` for a bucket root)."""
        key = self._key(relative)
        return f"{key}/" if key else ""

    def _uri(self, relative: str) -> str:
        key = self._key(relative)
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def _missing(self, relative: str) -> str:
        return (f"No artifact exists at {relative!r} under {self.root_uri!r}; list the folder "
                f"{posixpath.dirname(relative)!r} to see what is there.")

    def _under(self, relative: str) -> Iterator[tuple[str, str]]:
        """Yield ``(relative path, path below the folder)`` of every file under a folder, recursively.

        Raises:
            InvalidValueError: A key below the folder is absolute or climbs out of it with ``..``.
        """
        prefix = self._folder_key(relative)
        for key in self._keys_under(prefix):
            name = key[len(prefix):]
            if not name or name.endswith("/"):
                continue  # folder marker objects
            below = check_relative_path(name, f"S3 key {key!r} below {self._uri(relative)}")
            yield _join(relative, below), below

    def _keys_under(self, prefix: str) -> Iterator[str]:
        """Yield every key starting with ``prefix``, folder markers included, page by page."""
        pages = self._client_().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.PAGE_SIZE})
        for page in pages:
            for entry in page.get("Contents", ()):
                yield entry["Key"]

    def _file_size(self, relative: str) -> int | None:
        """The size of the object at ``relative``, or None when there is none."""
        try:
            answer = self._client_().head_object(Bucket=self.bucket, Key=self._key(relative))
        except Exception as exc:
            if _code(exc) in _MISSING_KEY:
                return None
            raise
        return int(answer["ContentLength"])

    def _has_children(self, relative: str) -> bool:
        answer = self._client_().list_objects_v2(Bucket=self.bucket, Prefix=self._folder_key(relative), MaxKeys=1)
        return bool(answer.get("KeyCount"))

    # -- boto3 --------------------------------------------------------------------------------

    def _client_(self) -> Any:
        """The boto3 S3 client, built on first use."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise MissingDependencyError.for_package("boto3", "s3", "The s3:// artifact store") from None
            config = Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                            connect_timeout=10, read_timeout=60)
            with _CLIENT_LOCK:
                self._client = boto3.client("s3", endpoint_url=self.endpoint_url, verify=self.verify_tls,
                                            config=config)
        return self._client

    @contextmanager
    def _manager(self) -> Iterator[Any]:
        """A transfer manager over this store's client, shut down when the block ends."""
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        config = TransferConfig(multipart_threshold=self.multipart_threshold,
                                multipart_chunksize=self.multipart_chunksize,
                                max_concurrency=self.max_concurrency, max_io_queue=32)
        manager = create_transfer_manager(self._client_(), config)
        try:
            yield manager
        except BaseException:
            manager.shutdown(cancel=True)
            raise
        manager.shutdown()

    def _upload_args(self) -> dict[str, Any]:
        """Extra upload arguments from ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` (a JSON object)."""
        if not self._extra_args_text.strip():
            return {}
        try:
            extra = json.loads(self._extra_args_text)
        except ValueError as exc:
            raise ConfigError(f"{ENV_EXTRA_ARGS} is not valid JSON ({exc}); write a JSON object such as "
                              '\'{"ServerSideEncryption": "aws:kms"}\'.') from None
        if not isinstance(extra, dict):
            raise ConfigError(f"{ENV_EXTRA_ARGS} must be a JSON object of upload arguments, not {extra!r}.")
        from s3transfer.manager import TransferManager

        unknown = sorted(set(extra) - set(TransferManager.ALLOWED_UPLOAD_ARGS))
        if unknown:
            raise ConfigError(f"{ENV_EXTRA_ARGS} names unknown upload arguments {unknown}; allowed: "
                              f"{', '.join(TransferManager.ALLOWED_UPLOAD_ARGS)}.")
        return extra

    def _chunks(self, body: Any, relative: str) -> Iterator[bytes]:
        """Yield a response body in chunks, closing it at the end (or when the iterator is closed)."""
        try:
            with self._translate(f"read {self._uri(relative)}"):
                yield from body.iter_chunks(self.CHUNK_SIZE)
        finally:
            body.close()

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Turn boto3's exceptions into fitscribe's, saying what failed and how to fix it."""
        try:
            yield
        except FitscribeError:
            raise
        except Exception as exc:
            error = self._error_for(exc, what)
            if error is None:
                raise
            raise error from exc

    def _error_for(self, exc: Exception, what: str) -> FitscribeError | None:
        """The fitscribe error for a boto3/botocore exception, or None for a foreign exception."""
        module = type(exc).__module__ or ""
        if not module.startswith(("botocore", "boto3", "s3transfer", "urllib3")):
            return None
        name = type(exc).__name__
        endpoint = self.endpoint_url or "AWS S3"
        code = _code(exc)
        if name in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
            return ConfigError(
                f"Cannot {what}: no AWS credentials were found. Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or ~/.aws/credentials)."
            )
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError",
                    "ReadTimeoutError", "ProxyConnectionError", "SSLError"):
            hint = ("set MLFLOW_S3_ENDPOINT_URL (or FITSCRIBE_S3_ENDPOINT_URL) to your S3 server's URL"
                    if self.endpoint_url is None else
                    "check MLFLOW_S3_ENDPOINT_URL / FITSCRIBE_S3_ENDPOINT_URL and that the server is running")
            return BackendError(f"Cannot {what}: the S3 endpoint {endpoint} is unreachable ({exc}); {hint}.")
        if code == "NoSuchBucket":
            return NotFoundError(
                f"Cannot {what}: the bucket {self.bucket!r} does not exist at {endpoint}; create it "
                f"(e.g. `aws s3 mb s3://{self.bucket}`) or fix the artifact URI {self.root_uri!r}."
            )
        if code in _DENIED:
            return BackendError(
                f"Cannot {what}: {endpoint} denied access ({code}); check the credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the bucket's policy."
            )
        if code in _MISSING_KEY:
            return NotFoundError(f"Cannot {what}: no such object in {self.root_uri!r}.")
        return BackendError(f"Cannot {what} on {endpoint}: {exc}")


# -- helpers ----------------------------------------------------------------------------------

def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _uploads(local_path: str, dest: str) -> Iterator[tuple[str, str]]:
    """``(local file, relative destination)`` pairs: a file lands in ``dest``, a folder's contents under it.

    Symlinked folders are followed once; a link back to a folder being walked is skipped.
    """
    if not os.path.isdir(local_path):
        yield local_path, _join(dest, os.path.basename(local_path))
        return
    seen = {os.path.realpath(local_path)}
    for folder, dirs, names in os.walk(local_path, followlinks=True):
        kept = []
        for name in sorted(dirs):
            real = os.path.realpath(os.path.join(folder, name))
            if real not in seen:
                seen.add(real)
                kept.append(name)
        dirs[:] = kept
        rel_folder = os.path.relpath(folder, local_path).replace(os.sep, "/")
        for name in sorted(names):
            below = name if rel_folder == "." else f"{rel_folder}/{name}"
            yield os.path.join(folder, name), _join(dest, below)


def _with_type(extra: dict[str, Any], source: str) -> dict[str, Any]:
    """Upload arguments with a Content-Type guessed from the file name (unless one is given)."""
    if "ContentType" in extra:
        return extra
    guessed = mimetypes.guess_type(source)[0]
    return {**extra, "ContentType": guessed} if guessed else extra


def _subscribers(progress: Progress | None) -> list[Any] | None:
    if progress is None:
        return None
    from boto3.s3.transfer import ProgressCallbackInvoker

    return [ProgressCallbackInvoker(progress)]


def _wait(futures: list[Any]) -> None:
    """Wait for every transfer; raise the first failure once all have ended."""
    first: BaseException | None = None
    for future in futures:
        try:
            future.result()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first
