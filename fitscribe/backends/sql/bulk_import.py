"""Writing imported history into a SQL store in large transactions (the importer's destination side).

:class:`BulkImporter` is what ``fitscribe.migrate`` calls: it reads the destination's state in a few
queries and writes batches of runs with their params, tags, inputs and metric points (packed as
every write is, rows.py) in one transaction each, so an import killed midway leaves whole runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import sqlalchemy as sa

from . import tables as t
from .chunks import decode_chunks
from .connection import in_chunks
from .inputs import write_inputs
from .rows import RUN_COLUMNS, series_rows

if TYPE_CHECKING:
    from fitscribe.entities import DatasetInput

    from .store import SqlTrackingStore

__all__ = ["BulkImporter", "RunBatch", "DestinationState"]

_MAX_INT32 = 2**31 - 1


@dataclass
class RunBatch:
    """What one transaction writes: new runs (rows in ``RUN_COLUMNS`` order plus ``deleted_time``),
    changed columns of existing runs, params and tags as ``(run_id, key, value)``, dataset inputs
    per run, and metric points as series ``(run_id, key, values, timestamps, steps)``."""

    new_runs: list[tuple[Any, ...]] = field(default_factory=list)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: list[tuple[str, str, str]] = field(default_factory=list)
    tags: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: list[tuple[int, str, Sequence[DatasetInput]]] = field(default_factory=list)
    points: list[tuple[str, str, list[float], list[int], list[int]]] = field(default_factory=list)


@dataclass
class DestinationState:
    """The destination as the importer compares it: experiments, runs, params, tags, point counts."""

    experiments: dict[int, tuple[str, str, str]]  # id -> (name, artifact_location, lifecycle_stage)
    experiment_tags: dict[int, dict[str, str]]
    runs: dict[str, dict[str, Any]]
    params: dict[str, dict[str, str]]
    tags: dict[str, dict[str, str]]
    metric_counts: dict[tuple[str, str], int]

    def experiment_by_name(self, name: str) -> int | None:
        """Return the id of the experiment with this name, or None."""
        return next((i for i, row in self.experiments.items() if row[0] == name), None)


class BulkImporter:
    """Bulk writes of imported entities into a SQL tracking store.

    Args:
        store: The destination store (its engine and transactions are used; nothing is cached
            across calls but the dialect).
    """

    def __init__(self, store: SqlTrackingStore) -> None:
        self.store = store

    def state(self, run_ids: Sequence[str] | None = None) -> DestinationState:
        """Read what the destination holds, in a handful of queries: every experiment, and the runs,
        params, tags and point counts of ``run_ids`` only if given (a small bundle's import then
        costs the same however much the store holds)."""
        with self.store.sql_read() as w:
            conn = w.sa
            e = t.experiments.c
            experiments = {int(r[0]): (r[1], r[2], r[3]) for r in conn.execute(
                sa.select(e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage))}
            exp_tags: dict[int, dict[str, str]] = {}
            for exp_id, key, value in conn.execute(sa.select(t.experiment_tags.c.experiment_id,
                                                             t.experiment_tags.c.key, t.experiment_tags.c.value)):
                exp_tags.setdefault(int(exp_id), {})[key] = value
            columns = (*RUN_COLUMNS, "deleted_time")
            select_runs = sa.select(*(t.runs.c[c] for c in columns))
            runs = {r[0]: dict(zip(columns, r)) for r in _rows(conn, select_runs, t.runs.c.run_uuid, run_ids)}
            return DestinationState(experiments, exp_tags, runs, _key_values(conn, t.params, run_ids),
                                    _key_values(conn, t.tags, run_ids), _metric_counts(conn, run_ids))

    def experiment_rows(self) -> list[tuple[Any, ...]]:
        """Return every experiment as (id, name, artifact_location, lifecycle_stage, creation_time,
        last_update_time), for exports."""
        e = t.experiments.c
        with self.store.sql_read(flush=False) as w:
            return [tuple(r) for r in w.sa.execute(sa.select(
                e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time,
                e.last_update_time).order_by(e.experiment_id))]

    def run_inputs(self) -> dict[str, list[tuple[Any, ...]]]:
        """Return run id -> [(dataset_uuid, name, digest, source_type, source, schema, profile,
        {input tag: value})], for exports."""
        d, i, it = t.datasets.c, t.inputs.c, t.input_tags.c
        found: dict[str, list[tuple[Any, ...]]] = {}
        with self.store.sql_read(flush=False) as w:
            tags: dict[tuple[str, str], dict[str, str]] = {}
            for run_id, dataset_id, key, value in w.sa.execute(sa.select(it.run_uuid, it.dataset_uuid, it.key, it.value)):
                tags.setdefault((run_id, dataset_id), {})[key] = value
            for row in w.sa.execute(sa.select(i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source,
                                              d.schema, d.profile).join(t.datasets, d.dataset_uuid == i.dataset_uuid)):
                found.setdefault(row[0], []).append((*row[1:], tags.get((row[0], row[1]), {})))
        return found

    def add_experiment(self, name: str, artifact_location: str, lifecycle_stage: str, creation_time: int,
                       last_update_time: int, wanted_id: int | None) -> int:
        """Insert an experiment, with ``wanted_id`` if given (the caller checked it is free); return its id.

        An empty ``artifact_location`` becomes ``<store artifact root>/<id>``.
        """
        from fitscribe.uri import join_uri

        values = dict(name=name, artifact_location=artifact_location or "", lifecycle_stage=lifecycle_stage,
                      creation_time=creation_time, last_update_time=last_update_time)
        with self.store.sql_write() as w:
            conn = w.sa
            if wanted_id is not None and 0 <= wanted_id <= _MAX_INT32:
                conn.execute(t.experiments.insert().values(experiment_id=wanted_id, **values))
                new_id = wanted_id
                if conn.dialect.name == "postgresql":  # explicit ids do not advance the sequence
                    conn.execute(sa.text(
                        "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                        "(SELECT MAX(experiment_id) FROM experiments))"))
            else:
                new_id = int(conn.execute(t.experiments.insert().values(**values)).inserted_primary_key[0])
            if not artifact_location:
                w.set_artifact_location(new_id, join_uri(self.store.artifact_root, str(new_id)))
        return new_id

    def update_experiment(self, experiment_id: int, lifecycle_stage: str | None, tags: dict[str, str]) -> None:
        """Set an experiment's lifecycle stage (if given) and insert or replace tags."""
        with self.store.sql_write() as w:
            if lifecycle_stage is not None:
                w.sa.execute(t.experiments.update().where(t.experiments.c.experiment_id == experiment_id)
                             .values(lifecycle_stage=lifecycle_stage))
            w.experiment_tags(experiment_id, tags)

    def write(self, batch: RunBatch) -> None:
        """Write one batch in one transaction (all of it or, if interrupted, none of it)."""
        with self.store.sql_write() as w:
            conn = w.sa
            if batch.new_runs:
                columns = (*RUN_COLUMNS, "deleted_time")
                conn.execute(t.runs.insert(), [dict(zip(columns, row)) for row in batch.new_runs])
            for run_id, values in batch.updates.items():
                conn.execute(t.runs.update().where(t.runs.c.run_uuid == run_id).values(**values))
            w.conn.run_many("insert_param", batch.params)  # each does nothing for no rows
            w.conn.run_many("upsert_tag", batch.tags)
            for experiment_id, run_id, items in batch.inputs:
                write_inputs(conn, experiment_id, run_id, items)
            chunk_rows, latest = series_rows(batch.points)
            w.conn.run_many("insert_chunk", chunk_rows)
            w.conn.run_many("upsert_latest", latest)

    def series(self, run_id: str, key: str) -> tuple[list[float], list[int], list[int]]:
        """Return the stored points of one series as (values, timestamps, steps), by step then timestamp."""
        self.store.flush()
        with self.store.read() as w:
            return decode_chunks(w.metric_chunks(run_id, key))

    def series_of_runs(self, run_ids: Sequence[str]) -> Iterator[tuple[str, str, list[float], list[int], list[int]]]:
        """Yield every series of these runs as (run_id, key, values, timestamps, steps), by step then
        timestamp, reading their chunks in one query per 50 runs (for exports)."""
        c = t.metric_chunks.c
        for start in range(0, len(run_ids), 50):
            part = list(run_ids[start:start + 50])
            with self.store.sql_read() as w:
                rows = w.sa.execute(sa.select(c.run_uuid, c.key, c.step_blob, c.timestamp_blob, c.value_blob)
                                    .where(c.run_uuid.in_(part)).order_by(c.run_uuid, c.key, c.id)).all()
            for (run_id, key), chunks in groupby(rows, key=itemgetter(0, 1)):
                yield (run_id, key, *decode_chunks(row[2:] for row in chunks))

    def models(self) -> dict[str, dict[str, Any]]:
        """Return the registered models: name -> {description, next_version, tags, aliases,
        versions: {n: row dict}}."""
        found: dict[str, dict[str, Any]] = {}
        with self.store.sql_read(flush=False) as w:
            conn = w.sa
            rm = t.registered_models.c
            for name, description, next_version, created, updated in conn.execute(sa.select(
                    rm.name, rm.description, rm.next_version, rm.creation_time, rm.last_updated_time)):
                found[name] = {"description": description, "next_version": int(next_version), "tags": {},
                               "aliases": {}, "versions": {}, "creation_time": created, "last_updated_time": updated}
            for name, key, value in conn.execute(sa.select(t.registered_model_tags)):
                found[name]["tags"][key] = value
            for name, alias, version in conn.execute(sa.select(t.registered_model_aliases)):
                found[name]["aliases"][alias] = int(version)
            for row in conn.execute(sa.select(t.model_versions)):
                found[row.name]["versions"][int(row.version)] = {**row._mapping, "tags": {}}
            for name, version, key, value in conn.execute(sa.select(t.model_version_tags)):
                found[name]["versions"][int(version)]["tags"][key] = value
        return found

    def write_model(self, model: dict[str, Any], versions: list[dict[str, Any]], tags: dict[str, str],
                    aliases: dict[str, int], version_tags: list[tuple[int, str, str]], exists: bool,
                    next_version: int = 1) -> None:
        """Insert or update a registered model, insert its new versions (stage and fields as given),
        then insert or replace its tags, aliases and version tags, in one transaction.

        The model's next version number becomes at least ``next_version`` (the source's, counting
        its deleted versions) and past every stored version, so numbers are never reused."""
        rm = t.registered_models
        with self.store.sql_write() as w:
            conn = w.sa
            if exists:
                conn.execute(rm.update().where(rm.c.name == model["name"]).values(
                    description=model["description"], last_updated_time=model["last_updated_time"]))
            else:
                conn.execute(rm.insert().values(**model, next_version=1))
            if versions:
                conn.execute(t.model_versions.insert(), versions)
            mv = t.model_versions
            top = conn.execute(sa.select(sa.func.max(mv.c.version)).where(mv.c.name == model["name"])).scalar()
            current = conn.execute(sa.select(rm.c.next_version).where(rm.c.name == model["name"])).scalar_one()
            wanted = max(int(current), int(top or 0) + 1, next_version)
            if wanted != current:
                conn.execute(rm.update().where(rm.c.name == model["name"]).values(next_version=wanted))
            stmts = self.store.statements
            if tags:
                conn.execute(stmts.upsert(t.registered_model_tags, ["value"]),
                             [{"name": model["name"], "key": k, "value": v} for k, v in tags.items()])
            if aliases:
                conn.execute(stmts.upsert(t.registered_model_aliases, ["version"]),
                             [{"name": model["name"], "alias": a, "version": n} for a, n in aliases.items()])
            if version_tags:
                conn.execute(stmts.upsert(t.model_version_tags, ["value"]),
                             [{"name": model["name"], "version": n, "key": k, "value": v} for n, k, v in version_tags])

    def update_version(self, name: str, version: int, values: dict[str, Any]) -> None:
        """Set columns of an existing model version (stage, description...)."""
        mv = t.model_versions
        with self.store.sql_write() as w:
            w.sa.execute(mv.update().where(mv.c.name == name, mv.c.version == version).values(**values))


def _rows(conn: sa.Connection, query: Any, column: Any, run_ids: Sequence[str] | None) -> Iterable[Any]:
    """Run ``query``, or, given run ids, run it on parts of them (``column IN (...)``)."""
    if run_ids is None:
        return conn.execute(query)
    return [row for part in in_chunks(list(run_ids)) for row in conn.execute(query.where(column.in_(part)))]


def _key_values(conn: sa.Connection, table: sa.Table, run_ids: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    query = sa.select(table.c.run_uuid, table.c.key, table.c.value)
    for run_id, key, value in _rows(conn, query, table.c.run_uuid, run_ids):
        found.setdefault(run_id, {})[key] = value
    return found


def _metric_counts(conn: sa.Connection, run_ids: Sequence[str] | None = None) -> dict[tuple[str, str], int]:
    c = t.metric_chunks.c
    query = sa.select(c.run_uuid, c.key, sa.func.sum(c.points)).group_by(c.run_uuid, c.key)
    return {(run_id, key): int(n) for run_id, key, n in _rows(conn, query, c.run_uuid, run_ids)}
