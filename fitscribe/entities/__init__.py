"""The data model: frozen dataclasses for experiments, runs, metrics, params, tags and datasets.

Names and fields follow MLflow's entities (``run.info.run_id``, ``run.data.params``,
``model_version.current_stage``...) so code written against MLflow reads fitscribe's objects
unchanged. Times are milliseconds since the epoch. The registry's entities are also importable
from :mod:`fitscribe.entities.model_registry`, where MLflow keeps them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, TypeVar

__all__ = [
    "LifecycleStage",
    "RunStatus",
    "ViewType",
    "Experiment",
    "Metric",
    "MetricSummary",
    "Param",
    "RunTag",
    "ExperimentTag",
    "Dataset",
    "DatasetInput",
    "InputTag",
    "RunInfo",
    "RunData",
    "RunInputs",
    "Run",
    "PagedList",
    "ModelVersionStage",
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "SourceType",
    "FileInfo",
]

T = TypeVar("T")


class LifecycleStage(str, enum.Enum):
    """Whether an experiment or run is active or in the trash (restorable until purged)."""

    ACTIVE = "active"
    DELETED = "deleted"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: "LifecycleStage | str") -> "LifecycleStage":
        """Return the stage named by ``value`` (``"active"`` or ``"deleted"``, as MLflow spells them).

        Raises:
            InvalidValueError: ``value`` names no stage.
        """
        try:
            return cls(value)
        except ValueError:
            from fitscribe.errors import InvalidValueError

            raise InvalidValueError(f"Unknown lifecycle stage {value!r}; use 'active' or 'deleted'.") from None


class RunStatus(str, enum.Enum):
    """The status of a run; compares equal to MLflow's status strings (``"FINISHED"``...)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminated(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    @classmethod
    def parse(cls, value: "RunStatus | str") -> "RunStatus":
        """Return the status named by ``value`` (case-insensitive).

        Raises:
            InvalidValueError: ``value`` names no status.
        """
        if isinstance(value, RunStatus):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            from fitscribe.errors import InvalidValueError

            allowed = ", ".join(s.value for s in cls)
            raise InvalidValueError(f"Unknown run status {value!r}; use one of {allowed}.") from None


class ViewType(str, enum.Enum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: "ViewType | str | int") -> "ViewType":
        """Return the view type named by ``value`` (MLflow's ints 1, 2, 3 are accepted too).

        Raises:
            InvalidValueError: ``value`` names no view type.
        """
        if isinstance(value, ViewType):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            mapping = {1: cls.ACTIVE_ONLY, 2: cls.DELETED_ONLY, 3: cls.ALL}
            if value in mapping:
                return mapping[value]
        try:
            return cls(str(value).upper())
        except ValueError:
            from fitscribe.errors import InvalidValueError

            raise InvalidValueError(
                f"Unknown view type {value!r}; use ACTIVE_ONLY, DELETED_ONLY or ALL."
            ) from None

    def stages(self) -> tuple[str, ...]:
        """The lifecycle stage strings this view includes."""
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE.value,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED.value,)
        return (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value)


