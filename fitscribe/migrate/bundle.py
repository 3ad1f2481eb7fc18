"""Portable bundles: an open folder (or ``.tar``) format that ``fitscribe export`` writes and
``fitscribe import bundle`` reads, with the same importer and idempotence as the MLflow import.

Format (``schema_version`` 2; version 1, without logged models, is still read), all text UTF-8 JSON.
A bundle holding no logged model is written as version 1 (the only other difference, the index's
``hash``, is one more key older readers pass over), so it still imports into an older fitscribe
(``fitscribe push`` to an older server):

- ``manifest.json``: ``{"format": "fitscribe-bundle", "schema_version": 2, "created_ms", "source",
  "counts": {...}}``.
- ``experiments.jsonl``: one experiment per line: ``experiment_id`` (the exporting store's id),
  ``name``, ``artifact_location``, ``lifecycle_stage``, ``creation_time``, ``last_update_time``, ``tags``.
  Experiments without runs are written too (unless ``--runs`` narrows the export).
- ``runs.jsonl``: one run per line: ``run_id``, ``experiment_id``, ``name``, ``user_id``, ``status``,
  ``start_time``, ``end_time``, ``lifecycle_stage``, ``deleted_time``, ``artifact_uri``, ``params``,
  ``tags``, ``inputs`` (datasets with ``input_tags``).
- ``metrics.jsonl``: one series per line: ``run_id``, ``key``, ``steps``, ``timestamps``, ``values``,
  in order of step then timestamp; non-finite values are the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (JSON has no such numbers); floats are written with Python's shortest exact repr.
- ``series.jsonl``: an index: ``run_id``, ``key``, ``points``, ``offset`` (byte offset of the line in
  ``metrics.jsonl``), so counts and single series are read without reading every point; since
  version 2 also ``hash``, the series' point hash (``point_hash.series_hash``), which the
  verification of an import compares with the destination's points (computed from the series
  when a bundle lacks it).
- ``models.jsonl``: registered models with ``tags``, ``aliases`` and ``versions``.
- ``logged_models.jsonl`` (version 2): MLflow 3 logged models, one per line: ``model_id``,
  ``experiment_id`` (an experiment of the bundle), ``name``, ``artifact_location`` (where the
  exporting store kept the files), ``creation_timestamp``, ``last_updated_timestamp`` (epoch ms),
  ``status`` (a LoggedModelStatus name, ``LOGGED_MODEL_READY``...), ``lifecycle_stage``,
  ``model_type``, ``source_run_id``, ``status_message``, ``tags``, ``params``.
- ``artifacts/<run_id>/...``: each run's artifact files.
- ``logged_models/<model_id>/...`` (version 2): each logged model's files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

from fitscribe._time import now_ms
from fitscribe.errors import ConfigError

from .point_hash import column_hashes, hashes_of_series
from .source import (HasLoggedModels, SeriesHashes, RemoteArtifacts, Series, Source, SourceDataset, SourceExperiment,
                     SourceLoggedModel, SourceModel, SourceRun, SourceVersion)

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS", "Selection", "select", "write_bundle", "write_selection",
           "BundleSource", "is_bundle"]

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Bundle schema versions this fitscribe reads (1: before logged models)."""
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(values: list[float]) -> list[Any]:
    if all(map(math.isfinite, values)):
        return values
    return [x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")) for x in values]


def _decode(values: list[Any]) -> list[float]:
    if all(type(x) is float for x in values):
        return values
    return [_SPECIAL[x] if isinstance(x, str) else float(x) for x in values]


def is_bundle(path: str) -> bool:
    """True if ``path`` is a bundle folder or a ``.tar`` file."""
    return os.path.isfile(os.path.join(path, "manifest.json")) or (path.endswith(".tar") and os.path.isfile(path))


@dataclass
class Selection:
    """What goes into one bundle: experiments, runs (with their histories and files), registered models,
    logged models (with their files)."""

    experiments: list[SourceExperiment] = field(default_factory=list)
    runs: list[SourceRun] = field(default_factory=list)
    models: list[SourceModel] = field(default_factory=list)
    logged_models: list[SourceLoggedModel] = field(default_factory=list)


def select(source: Source, experiments: Sequence[str] = (), run_ids: Sequence[str] = ()) -> Selection:
    """Return what ``fitscribe export`` writes of ``source``.

    Args:
        source: The source read.
        experiments: Only these experiment names (default: all, with those holding no run).
        run_ids: Only these runs (default: all runs of the chosen experiments); then only their
            experiments, the registered models with a version of one of them, and the logged models
            they produced.
    """
    exps = [e for e in source.experiments() if not experiments or e.name in experiments]
    chosen = {e.experiment_id for e in exps}
    runs = [r for r in source.runs() if r.experiment_id in chosen and (not run_ids or r.run_id in run_ids)]
    exported = {r.run_id for r in runs}
    if run_ids:
        used = {r.experiment_id for r in runs}
        exps = [e for e in exps if e.experiment_id in used]
        chosen = {e.experiment_id for e in exps}
    models = [m for m in source.models()
              if not (run_ids or experiments) or any(v.run_id in exported for v in m.versions)]
    logged = [m for m in (source.logged_models() if isinstance(source, HasLoggedModels) else [])
              if m.experiment_id in chosen and (not run_ids or m.source_run_id in exported)]
    return Selection(exps, runs, models, logged)


def write_bundle(source: Source, path: str, experiments: Sequence[str] = (), run_ids: Sequence[str] = ()) -> dict[str, int]:
    """Write a bundle of ``source`` at ``path`` (a new folder, or a ``.tar`` file); return its counts.

    Args:
        source: What to export (e.g. fitscribe_sql.FitscribeSource).
        path: The bundle folder, or a path ending in ``.tar``.
        experiments: Only these experiment names (default: all).
        run_ids: Only these runs (default: all runs of the chosen experiments).

    Raises:
        ConfigError: ``path`` exists already.
    """
    if os.path.exists(path):
        raise ConfigError(f"{path!r} exists already; give a new folder or .tar path for the bundle.")
    return write_selection(source, path, select(source, experiments, run_ids))


def write_selection(source: Source, path: str, chosen: Selection) -> dict[str, int]:
    """Write a bundle of exactly ``chosen`` (read from ``source``) at ``path`` (a new folder or ``.tar``);
    return its counts."""
    if path.endswith(".tar"):
        with tempfile.TemporaryDirectory() as folder:
            counts = write_selection(source, os.path.join(folder, "bundle"), chosen)
            with tarfile.open(path, "w") as tar:
                tar.add(os.path.join(folder, "bundle"), arcname=".")
        return counts
    os.makedirs(path)
    _write_lines(os.path.join(path, "experiments.jsonl"), (asdict(e) for e in chosen.experiments))
    _write_lines(os.path.join(path, "runs.jsonl"), (asdict(r) for r in chosen.runs))
    points = _write_metrics(source, path, {r.run_id for r in chosen.runs})
    _write_lines(os.path.join(path, "models.jsonl"), (asdict(m) for m in chosen.models))
    if chosen.logged_models:
        _write_lines(os.path.join(path, "logged_models.jsonl"), (asdict(m) for m in chosen.logged_models))
    files = _copy_artifacts(source, chosen.runs, os.path.join(path, "artifacts"))
    files += _copy_logged_model_files(source, chosen.logged_models, os.path.join(path, "logged_models"))
    counts = {"experiments": len(chosen.experiments), "runs": len(chosen.runs), "metric_points": points,
              "models": len(chosen.models), "logged_models": len(chosen.logged_models), "artifact_files": files}
    with open(os.path.join(path, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "fitscribe-bundle", "schema_version": SCHEMA_VERSION if chosen.logged_models else 1,
                   "created_ms": now_ms(),
                   "source": source.description, "counts": counts}, f, indent=2)
    return counts


def _write_lines(path: str, items: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, separators=(",", ":")) + "\n")


