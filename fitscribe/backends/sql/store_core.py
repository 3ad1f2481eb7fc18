"""Connections, transactions and the metric journal of the SQL tracking store (store.py builds on it).

The database is opened on first use; every transaction hands out the one writer (writer.py).
``write()``/``read()`` serve logging and runs, on ``sqlite3`` for an embedded file (lite.py: a
script that only logs never imports SQLAlchemy); ``sql_write()``/``sql_read()`` everything else, on
SQLAlchemy (``Writer.sa``), and ``sql_read()`` first flushes this process's metric journal. Every
write is one transaction committed before the method returns; SQLite writes take the lock at BEGIN
(``BEGIN IMMEDIATE``) and wait up to a minute for it, so many processes can log into one file.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, ContextManager, Iterator

from fitscribe import validation as v
from fitscribe._fork import gated, keep_forever, split_at_fork
from fitscribe.config import DB_FILENAME, resolve_artifact_root
from fitscribe.entities import LifecycleStage
from fitscribe.errors import BackendError, ConstraintViolation, FitscribeWarning, InvalidStateError, RunNotFound
from fitscribe.uri import path_to_file_uri, redact

from .database_url import DatabaseURL, parse_database_uri

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .lite import LiteDatabase
    from .statements import Statements
    from .writer import Writer

__all__ = ["StoreCore"]

_ACTIVE = LifecycleStage.ACTIVE.value
_ACTIVE_RUN_RECHECK_S = 5.0


class StoreCore:
    """Opens the database on first use (the constructor does no I/O) and hands out transactions;
    owns the metric journal.

    Args:
        uri: The tracking URI.
        artifact_uri: Artifact root for new experiments (default: ``artifacts/`` beside an embedded
            database, else ``$FITSCRIBE_ARTIFACT_URI`` or ``./fitruns/artifacts``).
    """

    def __init__(self, uri: str, artifact_uri: str | None = None) -> None:
        self.uri = uri
        self._db: DatabaseURL = parse_database_uri(uri)
        default = self._db.default_artifact_root
        self.artifact_root = resolve_artifact_root(uri, artifact_uri or (path_to_file_uri(default) if default else None))
        self._lock = threading.RLock()
        self._opened = False
        self._engine: sa.Engine | None = None
        self._statements: Statements | None = None
        self._lite: LiteDatabase | None = None
        # metric journal (embedded SQLite only): see journal.py
        self._journal: Any = None
        self._journal_folder = _journal_folder(self._db)
        self._active_runs: dict[str, float] = {}
        self._valid_keys: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.uri)!r})"

    # -- opening ---------------------------------------------------------------------------------
    def _open(self) -> None:
        """Open the database: check or create the schema, then replay journals of dead processes."""
        if self._opened:
            return
        with self._lock:
            if self._opened:
                return
            if self._db.folder and self._db.url.endswith(DB_FILENAME):
                from fitscribe.backends.foreign import check_folder

                check_folder(self._db.folder, DB_FILENAME)  # an MLflow mlruns folder is refused
            if self._db.sqlite_path is not None:
                from .lite import LiteDatabase

                lite = LiteDatabase(self._db.sqlite_path, self.uri)
                lite.open(self.artifact_root)
                self._lite = lite
            else:
                self._sql_engine()
            self._opened = True
            if self._journal_folder:
                self._replay_orphaned_journals()

    def after_fork_in_child(self) -> None:
        """Drop the parent's pooled connections in a forked child without closing them (the
        parent still uses them); the child connects anew on first use."""
        self._lock = threading.RLock()
        if self._engine is not None:
            if split_at_fork():  # a thread was inside a call on one of them: never close them here
                keep_forever(self._engine.pool)
            self._engine.dispose(close=False)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, created (and the schema checked) on first access."""
        return self._engine or self._sql_engine()

    def _sql_engine(self) -> sa.Engine:
        """Create the SQLAlchemy engine once (checking the schema unless lite.py has); return it."""
        with self._lock:
            if self._engine is None:
                from .engine import ensure_schema, make_engine
                from .lite import after_fork
                from .statements import statements_for

                engine = make_engine(self._db)
                after_fork(self)
                if self._lite is None:  # else lite.py has checked the schema already
                    try:
                        ensure_schema(engine, self.uri, self.artifact_root)
                    except BaseException:
                        engine.dispose()
                        raise
                self._statements = statements_for(engine.dialect.name)
                self._engine = engine
            return self._engine

    @property
    def dialect(self) -> str:
        """The database dialect name: ``sqlite``, ``postgresql`` or ``mysql``."""
        return "sqlite" if self._db.sqlite_path is not None else self.engine.dialect.name

    # -- transactions ----------------------------------------------------------------------------
    def write(self) -> ContextManager[Writer]:
        """A write transaction for logging and runs (raises ``ConstraintViolation``, ``BackendError``)."""
        self._open()
        return self._lite.write() if self._lite is not None else self.sql_write()

    def read(self) -> ContextManager[Writer]:
        """A connection for the hot paths' checks and reads by named statement; call :meth:`flush`
        first when the points logged by this process must be seen."""
        self._open()
        return self._lite.read() if self._lite is not None else self.sql_read(flush=False)

    def sql_write(self) -> ContextManager[Writer]:
        """A write transaction on SQLAlchemy (raises ``ConstraintViolation``, ``BackendError``)."""
        return self._sql(write=True)

    def sql_read(self, flush: bool = True) -> ContextManager[Writer]:
        """A SQLAlchemy connection for reads, after flushing this process's metric journal unless
        ``flush`` is False (raises ``BackendError``)."""
        if flush:
            self.flush()
        return self._sql(write=False)

    @contextmanager
    @gated  # a fork waits for it (_fork.py)
    def _sql(self, write: bool) -> Iterator[Writer]:
        import sqlalchemy as sa

        from .connection import SaConnection
        from .writer import Writer

        self._open()
        engine, statements = self.engine, self.statements
        try:
            with engine.connect() as conn:
                with conn.execution_options(sqlite_begin="IMMEDIATE").begin() if write else nullcontext():
                    yield Writer(SaConnection(conn, statements))
        except sa.exc.IntegrityError as exc:
            raise ConstraintViolation(f"The database refused the write: {exc.orig}") from exc
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc.orig}") from exc

    @property
    def statements(self) -> Statements:
        """The statements of this database's dialect (statements.py), e.g. its upserts."""
        self._sql_engine()
        assert self._statements is not None
        return self._statements

    def close(self) -> None:
        """Flush the metric journal and close the connections (they reopen on next use)."""
        journal, self._journal = self._journal, None
        if journal is not None and journal.owned_by_this_process:
            journal.close(remove=self._remove_journal_row)
        if self._lite is not None:
            self._lite.close()
        if self._engine is not None:
            _dispose(self._engine)

    def flush(self) -> None:
        """Return once every point logged by this process is in the database, through the journals
        of every store of this database in this process (the fluent API's and a ``Client``'s).

        Raises:
            BackendError: The database did not take the points in time (they stay in the journal).
        """
        journals = sys.modules.get("fitscribe.backends.sql.journal")  # not imported: no journal exists
        if journals is not None and self._journal_folder:
            journals.flush_database(self._journal_folder)  # this store's journal among them

    # -- runs: the checks the hot paths share ------------------------------------------------------
    @staticmethod
    def _check_stage(stage: str | None, run_id: str, active: bool = True) -> None:
        """Refuse a missing run, and a deleted one when ``active``."""
        if stage is None:
            raise RunNotFound(f"No run has the id {run_id!r}. Find run ids with: fitscribe runs list")
        if active and stage != _ACTIVE:
            raise InvalidStateError(
                f"The run {run_id} is deleted; restore it (Client.restore_run) before logging to it."
            )

    def _require_run(self, w: Writer, run_id: str, active: bool = True) -> None:
        """Refuse a missing (or deleted) run."""
        self._check_stage(w.run_stage(run_id), run_id, active)

    def _check_active_run(self, run_id: str) -> None:
        """Refuse logging to a missing or deleted run (checked at most every few seconds per run)."""
        now = time.monotonic()
        checked = self._active_runs.get(run_id)
        if checked is not None and now - checked < _ACTIVE_RUN_RECHECK_S:
            return
        v.check_run_id(run_id)
        with self.read() as w:
            self._check_stage(w.run_stage(run_id), run_id)
        if len(self._active_runs) > 10_000:
            self._active_runs.clear()
        self._active_runs[run_id] = now

    # -- metric journal --------------------------------------------------------------------------
    def _journal_for_write(self) -> Any:
        journal = self._journal
        if journal is None or not journal.owned_by_this_process:
            from .journal import MetricJournal

            self._open()  # replay orphans before starting a journal of our own
            with self._lock:
                if self._journal is None or not self._journal.owned_by_this_process:
                    self._journal = MetricJournal(self._journal_folder, self._apply_journal)
                    import atexit

                    atexit.register(self._close_journal_at_exit, self._journal)
                journal = self._journal
        return journal

    def _close_journal_at_exit(self, journal: Any) -> None:
        if journal is self._journal:
            self._journal = None
        journal.close(remove=self._remove_journal_row)

    def _apply_journal(self, journal_id: str, entries: list[Any], position: int) -> None:
        """Copy journal entries into the database and record the position, in one transaction.

        Points of runs that no longer exist (purged meanwhile) are dropped with a warning.
        """
        try:
            with self.write() as w:
                w.metric_points(entries)
                w.conn.run("upsert_journal", (journal_id, position))
            return
        except ConstraintViolation:  # a foreign key failed: some run is gone
            pass
        run_ids = sorted({entry[0] for entry in entries})
        with self.write() as w:
            existing = w.existing_runs(run_ids)
            kept = [entry for entry in entries if entry[0] in existing]
            w.metric_points(kept)
            w.conn.run("upsert_journal", (journal_id, position))
        gone = sorted(set(run_ids) - existing)
        warnings.warn(f"Dropped metric points logged to runs that were purged meanwhile: {', '.join(gone)}.",
                      FitscribeWarning, stacklevel=2)

    def _remove_journal_row(self, journal_id: str) -> None:
        with self.write() as w:
            w.conn.run("delete_journal", (journal_id,))

    def _replay_orphaned_journals(self) -> None:
        from .journal import replay_orphans

        def position_of(journal_id: str) -> int:
            with self.read() as w:
                found = w.conn.rows("journal_position", (journal_id,))
            return int(found[0][0]) if found else 0

        def runs_in(run_ids: Any) -> set[str]:
            with self.read() as w:
                return w.existing_runs(sorted(run_ids))

        assert self._journal_folder is not None
        replay_orphans(self._journal_folder, position_of, self._apply_journal, self._remove_journal_row, runs_in)


def _dispose(engine: sa.Engine) -> None:
    """Close the engine's pooled connections, and those other threads still use as they come back
    (``Engine.dispose`` alone leaves them to the old pool, freed open by a later GC: psycopg warns)."""
    from sqlalchemy import event

    old = engine.pool
    engine.dispose()
    event.listen(old, "checkin", _close_returned)
    old.dispose()  # those checked in before the listener


def _close_returned(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection is not None:
        dbapi_connection.close()


def _journal_folder(db: DatabaseURL) -> str | None:
    """The metric journal folder of an embedded SQLite store, or None (journal off)."""
    from .journal import journal_folder, journals_supported

    if not db.url.startswith("sqlite") or not db.folder or not journals_supported():
        return None
    if os.environ.get("FITSCRIBE_METRIC_JOURNAL", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    database_file = db.url.split(":///", 1)[1].split("?", 1)[0]
    return journal_folder(os.path.join(db.folder, os.path.basename(database_file)))  # one per database
