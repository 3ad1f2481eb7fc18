"""Metric history as packed chunks: ``metric_chunks`` replaces the one-row-per-point ``metrics``.

Existing points are copied in logging order (by ``metrics.id``), at most ``MAX_POINTS_PER_CHUNK``
per row and series, with NaN and +-inf restored from the ``special`` code; then ``metrics`` is
dropped. The downgrade expands the chunks back into rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.chunks import MAX_POINTS_PER_CHUNK, pack_floats, pack_ints, unpack_floats, unpack_ints
from fitscribe.backends.sql.tables import BigId, Blob, Double, Str

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PAGE = 20_000  # rows read per query
_BUFFERED = 500_000  # points held in memory before every buffered series is written out
_MAX_DOUBLE = 1.7976931348623157e308


def _metrics_table() -> sa.Table:
    return sa.Table(
        "metrics", sa.MetaData(),
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", Double, nullable=True),
        sa.Column("special", sa.SmallInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
    )


def _chunks_table() -> sa.Table:
    return sa.Table(
        "metric_chunks", sa.MetaData(),
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("step_blob", Blob, nullable=False),
        sa.Column("timestamp_blob", Blob, nullable=False),
        sa.Column("value_blob", Blob, nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("step_blob", Blob, nullable=False),
        sa.Column("timestamp_blob", Blob, nullable=False),
        sa.Column("value_blob", Blob, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_chunks"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_metric_chunks_run_uuid_runs"
        ),
    )
    op.create_index("ix_metric_chunks_run_uuid_key_id", "metric_chunks", ["run_uuid", "key", "id"])
    _copy_points_into_chunks(op.get_bind())
    op.drop_table("metrics")  # with its index (MySQL refuses to drop an index a foreign key uses)


def _copy_points_into_chunks(conn: sa.Connection) -> None:
    metrics, chunks = _metrics_table(), _chunks_table()
    c = metrics.c
    buffers: dict[tuple[str, str], list[list[Any]]] = {}
    buffered = 0
    last_id: Any = None
    while True:
        query = sa.select(c.id, c.run_uuid, c.key, c.value, c.special, c.timestamp, c.step).order_by(c.id).limit(_PAGE)
        if last_id is not None:
            query = query.where(c.id > last_id)
        rows = conn.execute(query).all()
        if not rows:
            break
        last_id = rows[-1][0]
        ready: list[tuple[tuple[str, str], list[list[Any]]]] = []
        for _, run_uuid, key, value, special, timestamp, step in rows:
            series = buffers.get((run_uuid, key))
            if series is None:
                series = buffers[(run_uuid, key)] = [[], [], []]
            series[0].append(_decode(value, special))
            series[1].append(int(timestamp))
            series[2].append(int(step))
            if len(series[0]) >= MAX_POINTS_PER_CHUNK:
                ready.append(((run_uuid, key), buffers.pop((run_uuid, key))))
        buffered += len(rows)
        if buffered >= _BUFFERED:
            ready += buffers.items()
            buffers = {}
            buffered = 0
        _write_chunks(conn, chunks, ready)
    _write_chunks(conn, chunks, list(buffers.items()))


def _decode(value: float | None, special: int) -> float:
    if special == 0 and value is not None:
        return float(value)
    return {2: math.inf, 3: -math.inf}.get(special, math.nan)


def _write_chunks(conn: sa.Connection, chunks: sa.Table, series: list[tuple[tuple[str, str], list[list[Any]]]]) -> None:
    rows = [
        {"run_uuid": run_uuid, "key": key, "points": len(values), "min_step": min(steps), "max_step": max(steps),
         "step_blob": pack_ints(steps), "timestamp_blob": pack_ints(timestamps), "value_blob": pack_floats(values)}
        for (run_uuid, key), (values, timestamps, steps) in series
    ]
    for start in range(0, len(rows), 500):
        conn.execute(chunks.insert(), rows[start : start + 500])


def downgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", Double, nullable=True),
        sa.Column("special", sa.SmallInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_metrics_run_uuid_runs"
        ),
    )
    op.create_index("ix_metrics_run_uuid_key_step", "metrics", ["run_uuid", "key", "step", "timestamp"])
    conn = op.get_bind()
    metrics, chunks = _metrics_table(), _chunks_table()
    k = chunks.c
    last_id: Any = None
    while True:
        query = sa.select(k.id, k.run_uuid, k.key, k.step_blob, k.timestamp_blob, k.value_blob).order_by(k.id).limit(100)
        if last_id is not None:
            query = query.where(k.id > last_id)
        found = conn.execute(query).all()
        if not found:
            break
        last_id = found[-1][0]
        rows = []
        for _, run_uuid, key, step_blob, timestamp_blob, value_blob in found:
            for step, timestamp, value in zip(unpack_ints(step_blob), unpack_ints(timestamp_blob), unpack_floats(value_blob)):
                stored, special = _encode(value)
                rows.append({"run_uuid": run_uuid, "key": key, "value": stored, "special": special,
                             "timestamp": timestamp, "step": step})
        for start in range(0, len(rows), 5000):
            conn.execute(metrics.insert(), rows[start : start + 5000])
    op.drop_table("metric_chunks")


def _encode(value: float) -> tuple[float | None, int]:
    if math.isnan(value):
        return None, 1
    if math.isinf(value):
        return (_MAX_DOUBLE, 2) if value > 0 else (-_MAX_DOUBLE, 3)
    return value, 0
