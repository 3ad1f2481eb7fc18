"""The metric journal of an embedded (SQLite) store: ``log_metric`` is durable at one ``write``.

One SQLite transaction per ``log_metric`` call caps a training loop at a few thousand points per
second. Instead each call appends a record to this process's journal file (it survives a crash or
SIGKILL once the call returns), and a thread copies the points into the database in large
transactions, each also recording how far into the file it got (the ``journals`` table), so a replay
never duplicates. Files, locks, orphans and forks are the journal core's (journal_core.py).

- Reads flush every open journal of the database in this process (:func:`flush_database`); other
  processes see points within about ``FLUSH_INTERVAL_S``.
- At most ``MAX_PENDING_POINTS`` wait in memory; a caller finding the queue full waits up to
  ``BLOCK_TIMEOUT_S``, then gets a ``BackendError`` naming the journal (its own points not logged).
- Replay keeps, with a warning, a journal none of whose runs the database has (another database's).
- A record: a 16-byte header (magic, body length, CRC-32 of the body, point count), the run id and
  distinct keys as JSON, a key index per point when there are several keys, then the steps,
  timestamps and values as little-endian arrays (chunks.py). A torn or damaged record ends the
  replay. Earlier versions' files (in ``<database folder>/journal/``; one JSON line per append,
  ``[run_id, [[key, value, timestamp, step], ...]]``) are replayed too.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import uuid
import warnings
import zlib
from typing import Any, Callable, Iterable, Sequence

from fitscribe.backends.journal_core import (JournalFile, close_at_child_exit, locks_supported, orphans,
                                             reset_after_fork, wait_for_room)
from fitscribe.errors import BackendError, FitscribeWarning

from .chunks import Batch, pack, pack_floats, pack_ints, unpack, unpack_floats, unpack_ints

__all__ = ["MetricJournal", "read_entries", "replay_orphans", "journals_supported", "journal_folder",
           "flush_database", "FLUSH_INTERVAL_S"]

Apply = Callable[[str, list[Batch], int], None]  # copies batches and sets the position, atomically
RunsIn = Callable[[Iterable[str]], set[str]]  # which of the given run ids the database has

FLUSH_INTERVAL_S = 0.02
MAX_PENDING_POINTS = 500_000
BLOCK_TIMEOUT_S = 120.0
FLUSH_TIMEOUT_S = 120.0
JOURNAL_DIRNAME = "journal"
SUFFIX = ".log"

_MAGIC = b"\x01FSJ"  # never the "[" that starts a JSON line of the earlier format
_HEADER = struct.Struct("<4sIII")  # magic, body length, CRC-32 of the body, points
_LENGTH = struct.Struct("<I")
_POINT = struct.Struct("<qqd")  # the step, timestamp and value of a one-point record
_HEADS: dict[Any, bytes] = {}  # the encoded run id and key table of a record, by (run_id, keys)

_LIVE: dict[str, "MetricJournal"] = {}  # this process's open journals by id: set and popped whole, no lock

journals_supported = locks_supported


def flush_database(folder: str) -> None:
    """Return once every point appended to any open journal of this database in this process is in it.

    Args:
        folder: The database's journal folder (:func:`journal_folder`).

    Raises:
        BackendError: A journal's points did not reach the database in time (they stay in it).
    """
    for journal in list(_LIVE.values()):
        if journal.folder == folder and not journal._closed:
            journal.flush()


def journal_folder(database_file: str) -> str:
    """Return the journal folder of a SQLite database file, ``<its folder>/journal/<its name>`` (absolute)."""
    path = os.path.abspath(database_file)
    return os.path.join(os.path.dirname(path), JOURNAL_DIRNAME, os.path.basename(path))


class MetricJournal:
    """The journal of one store in this process, and the thread that drains it into the database.

    Args:
        folder: The database's journal folder (:func:`journal_folder`).
        apply: Writes entries and the new position in one transaction.

    Attributes:
        path: The journal file.
        pending_points: Points appended and not yet in the database.
        max_pending_points: Points kept in memory for the database at most (back-pressure above).
        block_timeout: Seconds a caller waits for room before its append fails.
        flush_timeout: Seconds ``flush()`` (and so ``close()``) waits for the database.
    """

    def __init__(self, folder: str, apply: Apply) -> None:
        self.folder = folder
        self.max_pending_points = MAX_PENDING_POINTS
        self.block_timeout = BLOCK_TIMEOUT_S
        self.flush_timeout = FLUSH_TIMEOUT_S
        self._apply = apply
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._hurry = threading.Event()  # someone waits in flush(): skip the batching pause
        self._pending: list[Batch] = []
        self.pending_points = 0
        self._appended = 0  # bytes written to the current file
        self._applied = 0  # bytes of the current file now in the database
        self._error: BaseException | None = None
        self._closed = False
        self._thread_closes_file = False  # close() gave up waiting: the thread releases the file
        self._thread_done = False
        self.journal_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._file = JournalFile.create(folder, self.journal_id + SUFFIX)
        self.path = self._file.path
        reset_after_fork(self)
        _LIVE[self.journal_id] = self
        self._thread = threading.Thread(target=self._drain, name="fitscribe-journal", daemon=True)
        self._thread.start()
        close_at_child_exit(self, self.close)  # a multiprocessing child skips atexit

    @property
    def owned_by_this_process(self) -> bool:
        """False in a forked child, which must start its own journal."""
        return self._pid == os.getpid()

    def _after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's points, locks and thread (the parent drains them)."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._changed = threading.Condition(self._lock)
            self._pending = []
            self.pending_points = 0
            self._closed = True
            _LIVE.pop(self.journal_id, None)

    def append(self, run_id: str, keys: Sequence[str], values: Sequence[float], timestamps: Sequence[int],
               steps: Sequence[int]) -> None:
        """Make points durable in the journal and queue them for the database (the columns are kept).

        Raises:
            BackendError: The journal cannot be written (disk full...) or was closed, or the queue
                stayed full for ``block_timeout`` seconds (these points are not logged).
        """
        record = _encode(run_id, keys, values, timestamps, steps)
        with self._lock:
            if self.pending_points >= self.max_pending_points and not wait_for_room(
                    self._changed, lambda: self.pending_points >= self.max_pending_points and not self._closed,
                    self.block_timeout):  # back-pressure: the database is far behind
                cause = f"{type(self._error).__name__}: {self._error}" if self._error else "it is busy or locked"
                raise BackendError(
                    f"The database has taken no metric points for {self.block_timeout:.0f} s ({cause}), and "
                    f"{self.pending_points} points wait in the metric journal {self.path}, which keeps them: "
                    "they are copied once the database answers, or replayed when the store is opened again. "
                    "The points of this call were not logged.")
            if self._closed:  # also when closed while this caller waited for room
                raise BackendError("The metric journal is closed; the store was closed while logging.")
            try:
                written = os.write(self._file.fd, record)
            except OSError as exc:
                raise BackendError(f"Cannot write the metric journal {self.path!r}: {exc}") from exc
            if written != len(record):  # pragma: no cover - regular files do not short-write
                raise BackendError(f"Short write to the metric journal {self.path!r}.")
            self._appended += written
            self._pending.append((run_id, keys, values, timestamps, steps))
            self.pending_points += len(keys)
        if not self._wake.is_set():
            self._wake.set()

    def _drain(self) -> None:
        """Copy what waits into the database until closed; keep the points and retry on errors."""
        backoff = 0.05
        try:
            while True:
                self._wake.wait()
                if self._hurry.wait(FLUSH_INTERVAL_S):  # a pause lets more points share a transaction
                    self._hurry.clear()
                self._wake.clear()
                with self._lock:
                    entries, target = list(self._pending), self._appended
                    if not entries:
                        if self._closed:
                            return
                        continue
                try:
                    self._apply(self.journal_id, entries, target)
                except BaseException as exc:  # keep the points; they are safe in the journal
                    with self._lock:
                        self._error = exc
                        self._changed.notify_all()
                        if self._closed:
                            return  # close() gave up: the file keeps the points for a replay
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    self._wake.set()
                    continue
                backoff = 0.05
                with self._lock:
                    del self._pending[: len(entries)]
                    self.pending_points -= sum(len(entry[1]) for entry in entries)
                    self._applied = target
                    self._error = None
                    self._changed.notify_all()
                    if self._closed and not self._pending:
                        return
                    if self._pending:
                        self._wake.set()
        finally:
            with self._lock:
                self._thread_done = True
                release = self._thread_closes_file
            if release:
                self._file.release(delete=False)

    def flush(self) -> None:
        """Return once every point appended so far is in the database, waiting ``flush_timeout`` at most.

        Raises:
            BackendError: The database could not take the points in time (they stay in the journal
                and are replayed when the store is next opened).
        """
        with self._lock:
            target = self._appended
            if self._applied >= target:
                return
            self._hurry.set()
            self._wake.set()
            wait_for_room(self._changed, lambda: self._applied < target and self._thread.is_alive(),
                          self.flush_timeout)
            if self._applied < target:
                cause = f": {self._error}" if self._error else ""
                raise BackendError(
                    f"Metric points could not be written to the database in {self.flush_timeout:.0f} s{cause}. "
                    f"They are kept in {self.path} and replayed when the store is opened again."
                ) from self._error

    def close(self, remove: Callable[[str], None] | None = None) -> None:
        """Flush, stop the thread and delete the file if everything reached the database.

        Else the file is kept, to be replayed when the store is next opened (locked until the
        thread's last attempt ends).

        Args:
            remove: Deletes the journal's row from the database (called after the file is gone).
        """
        if not self.owned_by_this_process or self._closed:
            return  # closed before (the first close decided whether the file goes)
        flushed = True
        try:
            self.flush()
        except BackendError as exc:
            flushed = False
            warnings.warn(str(exc), FitscribeWarning, stacklevel=2)
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        _LIVE.pop(self.journal_id, None)
        self._hurry.set()
        self._wake.set()
        self._thread.join(timeout=5 if flushed else 0.5)
        with self._lock:
            done = self._applied >= self._appended
            if not self._thread_done:  # stuck on the database: it lets go of the file when done
                self._thread_closes_file = True
                return
        self._file.release(delete=done)
        if done and remove is not None:
            try:
                remove(self.journal_id)
            except Exception:  # the row is harmless; the file is what matters
                pass


def _encode(run_id: str, keys: Sequence[str], values: Sequence[float], timestamps: Sequence[int],
            steps: Sequence[int]) -> bytes:
    """One binary record (see the module docstring); the columns are packed in C."""
    count = len(keys)
    distinct = (keys[0],) if count == 1 else tuple(dict.fromkeys(keys))
    head = _HEADS.get((run_id, distinct))
    if head is None:
        if len(_HEADS) > 1000:
            _HEADS.clear()
        encoded = json.dumps([run_id, distinct]).encode()
        head = _HEADS[(run_id, distinct)] = _LENGTH.pack(len(encoded)) + encoded
    if count == 1:  # log_metric: one point
        body = head + _POINT.pack(steps[0], timestamps[0], values[0])
    else:
        parts = [head]
        if len(distinct) > 1:
            parts.append(pack("I", map({key: i for i, key in enumerate(distinct)}.__getitem__, keys)))
        parts += [pack_ints(steps), pack_ints(timestamps), pack_floats(values)]
        body = b"".join(parts)
    return _HEADER.pack(_MAGIC, len(body), zlib.crc32(body), count) + body


def _decode(body: bytes, count: int) -> Batch:
    (head_length,) = _LENGTH.unpack_from(body)
    start = _LENGTH.size + head_length
    run_id, distinct = json.loads(body[_LENGTH.size : start])
    if len(distinct) > 1:
        index = unpack("I", body[start : start + 4 * count])
        keys = list(map(distinct.__getitem__, index))
        start += 4 * count
    else:
        keys = distinct * count
    size = 8 * count
    steps = unpack_ints(body[start : start + size])
    timestamps = unpack_ints(body[start + size : start + 2 * size])
    values = unpack_floats(body[start + 2 * size : start + 3 * size])
    if not len(keys) == len(steps) == len(timestamps) == len(values) == count:
        raise ValueError("inconsistent record")
    return run_id, keys, values, timestamps, steps


def read_entries(path: str, position: int) -> tuple[list[Batch], int]:
    """Read the complete records of a journal file from ``position``; return them as batches
    ``(run_id, keys, values, timestamps, steps)`` and the position after the last one."""
    with open(path, "rb") as f:
        f.seek(position)
        data = f.read()
    entries: list[Batch] = []
    offset = 0
    while offset < len(data):
        try:
            if data.startswith(_MAGIC, offset):
                _, length, crc, count = _HEADER.unpack_from(data, offset)
                end = offset + _HEADER.size + length
                body = data[offset + _HEADER.size : end]
                if len(body) < length or zlib.crc32(body) != crc:
                    break  # torn or damaged record
                entries.append(_decode(body, count))
            elif data.startswith(b"[", offset):  # a JSON line of the earlier format
                end = data.index(b"\n", offset) + 1  # ValueError: a torn last line
                entries.append(_decode_json_line(data[offset:end]))
            else:
                break
        except (ValueError, TypeError, IndexError, struct.error):
            break  # damaged: stop at the last good record
        offset = end
    return entries, position + offset


def _decode_json_line(line: bytes) -> Batch:
    run_id, rows = json.loads(line)
    if not rows:
        return run_id, [], [], [], []
    keys, values, timestamps, steps = (list(column) for column in zip(*rows))
    return run_id, keys, [float(x) for x in values], timestamps, steps


def replay_orphans(folder: str, position_of: Callable[[str], int], apply: Apply, remove: Callable[[str], None],
                   runs_in: RunsIn | None = None) -> int:
    """Copy journals left by dead processes into the database; return how many points were replayed.

    A replay starts at the position recorded in the database, then deletes the file. The files of
    ``folder`` and, from earlier versions, the ``*.log`` files of its parent are replayed.

    Args:
        folder: The database's journal folder (:func:`journal_folder`).
        position_of: How far a journal was copied (0 if never).
        apply: Copies points and records the position, in one transaction.
        remove: Forgets a journal's position.
        runs_in: Which of some run ids the database has (without it, no file counts as foreign).
    """
    replayed = 0
    for location in (folder, os.path.dirname(folder)):
        for journal in orphans(location, SUFFIX):
            try:
                journal_id = os.path.basename(journal.path)[: -len(SUFFIX)]
                position = position_of(journal_id)
                entries, end = read_entries(journal.path, position)
                points = sum(len(entry[1]) for entry in entries)
                run_ids = sorted({entry[0] for entry in entries})
                if run_ids and runs_in is not None and position == 0 and not runs_in(run_ids):
                    warnings.warn(
                        f"The metric journal {journal.path} holds {points} points of runs this database does "
                        f"not have ({', '.join(run_ids[:3])}{'...' if len(run_ids) > 3 else ''}); it is kept "
                        "for the database they were logged to, which replays it when opened.",
                        FitscribeWarning, stacklevel=3)
                    continue
                if entries:
                    apply(journal_id, entries, end)
                journal.release(delete=True)
                remove(journal_id)
                replayed += points
            finally:
                journal.release(delete=False)  # kept (foreign, or the database failed): unlocked
    return replayed
