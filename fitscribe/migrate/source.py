"""What an importer reads from a foreign store, independent of its format.

A reader (``mlflow_sql.py``, ``mlruns.py``, ``mlflow_rest.py``) returns experiments, runs (with params,
tags and dataset inputs), metric histories as columns, registered models with their versions and
(:class:`HasLoggedModels`) MLflow 3 logged models. Metric series are
yielded in a canonical order (by step, then timestamp) so that the destination's chunks and the
digests of verify.py do not depend on how the source stored them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Protocol, Sequence, runtime_checkable

from fitscribe.entities.logged_model import LoggedModel

__all__ = [
    "SourceExperiment",
    "SourceDataset",
    "SourceRun",
    "SourceVersion",
    "SourceModel",
    "SourceLoggedModel",
    "Series",
    "Source",
    "HasLoggedModels",
    "HasMetricHashes",
    "RemoteArtifacts",
    "MAX_DOUBLE",
    "unclamp",
]

MAX_DOUBLE = 1.7976931348623157e308
"""MLflow's SQL store keeps +-inf as +-this value; the importer turns it back into +-inf."""

Series = tuple  # (run_id: str, key: str, values: list[float], timestamps: list[int], steps: list[int])


def unclamp(value: float) -> float:
    """Return +-inf for MLflow's clamped +-DBL_MAX, else the value unchanged.

    >>> unclamp(-1.7976931348623157e308)
    -inf
    """
    if value >= MAX_DOUBLE:
        return math.inf
    if value <= -MAX_DOUBLE:
        return -math.inf
    return value


@dataclass
class SourceExperiment:
    """An experiment as the source has it (``experiment_id`` is the source's id, a string)."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceDataset:
    """A dataset input of a run, with its input tags (``mlflow.data.context``...)."""

    dataset_uuid: str
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    input_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    """A run with everything but its metric history (read separately, in columns)."""

    run_id: str
    experiment_id: str
    name: str | None
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    deleted_time: int | None
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[SourceDataset] = field(default_factory=list)


@dataclass
class SourceVersion:
    """A model version (stage ``None`` is the string, as MLflow has it)."""

    version: int
    creation_time: int
    last_updated_time: int
    description: str | None
    user_id: str | None
    current_stage: str
    source: str
    run_id: str | None
    run_link: str | None
    status: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceModel:
    """A registered model with its tags, aliases (alias -> version) and versions."""

    name: str
    creation_time: int
    last_updated_time: int
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    versions: list[SourceVersion] = field(default_factory=list)


SourceLoggedModel = LoggedModel
"""An MLflow 3 logged model as a source has it: the entity itself (status a LoggedModelStatus name,
times in epoch milliseconds); readers build it with keywords."""


class Source(Protocol):
    """A foreign store the importer reads; never written."""

    description: str
    """What is read, for messages (credentials redacted)."""

    def experiments(self) -> list[SourceExperiment]:
        """Return every experiment, active and deleted, with its tags."""

    def runs(self) -> list[SourceRun]:
        """Return every run, active and deleted, with params, tags and dataset inputs."""

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of points of each ``(run_id, key)`` series."""

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series, each ordered by step, then timestamp."""

    def models(self) -> list[SourceModel]:
        """Return the registered models with their versions, tags and aliases."""

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder holding a run's artifacts, or None if not readable locally."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class HasLoggedModels(Protocol):
    """A source holding MLflow 3 logged models (MLflow's databases, mlruns folders and servers)."""

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return every logged model, active and deleted, with its tags and params."""

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the local folder holding a logged model's files, or None if not readable locally."""


@runtime_checkable
class RemoteArtifacts(Protocol):
    """A source whose files are fetched through it (a tracking server), not read from a folder."""

    def copy_artifacts(self, run: SourceRun, dest_uri: str) -> tuple[int, int]:
        """Copy the run's files the destination lacks into ``dest_uri``; return (files, bytes)."""

    def copy_logged_model_artifacts(self, model: SourceLoggedModel, dest_uri: str) -> tuple[int, int]:
        """Copy the logged model's files the destination lacks into ``dest_uri``; return (files, bytes)."""


@runtime_checkable
class HasMetricHashes(Protocol):
    """A source that hashes its metric points (``point_hash.py``), so the verification compares values."""

    def key_hashes(self) -> dict[str, int]:
        """Return the hash of every point of each metric key, over all runs."""

    def series_hashes(self, key: str) -> dict[str, int]:
        """Return run id -> the hash of that run's series of ``key``."""


class SeriesHashes:
    """:class:`HasMetricHashes` for a source that can hash all its series at once: the map is computed
    on first use and kept, so the verification's per-key questions read it again instead of hashing again."""

    def _all_series_hashes(self) -> dict[tuple[str, str], int]:
        """Return (run id, key) -> the point hash (``point_hash.py``) of that series."""
        raise NotImplementedError

    @cached_property
    def _series_hash_map(self) -> dict[tuple[str, str], int]:
        return self._all_series_hashes()

    def key_hashes(self) -> dict[str, int]:
        """Return the hash of every point of each metric key, over all runs."""
        from .point_hash import by_key

        return by_key(self._series_hash_map)

    def series_hashes(self, key: str) -> dict[str, int]:
        """Return run id -> the hash of that run's series of ``key``."""
        return {run_id: h for (run_id, k), h in self._series_hash_map.items() if k == key}
