"""The verification table closing an import: counts per entity and a digest per run, source vs destination.

What the destination holds is read as ``held.describe`` answers it (what a server's compare
endpoint answers a push), and :func:`rows` turns it into the table for both. A run's digest covers
its name, user, status, times and lifecycle stage, its params and tags, and the number of points of
each metric series. The points themselves are compared through a hash of
(step, timestamp, value) per series (``point_hash.py``) for sources that compute it (MLflow's
databases, mlruns folders and servers): the source hashes each metric key over all runs (on
SQLite, one SQL scan of MLflow's primary-key index), the destination each series from its stored
arrays with numpy, both at once in two threads; only for a key whose hashes differ are the
source's series hashed one by one, to name the runs. Counts cover only what the import concerns
(the source's runs, experiments and models), so a destination that holds more history still verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .held import describe, run_digest, source_digest, stored_logged_model, stored_model
from .source import HasLoggedModels, HasMetricHashes

if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter

    from .source import Source, SourceExperiment, SourceLoggedModel, SourceModel, SourceRun

__all__ = ["Verification", "verify", "rows", "run_digest"]


@dataclass
class Verification:
    """Rows ``(entity, source count, destination count)`` and the runs whose digests differ."""

    rows: list[tuple[str, int, int]] = field(default_factory=list)
    runs_checked: int = 0
    mismatched_runs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every count and every run digest matches."""
        return not self.mismatched_runs and all(s == d for _, s, d in self.rows)

    def table(self) -> str:
        """Return the table as aligned text."""
        lines = [f"{'entity':<18}{'source':>12}{'destination':>14}  check"]
        for name, src, dst in self.rows:
            lines.append(f"{name:<18}{src:>12,}{dst:>14,}  {'ok' if src == dst else 'DIFFERS'}")
        matched = self.runs_checked - len(self.mismatched_runs)
        lines.append(f"{'run digests':<18}{self.runs_checked:>12,}{matched:>14,}  "
                     f"{'ok' if not self.mismatched_runs else 'DIFFERS: ' + ', '.join(self.mismatched_runs[:5])}")
        return "\n".join(lines)


def rows(result: Verification, experiments: list[SourceExperiment], runs: list[SourceRun],
         series_of: dict[str, dict[str, int]], models: list[SourceModel], logged: list[SourceLoggedModel],
         held: dict[str, Any], manifests: dict[str, dict[str, int]] | None = None,
         values: dict[tuple[str, str], int] | None = None) -> None:
    """Add the rows comparing the source's entities with what the destination holds (``held.describe``'s
    answer) and check every run's digest. An experiment, registered model or logged model counts as
    held when the destination has it with nothing an import would still change (tags, stage, aliases...).

    Args:
        result: The verification to fill.
        experiments: The source's experiments concerned.
        runs: The source's runs concerned.
        series_of: Run id -> metric key -> point count, in the source.
        models: The source's registered models concerned.
        logged: The source's logged models concerned.
        held: What the destination holds of them.
        manifests: Run id -> artifact file -> size, in the source; adds the ``artifact files`` row.
        values: (run id, key) -> point hash, in the source; with the destination's (``held``'s runs'
            ``values``) adds the ``metric values`` row and marks the runs whose points differ.
    """
    from .plan import experiment_changes
    from .registry import DELETED_STAGE, model_pending

    stored = held.get("runs", {})
    here = [r for r in runs if r.run_id in stored]
    names = {e.name: e for e in experiments}
    states = held.get("experiment_states")
    result.rows.append(("experiments", len(names), sum(
        1 for name, e in names.items() if name in held.get("experiments", {})
        and (states is None or not any(experiment_changes(e, states[name]["lifecycle_stage"], states[name]["tags"]))))))
    result.rows.append(("runs", len(runs), len(here)))
    result.rows.append(("params", sum(len(r.params) for r in runs), sum(stored[r.run_id]["params"] for r in here)))
    result.rows.append(("tags", sum(len(r.tags) for r in runs), sum(stored[r.run_id]["tags"] for r in here)))
    result.rows.append(("metric points", sum(sum(series_of.get(r.run_id, {}).values()) for r in runs),
                        sum(stored[r.run_id]["points"] for r in here)))
    if manifests is not None:
        files = [(r.run_id, rel, size) for r in runs for rel, size in manifests.get(r.run_id, {}).items()]
        result.rows.append(("artifact files", len(files), sum(
            1 for run_id, rel, size in files if (stored.get(run_id, {}).get("artifacts") or {}).get(rel) == size)))
    result.rows.append(("registered models", len(models), _held_models(models, held, model_pending)))
    live = [(m.name, v.version) for m in models for v in m.versions if v.current_stage != DELETED_STAGE]
    versions = held.get("models", {})
    result.rows.append(("model versions", len(live), sum(1 for name, n in live if n in versions.get(name, []))))
    result.rows.append(("logged models", len(logged), _held_logged_models(logged, held)))
    differ = _values_row(result, runs, values, stored) if values is not None else set()
    for run in runs:
        result.runs_checked += 1
        if (stored.get(run.run_id, {}).get("digest") != source_digest(run, series_of.get(run.run_id, {}))
                or run.run_id in differ):
            result.mismatched_runs.append(run.run_id)


