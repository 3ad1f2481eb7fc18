"""The REST store's local journal: log-batch requests the server could not take, kept on disk.

When the tracking server stays unreachable past the retry budget, the write queue appends the
unsent ``runs/log-batch`` bodies here instead of keeping them in memory, and sends them again once
the server answers: on the next flush, when the queue finds the server back, or from the next
store (in this or another process) that logs to the same server.

Layout: ``<journal dir>/<server key>/<creation time ns>-<pid>-<random>.jsonl``, where the journal dir is
``$FITSCRIBE_REST_JOURNAL_DIR``, else ``~/.cache/fitscribe/rest-journal``, and the server key a hash
of the server's base URL. A file is one JSON object per line: a log-batch body with its request id
under ``_id`` (sent as a header, not in the body), or another idempotent request (``runs/update``,
ending a run) named by ``_endpoint``; ``<file>.pos`` holds how many bytes of it the server has
taken. Its owner holds an exclusive ``flock`` on it; a file nobody holds (its process ended) is an
orphan, which any store of the same server adopts and replays, oldest file first. Creating,
locking and adopting files, and forks, are the journal core's (:mod:`fitscribe.backends.journal_core`):
a file is locked before it appears under its name, and a forked child forgets its parent's files.

Replaying is at-least-once on the wire and exactly-once in a fitscribe server's database: a batch
cut off by a crash between sending and recording is sent again with the same request id, which the
server recognises. Damage is skipped and reported, never retried forever: a torn last line (the
writer died mid-write, or the disk filled up) and a line that is not JSON are reported through
``on_corrupt`` and passed over; an append that fails is cut back off the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from typing import Any, Callable, Iterator

from fitscribe.backends.journal_core import JournalFile, orphans, reset_after_fork

__all__ = ["ENV_JOURNAL_DIR", "RestJournal", "journal_root"]

ENV_JOURNAL_DIR = "FITSCRIBE_REST_JOURNAL_DIR"

Send = Callable[[dict[str, Any]], None]
"""Sends one log-batch body; raises to report a failure (see :meth:`RestJournal.replay`)."""


def journal_root(explicit: str | None = None) -> str:
    """Return the journal folder: ``explicit``, else ``$FITSCRIBE_REST_JOURNAL_DIR``, else the user cache."""
    if explicit:
        return os.path.abspath(explicit)
    from_env = os.environ.get(ENV_JOURNAL_DIR)
    if from_env:
        return os.path.abspath(from_env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "fitscribe", "rest-journal")


class _File:
    """One journal file, held open and locked by this process."""

    def __init__(self, file: JournalFile) -> None:
        self.path = file.path
        self.file = file
        self.position = _read_position(file.path)

    def write(self, data: bytes) -> None:
        """Append ``data`` and flush it to disk; on failure, cut the file back (no half line).

        Raises:
            OSError: The file cannot be written.
        """
        fd = self.file.fd
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            _cut_back(fd, size)
            raise

    def unsent_lines(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(end offset, line)`` for each complete line after the recorded position."""
        with open(self.path, "rb") as reader:
            reader.seek(self.position)
            offset = self.position
            for line in reader:
                if not line.endswith(b"\n"):
                    return  # a torn last line (power loss): never completed, never acknowledged
                offset += len(line)
                yield offset, line

    def record(self, position: int) -> None:
        """Record that the server has taken everything before ``position``."""
        self.position = position
        tmp = f"{self.path}.pos.tmp"
        with open(tmp, "w") as out:
            out.write(str(position))
        os.replace(tmp, f"{self.path}.pos")

    def size(self) -> int:
        """The file's size in bytes."""
        return os.path.getsize(self.path)

    def remove(self) -> None:
        """Delete the file and its position, then release the lock."""
        try:
            os.remove(f"{self.path}.pos")
        except FileNotFoundError:
            pass
        self.file.release(delete=True)


def _decode(line: bytes) -> dict[str, Any] | None:
    """Decode one journal line; None for a damaged one."""
    try:
        body = json.loads(line)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _report(on_corrupt: Callable[[str], None] | None, message: str) -> None:
    if on_corrupt is not None:
        on_corrupt(message)