def _write_metrics(source: Source, path: str, run_ids: set[str]) -> int:
    wanted = [series for series in source.metric_counts() if series[0] in run_ids]
    total = 0
    pending: list[tuple[dict[str, Any], tuple[list[float], list[int], list[int]]]] = []
    with open(os.path.join(path, "metrics.jsonl"), "wb") as data, \
            open(os.path.join(path, "series.jsonl"), "w", encoding="utf-8") as index:
        for run_id, key, values, timestamps, steps in source.metric_series(wanted):
            offset = data.tell()
            line = {"run_id": run_id, "key": key, "steps": steps, "timestamps": timestamps, "values": _encode(values)}
            data.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            pending.append(({"run_id": run_id, "key": key, "points": len(values), "offset": offset},
                            (values, timestamps, steps)))
            total += len(values)
            if len(pending) >= 2000:
                _write_index(index, pending)
        _write_index(index, pending)
    return total


def _write_index(index: Any, pending: list[tuple[dict[str, Any], tuple[list[float], list[int], list[int]]]]) -> None:
    """Write the index lines of the pending series, each with its point hash (hashed together), and
    empty the list."""
    for (entry, _), h in zip(pending, column_hashes([columns for _, columns in pending])):
        index.write(json.dumps({**entry, "hash": h}) + "\n")
    pending.clear()