def _values_row(result: Verification, runs: list[SourceRun], values: dict[tuple[str, str], int],
                stored: dict[str, Any]) -> set[str]:
    """Add the ``metric values`` row (series in the source, series whose point hash the destination
    shares) from ``held``'s per-run ``values``; return the runs that differ. None without them (an
    older server): no row."""
    wanted = {r.run_id for r in runs}
    if not all("values" in stored[r] for r in wanted if r in stored):
        return set()
    mine = {series: h for series, h in values.items() if series[0] in wanted}
    differ = {run_id for (run_id, key), h in mine.items() if stored.get(run_id, {}).get("values", {}).get(key) != h}
    same = sum(1 for (run_id, key), h in mine.items() if stored.get(run_id, {}).get("values", {}).get(key) == h)
    result.rows.append(("metric values", len(mine), same))
    return differ


def _held_models(models: list[SourceModel], held: dict[str, Any], pending: Any) -> int:
    registry = held.get("registry")
    if registry is None:  # an older server: presence only
        return sum(1 for m in models if m.name in held.get("models", {}))
    return sum(1 for m in models if m.name in registry and not pending(m, stored_model(registry[m.name])))


def _held_logged_models(logged: list[SourceLoggedModel], held: dict[str, Any]) -> int:
    from .logged_models import logged_model_pending

    found = held.get("logged_models", {})
    return sum(1 for m in logged if m.model_id in found
               and not logged_model_pending(m, stored_logged_model(found[m.model_id])))


def verify(source: Source, dest: BulkImporter, runs: list[SourceRun] | None = None,
           counts: dict[tuple[str, str], int] | None = None) -> Verification:
    """Compare the source with the destination after an import.

    Args:
        source: The source imported.
        dest: The destination's bulk writer.
        runs: The source's runs, if already read (else read again).
        counts: The source's point counts per series, if already read.
    """
    runs = source.runs() if runs is None else runs
    counts = source.metric_counts() if counts is None else counts
    experiments, models = source.experiments(), source.models()
    logged = source.logged_models() if isinstance(source, HasLoggedModels) else []
    run_ids = {r.run_id for r in runs}
    held = describe(dest, [r.run_id for r in runs], [e.name for e in experiments], [m.name for m in models],
                    [m.model_id for m in logged], read_all=True)
    series_of: dict[str, dict[str, int]] = {}
    for (run_id, key), n in counts.items():
        series_of.setdefault(run_id, {})[key] = n
    result = Verification()
    rows(result, experiments, runs, series_of, models, logged, held)
    if isinstance(source, HasMetricHashes):
        bad = _compare_values(source, dest, run_ids, sum(1 for r, _k in counts if r in run_ids), result)
        result.mismatched_runs += [r.run_id for r in runs if r.run_id in bad and r.run_id not in result.mismatched_runs]
    return result


def _compare_values(source: HasMetricHashes, dest: BulkImporter, run_ids: set[str], series: int,
                    result: Verification) -> set[str]:
    """Compare the point hashes of every series (``series`` in the source); add the ``metric values`` row
    (series in the source, series whose points match); return the runs that differ."""
    from concurrent.futures import ThreadPoolExecutor

    from .point_hash import by_key

    with ThreadPoolExecutor(1, thread_name_prefix="verify-source") as pool:
        mine_soon = pool.submit(source.key_hashes)
        theirs = destination_hashes(dest, run_ids)
        mine = mine_soon.result()
    bad: set[str] = set()
    differing = 0
    their_keys = by_key(theirs)
    for key in sorted(set(mine) | set(their_keys)):
        if mine.get(key, 0) == their_keys.get(key, 0):
            continue
        per_run = source.series_hashes(key)
        for run_id in set(per_run) | {r for r, k in theirs if k == key}:
            if per_run.get(run_id) != theirs.get((run_id, key)):
                differing += 1
                bad.add(run_id)
    result.rows.append(("metric values", series, max(series - differing, 0)))
    return bad


def destination_hashes(dest: BulkImporter, run_ids: set[str], scoped: bool = False) -> dict[tuple[str, str], int]:
    """Return the point hash of every stored series of these runs, from the stored arrays (1,000 chunks a fetch).

    Args:
        dest: The store's bulk reader.
        run_ids: The runs wanted.
        scoped: Read these runs' chunks only (500 runs a query), not every chunk of the store:
            for a few runs of a large store (a server answering a push).
    """
    import sqlalchemy as sa

    from fitscribe.backends.sql import tables as t

    from .point_hash import P, chunk_hashes

    c = t.metric_chunks.c
    found: dict[tuple[str, str], int] = {}
    query = sa.select(c.run_uuid, c.key, c.step_blob, c.timestamp_blob, c.value_blob)
    ids = sorted(run_ids)
    queries = [query.where(c.run_uuid.in_(ids[i:i + 500])) for i in range(0, len(ids), 500)] if scoped else [query]
    with dest.store.sql_read() as w:
        for one in queries:
            rows = w.sa.execution_options(stream_results=True).execute(one)
            while batch := rows.fetchmany(1000):
                part = [r for r in batch if r[0] in run_ids]
                for row, h in zip(part, chunk_hashes(part)):
                    found[(row[0], row[1])] = (found.get((row[0], row[1]), 0) + h) % P
    return found
