"""The model directory and its descriptor, the ``MLmodel`` YAML file.

A saved model is a folder: ``MLmodel`` (MLflow's field names, so MLflow's loaders and tools read
it), the model file(s), ``requirements.txt``, ``conda.yaml``, ``python_env.yaml`` and optionally
``input_example.json``. fitscribe adds one top-level block, ``fitscribe:``, holding the flavor our
loader uses (by registry name, never a module path), its format version, the Python and fitscribe
versions, and a sha256 for every file in the folder, checked on load.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import pickle
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from fitscribe.errors import FitscribeWarning, InvalidValueError, NotFoundError

__all__ = [
    "MLMODEL", "Model", "ModelIntegrityError", "UntrustedModelError", "UnverifiedModelWarning", "HashingWriter", "ThreadedHashWriter",
    "hash_folder", "folder_size", "folder_digest", "check_folder_digest",
]

MLMODEL = "MLmodel"
_CHUNK = 1 << 20
# Bytes handed to the kernel per write call. On Linux 6.x a write of 2 MiB or more into the page
# cache measured 6x slower than the same bytes in 1 MiB calls (25 ms against 4 ms for 9.6 MB: it
# allocates large folios), so big writes are split.
_WRITE_BATCH = 1 << 20
# Not hashed: the descriptor itself, and the environment files, which users may edit to adjust pins.
_UNHASHED = frozenset({MLMODEL, "requirements.txt", "conda.yaml", "python_env.yaml", "registered_model_meta"})


class ModelIntegrityError(InvalidValueError):
    """A model file is missing, or its content changed after the model was saved."""


class UntrustedModelError(ModelIntegrityError):
    """A model that runs code when loaded has nothing vouching for it, and FITSCRIBE_TRUSTED_ONLY=1 is set."""


class UnverifiedModelWarning(FitscribeWarning):
    """A model whose files run code when loaded (pickle) was loaded with nothing to check it against."""


@dataclass
class Model:
    """The contents of an ``MLmodel`` file.

    Attributes:
        flavors: Flavor name to its configuration block (ours and MLflow's).
        run_id: The run the model was logged to, if any.
        artifact_path: The model's path inside the run's artifacts, if logged.
        utc_time_created: Naive UTC time of saving, as MLflow writes it.
        model_uuid: A uuid4 hex identifying this saved model.
        signature: ``{"inputs": json, "outputs": json, "params": json}`` or None.
        saved_input_example_info: Where and how the input example is stored, or None.
        model_size_bytes: Total size of the folder at save time.
        metadata: A free-form dict given by the user.
        fitscribe: fitscribe's own block: ``flavor``, ``flavor_version``, ``version``,
            ``python_version``, ``files`` (relative path -> sha256).
        extra: Top-level keys written by other tools (MLflow), kept as they are.
    """

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str | None = None
    artifact_path: str | None = None
    utc_time_created: str = field(default_factory=lambda: str(_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)))
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    signature: dict[str, Any] | None = None
    saved_input_example_info: dict[str, Any] | None = None
    model_size_bytes: int | None = None
    metadata: dict[str, Any] | None = None
    fitscribe: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = (
        "artifact_path", "flavors", "model_uuid", "run_id", "utc_time_created", "signature",
        "saved_input_example_info", "model_size_bytes", "metadata", "fitscribe",
    )

    @property
    def flavor_name(self) -> str | None:
        """The registry name of the flavor fitscribe loads this model with, if fitscribe saved it."""
        name = self.fitscribe.get("flavor")
        return str(name) if name else None

    def to_dict(self) -> dict[str, Any]:
        """Return the descriptor as the mapping written to ``MLmodel`` (None values left out)."""
        out: dict[str, Any] = {}
        for key in self._KNOWN:
            value = getattr(self, key)
            if value is not None and value != {}:
                out[key] = value
        out.update(self.extra)
        out["flavors"] = self.flavors
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Model":
        """Build a descriptor from a parsed ``MLmodel`` mapping, keeping unknown keys in ``extra``."""
        known = {k: data[k] for k in cls._KNOWN if k in data and data[k] is not None}
        extra = {k: v for k, v in data.items() if k not in cls._KNOWN}
        flavors = known.pop("flavors", None)
        if not isinstance(flavors, dict):
            raise InvalidValueError(
                f"The MLmodel file has no 'flavors' mapping (got {flavors!r}); it is not a model descriptor."
            )
        model = cls(flavors=flavors, extra=extra, **known)
        if "utc_time_created" not in data:
            model.utc_time_created = ""
        return model

    def save(self, folder: str) -> None:
        """Write ``MLmodel`` into ``folder``."""
        import yaml

        with open(os.path.join(folder, MLMODEL), "w", encoding="utf-8") as fh:
            yaml.dump(self.to_dict(), fh, Dumper=_dumper(yaml), default_flow_style=False, sort_keys=False)

    @classmethod
    def load(cls, folder: str) -> "Model":
        """Read the ``MLmodel`` file of a model folder.

        Raises:
            NotFoundError: The folder or its ``MLmodel`` file does not exist.
            InvalidValueError: The file is not valid YAML or not a model descriptor.
        """
        import yaml

        path = os.path.join(folder, MLMODEL)
        if not os.path.isdir(folder):
            raise NotFoundError(f"No model folder at {folder!r}.")
        if not os.path.isfile(path):
            raise NotFoundError(
                f"{folder!r} holds no {MLMODEL} file, so it is not a saved model. "
                "Point at the folder written by save_model/log_model."
            )
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise InvalidValueError(f"The {MLMODEL} file at {path!r} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidValueError(f"The {MLMODEL} file at {path!r} does not hold a mapping.")
        return cls.from_dict(data)

    def verify(self, folder: str) -> None:
        """Check every file against the sha256 recorded at save time.

        Models saved by other tools (no ``fitscribe.files`` block) are not checked.

        Raises:
            ModelIntegrityError: A recorded file is missing or its content changed; names the file.
        """
        recorded = self.fitscribe.get("files")
        if not isinstance(recorded, dict):
            return
        for rel, expected in recorded.items():
            path = os.path.join(folder, *str(rel).split("/"))
            if not os.path.isfile(path):
                raise ModelIntegrityError(
                    f"The model file {rel!r} is missing from {folder!r}; the model is incomplete. "
                    "Save or download the whole model folder again."
                )
            actual = _sha256(path)
            if actual != expected:
                raise ModelIntegrityError(
                    f"The model file {rel!r} in {folder!r} does not match the sha256 recorded when it was "
                    f"saved (recorded {expected[:12]}..., found {actual[:12]}...): it was corrupted or "
                    "replaced. Refusing to load it; save or download the model again."
                )

    def model_file(self, folder: str, relative: str) -> str:
        """Return the path of a file a flavor block names, refusing one it must not load.

        The path must stay inside ``folder``; for models saved by fitscribe it must also be one of
        the files whose sha256 was recorded (and so checked by :meth:`verify`), so an edited
        ``MLmodel`` cannot point a loader at an unchecked pickle.

        Raises:
            ModelIntegrityError: The path leaves the folder or was not recorded at save time.
        """
        from fitscribe.uri import check_relative_path

        try:
            rel = check_relative_path(str(relative), "model file")
        except InvalidValueError as exc:
            raise ModelIntegrityError(f"The MLmodel file in {folder!r} names a model file outside the model: {exc}") from exc
        recorded = self.fitscribe.get("files")
        if isinstance(recorded, dict) and rel not in recorded:
            raise ModelIntegrityError(
                f"The MLmodel file in {folder!r} points at {rel!r}, which has no sha256 recorded at save time; "
                "refusing to load it. Save the model again."
            )
        return os.path.join(folder, *rel.split("/"))

    def seal(self, folder: str, known: dict[str, str] | None = None) -> None:
        """Record hashes and total size of ``folder``'s files, then write ``MLmodel``.

        Args:
            folder: The model folder.
            known: Hashes already computed while writing (relative path -> sha256), not re-read.
        """
        files = _inventory(folder)
        self.fitscribe["files"] = _hashes(folder, files, known or {})
        self.model_size_bytes = sum(files.values())
        self.save(folder)


def _dumper(yaml: Any) -> Any:
    """libyaml's safe dumper when PyYAML was built with it (several times faster), else the pure one."""
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inventory(folder: str) -> dict[str, int]:
    """Return relative POSIX path -> size of every file under ``folder``, sorted, in one pass."""
    found: dict[str, int] = {}

    def visit(path: str, prefix: str) -> None:
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir():
                    visit(entry.path, f"{prefix}{entry.name}/")
                elif entry.is_file():
                    found[prefix + entry.name] = entry.stat().st_size

    visit(folder, "")
    return found


class HashingWriter:
    """A write-only file wrapper that computes the sha256 of what passes through it.

    Hashing while writing spares reading the file back. (Hashing on a helper thread was tried and
    measured no faster: the pickler holds the GIL, so the helper waits for it at every chunk.)

    >>> import io
    >>> w = HashingWriter(io.BytesIO()); _ = w.write(b"abc"); w.hexdigest()[:12]
    'ba7816bf8f01'
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self._digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        """Hash and write ``data``; return what the wrapped file's ``write`` returns."""
        self._digest.update(data)
        return int(self._fh.write(data))

    def flush(self) -> None:
        """Flush the wrapped file (``torch.save`` and others call it)."""
        self._fh.flush()

    def hexdigest(self) -> str:
        """Return the sha256 of everything written so far."""
        return self._digest.hexdigest()


class ThreadedHashWriter:
    """Hash what a serializer writes on the caller's thread; write it to disk on a helper thread too.

    Chunks are gathered into batches of about 1 MiB, each with its offset in the file. A batch
    goes to the helper thread, which writes it with ``os.pwritev`` (holding no GIL, so the pickler
    and the hash go on meanwhile); when the helper still has ``ahead`` batches to write (a busy
    machine, a slow disk) the caller writes the batch itself instead of waiting, and at
    :meth:`finish` it takes back every batch the helper has not started. So it is never slower
    than writing inline by more than one batch, and memory stays bounded whatever the model's
    size. (A helper that hashed chunk by chunk waited for the GIL at every one and measured 2x
    slower on a busy machine; one that the caller waited for, 3x.) Chunks are kept as given
    (``bytes``, or pickle's ``PickleBuffer`` views, which keep their arrays alive); any other
    buffer is copied, since its owner may refill it. On an in-memory file, a pipe or a file opened
    for appending it writes inline.

    Use it as a context manager and call :meth:`finish` for the digest before leaving; leaving on
    an error stops the helper.

    >>> import io
    >>> with ThreadedHashWriter(io.BytesIO()) as w:
    ...     _ = w.write(b"abc")
    ...     w.finish()[:12]
    'ba7816bf8f01'
    """

    def __init__(self, fh: Any, batch: int = _WRITE_BATCH, ahead: int = 2) -> None:
        import queue

        self._fh = fh
        self._digest = hashlib.sha256()
        self._pending: list[Any] = []
        self._pending_size = 0
        self._batch = batch
        self._ahead = ahead
        self._error: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[int, list[Any]] | None] = queue.SimpleQueue()
        self._sent = 0  # batches queued for the helper (counted by the caller only)
        self._done = 0  # batches the helper finished (counted by the helper only)
        self._fd = _fileno(fh)
        self._offset = 0
        self._helper: Any = None  # a lock the helper holds while it runs (started with the first batch)
        if self._fd is not None:
            fh.flush()
            try:
                self._offset = os.lseek(self._fd, 0, os.SEEK_CUR)
            except OSError:  # a pipe or socket: no offsets, so write inline
                self._fd = None

    def __enter__(self) -> "ThreadedHashWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop()

    def write(self, data: Any) -> int:
        """Hash ``data`` and queue it for writing; return its size in bytes."""
        if self._error is not None:
            raise self._error
        if not isinstance(data, (bytes, pickle.PickleBuffer)):
            data = bytes(data)
        self._digest.update(data)
        size = memoryview(data).nbytes
        if self._fd is None:
            self._fh.write(data)
            return size
        self._pending.append(data)
        self._pending_size += size
        if self._pending_size >= self._batch:
            self._send(inline=self._sent - self._done >= self._ahead)
        return size

    def finish(self) -> str:
        """Write what is left, wait for the disk and return the sha256 of everything.

        Raises:
            OSError: Writing the file failed (disk full, ...).
        """
        import queue

        if self._fd is not None:
            if self._pending:
                self._send(inline=True)
            while True:  # take back what the helper has not started
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None and self._error is None:
                    _pwrite_all(self._fd, item[1], item[0])
        self._stop()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def _send(self, inline: bool) -> None:
        chunks, offset = self._pending, self._offset
        self._offset += self._pending_size
        self._pending, self._pending_size = [], 0
        if inline:
            _pwrite_all(self._fd, chunks, offset)  # type: ignore[arg-type]
            return
        if self._helper is None:
            self._start_helper()
        self._sent += 1
        self._queue.put((offset, chunks))

    def _start_helper(self) -> None:
        # The low-level API: threading.Thread.start() waits until the new thread runs, which on a
        # busy machine measured 9 ms per model; this returns at once. Joined through the lock.
        import _thread

        running = _thread.allocate_lock()
        running.acquire()

        def drain() -> None:
            try:
                self._drain()
            finally:
                running.release()

        _thread.start_new_thread(drain, ())
        self._helper = running

    def _stop(self) -> None:
        if self._helper is None:
            if self._fd is not None:
                self._fh.seek(self._offset)  # pwritev leaves the descriptor's position alone
            return
        self._queue.put(None)
        self._helper.acquire()  # released when the helper returns
        self._helper = None
        self._fh.seek(self._offset)  # pwritev leaves the descriptor's position alone

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    _pwrite_all(self._fd, item[1], item[0])  # type: ignore[arg-type]
                except BaseException as exc:  # raised on the caller's thread by write/finish
                    self._error = exc
            self._done += 1


