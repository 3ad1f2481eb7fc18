"""Queries that turn rows into entities: experiments, runs (hydrated in bulk), metric histories."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa

from fitscribe.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    MetricSummary,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
)

from . import tables as t
from .connection import in_chunks
from .rows import decode_bound, decode_value

__all__ = ["RunReader"]


class RunReader:
    """Reads entities; stateless apart from prebuilt statements."""

    def experiments(
        self, conn: sa.Connection, where: Any = None, query: sa.Select[Any] | None = None
    ) -> list[Experiment]:
        """Return experiments selected by ``where`` (on the experiments table) or a full query."""
        if query is None:
            query = sa.select(t.experiments).where(where)
        rows = conn.execute(query).all()
        if not rows:
            return []
        ids = [r.experiment_id for r in rows]
        tag_rows = conn.execute(
            sa.select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))
        ).all()
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        for tr in tag_rows:
            tags[tr.experiment_id][tr.key] = tr.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                tags=tags.get(r.experiment_id, {}),
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
            )
            for r in rows
        ]

    def runs(self, conn: sa.Connection, query: sa.Select[Any]) -> list[Run]:
        """Run ``query`` (selecting ``runs`` rows) and return fully hydrated runs, in order."""
        rows = conn.execute(query).all()
        if not rows:
            return []
        ids = [r.run_uuid for r in rows]
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        latest: dict[str, dict[str, float]] = defaultdict(dict)
        summaries: dict[str, dict[str, MetricSummary]] = defaultdict(dict)
        for chunk in in_chunks(ids):
            for run_id, key, value in conn.execute(
                sa.select(t.params.c.run_uuid, t.params.c.key, t.params.c.value).where(t.params.c.run_uuid.in_(chunk))
            ):
                params[run_id][key] = value
            for run_id, key, value in conn.execute(
                sa.select(t.tags.c.run_uuid, t.tags.c.key, t.tags.c.value).where(t.tags.c.run_uuid.in_(chunk))
            ):
                tags[run_id][key] = value
            lm = t.latest_metrics.c
            for row in conn.execute(
                sa.select(lm.run_uuid, lm.key, lm.value, lm.special, lm.step, lm.timestamp, lm.min_value,
                          lm.max_value).where(lm.run_uuid.in_(chunk))
            ):
                value = decode_value(row[2], row[3])
                latest[row[0]][row[1]] = value
                summaries[row[0]][row[1]] = MetricSummary(
                    row[1], value, row[4], row[5], decode_bound(row[6]), decode_bound(row[7])
                )
        inputs = self._inputs(conn, ids)
        return [
            Run(
                self.info(r),
                RunData(latest[r.run_uuid], params[r.run_uuid], tags[r.run_uuid], summaries[r.run_uuid]),
                RunInputs(inputs.get(r.run_uuid, ())),
            )
            for r in rows
        ]

    @staticmethod
    def info(r: Any) -> RunInfo:
        """Return the RunInfo of a ``runs`` row."""
        return RunInfo(
            run_id=r.run_uuid,
            experiment_id=str(r.experiment_id),
            run_name=r.name,
            user_id=r.user_id,
            status=RunStatus(r.status),
            start_time=r.start_time,
            end_time=r.end_time,
            artifact_uri=r.artifact_uri,
            lifecycle_stage=r.lifecycle_stage,
        )

    def _inputs(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, tuple[DatasetInput, ...]]:
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
