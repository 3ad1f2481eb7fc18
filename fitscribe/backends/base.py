"""The narrow interfaces backends implement: ``TrackingStore``, ``ArtifactStore`` and, optionally,
``ModelRegistryStore``.

Nothing above this layer knows which backend it talks to. Third-party backends implement these
Protocols and register a factory under the entry-point groups ``fitscribe.tracking_stores`` and
``fitscribe.artifact_stores``; ``fitscribe.testing`` holds conformance suites to check them. A
tracking store with a model registry exposes it as its ``registry`` attribute.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

from fitscribe.entities import (
    DatasetInput,
    Experiment,
    Metric,
    ModelVersion,
    PagedList,
    Param,
    RegisteredModel,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

__all__ = ["TrackingStore", "ArtifactStore", "ModelRegistryStore", "FileInfo"]


class FileInfo:
    """One entry of an artifact listing: a path relative to the listed root, and its size."""

    __slots__ = ("path", "is_dir", "file_size")

    def __init__(self, path: str, is_dir: bool, file_size: int | None) -> None:
        self.path = path
        self.is_dir = is_dir
        self.file_size = file_size

    def __repr__(self) -> str:
        return f"FileInfo(path={self.path!r}, is_dir={self.is_dir}, file_size={self.file_size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileInfo):
            return NotImplemented
        return (self.path, self.is_dir, self.file_size) == (other.path, other.is_dir, other.file_size)


@runtime_checkable
class TrackingStore(Protocol):
    """Experiments, runs and what runs record. Ids are strings; times are epoch milliseconds.

    Every method validates its input and raises the typed errors of :mod:`fitscribe.errors`
    (``RunNotFound``, ``InvalidValueError``...). Writes are durable when the method returns.

    Optional capabilities, used when a store has them (found with ``getattr``): ``flush()`` (wait
    for queued writes), ``count_runs(experiment_ids, filter_string=None, run_view_type=...)`` (the
    web UI's run counts; otherwise it shows "1000+"), and ``record_logged_model(run_id, entry)``
    (append to the ``mlflow.log-model.history`` tag atomically; otherwise log_model reads the run
    and sets the tag, see :mod:`fitscribe.backends.model_history`).
    """

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id, active or deleted."""
        ...

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        ...

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Return one page of experiments."""
        ...

    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Rename, delete/restore (lifecycle_stage) or set tags on an experiment."""
        ...

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run and return it."""
        ...

    def get_run(self, run_id: str) -> Run:
        """Return the run with its latest metrics, params, tags and inputs."""
        ...

    def update_run_info(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time, name or lifecycle stage."""
        ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Record metrics, params and tags in one transaction (all or nothing)."""
        ...

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Record one metric point (the hot path: one round trip where the backend allows)."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        ...

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets used by a run."""
        ...

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Return the points of one metric ordered by step, then timestamp."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs matching the filter, sorted by ``order_by``."""
        ...

    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        """Return ids of runs in the deleted stage (deleted before ``older_than_ms`` if given)."""
        ...

    def purge_run(self, run_id: str) -> None:
        """Erase a deleted run and everything it recorded, for good."""
        ...

    def close(self) -> None:
        """Release connections. The store may be used again afterwards (it reconnects)."""
        ...


@runtime_checkable
class ArtifactStore(Protocol):
    """Files under a root URI. Paths are POSIX-style and relative; none may climb out of the root."""

    def put(self, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file or directory (recursively) under ``artifact_path``."""
        ...

    def get(self, artifact_path: str, dst_dir: str) -> str:
        """Download a file or directory into ``dst_dir``; return the local path."""
        ...

    def list(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of ``path`` (the root if None)."""
        ...

    def delete(self, artifact_path: str | None = None) -> None:
        """Delete a file or directory (everything if None)."""
        ...

    def open(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks."""
        ...


@runtime_checkable
class ModelRegistryStore(Protocol):
    """Registered models, their numbered versions, tags and aliases (MlflowClient's registry API).

    A tracking store offers one as its ``registry`` attribute. Version numbers start at 1 and are
    never reused; ``version`` arguments accept an int or a numeric string. Missing models raise
    ``ModelNotFound``, missing versions and aliases ``ModelVersionNotFound``. Times are epoch ms.
    """

    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model (``AlreadyExistsError`` if the name is taken)."""
        ...

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest version per stage."""
        ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, tags and aliases follow."""
        ...

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set a registered model's description."""
        ...

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions, tags and aliases."""
        ...

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Return one page of registered models (filter on ``name`` and ``tags.<key>``)."""
        ...

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model."""
        ...

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        ...

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point an alias at a version (moving it if it exists)."""
        ...

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""
        ...

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        *,
        run_link: str | None = None,
        user_id: str | None = None,
    ) -> ModelVersion:
        """Add the next version to a registered model (safe under concurrent callers)."""
        ...

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one model version."""
        ...

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        """Set a model version's description."""
        ...

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version with its tags and the aliases pointing at it."""
        ...

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Return one page of model versions (filter on ``name``, ``run_id``, ``source``, tags...)."""
        ...

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Return the newest version in each stage (or in the given stages)."""
        ...

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to a stage, optionally archiving the others in that stage."""
        ...

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a tag on a model version."""
        ...

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a model version."""
        ...
