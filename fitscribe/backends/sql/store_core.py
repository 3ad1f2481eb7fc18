"""Connections, transactions and the metric journal of the SQL tracking store (store.py builds on it).

Two ways to the database, opened on first use:

- **hot** (``_hot_write``/``_hot_read`` with the writer ``_hw``): creating and ending runs, logging,
  the metric journal. On an embedded SQLite file this is the standard library's ``sqlite3``
  (lite.py), so a script that opens a store and logs never imports SQLAlchemy; on PostgreSQL and
  MySQL/MariaDB it is the SQLAlchemy engine and ``writes.Writer``, which has the same methods.
- **full** (``_write``/``_read`` with ``_w`` and ``_r``): everything else, through SQLAlchemy,
  imported when first needed.

Every write is one transaction, committed before the method returns, so a process killed at any
moment loses nothing it had logged. On SQLite, writes take the lock at BEGIN (``BEGIN IMMEDIATE``)
and wait up to a minute for it, so many processes can log into one file without "database is
locked" errors.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ContextManager, Iterator

from fitscribe import validation as v
from fitscribe.config import DB_FILENAME, resolve_artifact_root
from fitscribe.entities import LifecycleStage
from fitscribe.errors import BackendError, FitscribeWarning, InvalidStateError, InvalidValueError, RunNotFound
from fitscribe.uri import path_to_file_uri, redact

from .database_url import DatabaseURL, parse_database_uri

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .lite import LiteDatabase
    from .reads import RunReader
    from .writes import Writer

__all__ = ["StoreCore"]

_ACTIVE = LifecycleStage.ACTIVE.value
_ACTIVE_RUN_RECHECK_S = 5.0


class StoreCore:
    """Opens the database on first use and hands out transactions; owns the metric journal.

    The constructor does no I/O.

    Args:
        uri: The tracking URI.
        artifact_uri: Artifact root for new experiments (default: ``artifacts/`` beside an embedded
            database, else ``$FITSCRIBE_ARTIFACT_URI`` or ``./fitruns/artifacts``).
    """

    def __init__(self, uri: str, artifact_uri: str | None = None) -> None:
        self.uri = uri
        self._db: DatabaseURL = parse_database_uri(uri)
        root = artifact_uri or (
            path_to_file_uri(self._db.default_artifact_root) if self._db.default_artifact_root else None
        )
        self.artifact_root = resolve_artifact_root(uri, root)
        self._lock = threading.RLock()
        self._engine: sa.Engine | None = None
        self._writer: Writer | None = None
        self._reader: RunReader | None = None
        self._lite: LiteDatabase | None = None
        self._hot_writer: Any = None  # lite.LiteWriter or writes.Writer, once open
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
        if self._hot_writer is not None:
            return
        with self._lock:
            if self._hot_writer is not None:
                return
            if self._db.folder and self._db.url.endswith(DB_FILENAME):
                from .foreign import check_folder

                check_folder(self._db.folder, DB_FILENAME)  # an MLflow mlruns folder is refused
            if self._db.sqlite_path is not None:
                from .lite import LiteDatabase, LiteWriter

                lite = LiteDatabase(self._db.sqlite_path, self.uri)
                lite.open(self.artifact_root)
                self._lite, self._hot_writer = lite, LiteWriter()
            else:
                self._hot_writer = self._full_writer()
            if self._journal_folder:
                self._replay_orphaned_journals()

    def after_fork_in_child(self) -> None:
        """Drop the parent's pooled connections in a forked child without closing them (the
        parent still uses them); the child connects anew on first use."""
        self._lock = threading.RLock()
        if self._engine is not None:
            self._engine.dispose(close=False)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, created (and the schema checked) on first access."""
        if self._engine is None:
            self._full_writer()
        assert self._engine is not None
        return self._engine

    def _full_writer(self) -> Writer:
        """Create the SQLAlchemy engine, reader and writer once; return the writer."""
        with self._lock:
            if self._engine is None:
                from .engine import ensure_schema, make_engine
                from .lite import after_fork
                from .reads import RunReader
                from .writes import Writer

                engine = make_engine(self._db)
                after_fork(self)
                if self._lite is None:  # else lite.py has checked the schema already
                    try:
                        ensure_schema(engine, self.uri, self.artifact_root)
                    except BaseException:
                        engine.dispose()
                        raise
                self._writer = Writer(engine.dialect.name)
                self._reader = RunReader()
                self._engine = engine
        assert self._writer is not None
        return self._writer

    @property
    def dialect(self) -> str:
        """The database dialect name: ``sqlite``, ``postgresql`` or ``mysql``."""
        return "sqlite" if self._db.sqlite_path is not None else self.engine.dialect.name

    # -- transactions ----------------------------------------------------------------------------
    def _hot_write(self) -> ContextManager[Any]:
        """A write transaction for the hot paths; use it with ``self._hw``."""
        self._open()
        return self._lite.write() if self._lite is not None else self._write()

    def _hot_read(self) -> ContextManager[Any]:
        """A connection for the hot paths' checks (no journal flush); use it with ``self._hw``."""
        self._open()
        return self._lite.read() if self._lite is not None else self._read(flush=False)

    @property
    def _hw(self) -> Any:
        """The hot paths' writer: ``lite.LiteWriter`` on embedded SQLite, else ``writes.Writer``."""
        assert self._hot_writer is not None
        return self._hot_writer

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        import sqlalchemy as sa

        self._open()
        engine = self.engine
        try:
            with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
                with conn.begin():
                    yield conn
        except sa.exc.IntegrityError as exc:
            raise InvalidValueError(f"The database refused the write: {exc.orig}") from exc
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc.orig}") from exc

    @contextmanager
    def _read(self, flush: bool = True) -> Iterator[sa.Connection]:
        import sqlalchemy as sa

        self._open()
        engine = self.engine
        if flush:
            self.flush()
        try:
            with engine.connect() as conn:
                yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise BackendError(f"The tracking store {redact(self.uri)!r} failed: {exc.orig}") from exc

    @property
    def _w(self) -> Writer:
        return self._full_writer()

    @property
    def _r(self) -> RunReader:
        self._full_writer()
        assert self._reader is not None
        return self._reader

    def close(self) -> None:
        """Flush the metric journal and close the connections (they reopen on next use)."""
        journal, self._journal = self._journal, None
        if journal is not None and journal.owned_by_this_process:
            journal.close(remove=self._remove_journal_row)
        if self._lite is not None:
            self._lite.close()
        if self._engine is not None:
            self._engine.dispose()

    def flush(self) -> None:
        """Return once every point logged by this process is in the database.

        Raises:
            BackendError: The database did not take the points in time (they stay in the journal).
        """
        journal = self._journal
        if journal is not None and journal.owned_by_this_process:
            journal.flush()

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

    def _require_run(self, conn: sa.Connection, run_id: str, active: bool = True) -> None:
        """Refuse a missing (or deleted) run, on a SQLAlchemy connection."""
        self._check_stage(self._w.run_stage(conn, run_id), run_id, active)

    def _check_active_run(self, run_id: str) -> None:
        """Refuse logging to a missing or deleted run (checked at most every few seconds per run)."""
        now = time.monotonic()
        checked = self._active_runs.get(run_id)
        if checked is not None and now - checked < _ACTIVE_RUN_RECHECK_S:
            return
        v.check_run_id(run_id)
        with self._hot_read() as conn:
            self._check_stage(self._hw.run_stage(conn, run_id), run_id)
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
            with self._hot_write() as conn:
                self._hw.metric_points(conn, entries)
                self._hw.journal_position(conn, journal_id, position)
            return
        except InvalidValueError:  # a foreign key failed: some run is gone
            pass
        run_ids = sorted({entry[0] for entry in entries})
        with self._hot_write() as conn:
            existing = self._hw.existing_runs(conn, run_ids)
            kept = [entry for entry in entries if entry[0] in existing]
            self._hw.metric_points(conn, kept)
            self._hw.journal_position(conn, journal_id, position)
        gone = sorted(set(run_ids) - existing)
        warnings.warn(f"Dropped metric points logged to runs that were purged meanwhile: {', '.join(gone)}.",
                      FitscribeWarning, stacklevel=2)

    def _remove_journal_row(self, journal_id: str) -> None:
        with self._hot_write() as conn:
            self._hw.delete_journal(conn, journal_id)

    def _replay_orphaned_journals(self) -> None:
        from .journal import replay_orphans

        def position_of(journal_id: str) -> int:
            with self._hot_read() as conn:
                return int(self._hw.journal_position_of(conn, journal_id))

        def runs_in(run_ids: Any) -> set[str]:
            with self._hot_read() as conn:
                return set(self._hw.existing_runs(conn, sorted(run_ids)))

        assert self._journal_folder is not None
        replay_orphans(self._journal_folder, position_of, self._apply_journal, self._remove_journal_row, runs_in)


def _journal_folder(db: DatabaseURL) -> str | None:
    """The metric journal folder of an embedded SQLite store, or None (journal off)."""
    from .journal import journal_folder, journals_supported

    if not db.url.startswith("sqlite") or not db.folder or not journals_supported():
        return None
    if os.environ.get("FITSCRIBE_METRIC_JOURNAL", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    database_file = db.url.split(":///", 1)[1].split("?", 1)[0]
    return journal_folder(os.path.join(db.folder, os.path.basename(database_file)))  # one per database
