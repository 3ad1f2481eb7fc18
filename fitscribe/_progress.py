"""A progress line for big artifact transfers, and the CLI's downloads and uploads that draw it.

The line is a ``tqdm`` bar (the field's standard: rate, throttled redraws, thread-safe output),
drawn as ``label  done / total  percent  rate  ETA`` on stderr, and only when the stream is a
terminal and the transfer is big (more than 8 MiB): piped or logged output stays clean. tqdm is
imported when a line is drawn (about 50 ms), never by ``import fitscribe``.

:func:`download` and :func:`upload` move artifacts with a progress line for any artifact store: a
store that reports bytes (``reports_progress``: the S3 store) does so through a ``progress``
callback; otherwise downloads are streamed through the store's ``open()`` and counted chunk by
chunk, and uploads go through ``put()`` without a line.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

from fitscribe.uri import check_relative_path

if TYPE_CHECKING:
    from fitscribe.backends.base import ArtifactStore, FileInfo

__all__ = ["Progress", "download", "upload", "format_bytes"]

MIN_BYTES = 8 * 1024 * 1024
"""Transfers of this many bytes or fewer draw nothing."""


def format_bytes(n: float) -> str:
    """Return a byte count in binary units.

    >>> format_bytes(3 * 1024 * 1024)
    '3.0 MiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _bar_class() -> type:
    """tqdm, showing binary units and ``ETA m:ss`` (``in m:ss`` once done), without its monitor thread."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0

        @property
        def format_dict(self) -> dict[str, Any]:
            found: dict[str, Any] = super().format_dict
            done, total, elapsed = found["n"], found["total"] or 0, max(found["elapsed"], 1e-9)
            rate = done / elapsed
            left = total - done
            eta = _duration(left / rate) if rate > 0 and left > 0 else ("-:--" if left > 0 else _duration(elapsed))
            found.update(done=format_bytes(done), size=format_bytes(total), speed=format_bytes(rate),
                         when=f"ETA {eta}" if left > 0 else f"in {eta}",
                         percent=100.0 * done / total if total else 100.0, label=f"{self.desc}  " if self.desc else "")
            return found

    return Bar


_FORMAT = "{label}{done} / {size}  {percent:3.0f}%  {speed}/s  {when}"


class Progress:
    """Bytes moved out of a known total, drawn on one terminal line by tqdm.

    Args:
        total: The number of bytes the transfer will move.
        label: What is moving, shown first (e.g. the artifact path).
        stream: Where to draw (default: ``sys.stderr`` at construction).
        min_bytes: Draw only when ``total`` exceeds this (default 8 MiB).
        clock: Seconds as a float; ``time.monotonic`` unless given.
        interval: The least time between two redraws, in seconds.

    Use it as a context manager, calling :meth:`update` with the bytes moved since the previous
    call (from any thread); leaving the block draws the final line and ends it.
    """

    def __init__(self, total: int, label: str = "", *, stream: TextIO | None = None, min_bytes: int = MIN_BYTES,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.1) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = total > min_bytes and _is_terminal(self.stream)
        self.done = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        if self.enabled:
            self._bar = _bar_class()(total=total, desc=label, file=self.stream, bar_format=_FORMAT,
                                     mininterval=interval, miniters=0, smoothing=0)
            self._bar._time = clock
            self._bar.start_t = self._bar.last_print_t = clock()

    def update(self, moved: int) -> None:
        """Count ``moved`` more bytes and redraw if the last drawing is old enough."""
        with self._lock:
            self.done += moved
            if self._bar is not None:
                self._bar.update(moved)

    def close(self) -> None:
        """Draw the final state and end the line (nothing when disabled)."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
                self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def download(store: "ArtifactStore", artifact_path: str, dst_dir: str, *, stream: TextIO | None = None) -> str:
    """Download an artifact file or folder like ``store.get``, with a progress line when it is big.

    Args:
        store: Any artifact store.
        artifact_path: The file or folder, relative to the store's root (``""`` for everything).
        dst_dir: The local folder to download into.
        stream: Where to draw (default stderr); nothing is drawn unless it is a terminal.

    Returns:
        The local path, as ``store.get`` returns it.

    Raises:
        NotFoundError: Nothing exists at ``artifact_path``.
    """
    relative = check_relative_path(artifact_path or "")
    out = stream if stream is not None else sys.stderr
    if not _is_terminal(out):
        return store.get(relative, dst_dir)  # no line to draw: skip the listing that sizes it
    files = _files(store, relative)
    total = sum(info.file_size or 0 for info in files)
    with Progress(total, relative or "artifacts", stream=out) as progress:
        if not progress.enabled:
            return store.get(relative, dst_dir)
        if store.reports_progress:
            return store.get(relative, dst_dir, progress=progress.update)  # type: ignore[call-arg]
        target = os.path.join(dst_dir, posixpath.basename(relative)) if relative else dst_dir
        if len(files) == 1 and files[0].path == relative:  # a single file
            _stream_file(store, relative, target, progress)
            return target
        for info in files:
            below = info.path[len(relative) + 1:] if relative else info.path
            _stream_file(store, info.path, os.path.join(target, *below.split("/")), progress)
        return target


def upload(store: "ArtifactStore", local_path: str, artifact_path: str | None = None, *,
           stream: TextIO | None = None) -> None:
    """Upload a local file or folder like ``store.put``, with a progress line when the store reports bytes.

    Args:
        store: Any artifact store.
        local_path: The file or folder to upload.
        artifact_path: The destination folder, relative to the store's root.
        stream: Where to draw (default stderr); nothing is drawn unless it is a terminal.
    """
    out = stream if stream is not None else sys.stderr
    if not (_is_terminal(out) and store.reports_progress and os.path.exists(local_path)):
        store.put(local_path, artifact_path)
        return
    total = _local_size(local_path)
    with Progress(total, os.path.basename(os.path.abspath(local_path)), stream=out) as progress:
        store.put(local_path, artifact_path, progress=progress.update)  # type: ignore[call-arg]


def _files(store: "ArtifactStore", relative: str) -> "list[FileInfo]":
    """Every file under a folder (recursively), or the one file at ``relative``; ``[]`` if none."""
    children = store.list(relative or None)
    if not children and relative:  # a file, or nothing: find it in its parent's listing
        parent = posixpath.dirname(relative)
        return [i for i in store.list(parent or None) if i.path == relative and not i.is_dir]
    files: list[FileInfo] = []
    stack = children[::-1]
    while stack:
        info = stack.pop()
        if info.is_dir:
            stack.extend(store.list(info.path)[::-1])
        else:
            files.append(info)
    return files


def _stream_file(store: "ArtifactStore", relative: str, target: str, progress: Progress) -> None:
    """Write one artifact to ``target`` through ``store.open``, via a temporary file renamed into place."""
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    chunks = store.open(relative)
    fd, partial = tempfile.mkstemp(prefix=".fitscribe-download-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                progress.update(len(chunk))
        os.replace(partial, target)
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
        if os.path.exists(partial):
            os.remove(partial)


def _local_size(path: str) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path, followlinks=True) for name in names)
