"""Rows to entities in bulk: experiments with their tags, runs with params, tags, metrics and inputs."""

from __future__ import annotations

from collections import defaultdict
from operator import itemgetter
from typing import Any, Sequence

import sqlalchemy as sa

from fitscribe.entities import Dataset, DatasetInput, Experiment, InputTag, MetricSummary, Run, RunData, RunInputs

from . import tables as t
from .connection import in_chunks
from .rows import RUN_COLUMNS, decode_bound, decode_value, experiment, run_info

__all__ = ["read_experiments", "read_runs"]

_RUN_ROW = itemgetter(*(t.runs.c.keys().index(column) for column in RUN_COLUMNS))
"""Picks the :data:`~.rows.RUN_COLUMNS` of a ``runs`` row (``SELECT runs.*``), in that order."""


def read_experiments(conn: sa.Connection, query: sa.Select[Any]) -> list[Experiment]:
    """Run ``query`` (selecting ``experiments`` rows) and return the experiments with their tags."""
    rows = conn.execute(query).all()
    if not rows:
        return []
    et = t.experiment_tags.c
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for exp_id, key, value in conn.execute(
        sa.select(et.experiment_id, et.key, et.value).where(et.experiment_id.in_([r.experiment_id for r in rows]))
    ):
        tags[exp_id][key] = value
    return [experiment(r, tags[r.experiment_id]) for r in rows]


def read_runs(conn: sa.Connection, query: sa.Select[Any]) -> list[Run]:
    """Run ``query`` (selecting ``runs`` rows) and return fully hydrated runs, in order."""
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = [r.run_uuid for r in rows]
    params: dict[str, dict[str, str]] = defaultdict(dict)
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    latest: dict[str, dict[str, float]] = defaultdict(dict)
    summaries: dict[str, dict[str, MetricSummary]] = defaultdict(dict)
    lm = t.latest_metrics.c
    for chunk in in_chunks(ids):
        for table, found in ((t.params, params), (t.tags, tags)):
            for run_id, key, value in conn.execute(
                sa.select(table.c.run_uuid, table.c.key, table.c.value).where(table.c.run_uuid.in_(chunk))
            ):
                found[run_id][key] = value
        for row in conn.execute(
            sa.select(lm.run_uuid, lm.key, lm.value, lm.special, lm.step, lm.timestamp, lm.min_value,
                      lm.max_value).where(lm.run_uuid.in_(chunk))
        ):
            value = decode_value(row[2], row[3])
            latest[row[0]][row[1]] = value
            summaries[row[0]][row[1]] = MetricSummary(
                row[1], value, row[4], row[5], decode_bound(row[6]), decode_bound(row[7])
            )
    inputs = _inputs(conn, ids)
    return [
        Run(
            run_info(_RUN_ROW(r)),
            RunData(latest[r.run_uuid], params[r.run_uuid], tags[r.run_uuid], summaries[r.run_uuid]),
            RunInputs(inputs.get(r.run_uuid, ())),
        )
        for r in rows
    ]


def _inputs(conn: sa.Connection, ids: Sequence[str]) -> dict[str, tuple[DatasetInput, ...]]:
    found: dict[str, list[DatasetInput]] = defaultdict(list)
    d, i, it = t.datasets.c, t.inputs.c, t.input_tags.c
    for chunk in in_chunks(ids):
        rows = conn.execute(
            sa.select(i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile)
            .join(t.datasets, d.dataset_uuid == i.dataset_uuid)
            .where(i.run_uuid.in_(chunk))
            .order_by(i.run_uuid, d.name)
        ).all()
        if not rows:
            continue
        tag_map: dict[tuple[str, str], list[InputTag]] = defaultdict(list)
        for tr in conn.execute(sa.select(it.run_uuid, it.dataset_uuid, it.key, it.value).where(it.run_uuid.in_(chunk))):
            tag_map[(tr[0], tr[1])].append(InputTag(tr[2], tr[3]))
        for r in rows:
            dataset = Dataset(r.name, r.digest, r.source_type, r.source, r.schema, r.profile)
            found[r.run_uuid].append(DatasetInput(dataset, tuple(tag_map.get((r.run_uuid, r.dataset_uuid), ()))))
    return {k: tuple(vs) for k, vs in found.items()}
