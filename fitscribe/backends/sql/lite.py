"""The embedded store's hot path on the standard library's ``sqlite3``, without SQLAlchemy.

Opening an embedded (SQLite) store, finding or creating an experiment and creating, ending and
logging to runs are what a training script does; importing SQLAlchemy alone costs more than all of
that together. So on SQLite:

- :class:`LiteDatabase` opens the file with the same settings as the SQLAlchemy engine (WAL,
  ``synchronous=NORMAL``, a minute's busy timeout, foreign keys, case-sensitive LIKE), checks the
  schema revision with a plain query, and creates a new database from the prebuilt DDL in
  ``sqlite_sql.py`` (generated from tables.py, stamped with the Alembic revision, so ``fitscribe db
  upgrade`` works on it later). A database at another revision is refused with the upgrade command.
- :class:`LiteWriter` runs the hot statements on a ``sqlite3`` connection. It has the methods of
  ``writes.Writer`` that the store's hot paths call, with the same signatures, so the store states
  each rule once and either writer executes it (rows.py holds what they share).

Everything else (searches, reads of whole runs, experiment updates, the registry) goes through
SQLAlchemy, imported on first use. Each write is one ``BEGIN IMMEDIATE`` transaction committed before return.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from fitscribe.entities import Experiment, Param, RunInfo, RunStatus, RunTag
from fitscribe.errors import BackendError, InvalidValueError, SchemaVersionError
from fitscribe.uri import join_uri, redact

from . import sqlite_sql as q
from .chunks import Batch
from .rows import CHUNK_COLUMNS, check_stored_params, merge_params, merge_tags, metric_rows

__all__ = [
    "BUSY_TIMEOUT_MS",
    "PRAGMAS",
    "apply_pragmas",
    "RUN_COLUMNS",
    "EXPERIMENT_COLUMNS",
    "run_info",
    "experiment",
    "schema_version_error",
    "current_revision",
    "create_schema",
    "LiteDatabase",
    "LiteWriter",
]

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

RUN_COLUMNS = ("run_uuid", "experiment_id", "name", "user_id", "status", "start_time", "end_time",
               "lifecycle_stage", "artifact_uri")
"""The ``runs`` columns written by ``insert_run`` and read by ``run_info``, in order."""
EXPERIMENT_COLUMNS = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time",
                      "last_update_time")
"""The ``experiments`` columns read by ``experiment``, in order."""
_RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_uuid = ?"
_RUN_INSERT = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
_CHUNK_INSERT = f"INSERT INTO metric_chunks ({', '.join(CHUNK_COLUMNS)}) VALUES ({', '.join('?' * len(CHUNK_COLUMNS))})"
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_UPDATABLE = frozenset(("status", "end_time", "name", "lifecycle_stage", "deleted_time"))


def schema_version_error(uri: str, revision: str | None, expected: str) -> SchemaVersionError:
    """Return the error for a database at another schema revision, naming both and the fix."""
    return SchemaVersionError(
        f"The tracking database {redact(uri)!r} has schema revision {revision!r}, but this "
        f"fitscribe expects {expected!r}. Back it up, then run: fitscribe db upgrade {redact(uri)!r}"
    )


def run_info(row: Sequence[Any]) -> RunInfo:
    """Return the RunInfo of a ``runs`` row given in :data:`RUN_COLUMNS` order."""
    run_id, exp_id, name, user_id, status, start, end, stage, artifact_uri = row
    return RunInfo(run_id, str(exp_id), name, user_id, RunStatus(status), start, end, artifact_uri, stage)


def experiment(row: Sequence[Any], tags: dict[str, str]) -> Experiment:
    """Return the Experiment of an ``experiments`` row given in :data:`EXPERIMENT_COLUMNS` order."""
    exp_id, name, location, stage, created, updated = row
    return Experiment(str(exp_id), name, location, stage, tags, created, updated)


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
        _AFTER_FORK.add(self)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use (and again in a forked child).

        The connection is closed when the thread ends (its thread-local holder is dropped), so
        short-lived threads leave no open file behind.
        """
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.conn is not None and held.pid == os.getpid():
            return held.conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise BackendError(f"Cannot open the tracking store {redact(self.uri)!r}: {exc}") from exc
        held = _Held(conn)
        try:
            apply_pragmas(conn)
        except sqlite3.Error as exc:
            held.close()
            raise BackendError(f"Cannot open the tracking store {redact(self.uri)!r}: {exc}") from exc
        with self._lock:
            self._held.add(held)
        self._local.held = held
        return conn

    def after_fork_in_child(self) -> None:
        """Forget the parent's connections in a forked child, without closing them (the parent
        still uses the same files); the child opens its own on first use."""
        self._local = threading.local()
        self._held = weakref.WeakSet()
        self._lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection in a write transaction (``BEGIN IMMEDIATE``), committed
        on exit and rolled back if the block raises.

        Raises:
            InvalidValueError: A constraint refused the write.
            BackendError: The database failed (locked for longer than the busy timeout, disk full...).
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise InvalidValueError(f"The database refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection for reads (each statement sees the latest commits).

        Raises:
            BackendError: The database failed.
        """
        try:
            yield self.connection()
        except sqlite3.Error as exc:
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc}") from exc

    def open(self, default_artifact_root: str, expected: str = q.REVISION) -> None:
        """Create the schema in a new database, or check an existing one's revision.

        Args:
            default_artifact_root: Artifact root of the ``Default`` experiment (id 0) of a new store.
            expected: The revision this fitscribe needs.

        Raises:
            ForeignStoreError: The file is not fitscribe's (an MLflow database...); it is left unchanged.
            SchemaVersionError: The database is at another revision; the message gives the fix.
            BackendError: The folder or file cannot be created or opened.
        """
        from .foreign import check_sqlite_file

        check_sqlite_file(self.path, self.uri)  # before the first connection switches it to WAL
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the store folder {folder!r}: {exc}") from exc
        with self.write() as conn:
            revision = current_revision(conn, self.uri)
            if revision is None:
                create_schema(conn, default_artifact_root)
                return
        if revision != expected:
            raise schema_version_error(self.uri, revision, expected)

    def close(self) -> None:
        """Close every connection (they are reopened on next use)."""
        with self._lock:
            held, self._held = list(self._held), weakref.WeakSet()
            self._local = threading.local()
        for one in held:
            one.close()


_INHERITED: list[sqlite3.Connection] = []
"""A forked child's copies of its parent's connections: never used, never closed."""


class _Held:
    """One thread's connection, closed when the holder goes (its thread ended, or the store closed).

    In a forked child the parent's connections are kept open and referenced (``_INHERITED``):
    closing them there could disturb the parent's use of the same file.
    """

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn: sqlite3.Connection | None = conn
        self.pid = os.getpid()

    def close(self, getpid: Any = os.getpid, inherited: list[sqlite3.Connection] = _INHERITED) -> None:
        """Close the connection (once; in the process that opened it). The defaults keep working
        while the interpreter shuts down and module globals are gone."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self.pid == getpid():
            conn.close()
        else:
            inherited.append(conn)

    __del__ = close


class _AfterFork:
    """Objects holding connections, told to forget them in a forked child (``os.register_at_fork``
    is process-wide and cannot be undone, so it is registered once for all of them)."""

    def __init__(self) -> None:
        self._objects: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._in_child)

    def add(self, obj: Any) -> None:
        """Call ``obj.after_fork_in_child()`` in every forked child while ``obj`` lives."""
        with self._lock:
            self._objects.add(obj)

    def _in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        for obj in list(self._objects):
            obj.after_fork_in_child()