def _fileno(fh: Any) -> int | None:
    """Return the descriptor of a real file not opened for appending, else None (write inline)."""
    if not hasattr(os, "pwritev") or "a" in str(getattr(fh, "mode", "")):
        return None
    try:
        return int(fh.fileno())
    except (AttributeError, OSError, ValueError):  # io.BytesIO raises io.UnsupportedOperation (an OSError)
        return None


def _pwrite_all(fd: int, chunks: list[Any], offset: int, limit: int = _WRITE_BATCH) -> None:
    """Write ``chunks`` one after the other from ``offset`` with ``os.pwritev`` calls of at most ``limit`` bytes."""
    views: list[memoryview] = []
    size = 0
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view.nbytes:
            piece = view[: limit - size]
            view = view[piece.nbytes :]
            views.append(piece)
            size += piece.nbytes
            if size >= limit or len(views) >= 512:
                offset = _pwrite_fully(fd, views, offset)
                views, size = [], 0
    if views:
        _pwrite_fully(fd, views, offset)


def _pwrite_fully(fd: int, views: list[memoryview], offset: int) -> int:
    """Write ``views`` at ``offset`` (retrying after short writes); return the offset after them."""
    while views:
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= views[0].nbytes:
            written -= views.pop(0).nbytes
        if written:
            views[0] = views[0][written:]
    return offset