def _copy_artifacts(source: Source, runs: list[SourceRun], folder: str) -> int:
    files = 0
    for run in runs:
        local = source.artifact_folder(run)
        if local and os.path.isdir(local):
            shutil.copytree(local, os.path.join(folder, run.run_id))
            files += sum(len(names) for _, _, names in os.walk(local))
        elif isinstance(source, RemoteArtifacts):  # a tracking server: its files are fetched through it
            files += source.copy_artifacts(run, os.path.join(folder, run.run_id))[0]
    return files


def _copy_logged_model_files(source: Source, models: list[SourceLoggedModel], folder: str) -> int:
    files = 0
    for model in models:
        assert isinstance(source, HasLoggedModels)
        local = source.logged_model_folder(model)
        if local and os.path.isdir(local):
            shutil.copytree(local, os.path.join(folder, model.model_id))
            files += sum(len(names) for _, _, names in os.walk(local))
        elif isinstance(source, RemoteArtifacts):
            files += source.copy_logged_model_artifacts(model, os.path.join(folder, model.model_id))[0]
    return files


def _read_lines(path: str) -> Iterator[dict[str, Any]]:
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


class BundleSource(SeriesHashes):
    """A bundle read as an import source.

    Args:
        path: The bundle folder, or a ``.tar`` (extracted to a temporary folder, removed on close).

    Raises:
        ConfigError: Not a bundle, or a schema version this fitscribe does not read.
    """

    def __init__(self, path: str) -> None:
        self.description = path
        self._temp: str | None = None
        if path.endswith(".tar") and os.path.isfile(path):
            self._temp = tempfile.mkdtemp(prefix="fitscribe-bundle-")
            with tarfile.open(path) as tar:
                tar.extractall(self._temp, filter="data")
            path = self._temp
        self.root = path
        manifest = os.path.join(path, "manifest.json")
        if not os.path.isfile(manifest):
            raise ConfigError(f"{self.description!r} is not a fitscribe bundle (no manifest.json).")
        with open(manifest, encoding="utf-8") as f:
            found = json.load(f)
        if found.get("format") != "fitscribe-bundle" or found.get("schema_version") not in READABLE_VERSIONS:
            raise ConfigError(f"{self.description!r} has bundle schema version {found.get('schema_version')!r}; "
                              f"this fitscribe reads versions {', '.join(map(str, READABLE_VERSIONS))}.")
        self._index = {(s["run_id"], s["key"]): s for s in _read_lines(os.path.join(path, "series.jsonl"))}

    def experiments(self) -> list[SourceExperiment]:
        """Return the bundle's experiments."""
        return [SourceExperiment(**e) for e in _read_lines(os.path.join(self.root, "experiments.jsonl"))]

    def runs(self) -> list[SourceRun]:
        """Return the bundle's runs."""
        runs = []
        for r in _read_lines(os.path.join(self.root, "runs.jsonl")):
            inputs = [SourceDataset(**d) for d in r.pop("inputs")]
            runs.append(SourceRun(**r, inputs=inputs))
        return runs

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of points of each series (from the index)."""
        return {series: int(s["points"]) for series, s in self._index.items()}

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series."""
        with open(os.path.join(self.root, "metrics.jsonl"), "rb") as f:
            for series in wanted:
                found = self._index.get(series)
                if found is None:
                    continue
                f.seek(int(found["offset"]))
                line = json.loads(f.readline())
                yield (line["run_id"], line["key"], _decode(line["values"]), line["timestamps"], line["steps"])

    def _all_series_hashes(self) -> dict[tuple[str, str], int]:
        """Return (run id, key) -> point hash, from the index (hashed here for a bundle written before hashes)."""
        if all(type(s.get("hash")) is int for s in self._index.values()):
            return {series: s["hash"] for series, s in self._index.items()}
        return hashes_of_series(self.metric_series(list(self._index)))

    def models(self) -> list[SourceModel]:
        """Return the registered models."""
        models = []
        for m in _read_lines(os.path.join(self.root, "models.jsonl")):
            versions = [SourceVersion(**v) for v in m.pop("versions")]
            aliases = {a: int(n) for a, n in m.pop("aliases").items()}
            models.append(SourceModel(**m, aliases=aliases, versions=versions))
        return models

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return the logged models (none in a version 1 bundle)."""
        return [SourceLoggedModel(**m) for m in _read_lines(os.path.join(self.root, "logged_models.jsonl"))]

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the logged model's folder inside the bundle, or None."""
        folder = os.path.join(self.root, "logged_models", model.model_id)
        return folder if os.path.isdir(folder) else None

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the run's artifact folder inside the bundle, or None."""
        folder = os.path.join(self.root, "artifacts", run.run_id)
        return folder if os.path.isdir(folder) else None

    def close(self) -> None:
        """Remove the extracted copy of a ``.tar`` bundle."""
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
