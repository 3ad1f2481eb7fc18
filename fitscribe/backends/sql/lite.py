"""The embedded store's connections on the standard library's ``sqlite3``, without SQLAlchemy.

Opening an embedded store and creating, ending and logging to runs is what a training script does;
importing SQLAlchemy alone costs more than all of that. :class:`LiteDatabase` opens the file with the
SQLAlchemy engine's settings (:data:`PRAGMAS`), one connection per thread (closed when the thread
ends), and runs the one writer (writer.py) on the SQL compiled ahead into ``sqlite_sql.py``; a new
database gets its schema the same way. Everything else goes through SQLAlchemy (store_core.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

from fitscribe._fork import GATE, gated, keep_forever, split_at_fork
from fitscribe.errors import BackendError, ConstraintViolation
from fitscribe.uri import redact

from . import sqlite_sql as q
from .connection import SqliteConnection
from .writer import Writer

__all__ = ["BUSY_TIMEOUT_MS", "PRAGMAS", "apply_pragmas", "LiteDatabase", "after_fork"]

BUSY_TIMEOUT_MS = 60_000
"""How long a writer waits for another process's lock before failing."""
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA case_sensitive_like=ON",
)
"""Run on every new SQLite connection (:func:`apply_pragmas`), by this module and by the SQLAlchemy
engine (engine.py)."""


def apply_pragmas(conn: Any) -> None:
    """Run :data:`PRAGMAS` on a new DB-API connection (sqlite3's, or SQLAlchemy's raw one).

    Switching a brand-new file to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy handler, while another connection (thread or process) holds
    the file in the same moment: that is retried here with a short backoff, up to the busy timeout.

    Raises:
        sqlite3.OperationalError: Still locked after the busy timeout, or any other failure.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    cursor = conn.cursor()
    try:
        for pragma in PRAGMAS:
            while True:
                try:
                    cursor.execute(pragma)
                    cursor.fetchall()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
    finally:
        cursor.close()


class LiteDatabase:
    """One SQLite file opened with ``sqlite3``: a connection per thread, transactions, the schema.

    Args:
        path: The database file (its folder is created if missing).
        uri: The tracking URI, for messages.
    """

    def __init__(self, path: str, uri: str) -> None:
        self.path = path
        self.uri = uri
        self._local = threading.local()
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()
        after_fork(self)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use (and again in a forked child)."""
        return self._held_here().conn  # type: ignore[return-value]

    def _held_here(self) -> _Held:
        """This thread's connection and writer, opened on first use; closed when the thread ends
        (its thread-local holder is dropped), so short-lived threads leave no open file behind."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.conn is not None and held.pid == os.getpid():
            return held
        held = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            held = _Held(conn)
            apply_pragmas(conn)
        except sqlite3.Error as exc:
            if held is not None:
                held.close()
            raise BackendError(f"Cannot open the tracking store {redact(self.uri)!r}: {exc}") from exc
        with self._lock:
            self._held.add(held)
        self._local.held = held
        return held

    def after_fork_in_child(self) -> None:
        """Close the child's copies of the parent's connections (kept open, they would share SQLite's
        per-process lock bookkeeping with the child's own, opened on first use)."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        if split_at_fork():  # another thread was still inside a call on one of them: touch none
            keep_forever(list(self._held))
            self._held, self._local = weakref.WeakSet(), threading.local()
        else:
            self.close()

    @contextmanager
    @gated  # a fork waits for it (_fork.py)
    def write(self) -> Iterator[Writer]:
        """Yield the writer on this thread's connection in a write transaction (``BEGIN
        IMMEDIATE``), committed on exit and rolled back if the block raises.

        Raises:
            ConstraintViolation: A constraint refused the write.
            BackendError: The database failed (locked for longer than the busy timeout, disk full...).
        """
        held = self._held_here()
        conn = held.conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield held.writer
            except BaseException:
                conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolation(f"The database refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc}") from exc

    @contextmanager
    @gated
    def read(self) -> Iterator[Writer]:
        """Yield the writer on this thread's connection for reads (raises ``BackendError``)."""
        try:
            yield self._held_here().writer
        except sqlite3.Error as exc:
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc}") from exc

    def open(self, default_artifact_root: str, expected: str = q.REVISION) -> None:
        """Create the schema in a new database (the ``Default`` experiment's artifacts under
        ``default_artifact_root``), or check that an existing one is at revision ``expected``.

        Raises:
            ForeignStoreError: The file is not fitscribe's (an MLflow database...); it is left unchanged.
            SchemaVersionError: The database is at another revision; the message gives the fix.
            BackendError: The folder or file cannot be created or opened.
        """
        from fitscribe.backends.foreign import check_sqlite_file

        check_sqlite_file(self.path, self.uri)  # before the first connection switches it to WAL
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the store folder {folder!r}: {exc}") from exc
        with self.write() as writer:
            writer.open_schema(self.uri, expected, default_artifact_root)

    def close(self) -> None:
        """Close every connection (they are reopened on next use)."""
        with self._lock:
            held, self._held = list(self._held), weakref.WeakSet()
            self._local = threading.local()
        for one in held:
            one.close()


class _Held:
    """One thread's connection and writer; the connection is closed when the holder goes (its
    thread ended, the store closed, or, in a forked child, the parent's holders are dropped)."""

    __slots__ = ("conn", "pid", "writer", "__weakref__")
    gate = GATE  # kept by the class: close() may run as late as interpreter shutdown

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn: sqlite3.Connection | None = conn
        self.pid = os.getpid()
        self.writer = Writer(SqliteConnection(conn))

    def close(self) -> None:
        """Close the connection (once)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with self.gate:  # a fork waits for it (_fork.py)
                conn.close()

    __del__ = close


_AFTER_FORK: weakref.WeakSet[Any] = weakref.WeakSet()
"""Objects holding connections, told to forget them in a forked child (``os.register_at_fork`` is
process-wide and cannot be undone, so it is registered once for all of them)."""


def after_fork(obj: Any) -> None:
    """Call ``obj.after_fork_in_child()`` in every forked child while ``obj`` lives."""
    _AFTER_FORK.add(obj)


def _in_forked_child() -> None:
    for obj in list(_AFTER_FORK):
        obj.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)