def hash_folder(folder: str, known: dict[str, str] | None = None) -> dict[str, str]:
    """Return relative POSIX path -> sha256 for every file under ``folder`` but MLmodel and the environment files."""
    return _hashes(folder, _inventory(folder), known or {})


def _hashes(folder: str, files: dict[str, int], known: dict[str, str]) -> dict[str, str]:
    return {rel: known.get(rel) or _sha256(os.path.join(folder, rel)) for rel in files if rel not in _UNHASHED}


def folder_digest(folder: str, known: dict[str, str] | None = None) -> dict[str, str]:
    """Return the seal of a whole model folder, ``MLmodel`` and environment files included.

    ``digest`` is the sha256 of the sorted lines ``<relative path> <sha256 of the file>``, one per
    file; ``mlmodel`` is the sha256 of ``MLmodel`` alone, so that a mismatch can name the file: a
    changed ``MLmodel``, or else the listed file whose hash no longer matches.

    >>> import tempfile, pathlib
    >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "MLmodel").write_text("flavors: {}")
    >>> sorted(folder_digest(d))
    ['digest', 'mlmodel']

    Args:
        folder: The model folder.
        known: sha256 already computed for some files (``MLmodel``'s ``fitscribe.files`` just
            after saving), not read again; ``MLmodel`` itself is always read.
    """
    known = {rel: sha for rel, sha in (known or {}).items() if rel != MLMODEL}
    hashes = {rel: known.get(rel) or _sha256(os.path.join(folder, *rel.split("/"))) for rel in _inventory(folder)}
    return {"digest": _tree_digest(hashes), "mlmodel": hashes.get(MLMODEL, "")}


