"""Statements that record metrics, params and tags, per dialect (upserts differ between databases).

Metric histories are written as packed chunks (chunks.py); latest values are encoded as
(value, special) so NaN and +-inf survive everywhere; see tables.py.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from fitscribe.entities import Param, RunTag
from fitscribe.errors import InvalidValueError

from . import tables as t
from .chunks import MAX_POINTS_PER_CHUNK, Batch, group_batches, latest_of, pack_floats, pack_ints

__all__ = [
    "encode_value",
    "decode_value",
    "decode_bound",
    "Writer",
]

_CHUNK_COLUMNS = ("run_uuid", "key", "points", "min_step", "max_step", "step_blob", "timestamp_blob", "value_blob")
_LATEST_COLUMNS = ("run_uuid", "key", "value", "special", "timestamp", "step", "min_value", "max_value")
_SQLITE_CHUNK_INSERT = f"INSERT INTO metric_chunks ({', '.join(_CHUNK_COLUMNS)}) VALUES ({', '.join('?' * len(_CHUNK_COLUMNS))})"


def encode_value(value: float) -> tuple[float | None, int]:
    """Return the (value, special) columns for a float."""
    if math.isnan(value):
        return None, t.SPECIAL_NAN
    if math.isinf(value):
        return (t.MAX_DOUBLE, t.SPECIAL_POS_INF) if value > 0 else (-t.MAX_DOUBLE, t.SPECIAL_NEG_INF)
    return value, t.SPECIAL_FINITE


def decode_value(value: float | None, special: int) -> float:
    """Return the float stored as (value, special)."""
    if special == t.SPECIAL_FINITE and value is not None:
        return float(value)
    if special == t.SPECIAL_POS_INF:
        return math.inf
    if special == t.SPECIAL_NEG_INF:
        return -math.inf
    return math.nan


def _clamp(bound: float | None) -> float | None:
    """Return a min/max as stored: infinities clamped to +-max double (NaN never reaches here)."""
    if bound is None or -t.MAX_DOUBLE <= bound <= t.MAX_DOUBLE:
        return bound
    return t.MAX_DOUBLE if bound > 0 else -t.MAX_DOUBLE


def decode_bound(value: float | None) -> float | None:
    """Return a stored min/max (clamped infinities become infinities again)."""
    if value is None:
        return None
    if value >= t.MAX_DOUBLE:
        return math.inf
    if value <= -t.MAX_DOUBLE:
        return -math.inf
    return float(value)


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
        self._sqlite_latest = _positional_sql(self._latest_upsert, _LATEST_COLUMNS) if dialect == "sqlite" else None

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
        chunk_rows: list[tuple[Any, ...]] = []
        latest: list[tuple[Any, ...]] = []
        size = MAX_POINTS_PER_CHUNK
        for (run_id, key), (values, timestamps, steps) in group_batches(batches).items():
            for start in range(0, len(values), size):
                part = slice(start, start + size)
                vals, times, stps = values[part], timestamps[part], steps[part]
                chunk_rows.append((run_id, key, len(vals), min(stps), max(stps),
                                   pack_ints(stps), pack_ints(times), pack_floats(vals)))
            last, timestamp, step, low, high = latest_of(values, timestamps, steps)
            value, special = (last, t.SPECIAL_FINITE) if -t.MAX_DOUBLE <= last <= t.MAX_DOUBLE else encode_value(last)
            latest.append((run_id, key, value, special, timestamp, step, _clamp(low), _clamp(high)))
        if not chunk_rows:
            return
        if self._sqlite_latest is not None:  # the DBAPI's executemany directly: no per-row processing
            conn.exec_driver_sql(_SQLITE_CHUNK_INSERT, chunk_rows)
            conn.exec_driver_sql(self._sqlite_latest, latest)
        else:
            conn.execute(self._chunk_insert, [dict(zip(_CHUNK_COLUMNS, row)) for row in chunk_rows])
            conn.execute(self._latest_upsert, [dict(zip(_LATEST_COLUMNS, row)) for row in latest])

    def journal_position(self, conn: sa.Connection, journal_id: str, position: int) -> None:
        """Record how far a metric journal has been copied into the database."""
        conn.execute(self._journal_upsert, [{"journal_id": journal_id, "position": position}])

    def params(self, conn: sa.Connection, run_id: str, params: Sequence[Param]) -> None:
        """Insert params; a key logged before with another value is an error naming both values."""
        if not params:
            return
        wanted: dict[str, str] = {}
        for p in params:
            if p.key in wanted and wanted[p.key] != p.value:
                raise InvalidValueError(
                    f"The param {p.key!r} appears twice in one batch with different values "
                    f"{wanted[p.key]!r} and {p.value!r}; params are write-once."
                )
            wanted[p.key] = p.value
        conn.execute(self._param_insert, [{"run_uuid": run_id, "key": k, "value": v} for k, v in wanted.items()])
        stored = conn.execute(
            sa.select(t.params.c.key, t.params.c.value).where(
                t.params.c.run_uuid == run_id, t.params.c.key.in_(list(wanted))
            )
        ).all()
        for key, value in stored:
            if value != wanted[key]:
                raise InvalidValueError(
                    f"The param {key!r} of run {run_id} is already {value!r}; it cannot change to "
                    f"{wanted[key]!r}. Params are write-once: log the new value under another key, "
                    "or start a new run."
                )

    def tags(self, conn: sa.Connection, run_id: str, tags: Iterable[RunTag]) -> None:
        """Insert or replace run tags (the last value for a key in the batch wins)."""
        merged = {tag.key: tag.value for tag in tags}
        if merged:
            conn.execute(self._tag_upsert, [{"run_uuid": run_id, "key": k, "value": v} for k, v in merged.items()])

    def experiment_tags(self, conn: sa.Connection, experiment_id: int, tags: dict[str, str]) -> None:
        """Insert or replace experiment tags."""
        if tags:
            conn.execute(
                self._exp_tag_upsert,
                [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in tags.items()],
            )
