"""Read an MLflow file store (an ``mlruns`` folder), never writing to it.

Layout (reference: MLflow's file store): ``<root>/<experiment id>/meta.yaml`` and ``tags/``, one
folder per run with ``meta.yaml``, ``params/``, ``tags/`` and ``metrics/`` (one file per key, a
line ``<timestamp> <value> [<step>]`` per point; keys holding ``/`` are sub-folders), ``inputs/``
pointing at the experiment's ``datasets/``; deleted experiments live in ``.trash/``; the model
registry in ``models/``. Run status is stored as an integer (1 RUNNING ... 5 KILLED). Exact
duplicate metric lines (MLflow's model logging writes some twice) count once, as in MLflow's SQL store.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator, Sequence

from fitscribe.errors import ConfigError, NotFoundError
from fitscribe.entities.logged_model import STATUSES
from fitscribe.uri import file_uri_to_path

from .mlflow_sql import local_folder
from .source import Series, SeriesHashes, SourceDataset, SourceExperiment, SourceLoggedModel, SourceModel, SourceRun, SourceVersion

__all__ = ["MlrunsSource", "is_mlruns_folder"]

_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_SKIP = {".trash", "models", ".git"}
_LOGGED_MODEL_STATUS = dict(enumerate(STATUSES))  # MLflow's LoggedModelStatus enum numbers


def is_mlruns_folder(path: str) -> bool:
    """True if ``path`` (a folder or ``file:`` URI) looks like an MLflow file store."""
    folder = file_uri_to_path(path)
    return os.path.isdir(folder) and (
        os.path.isfile(os.path.join(folder, "0", "meta.yaml"))
        or any(os.path.isfile(os.path.join(folder, name, "meta.yaml")) for name in _listdir(folder)))


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _yaml(path: str) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        found = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    return found if isinstance(found, dict) else {}


def _key_files(folder: str) -> dict[str, str]:
    """Return ``{key: file path}`` of a params/tags/metrics folder (sub-folders make keys with ``/``)."""
    found: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, folder).replace(os.sep, "/")] = path
    return found


def _read_values(folder: str) -> dict[str, str]:
    values = {}
    for key, path in _key_files(folder).items():
        with open(path, encoding="utf-8") as f:
            values[key] = f.read()
    return values


class MlrunsSource(SeriesHashes):
    """An MLflow ``mlruns`` folder, read and never written.

    Args:
        path: The folder (or its ``file:`` URI).

    Raises:
        NotFoundError: No such folder.
    """

    def __init__(self, path: str) -> None:
        self.root = os.path.abspath(file_uri_to_path(path))
        self.description = self.root
        if not os.path.isdir(self.root):
            raise NotFoundError(f"No mlruns folder at {self.root!r}.")
        self._run_folders: dict[str, str] = {}

    def _experiment_folders(self) -> list[str]:
        folders = []
        for base in (self.root, os.path.join(self.root, ".trash")):
            for name in _listdir(base):
                path = os.path.join(base, name)
                if name not in _SKIP and os.path.isfile(os.path.join(path, "meta.yaml")):
                    folders.append(path)
        return folders

    def experiments(self) -> list[SourceExperiment]:
        """Return every experiment, active and deleted (``.trash``), with its tags."""
        found = []
        for folder in self._experiment_folders():
            meta = _yaml(os.path.join(folder, "meta.yaml"))
            exp_id = str(meta.get("experiment_id", os.path.basename(folder)))
            stage = meta.get("lifecycle_stage") or ("deleted" if ".trash" in folder else "active")
            created = int(meta.get("creation_time") or 0)
            found.append(SourceExperiment(exp_id, str(meta.get("name", exp_id)), str(meta.get("artifact_location") or ""),
                                          stage, created, int(meta.get("last_update_time") or created),
                                          _read_values(os.path.join(folder, "tags"))))
        if not found:
            raise ConfigError(f"{self.root!r} holds no MLflow experiment (no <id>/meta.yaml).")
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self) -> list[SourceRun]:
        """Return every run with params, tags and dataset inputs."""
        runs = []
        for folder in self._experiment_folders():
            datasets = os.path.join(folder, "datasets")
            for name in _listdir(folder):
                run_folder = os.path.join(folder, name)
                if name in ("tags", "datasets", "models", "traces") or not os.path.isfile(
                        os.path.join(run_folder, "meta.yaml")):
                    continue
                run = self._run(run_folder, datasets)
                self._run_folders[run.run_id] = run_folder
                runs.append(run)
        return sorted(runs, key=lambda r: (r.start_time, r.run_id))

    def _run(self, folder: str, datasets: str) -> SourceRun:
        meta = _yaml(os.path.join(folder, "meta.yaml"))
        status = meta.get("status", 1)
        tags = _read_values(os.path.join(folder, "tags"))
        run = SourceRun(
            str(meta.get("run_id") or meta.get("run_uuid") or os.path.basename(folder)),
            str(meta.get("experiment_id", os.path.basename(os.path.dirname(folder)))),
            meta.get("run_name") or tags.get("mlflow.runName") or None,
            str(meta.get("user_id") or ""),
            _STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
            int(meta.get("start_time") or 0), meta.get("end_time"),
            meta.get("lifecycle_stage") or "active", meta.get("deleted_time"),
            str(meta.get("artifact_uri") or ""),
            _read_values(os.path.join(folder, "params")), tags,
        )
        inputs = os.path.join(folder, "inputs")
        for name in _listdir(inputs):
            link = _yaml(os.path.join(inputs, name, "meta.yaml"))
            dataset_id = str(link.get("source_id", ""))
            dataset_meta = os.path.join(datasets, dataset_id, "meta.yaml")
            if link.get("source_type") == "DATASET" and os.path.isfile(dataset_meta):
                d = _yaml(dataset_meta)
                run.inputs.append(SourceDataset(dataset_id, str(d.get("name", "")), str(d.get("digest", "")),
                                                str(d.get("source_type", "")), str(d.get("source", "")),
                                                d.get("schema"), d.get("profile"),
                                                {str(k): str(v) for k, v in (link.get("tags") or {}).items()}))
        return run

    def _metric_files(self, run_id: str) -> dict[str, str]:
        if not self._run_folders:
            self.runs()
        folder = self._run_folders.get(run_id)
        return _key_files(os.path.join(folder, "metrics")) if folder else {}

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of distinct points of each ``(run_id, key)`` series."""
        if not self._run_folders:
            self.runs()
        return {(run_id, key): len(_points(path))
                for run_id in self._run_folders for key, path in self._metric_files(run_id).items()}

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series, each ordered by step, then timestamp."""
        for run_id, key in wanted:
            path = self._metric_files(run_id).get(key)
            if path is None:
                continue
            points = sorted(_points(path), key=lambda p: (p[2], p[0]))
            yield (run_id, key, [p[1] for p in points], [p[0] for p in points], [p[2] for p in points])

    def _all_series_hashes(self) -> dict[tuple[str, str], int]:
        """Return (run id, key) -> point hash of every series in the folder."""
        from .point_hash import hashes_of_series

        return hashes_of_series(self.metric_series(sorted(self.metric_counts())))

    def models(self) -> list[SourceModel]:
        """Return the registered models (``<root>/models``) with versions, tags and aliases."""
        models = []
        base = os.path.join(self.root, "models")
        for name in _listdir(base):
            folder = os.path.join(base, name)
            if not os.path.isfile(os.path.join(folder, "meta.yaml")):
                continue
            meta = _yaml(os.path.join(folder, "meta.yaml"))
            created = int(meta.get("creation_timestamp") or 0)
            model = SourceModel(str(meta.get("name", name)), created, int(meta.get("last_updated_timestamp") or created),
                                meta.get("description"), _read_values(os.path.join(folder, "tags")),
                                {str(k): int(v) for k, v in (meta.get("aliases") or {}).items()})
            for entry in _listdir(folder):
                if entry.startswith("version-") and os.path.isfile(os.path.join(folder, entry, "meta.yaml")):
                    v = _yaml(os.path.join(folder, entry, "meta.yaml"))
                    made = int(v.get("creation_timestamp") or 0)
                    model.versions.append(SourceVersion(
                        int(v["version"]), made, int(v.get("last_updated_timestamp") or made), v.get("description"),
                        v.get("user_id"), str(v.get("current_stage") or "None"), str(v.get("source") or ""),
                        v.get("run_id"), v.get("run_link"), str(v.get("status") or "READY"),
                        _read_values(os.path.join(folder, entry, "tags"))))
            model.versions.sort(key=lambda x: x.version)
            models.append(model)
        return models

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return the MLflow 3 logged models (``<experiment>/models/<id>/``) with their tags and params."""
        found = []
        for folder in self._experiment_folders():
            base = os.path.join(folder, "models")
            for name in _listdir(base):
                model = os.path.join(base, name)
                if not os.path.isfile(os.path.join(model, "meta.yaml")):
                    continue
                meta = _yaml(os.path.join(model, "meta.yaml"))
                created = int(meta.get("creation_timestamp") or 0)
                status = meta.get("status", 0)
                found.append(SourceLoggedModel(
                    model_id=str(meta.get("model_id") or name),
                    experiment_id=str(meta.get("experiment_id") or os.path.basename(folder)),
                    name=str(meta.get("name") or ""), artifact_location=str(meta.get("artifact_location") or ""),
                    creation_timestamp=created, last_updated_timestamp=int(meta.get("last_updated_timestamp") or created),
                    status=_LOGGED_MODEL_STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
                    model_type=meta.get("model_type") or None, source_run_id=meta.get("source_run_id") or None,
                    status_message=meta.get("status_message") or None, tags=_read_values(os.path.join(model, "tags")),
                    params=_read_values(os.path.join(model, "params")),
                    lifecycle_stage=str(meta.get("lifecycle_stage") or "active")))
        return sorted(found, key=lambda m: (m.creation_timestamp, m.model_id))

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the local folder of a logged model's files, or None."""
        return local_folder(model.artifact_location, self.root)

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder of a run's artifacts, or None."""
        return local_folder(run.artifact_uri, self.root)

    def close(self) -> None:
        """Nothing to release."""


def _points(path: str) -> list[tuple[int, float, int]]:
    """Return the distinct points of a metric file as (timestamp, value, step), in file order."""
    points: dict[tuple[int, str, int], tuple[int, float, int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 2:
                continue
            timestamp, value = int(fields[0]), float(fields[1])
            step = int(fields[2]) if len(fields) > 2 else 0
            # NaN != NaN, so the key uses the text of the value
            points.setdefault((timestamp, "nan" if math.isnan(value) else repr(value), step), (timestamp, value, step))
    return list(points.values())