def _tree_digest(hashes: dict[str, str]) -> str:
    lines = "".join(f"{rel} {hashes[rel]}\n" for rel in sorted(hashes))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def check_folder_digest(folder: str, recorded: dict[str, Any], where: str) -> None:
    """Check a downloaded model folder against the seal recorded in the tracking store at log time.

    Reads and hashes the files only (``MLmodel`` is not parsed before its hash matched); nothing
    is deserialised.

    Args:
        folder: The local model folder.
        recorded: What :func:`folder_digest` returned at log time.
        where: The model's URI, for the message.

    Raises:
        ModelIntegrityError: A file was changed, added or removed; names it when it can.
    """
    hashes = {rel: _sha256(os.path.join(folder, *rel.split("/"))) for rel in _inventory(folder)}
    if _tree_digest(hashes) == recorded.get("digest"):
        return
    culprit = _culprit(folder, hashes, recorded)
    raise ModelIntegrityError(
        f"The model at {where!r} does not match the digest recorded in the tracking store when it was "
        f"logged: {culprit}. It was changed after logging (by hand, or by someone with write access to the "
        "artifacts); refusing to load it before reading any of its files as a model."
    )


def _culprit(folder: str, hashes: dict[str, str], recorded: dict[str, Any]) -> str:
    """Name the file that differs from the sealed folder, as precisely as the seal allows."""
    if hashes.get(MLMODEL) != recorded.get("mlmodel"):
        return f"the file {MLMODEL!r} was changed" if MLMODEL in hashes else f"the file {MLMODEL!r} is missing"
    try:  # MLmodel is the one logged, so its file list is trustworthy
        listed = Model.load(folder).fitscribe.get("files")
    except (InvalidValueError, NotFoundError):
        listed = None
    if isinstance(listed, dict):
        for rel, expected in sorted(listed.items()):
            if rel not in hashes:
                return f"the file {rel!r} is missing"
            if hashes[rel] != expected:
                return f"the file {rel!r} was changed"
        extra = sorted(rel for rel in hashes if rel not in listed and rel not in _UNHASHED)
        if extra:
            return f"the file {extra[0]!r} was added"
        return "an environment file (requirements.txt, conda.yaml or python_env.yaml) was changed"
    return "a file was changed, added or removed"


def folder_size(folder: str) -> int:
    """Return the total size in bytes of the files under ``folder``."""
    return sum(_inventory(folder).values())


def python_version() -> str:
    """Return the running Python's version as ``major.minor.micro``."""
    return "{}.{}.{}".format(*sys.version_info[:3])