@dataclass(frozen=True)
class ExperimentTag:
    """A key/value tag on an experiment."""

    key: str
    value: str


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE.value
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history. ``value`` may be NaN or +-inf and is returned exactly."""

    key: str
    value: float
    timestamp: int
    step: int = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (math.isnan(self.value) and math.isnan(other.value))
        return (self.key, self.timestamp, self.step) == (other.key, other.timestamp, other.step) and same_value

    def __hash__(self) -> int:
        return hash((self.key, self.timestamp, self.step))

    @classmethod
    def _from_columns(cls, key: str, values: list[float], timestamps: list[int], steps: list[int]) -> list["Metric"]:
        """Return ``Metric(key, value, timestamp, step)`` for each position of the columns, built
        several times faster than by calling the class (for long histories read by stores).

        Each object gets the same ``__dict__`` the dataclass ``__init__`` would give it (so fields,
        equality, hashing, repr and pickling are the same), set in C instead of four frozen
        ``object.__setattr__`` calls; the cyclic garbage collector is paused meanwhile, as the
        many new objects would otherwise trigger its collections over and over.
        """
        import gc
        from itertools import repeat

        enabled = gc.isenabled()
        gc.disable()
        try:
            objects = list(map(object.__new__, repeat(cls, len(values))))
            states = [{"key": key, "value": v, "timestamp": ts, "step": s} for v, ts, s in zip(values, timestamps, steps)]
            any(map(object.__setattr__, objects, repeat("__dict__"), states))  # each returns None: runs all
        finally:
            if enabled:
                gc.enable()
        return objects


@dataclass(frozen=True)
class MetricSummary:
    """The latest point of a metric with the minimum and maximum over its history (NaN excluded)."""

    key: str
    latest: float
    step: int
    timestamp: int
    min: float | None
    max: float | None


@dataclass(frozen=True)
class Param:
    """A run parameter: write-once, always a string."""

    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    """A mutable key/value tag on a run."""

    key: str
    value: str


@dataclass(frozen=True)
class InputTag:
    """A key/value tag on a dataset input (e.g. ``mlflow.data.context = "training"``)."""

    key: str
    value: str


@dataclass(frozen=True)
class Dataset:
    """A dataset description: name, content digest, where it came from, and its schema."""

    name: str
    digest: str
    source_type: str = "local"
    source: str = ""
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class DatasetInput:
    """A dataset used by a run, with tags such as its context (training, evaluation)."""

    dataset: Dataset
    tags: tuple[InputTag, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """Metadata of a run: ids, status, times, artifact location."""

    run_id: str
    experiment_id: str
    run_name: str | None
    user_id: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE.value

    @property
    def run_uuid(self) -> str:
        """The run id (MLflow's deprecated alias)."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    """What a run recorded: latest metric values, params and tags.

    ``metrics`` maps each key to its latest value (largest step, then latest timestamp), as in MLflow;
    ``metric_summaries`` adds the min and max over the whole history.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_summaries: dict[str, MetricSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInputs:
    """The datasets a run used."""

    dataset_inputs: tuple[DatasetInput, ...] = ()


@dataclass(frozen=True)
class Run:
    """A run: its info, its data and its inputs."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (used by ``fitscribe runs describe --json``)."""
        info = self.info
        return {
            "info": {
                "run_id": info.run_id,
                "experiment_id": info.experiment_id,
                "run_name": info.run_name,
                "user_id": info.user_id,
                "status": info.status.value,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "artifact_uri": info.artifact_uri,
                "lifecycle_stage": info.lifecycle_stage,
            },
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
            "inputs": [
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "source_type": d.dataset.source_type,
                    "source": d.dataset.source,
                    "schema": d.dataset.schema,
                    "tags": {t.key: t.value for t in d.tags},
                }
                for d in self.inputs.dataset_inputs
            ],
        }


class PagedList(list[T], Generic[T]):
    """A list holding one page of results, with ``token`` for the next page (None on the last)."""

    def __init__(self, items: Iterable[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token


class ModelVersionStage(str, enum.Enum):
    """MLflow's model version stages; compares equal to their strings (``"Production"``...)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: "ModelVersionStage | str") -> "ModelVersionStage":
        """Return the stage named by ``value`` (case-insensitive, as MLflow accepts it).

        Raises:
            InvalidValueError: ``value`` names no stage.
        """
        if isinstance(value, ModelVersionStage):
            return value
        for stage in cls:
            if isinstance(value, str) and value.lower() == stage.value.lower():
                return stage
        from fitscribe.errors import InvalidValueError

        allowed = ", ".join(s.value for s in cls)
        raise InvalidValueError(f"Unknown model version stage {value!r}; use one of {allowed}.")


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model: where the model files are (``source``) and its metadata.

    Version numbers start at 1 and are never reused, even after a version is deleted.
    """

    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int | None = None
    description: str | None = None
    source: str = ""
    run_id: str | None = None
    status: str = "READY"
    current_stage: str = ModelVersionStage.NONE.value
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    user_id: str | None = None
    run_link: str | None = None


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with versions; ``aliases`` maps each alias to a version number and
    ``latest_versions`` holds the newest version in each stage."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryEvent:
    """One change of the model registry in its audit trail: who did ``action`` to what, and when.

    ``action`` is e.g. ``transition_stage`` or ``move_alias``; ``key`` is the tag key or alias (None
    otherwise); ``old_value`` and ``new_value`` are before and after as text (a stage, a version
    number, a tag value, a description, a model name), None where there was or is nothing.
    """

    id: int
    timestamp: int
    user_id: str | None
    action: str
    name: str
    version: int | None = None
    key: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    comment: str | None = None


class SourceType(str, enum.Enum):
    """Where a run's code came from (the ``mlflow.source.type`` tag), as MLflow names it."""

    NOTEBOOK = "NOTEBOOK"
    JOB = "JOB"
    PROJECT = "PROJECT"
    LOCAL = "LOCAL"
    RECIPE = "RECIPE"
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value


def __getattr__(name: str) -> Any:
    if name == "FileInfo":  # defined with the artifact store protocol; read on first use
        from fitscribe.backends.base import FileInfo

        return FileInfo
    if name == "model_registry":  # mlflow.entities.model_registry after a plain `import fitscribe.entities`
        import importlib

        return importlib.import_module("fitscribe.entities.model_registry")
    raise AttributeError(f"module 'fitscribe.entities' has no attribute {name!r}")