_AFTER_FORK = _AfterFork()


def after_fork(obj: Any) -> None:
    """Call ``obj.after_fork_in_child()`` in every forked child while ``obj`` lives."""
    _AFTER_FORK.add(obj)


def current_revision(conn: sqlite3.Connection, uri: str) -> str | None:
    """Return the Alembic revision stamped in the database, or None for a new (empty) database.

    Raises:
        ForeignStoreError: The database has tables but not fitscribe's stamp (foreign.py).
    """
    from .foreign import check_tables

    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    revision = None
    if "alembic_version" in names:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    check_tables(names, revision, uri)
    return revision if names else None


def create_schema(conn: sqlite3.Connection, default_artifact_root: str) -> None:
    """Create the tables in an empty database, stamp the revision and add the Default experiment."""
    for statement in q.SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (q.REVISION,))
    now = int(time.time() * 1000)
    conn.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) VALUES (0, 'Default', ?, 'active', ?, ?)",
        (join_uri(default_artifact_root, "0"), now, now),
    )


class LiteWriter:
    """The hot write and check statements on a ``sqlite3`` connection (see ``writes.Writer``)."""

    dialect = "sqlite"

    def experiment_row(self, conn: sqlite3.Connection, experiment_id: int) -> tuple[str, str, str] | None:
        """Return (name, artifact_location, lifecycle_stage) of an experiment, or None."""
        return conn.execute(  # type: ignore[no-any-return]
            "SELECT name, artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?",
            (experiment_id,),
        ).fetchone()

    def experiment(self, conn: sqlite3.Connection, experiment_id: int | None = None,
                   name: str | None = None) -> Experiment | None:
        """Return the experiment with this id (or else this name) and its tags, or None."""
        column, value = ("experiment_id", experiment_id) if experiment_id is not None else ("name", name)
        row = conn.execute(f"SELECT {', '.join(EXPERIMENT_COLUMNS)} FROM experiments WHERE {column} = ?",
                           (value,)).fetchone()
        if row is None:
            return None
        tags = conn.execute('SELECT "key", value FROM experiment_tags WHERE experiment_id = ?', (row[0],))
        return experiment(row, dict(tags.fetchall()))

    def insert_experiment(self, conn: sqlite3.Connection, name: str, artifact_location: str, now: int) -> int:
        """Insert an active experiment and return its id."""
        cursor = conn.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) "
            "VALUES (?, ?, 'active', ?, ?)", (name, artifact_location, now, now))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def set_artifact_location(self, conn: sqlite3.Connection, experiment_id: int, location: str) -> None:
        """Set an experiment's artifact location."""
        conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (location, experiment_id))

    def experiment_tags(self, conn: sqlite3.Connection, experiment_id: int, tags: dict[str, str]) -> None:
        """Insert or replace experiment tags."""
        if tags:
            conn.executemany(q.EXPERIMENT_TAG_UPSERT, [(experiment_id, k, v) for k, v in tags.items()])

    def insert_run(self, conn: sqlite3.Connection, row: Sequence[Any]) -> None:
        """Insert a run given in :data:`RUN_COLUMNS` order."""
        conn.execute(_RUN_INSERT, row)

    def run_stage(self, conn: sqlite3.Connection, run_id: str, *, lock: bool = False) -> str | None:
        """Return a run's lifecycle stage, or None if there is no such run.

        ``lock`` needs nothing more here: a write transaction (``BEGIN IMMEDIATE``) holds the
        database's write lock, so no other writer changes the run until it ends.
        """
        row = conn.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def tag_value(self, conn: sqlite3.Connection, run_id: str, key: str) -> str | None:
        """Return the value of one run tag, or None if the run has no such tag."""
        row = conn.execute('SELECT value FROM tags WHERE run_uuid = ? AND "key" = ?', (run_id, key)).fetchone()
        return row[0] if row else None

    def update_run(self, conn: sqlite3.Connection, run_id: str, values: dict[str, Any]) -> RunInfo | None:
        """Set columns of a run (status, end_time, name, lifecycle_stage, deleted_time); return its
        new RunInfo, or None if there is no such run."""
        row = None
        if values:
            unknown = set(values) - _UPDATABLE
            assert not unknown, unknown  # the names are spliced into the SQL: only ours
            update = f"UPDATE runs SET {', '.join(f'{column} = ?' for column in values)} WHERE run_uuid = ?"
            if _RETURNING:
                row = conn.execute(f"{update} RETURNING {', '.join(RUN_COLUMNS)}", (*values.values(), run_id)).fetchone()
            else:  # pragma: no cover - SQLite before 3.35
                conn.execute(update, (*values.values(), run_id))
        if row is None and not (values and _RETURNING):
            row = conn.execute(_RUN_SELECT, (run_id,)).fetchone()
        return None if row is None else run_info(row)

    def existing_runs(self, conn: sqlite3.Connection, run_ids: Sequence[str]) -> set[str]:
        """Return those of ``run_ids`` that exist."""
        found: set[str] = set()
        for start in range(0, len(run_ids), 500):
            part = run_ids[start : start + 500]
            marks = ", ".join("?" * len(part))
            found.update(r[0] for r in conn.execute(f"SELECT run_uuid FROM runs WHERE run_uuid IN ({marks})", part))
        return found

    def tags(self, conn: sqlite3.Connection, run_id: str, tags: Iterable[RunTag]) -> None:
        """Insert or replace run tags (the last value for a key in the batch wins)."""
        merged = merge_tags(tags)
        if merged:
            conn.executemany(q.TAG_UPSERT, [(run_id, k, v) for k, v in merged.items()])

    def params(self, conn: sqlite3.Connection, run_id: str, params: Sequence[Param]) -> None:
        """Insert params; a key logged before with another value is an error naming both values."""
        if not params:
            return
        wanted = merge_params(params)
        conn.executemany(q.PARAM_INSERT, [(run_id, k, v) for k, v in wanted.items()])
        keys = list(wanted)
        stored: list[tuple[str, str]] = []
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ", ".join("?" * len(part))
            stored += conn.execute(
                f'SELECT "key", value FROM params WHERE run_uuid = ? AND "key" IN ({marks})', (run_id, *part)
            ).fetchall()
        check_stored_params(run_id, wanted, stored)

    def metric_points(self, conn: sqlite3.Connection, batches: Sequence[Batch]) -> None:
        """Append points given as batches ``(run_id, keys, values, timestamps, steps)`` and fold them
        into latest/min/max (rows.metric_rows)."""
        chunk_rows, latest = metric_rows(batches)
        if chunk_rows:
            conn.executemany(_CHUNK_INSERT, chunk_rows)
            conn.executemany(q.LATEST_UPSERT, latest)

    def journal_position(self, conn: sqlite3.Connection, journal_id: str, position: int) -> None:
        """Record how far a metric journal has been copied into the database."""
        conn.execute(q.JOURNAL_UPSERT, (journal_id, position))

    def journal_position_of(self, conn: sqlite3.Connection, journal_id: str) -> int:
        """Return how far a metric journal has been copied (0 if never)."""
        row = conn.execute("SELECT position FROM journals WHERE journal_id = ?", (journal_id,)).fetchone()
        return int(row[0]) if row else 0

    def delete_journal(self, conn: sqlite3.Connection, journal_id: str) -> None:
        """Forget a metric journal's position (its file is gone)."""
        conn.execute("DELETE FROM journals WHERE journal_id = ?", (journal_id,))
