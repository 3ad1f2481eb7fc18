"""Statements that record metrics, params and tags, per dialect (upserts differ between databases).

Metric histories are written as packed chunks (chunks.py); latest values are encoded as
(value, special) so NaN and +-inf survive everywhere; see tables.py.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from fitscribe.entities import Experiment, Param, RunInfo, RunTag

from . import tables as t
from .chunks import Batch
from .lite import EXPERIMENT_COLUMNS, RUN_COLUMNS, experiment, run_info
from .rows import (
    CHUNK_COLUMNS,
    LATEST_COLUMNS,
    check_stored_params,
    decode_bound,
    decode_value,
    encode_value,
    merge_params,
    merge_tags,
    metric_rows,
)

__all__ = [
    "encode_value",
    "decode_value",
    "decode_bound",
    "Writer",
]

_SQLITE_CHUNK_INSERT = f"INSERT INTO metric_chunks ({', '.join(CHUNK_COLUMNS)}) VALUES ({', '.join('?' * len(CHUNK_COLUMNS))})"


def _positional_sql(stmt: Any, columns: tuple[str, ...]) -> str:
    """Return a statement compiled for SQLite (``?`` placeholders taking ``columns`` in order)."""
    from sqlalchemy.dialects import sqlite

    compiled = stmt.compile(dialect=sqlite.dialect())
    assert tuple(compiled.positiontup or ()) == columns, compiled.positiontup
    return str(compiled)


class Writer:
    """Builds and caches the write statements for one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._latest_upsert = self._build_latest_upsert()
        self._tag_upsert = self._build_upsert(t.tags, ["value"])
        self._param_insert = self._build_insert_ignore(t.params)
        self._exp_tag_upsert = self._build_upsert(t.experiment_tags, ["value"])
        self._chunk_insert = t.metric_chunks.insert()
        self._journal_upsert = self._build_upsert(t.journals, ["position"])
        self._upserts: dict[tuple[str, ...], Any] = {}
        # SQLite: the latest/min/max upsert as plain SQL for the driver's executemany (the
        # journal's flush runs it for every series it writes)
        self._sqlite_latest = _positional_sql(self._latest_upsert, LATEST_COLUMNS) if dialect == "sqlite" else None

    def upsert(self, table: sa.Table, update_cols: list[str]) -> Any:
        """Return an INSERT that replaces ``update_cols`` when the primary key exists (built once per table)."""
        key = (table.name, *update_cols)
        stmt = self._upserts.get(key)
        if stmt is None:
            stmt = self._upserts[key] = self._build_upsert(table, update_cols)
        return stmt

    # -- statement builders -------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def _build_upsert(self, table: sa.Table, update_cols: list[str]) -> Any:
        stmt = self._insert(table)
        if self.dialect in ("mysql", "mariadb"):
            return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in update_cols})
        keys = [c.name for c in table.primary_key.columns]
        return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update_cols})

    def _build_insert_ignore(self, table: sa.Table) -> Any:
        stmt = self._insert(table)
        if self.dialect in ("mysql", "mariadb"):
            return stmt.prefix_with("IGNORE")
        return stmt.on_conflict_do_nothing()

    def _build_latest_upsert(self) -> Any:
        lm = t.latest_metrics
        stmt = self._insert(lm)
        new = stmt.inserted if self.dialect in ("mysql", "mariadb") else stmt.excluded
        newer = sa.or_(new.step > lm.c.step, sa.and_(new.step == lm.c.step, new.timestamp >= lm.c.timestamp))

        def pick(col: str) -> Any:
            return sa.case((newer, new[col]), else_=lm.c[col])

        def bound(col: str, cmp: Any) -> Any:
            return sa.case(
                (new[col].is_(None), lm.c[col]),
                (lm.c[col].is_(None), new[col]),
                (cmp(new[col], lm.c[col]), new[col]),
                else_=lm.c[col],
            )

        # Order matters on MySQL, which evaluates assignments left to right on the updated row:
        # min/max first, then value and special, then timestamp, and step last.
        updates = [
            ("min_value", bound("min_value", lambda a, b: a < b)),
            ("max_value", bound("max_value", lambda a, b: a > b)),
            ("value", pick("value")),
            ("special", pick("special")),
            ("timestamp", pick("timestamp")),
            ("step", pick("step")),
        ]
        if self.dialect in ("mysql", "mariadb"):
            return stmt.on_duplicate_key_update(updates)
        return stmt.on_conflict_do_update(index_elements=["run_uuid", "key"], set_=dict(updates))

    # -- execution ------------------------------------------------------------------------------
    def metric_points(self, conn: sa.Connection, batches: Sequence[Batch]) -> None:
        """Append points, given as batches ``(run_id, keys, values, timestamps, steps)`` (see
        chunks.py), and fold them into latest/min/max: one chunk row per series (split past
        ``MAX_POINTS_PER_CHUNK``), one multi-row INSERT and one upsert for all runs and keys."""
        chunk_rows, latest = metric_rows(batches)
        if not chunk_rows:
            return
        if self._sqlite_latest is not None:  # the DBAPI's executemany directly: no per-row processing
            conn.exec_driver_sql(_SQLITE_CHUNK_INSERT, chunk_rows)
            conn.exec_driver_sql(self._sqlite_latest, latest)
        else:
            conn.execute(self._chunk_insert, [dict(zip(CHUNK_COLUMNS, row)) for row in chunk_rows])
            conn.execute(self._latest_upsert, [dict(zip(LATEST_COLUMNS, row)) for row in latest])

    def journal_position(self, conn: sa.Connection, journal_id: str, position: int) -> None:
        """Record how far a metric journal has been copied into the database."""
        conn.execute(self._journal_upsert, [{"journal_id": journal_id, "position": position}])

    def params(self, conn: sa.Connection, run_id: str, params: Sequence[Param]) -> None:
        """Insert params; a key logged before with another value is an error naming both values."""
        if not params:
            return
        wanted = merge_params(params)
        conn.execute(self._param_insert, [{"run_uuid": run_id, "key": k, "value": v} for k, v in wanted.items()])
        stored = conn.execute(
            sa.select(t.params.c.key, t.params.c.value).where(
                t.params.c.run_uuid == run_id, t.params.c.key.in_(list(wanted))
            )
        ).all()
        check_stored_params(run_id, wanted, stored)

    def tags(self, conn: sa.Connection, run_id: str, tags: Iterable[RunTag]) -> None:
        """Insert or replace run tags (the last value for a key in the batch wins)."""
        merged = merge_tags(tags)
        if merged:
            conn.execute(self._tag_upsert, [{"run_uuid": run_id, "key": k, "value": v} for k, v in merged.items()])

    def experiment_tags(self, conn: sa.Connection, experiment_id: int, tags: dict[str, str]) -> None:
        """Insert or replace experiment tags."""
        if tags:
            conn.execute(
                self._exp_tag_upsert,
                [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in tags.items()],
            )

    # -- the hot paths' statements (lite.LiteWriter has the same methods for raw SQLite) --------------
    def experiment_row(self, conn: sa.Connection, experiment_id: int) -> Any:
        """Return (name, artifact_location, lifecycle_stage) of an experiment, or None."""
        e = t.experiments.c
        return conn.execute(
            sa.select(e.name, e.artifact_location, e.lifecycle_stage).where(e.experiment_id == experiment_id)
        ).first()

    def experiment(self, conn: sa.Connection, experiment_id: int | None = None,
                   name: str | None = None) -> Experiment | None:
        """Return the experiment with this id (or else this name) and its tags, or None."""
        e = t.experiments.c
        where = e.experiment_id == experiment_id if experiment_id is not None else e.name == name
        row = conn.execute(sa.select(*(e[c] for c in EXPERIMENT_COLUMNS)).where(where)).first()
        if row is None:
            return None
        et = t.experiment_tags.c
        tags = conn.execute(sa.select(et.key, et.value).where(et.experiment_id == row[0])).all()
        return experiment(row, {key: value for key, value in tags})

    def insert_experiment(self, conn: sa.Connection, name: str, artifact_location: str, now: int) -> int:
        """Insert an active experiment and return its id."""
        result = conn.execute(t.experiments.insert().values(
            name=name, artifact_location=artifact_location, lifecycle_stage="active",
            creation_time=now, last_update_time=now,
        ))
        return int(result.inserted_primary_key[0])

    def set_artifact_location(self, conn: sa.Connection, experiment_id: int, location: str) -> None:
        """Set an experiment's artifact location."""
        e = t.experiments
        conn.execute(e.update().where(e.c.experiment_id == experiment_id).values(artifact_location=location))

    def insert_run(self, conn: sa.Connection, row: Sequence[Any]) -> None:
        """Insert a run given in ``lite.RUN_COLUMNS`` order."""
        conn.execute(t.runs.insert().values(dict(zip(RUN_COLUMNS, row))))

    def run_stage(self, conn: sa.Connection, run_id: str, *, lock: bool = False) -> str | None:
        """Return a run's lifecycle stage, or None if there is no such run.

        With ``lock``, the run's row stays locked until the transaction ends (``SELECT ... FOR
        UPDATE``; ``FOR NO KEY UPDATE`` on PostgreSQL, which still lets others insert rows that
        refer to the run), so writers that lock it take turns. SQLite needs no row lock: a write
        transaction holds the database's write lock.
        """
        query = sa.select(t.runs.c.lifecycle_stage).where(t.runs.c.run_uuid == run_id)
        if lock:
            query = query.with_for_update(key_share=True)
        return conn.execute(query).scalar()  # type: ignore[no-any-return]

    def tag_value(self, conn: sa.Connection, run_id: str, key: str) -> str | None:
        """Return the value of one run tag, or None if the run has no such tag."""
        return conn.execute(  # type: ignore[no-any-return]
            sa.select(t.tags.c.value).where(t.tags.c.run_uuid == run_id, t.tags.c.key == key)
        ).scalar()

    def update_run(self, conn: sa.Connection, run_id: str, values: dict[str, Any]) -> RunInfo | None:
        """Set columns of a run (status, end_time, name, lifecycle_stage, deleted_time); return its
        new RunInfo, or None if there is no such run."""
        if self.run_stage(conn, run_id) is None:
            return None
        if values:
            conn.execute(t.runs.update().where(t.runs.c.run_uuid == run_id).values(**values))
        columns = [t.runs.c[name] for name in RUN_COLUMNS]
        return run_info(conn.execute(sa.select(*columns).where(t.runs.c.run_uuid == run_id)).one())

    def existing_runs(self, conn: sa.Connection, run_ids: Sequence[str]) -> set[str]:
        """Return those of ``run_ids`` that exist."""
        return set(conn.execute(sa.select(t.runs.c.run_uuid).where(t.runs.c.run_uuid.in_(list(run_ids)))).scalars())

    def journal_position_of(self, conn: sa.Connection, journal_id: str) -> int:
        """Return how far a metric journal has been copied (0 if never)."""
        found = conn.execute(sa.select(t.journals.c.position).where(t.journals.c.journal_id == journal_id)).scalar()
        return int(found or 0)

    def delete_journal(self, conn: sa.Connection, journal_id: str) -> None:
        """Forget a metric journal's position (its file is gone)."""
        conn.execute(t.journals.delete().where(t.journals.c.journal_id == journal_id))