def _cut_back(fd: int, size: int) -> None:
    """Truncate a file back to ``size`` after a failed append (best effort: the disk may be gone)."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass


def _read_position(path: str) -> int:
    try:
        with open(f"{path}.pos") as handle:
            return int(handle.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


class RestJournal:
    """The journal files of one tracking server, as seen by one store.

    Nothing touches the disk until the first :meth:`append` or :meth:`adopt_orphans`.

    Args:
        base_url: The server's base URL (the folder is keyed by its hash).
        root: The journal folder (default: see :func:`journal_root`, resolved at first use).
    """

    def __init__(self, base_url: str, root: str | None = None) -> None:
        self.base_url = base_url
        self._root = root
        self._own: _File | None = None
        self._adopted: list[_File] = []
        self._pid = os.getpid()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's files (the core closed the child's copies)."""
        if self._pid != os.getpid():
            self._own, self._adopted, self._pid = None, [], os.getpid()

    @property
    def folder(self) -> str:
        """The folder holding this server's journal files."""
        key = hashlib.sha256(self.base_url.encode()).hexdigest()[:16]
        return os.path.join(journal_root(self._root), key)

    @property
    def path(self) -> str | None:
        """This store's own journal file, once it has one."""
        return self._own.path if self._own is not None else None

    def append(self, bodies: list[dict[str, Any]]) -> None:
        """Append log-batch bodies, flushed to disk before returning.

        Raises:
            OSError: The journal cannot be written (the caller keeps the items in memory).
        """
        if not bodies:
            return
        if self._own is None:
            # named by creation time first, so replaying files in name order keeps their order
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._own = _File(JournalFile.create(self.folder, name))
        data = b"".join(json.dumps(b, separators=(",", ":"), allow_nan=False).encode() + b"\n" for b in bodies)
        self._own.write(data)  # no half line in the file on failure: the caller keeps the bodies instead

    def adopt_orphans(self) -> int:
        """Take over journal files of this server whose process is gone; return how many."""
        found = 0
        for journal in orphans(self.folder, ".jsonl"):  # our own files are locked: never yielded
            self._adopted.append(_File(journal))
            found += 1
        return found

    def _files(self) -> list[_File]:
        return [*self._adopted, *([self._own] if self._own is not None else [])]

    def pending_bytes(self) -> int:
        """Bytes written and not yet taken by the server, over the files this store holds."""
        total = 0
        for journal in self._files():
            try:
                total += journal.size() - journal.position
            except OSError:  # removed meanwhile by the sender: fully sent
                continue
        return total

    def bytes_on_disk(self) -> int:
        """Bytes not yet taken by the server over every journal file of this server (any process's)."""
        folder = self.folder
        if not os.path.isdir(folder):
            return 0
        total = 0
        for name in os.listdir(folder):
            if name.endswith(".jsonl"):
                path = os.path.join(folder, name)
                try:
                    total += max(0, os.path.getsize(path) - _read_position(path))
                except OSError:  # removed meanwhile: fully sent
                    continue
        return total

    def replay(self, send: Send, transient: Callable[[Exception], bool],
               on_rejected: Callable[[dict[str, Any], Exception], None],
               on_corrupt: Callable[[str], None] | None = None) -> None:
        """Send every unsent body, oldest file first; fully sent files are deleted.

        Args:
            send: Sends one body.
            transient: Tells a failure worth retrying later (server down), which propagates and
                stops the replay (the position reached is kept), from a refusal.
            on_rejected: Called with a body the server refused for good (a 4xx), which is skipped.
            on_corrupt: Called with a description of damage found in a file (skipped).
        """
        for journal in self._files():
            for end, line in journal.unsent_lines():
                body = _decode(line)
                if body is None:
                    _report(on_corrupt, f"Skipped a damaged record (not a JSON object) of {len(line)} bytes at byte "
                                        f"{end - len(line)} of the journal {journal.path}: {line[:60]!r}")
                    journal.record(end)
                    continue
                try:
                    send(body)
                except Exception as exc:  # sorted by `transient`: retried later, or reported
                    if transient(exc):
                        raise
                    on_rejected(body, exc)
                journal.record(end)
            torn = journal.size() - journal.position
            if torn > 0:  # only an unfinished last line is left: its writer is gone (or gave up on it)
                _report(on_corrupt, f"Skipped {torn} bytes of an unfinished last record (its writer died "
                                    f"mid-write) in the journal {journal.path}.")
                journal.record(journal.size())
            self._forget(journal)

    def _forget(self, journal: _File) -> None:
        if journal is self._own:
            self._own = None
        else:
            self._adopted.remove(journal)
        journal.remove()

    def release(self) -> None:
        """Close the files (and their locks): what is left is an orphan the next store replays."""
        for journal in self._files():
            if journal.position >= journal.size():
                journal.remove()
            else:
                journal.file.release(delete=False)
        self._own = None
        self._adopted = []
