"""The verification table closing an import: counts per entity and a digest per run, source vs destination.

A run's digest covers its name, user, status, times and lifecycle stage, its params and tags, and
the number of points of each metric series. The points themselves are compared through a hash of
(step, timestamp, value) per series (``point_hash.py``) for sources that compute it (MLflow's
databases, mlruns folders and servers): the source hashes each metric key over all runs (on
SQLite, one SQL scan of MLflow's primary-key index), the destination each series from its stored
arrays with numpy, both at once in two threads; only for a key whose hashes differ are the
source's series hashed one by one, to name the runs. Counts cover only what the import concerns
(the source's runs, experiments and models), so a destination that holds more history still verifies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .source import HasLoggedModels, HasMetricHashes

if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter

    from .source import Source, SourceRun

__all__ = ["Verification", "verify", "run_digest"]


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


def run_digest(info: tuple[Any, ...], params: dict[str, str], tags: dict[str, str], series: dict[str, int]) -> str:
    """Return the sha256 of a run's fields, params, tags and point count per metric key."""
    body = json.dumps([list(info), sorted(params.items()), sorted(tags.items()), sorted(series.items())],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _source_info(run: SourceRun) -> tuple[Any, ...]:
    return (run.name, run.user_id, run.status, run.start_time, run.end_time, run.lifecycle_stage)


def verify(source: Source, dest: BulkImporter, runs: list[SourceRun] | None = None,
           counts: dict[tuple[str, str], int] | None = None) -> Verification:
    """Compare the source with the destination after an import.

    Args:
        source: The source imported.
        dest: The destination's bulk writer.
        runs: The source's runs, if already read (else read again).
        counts: The source's point counts per series, if already read.
    """
    state = dest.state()
    runs = source.runs() if runs is None else runs
    counts = source.metric_counts() if counts is None else counts
    result = Verification()
    run_ids = {r.run_id for r in runs}
    stored_runs = [state.runs[r] for r in run_ids if r in state.runs]
    names = {e.name for e in source.experiments()}
    result.rows.append(("experiments", len(names), sum(1 for row in state.experiments.values() if row[0] in names)))
    result.rows.append(("runs", len(runs), len(stored_runs)))
    result.rows.append(("params", sum(len(r.params) for r in runs),
                        sum(len(state.params.get(r, {})) for r in run_ids)))
    result.rows.append(("tags", sum(len(r.tags) for r in runs), sum(len(state.tags.get(r, {})) for r in run_ids)))
    result.rows.append(("metric points", sum(counts.values()),
                        sum(n for (r, _), n in state.metric_counts.items() if r in run_ids)))
    models = source.models()
    stored_models = dest.models()
    result.rows.append(("registered models", len(models), sum(1 for m in models if m.name in stored_models)))
    live = [(m.name, v.version) for m in models for v in m.versions if v.current_stage != "Deleted_Internal"]
    result.rows.append(("model versions", len(live),
                        sum(1 for name, n in live if n in stored_models.get(name, {}).get("versions", {}))))
    from .logged_models import count_logged_models

    if isinstance(source, HasLoggedModels):
        result.rows.append(("logged models", *count_logged_models(source, dest.store)))
    series_of: dict[str, dict[str, int]] = {}
    for (run_id, key), n in counts.items():
        series_of.setdefault(run_id, {})[key] = n
    dest_series: dict[str, dict[str, int]] = {}
    for (run_id, key), n in state.metric_counts.items():
        dest_series.setdefault(run_id, {})[key] = n
    bad_series = set()
    if isinstance(source, HasMetricHashes):
        bad_series = _compare_values(source, dest, run_ids, sum(1 for r, _k in counts if r in run_ids), result)
    for run in runs:
        result.runs_checked += 1
        stored = state.runs.get(run.run_id)
        mine = run_digest(_source_info(run), run.params, run.tags, series_of.get(run.run_id, {}))
        theirs = None if stored is None else run_digest(
            tuple(stored[c] for c in ("name", "user_id", "status", "start_time", "end_time", "lifecycle_stage")),
            state.params.get(run.run_id, {}), state.tags.get(run.run_id, {}), dest_series.get(run.run_id, {}))
        if mine != theirs or run.run_id in bad_series:
            result.mismatched_runs.append(run.run_id)
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


def destination_hashes(dest: BulkImporter, run_ids: set[str]) -> dict[tuple[str, str], int]:
    """Return the point hash of every stored series of these runs, from the stored arrays (1,000 chunks a fetch)."""
    import sqlalchemy as sa

    from fitscribe.backends.sql import tables as t

    from .point_hash import P, chunk_hashes

    c = t.metric_chunks.c
    found: dict[tuple[str, str], int] = {}
    query = sa.select(c.run_uuid, c.key, c.step_blob, c.timestamp_blob, c.value_blob)
    with dest.store.sql_read() as w:
        rows = w.sa.execution_options(stream_results=True).execute(query)
        while batch := rows.fetchmany(1000):
            part = [r for r in batch if r[0] in run_ids]
            for row, h in zip(part, chunk_hashes(part)):
                found[(row[0], row[1])] = (found.get((row[0], row[1]), 0) + h) % P
    return found
