"""The SQL store's one writer: its named statements (statements.py) on either connection
(connection.py), in a transaction the store hands out (store_core.py). The rules other modules
share (the write-once check, how points become rows) are in rows.py. No SQLAlchemy import here.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from fitscribe._time import now_ms
from fitscribe.entities import Experiment, Metric, Param, RunInfo, RunTag
from fitscribe.errors import SchemaVersionError
from fitscribe.uri import join_uri, redact

from .chunks import Batch, decode_chunks
from .connection import Connection, SaConnection, in_chunks
from .rows import check_stored_params, experiment, merge_params, merge_tags, metric_rows, run_info

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Writer"]

_UPDATABLE = ("name", "status", "end_time")
_RETURNING = {"sqlite": sqlite3.sqlite_version_info >= (3, 35), "postgresql": True, "mysql": False, "mariadb": False}
"""Whether ``UPDATE ... RETURNING`` works (SQLite from 3.35; MariaDB has it for INSERT and DELETE only)."""


class Writer:
    """The store's statements on one connection (connection.py) in a transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def sa(self) -> sa.Connection:
        """The SQLAlchemy connection (``sql_write()``/``sql_read()`` transactions only)."""
        if not isinstance(self.conn, SaConnection):
            raise TypeError("This transaction runs on sqlite3; use the store's sql_write() or sql_read().")
        return self.conn.sa

    # -- schema ----------------------------------------------------------------------------------
    def revision(self, uri: str) -> str | None:
        """Return the Alembic revision stamped in the database, or None for a new (empty) one.

        Raises:
            ForeignStoreError: The database has tables but not fitscribe's stamp (backends/foreign.py).
        """
        from fitscribe.backends.foreign import check_tables

        names = self.conn.table_names()
        found = self.conn.rows("revision") if "alembic_version" in names else []
        revision = found[0][0] if found else None
        check_tables(names, revision, uri)
        return revision if names else None

    def open_schema(self, uri: str, expected: str, default_artifact_root: str) -> None:
        """Create the schema (stamped ``expected``, with the Default experiment) in an empty
        database, or check an existing one's revision; in a write transaction.

        Raises:
            ForeignStoreError: The database has tables but not fitscribe's stamp (backends/foreign.py).
            SchemaVersionError: The database is at another revision; the message gives the fix.
        """
        revision = self.revision(uri)
        if revision is not None and revision != expected:
            raise SchemaVersionError(
                f"The tracking database {redact(uri)!r} has schema revision {revision!r}, but this "
                f"fitscribe expects {expected!r}. Back it up, then run: fitscribe db upgrade {redact(uri)!r}"
            )
        if revision is None:
            self.conn.create_tables()
            self.conn.run("stamp_revision", (expected,))
            new_id = self.insert_experiment("Default", join_uri(default_artifact_root, "0"), now_ms())
            if new_id != 0:
                self.conn.run("set_experiment_id", (0, new_id))

    # -- experiments -----------------------------------------------------------------------------
    def experiment_row(self, experiment_id: int) -> tuple[str, str, str] | None:
        """Return (name, artifact_location, lifecycle_stage) of an experiment, or None."""
        found = self.conn.rows("experiment_by_id", (experiment_id,))
        return (found[0][1], found[0][2], found[0][3]) if found else None

    def experiment(self, experiment_id: int | None = None, name: str | None = None) -> Experiment | None:
        """Return the experiment with this id (or else this name) and its tags, or None."""
        if experiment_id is not None:
            found = self.conn.rows("experiment_by_id", (experiment_id,))
        else:
            found = self.conn.rows("experiment_by_name", (name,))
        if not found:
            return None
        tags = self.conn.rows("experiment_tags", (found[0][0],))
        return experiment(found[0], {key: value for key, value in tags})

    def insert_experiment(self, name: str, artifact_location: str, now: int) -> int:
        """Insert an active experiment and return its id."""
        return self.conn.insert("insert_experiment", (name, artifact_location, "active", now, now))

    def set_artifact_location(self, experiment_id: int, location: str) -> None:
        """Set an experiment's artifact location."""
        self.conn.run("set_artifact_location", (location, experiment_id))

    def experiment_tags(self, experiment_id: int, tags: dict[str, str]) -> None:
        """Insert or replace experiment tags."""
        self.conn.run_many("upsert_experiment_tag", [(experiment_id, k, v) for k, v in tags.items()])

    # -- runs ------------------------------------------------------------------------------------
    def insert_run(self, row: Sequence[Any]) -> None:
        """Insert a run given in :data:`rows.RUN_COLUMNS` order."""
        self.conn.run("insert_run", row)

    def run_stage(self, run_id: str, *, lock: bool = False) -> str | None:
        """Return a run's lifecycle stage, or None if there is no such run.

        With ``lock``, writers that lock the run take turns until their transactions end
        (PostgreSQL's ``FOR NO KEY UPDATE`` still lets others insert rows referring to it; SQLite's
        ``BEGIN IMMEDIATE`` already holds the database's write lock).
        """
        found = self.conn.rows("run_stage_locked" if lock else "run_stage", (run_id,))
        return found[0][0] if found else None

    def update_run(self, run_id: str, values: dict[str, Any]) -> RunInfo | None:
        """Set columns of a run (status, end_time, name, lifecycle_stage, deleted_time); return its
        new RunInfo, or None if there is no such run."""
        unknown = set(values) - set(_UPDATABLE) - {"lifecycle_stage", "deleted_time"}
        assert not unknown, unknown
        if "lifecycle_stage" in values:  # with its deleted_time, always
            self.conn.run("set_run_lifecycle", (values["lifecycle_stage"], values["deleted_time"], run_id))
        args = (*(x for c in _UPDATABLE for x in (c in values, values.get(c))), run_id)
        if _RETURNING[self.conn.dialect]:
            found = self.conn.rows("update_run_returning", args)
        else:
            self.conn.run("update_run", args)
            found = self.conn.rows("run_row", (run_id,))
        return run_info(found[0]) if found else None

    def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        """Return those of ``run_ids`` that exist."""
        return {row[0] for row in self._rows_in("existing_runs", run_ids)}

    def run_start_times(self, run_ids: Sequence[str]) -> dict[str, int | None]:
        """Return the start time (epoch ms) of each of ``run_ids`` that exists."""
        return {row[0]: row[1] for row in self._rows_in("run_start_times", run_ids)}

    def _rows_in(self, name: str, values: Sequence[Any], *before: Any) -> list[Any]:
        """Return the rows of a query whose last parameter is an ``IN`` list, run on parts of it."""
        return [row for part in in_chunks(list(values)) for row in self.conn.rows(name, (*before, list(part)))]

    # -- tags, params, metrics -------------------------------------------------------------------
    def tag_value(self, run_id: str, key: str) -> str | None:
        """Return the value of one run tag, or None if the run has no such tag."""
        found = self.conn.rows("tag_value", (run_id, key))
        return found[0][0] if found else None

    def tags(self, run_id: str, tags: Iterable[RunTag]) -> None:
        """Insert or replace run tags (the last value for a key in the batch wins)."""
        self.conn.run_many("upsert_tag", [(run_id, k, v) for k, v in merge_tags(tags).items()])

    def params(self, run_id: str, params: Sequence[Param]) -> None:
        """Insert params; a key logged before with another value is an error naming both values."""
        if not params:
            return
        wanted = merge_params(params)
        self.conn.run_many("insert_param", [(run_id, k, v) for k, v in wanted.items()])
        check_stored_params(run_id, wanted, self._rows_in("stored_params", list(wanted), run_id))

    def metric_chunks(self, run_id: str, key: str, min_step: int | None = None,
                      max_step: int | None = None) -> list[Any]:
        """Return the ``(step_blob, timestamp_blob, value_blob)`` rows of one series in logging order;
        with a step range, only the chunks holding a step in it (chunks.py)."""
        low = -(2**63) if min_step is None else min_step
        return self.conn.rows("metric_chunks", (run_id, key, low, 2**63 - 1 if max_step is None else max_step))

    def metric_history(self, run_id: str, key: str, max_results: int | None, offset: int) -> list[Metric]:
        """Return points of one metric by step, timestamp and logging order (one extra for paging)."""
        values, timestamps, steps = decode_chunks(self.metric_chunks(run_id, key))
        if offset or max_results is not None:
            end = None if max_results is None else offset + max_results + 1
            values, timestamps, steps = values[offset:end], timestamps[offset:end], steps[offset:end]
        return Metric._from_columns(key, values, timestamps, steps)

    def metric_points(self, batches: Sequence[Batch]) -> None:
        """Append points given as batches (chunks.py) and fold them into latest/min/max: one
        executemany each (rows.metric_rows)."""
        chunk_rows, latest = metric_rows(batches)
        self.conn.run_many("insert_chunk", chunk_rows)
        self.conn.run_many("upsert_latest", latest)
