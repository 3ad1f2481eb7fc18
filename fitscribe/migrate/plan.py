"""The import: compare a source with the destination, then write only what is new.

:class:`Importer` runs named steps: experiments (kept ids where free, else mapped), runs in
batches (new runs, changed columns, missing params, changed tags, dataset inputs and the metric
points the destination lacks, one transaction per batch), artifacts (copied file by file, skipping
those already there with the same size), then the model registry. Every step compares before it
writes, so running the import again adds nothing, and an import killed at any moment completes
when re-run. With ``dry_run`` the same comparison is made and counted, and nothing is written.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Iterator

from .source import RemoteArtifacts, Source, SourceExperiment, SourceRun

if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter, DestinationState, RunBatch

__all__ = ["Importer", "ImportReport", "experiment_changes"]

_RUNS_PER_BATCH = 50
_RUN_FIELDS = ("name", "status", "end_time", "lifecycle_stage", "deleted_time")


@dataclass
class ImportReport:
    """What an import added or changed (or would, with ``dry_run``)."""

    dry_run: bool = False
    experiments_added: int = 0
    experiments_updated: int = 0
    experiment_ids: dict[str, str] = field(default_factory=dict)  # source id -> destination id
    runs_added: int = 0
    runs_updated: int = 0
    params_added: int = 0
    tags_written: int = 0
    inputs_added: int = 0
    points_added: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    models_added: int = 0
    models_updated: int = 0
    versions_added: int = 0
    versions_updated: int = 0
    logged_models_added: int = 0
    logged_models_updated: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def mapped_ids(self) -> dict[str, str]:
        """The experiments whose id changed: source id -> destination id."""
        return {s: d for s, d in self.experiment_ids.items() if s != d}

    def changes(self) -> int:
        """Return how many entities were (or would be) written."""
        return (self.experiments_added + self.experiments_updated + self.runs_added + self.runs_updated
                + self.params_added + self.tags_written + self.inputs_added + self.points_added
                + self.artifact_files + self.models_added + self.models_updated + self.versions_added
                + self.versions_updated + self.logged_models_added + self.logged_models_updated)


class Importer:
    """Import a source (source.py) into a SQL store through a BulkImporter.

    Args:
        source: The reader of the foreign store.
        dest: The destination's bulk writer.
        keep_artifact_location: Point imported runs at their artifacts where they are instead of
            copying them.
        dry_run: Count what would change; write nothing.
        progress: A stream for a progress bar (drawn only on a terminal), or None.
        open_artifacts: Returns the artifact store of a destination URI (default:
            ``get_artifact_store``; the server's import endpoint passes its own).
        foreign_artifacts: The source's artifact URIs name places of another system (a bundle sent
            to a server), so files are copied even where a URI reads like the destination's own.
        scoped_state: Read the destination's runs, params, tags and point counts for the source's
            runs only (a small bundle into a large server), not every run it holds.
    """

    def __init__(self, source: Source, dest: BulkImporter, *, keep_artifact_location: bool = False,
                 dry_run: bool = False, progress: IO[str] | None = None, open_artifacts: Any = None,
                 foreign_artifacts: bool = False, scoped_state: bool = False) -> None:
        self.source = source
        self.dest = dest
        self.keep = keep_artifact_location
        self.report = ImportReport(dry_run=dry_run)
        self.progress = progress
        self.open_artifacts = open_artifacts
        self.foreign_artifacts = foreign_artifacts
        self.scoped_state = scoped_state
        self._artifact_uris: dict[str, tuple[str, str]] = {}  # run id -> (source uri, destination uri)
        self.source_runs: list[SourceRun] = []
        self.source_counts: dict[tuple[str, str], int] = {}

    def run(self) -> ImportReport:
        """Run every step; return the report."""
        scope = [r.run_id for r in self.source.runs()] if self.scoped_state else None
        state = self.dest.state(scope) if scope is not None else self.dest.state()
        experiments = self.source.experiments()
        exp_map = self.import_experiments(experiments, state)
        self.source_runs = self.source.runs()
        runs = [r for r in self.source_runs if r.experiment_id in exp_map]
        self.import_runs(runs, exp_map, state)
        from .logged_models import import_logged_models
        from .registry import import_models

        import_logged_models(self.source, self.dest.store, self.report, {k: int(v) for k, v in exp_map.items()},
                             self.keep, self.open_artifacts)

        import_models(self.source, self.dest, self.report, self._artifact_uris)
        return self.report

    # -- experiments -------------------------------------------------------------------------------
    def import_experiments(self, experiments: list[SourceExperiment], state: DestinationState) -> dict[str, int]:
        """Find or create each experiment; return source id -> destination id."""
        mapping: dict[str, int] = {}
        for exp in experiments:
            found = state.experiment_by_name(exp.name)
            if found is None:
                found = self._add_experiment(exp, state)
            else:
                self._update_experiment(found, exp, state)
            mapping[exp.experiment_id] = found
            self.report.experiment_ids[exp.experiment_id] = str(found)
        return mapping

    def _add_experiment(self, exp: SourceExperiment, state: DestinationState) -> int:
        wanted = int(exp.experiment_id) if exp.experiment_id.isdigit() else None
        if wanted is not None and (wanted in state.experiments or wanted > 2**31 - 1):
            wanted = None
        location = exp.artifact_location if self.keep else ""
        self.report.experiments_added += 1
        if self.report.dry_run:
            new_id = wanted if wanted is not None else -(len(state.experiments) + 1)
        else:
            new_id = self.dest.add_experiment(exp.name, location, exp.lifecycle_stage, exp.creation_time,
                                              exp.last_update_time, wanted)
            if exp.tags:
                self.dest.update_experiment(new_id, None, exp.tags)
        state.experiments[new_id] = (exp.name, location, exp.lifecycle_stage)
        return new_id

    def _update_experiment(self, exp_id: int, exp: SourceExperiment, state: DestinationState) -> None:
        stage, tags = experiment_changes(exp, state.experiments[exp_id][2], state.experiment_tags.get(exp_id, {}))
        if tags or stage:
            self.report.experiments_updated += 1
            if not self.report.dry_run:
                self.dest.update_experiment(exp_id, stage, tags)

    # -- runs ----------------------------------------------------------------------------------------
    def import_runs(self, runs: list[SourceRun], exp_map: dict[str, int], state: DestinationState) -> None:
        """Write runs in batches, each with its params, tags, inputs and missing points; then artifacts."""
        counts = self.source_counts = self.source.metric_counts()
        by_run: dict[str, list[str]] = {}
        for (run_id, key), n in counts.items():
            if state.metric_counts.get((run_id, key), 0) < n:
                by_run.setdefault(run_id, []).append(key)
        total = sum(counts[(r, k)] - state.metric_counts.get((r, k), 0) for r, keys in by_run.items() for k in keys)
        with self._bar(total) as bar:
            for start in range(0, len(runs), _RUNS_PER_BATCH):
                part = runs[start:start + _RUNS_PER_BATCH]
                batch = self._batch(part, exp_map, state, by_run)
                if not self.report.dry_run:
                    self.dest.write(batch)
                    self._copy_artifacts(part, state)
                bar.update(sum(len(series[2]) for series in batch.points))
                bar.set_postfix_str(f"runs {min(start + _RUNS_PER_BATCH, len(runs))}/{len(runs)}, "
                                    f"artifacts {self.report.artifact_bytes / 2**20:.1f} MiB", refresh=False)

    def _batch(self, runs: list[SourceRun], exp_map: dict[str, int], state: DestinationState,
               by_run: dict[str, list[str]]) -> RunBatch:
        from fitscribe.backends.sql.bulk_import import RunBatch

        batch = RunBatch()
        for run in runs:
            exp_id = exp_map[run.experiment_id]
            stored = state.runs.get(run.run_id)
            if stored is None:
                artifact_uri = self._new_artifact_uri(run, exp_id, state)
                batch.new_runs.append((run.run_id, exp_id, run.name, run.user_id, run.status, run.start_time,
                                       run.end_time, run.lifecycle_stage, artifact_uri, run.deleted_time))
                self.report.runs_added += 1
            else:
                changed = {f: getattr(run, f) for f in _RUN_FIELDS if stored[f] != getattr(run, f)}
                if changed:
                    batch.updates[run.run_id] = changed
                    self.report.runs_updated += 1
                artifact_uri = stored["artifact_uri"]
            self._artifact_uris[run.run_id] = (run.artifact_uri, artifact_uri)
            self._add_values(batch, run, state, exp_id, stored is None)
        wanted = [(r, k) for run in runs for r in (run.run_id,) for k in by_run.get(r, ())]
        for run_id, key, values, timestamps, steps in self.source.metric_series(wanted):
            have = state.metric_counts.get((run_id, key), 0)
            if have:
                values, timestamps, steps = self._missing(run_id, key, values, timestamps, steps)
            if values:
                batch.points.append((run_id, key, values, timestamps, steps))
                self.report.points_added += len(values)
        return batch

    def _add_values(self, batch: RunBatch, run: SourceRun, state: DestinationState, exp_id: int, new: bool) -> None:
        params = state.params.get(run.run_id, {})
        tags = state.tags.get(run.run_id, {})
        added_params = [(run.run_id, k, v) for k, v in run.params.items() if k not in params]
        changed_tags = [(run.run_id, k, v) for k, v in run.tags.items() if tags.get(k) != v]
        batch.params += added_params
        batch.tags += changed_tags
        self.report.params_added += len(added_params)
        self.report.tags_written += len(changed_tags)
        if run.inputs and new:
            from fitscribe.entities import Dataset, DatasetInput, InputTag

            batch.inputs.append((exp_id, run.run_id, [DatasetInput(
                Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile),
                tuple(InputTag(k, v) for k, v in d.input_tags.items())) for d in run.inputs]))
            self.report.inputs_added += len(run.inputs)

    def _missing(self, run_id: str, key: str, values: list[float], timestamps: list[int],
                 steps: list[int]) -> tuple[list[float], list[int], list[int]]:
        """Return the source points the destination's series lacks (a multiset difference)."""
        have = Counter(_point_keys(*self.dest.series(run_id, key)))
        keep = []
        for i, point in enumerate(_point_keys(values, timestamps, steps)):
            if have[point]:
                have[point] -= 1
            else:
                keep.append(i)
        return [values[i] for i in keep], [timestamps[i] for i in keep], [steps[i] for i in keep]

    # -- artifacts -----------------------------------------------------------------------------------
    def _new_artifact_uri(self, run: SourceRun, exp_id: int, state: DestinationState) -> str:
        from fitscribe.uri import join_uri

        if self.keep and run.artifact_uri:
            return run.artifact_uri
        location = state.experiments[exp_id][1] or join_uri(self.dest.store.artifact_root, str(exp_id))
        return join_uri(location, run.run_id, "artifacts")

    def _copy_artifacts(self, runs: list[SourceRun], state: DestinationState) -> None:
        from .artifacts import copy_run_artifacts

        for run in runs:
            source_uri, dest_uri = self._artifact_uris[run.run_id]
            if self.keep or (source_uri == dest_uri and not self.foreign_artifacts):
                continue
            if isinstance(self.source, RemoteArtifacts):  # a tracking server: fetched through it
                files, size = self.source.copy_artifacts(run, dest_uri)
                self.report.artifact_files += files
                self.report.artifact_bytes += size
                continue
            folder = self.source.artifact_folder(run)
            if folder is None:
                self.report.skipped.append(f"artifacts of run {run.run_id}: {source_uri!r} is not a local folder")
                continue
            files, size = copy_run_artifacts(folder, dest_uri, self.open_artifacts)
            self.report.artifact_files += files
            self.report.artifact_bytes += size

    def _bar(self, total: int) -> Any:
        stream = self.progress
        if stream is None or not getattr(stream, "isatty", lambda: False)() or not self.source_runs:
            return _NoBar()
        from tqdm import tqdm

        return tqdm(total=total, unit=" points", unit_scale=True, file=stream, desc="metric points")


def experiment_changes(exp: SourceExperiment, stage: str, tags: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    """Return what the import writes of an experiment the destination holds with this lifecycle stage
    and tags: the new stage (None if the same) and the tags it lacks or holds otherwise.

    >>> experiment_changes(SourceExperiment("1", "e", "", "deleted", 0, 0, {"a": "1"}), "active", {"a": "1"})
    ('deleted', {})
    """
    return (exp.lifecycle_stage if stage != exp.lifecycle_stage else None,
            {k: v for k, v in exp.tags.items() if tags.get(k) != v})


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        """Do nothing."""

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Do nothing."""


def _point_keys(values: list[float], timestamps: list[int], steps: list[int]) -> Iterator[tuple[int, int, bytes]]:
    """Yield each point as a hashable (step, timestamp, value bytes): NaN equals NaN here."""
    import struct

    pack = struct.Struct("<d").pack
    return zip(steps, timestamps, map(pack, values))


def local_files(folder: str) -> Iterator[tuple[str, str, int]]:
    """Yield (path, relative POSIX path, size) of every file under ``folder``."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            yield path, os.path.relpath(path, folder).replace(os.sep, "/"), os.path.getsize(path)
