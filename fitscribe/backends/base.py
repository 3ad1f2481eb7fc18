"""The interfaces backends implement: ``TrackingStore``, ``ArtifactStore`` and ``ModelRegistryStore``.

Nothing above this layer knows which backend it talks to. ``TrackingStore`` and ``ArtifactStore``
are base classes, as fsspec's ``AbstractFileSystem`` is: a store subclasses one, implements the
required methods (the base raises ``NotImplementedError`` for those), and overrides the optional
capabilities it does better than the base's fallback (``flush``, ``count_runs``,
``record_logged_model``, ``metric_arrays``, ``registry``, ``local_path``...). Callers just call them:
nothing probes a store with ``getattr`` or ``isinstance``.

Third-party backends register a factory under the entry-point groups ``fitscribe.tracking_stores``
and ``fitscribe.artifact_stores``; ``fitscribe.testing`` holds conformance suites to check them. A
store written before the bases existed (one that does not subclass them) still works:
:func:`as_tracking_store` and :func:`as_artifact_store`, applied by the registries, give it the
fallbacks. ``ModelRegistryStore`` has no optional parts and stays a structural Protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from fitscribe.entities import (
    DatasetInput,
    Experiment,
    Metric,
    ModelVersion,
    PagedList,
    Param,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

if TYPE_CHECKING:
    from fitscribe.backends.sql.metric_arrays import MetricArrays
    from fitscribe.entities.logged_model import LoggedModel

__all__ = [
    "TrackingStore", "ArtifactStore", "ModelRegistryStore", "FileInfo", "as_tracking_store", "as_artifact_store",
]

_HISTORY_PAGE = 50_000


def _required(store: object, name: str) -> NotImplementedError:
    return NotImplementedError(f"{type(store).__name__} does not implement {name}(), which every store must have.")


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


class TrackingStore:
    """Experiments, runs and what runs record. Ids are strings; times are epoch milliseconds.

    Every method validates its input and raises the typed errors of :mod:`fitscribe.errors`
    (``RunNotFound``, ``InvalidValueError``...). Writes are durable when the method returns, or
    when :meth:`flush` returns for a store that queues them.

    Subclasses implement the required methods (those raising ``NotImplementedError`` here) and
    override the optional capabilities (from ``close`` on) when they do better than the fallback.
    """

    accepts_request_ids: bool = False
    """Whether ``log_batch`` takes a ``request_id`` keyword (a retried request is then applied once)."""

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id.

        Raises:
            AlreadyExistsError: An experiment (active or deleted) has this name.
            InvalidValueError: The name or a tag is invalid.
        """
        raise _required(self, "create_experiment")

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id, active or deleted.

        Raises:
            ExperimentNotFound: No experiment has this id.
        """
        raise _required(self, "get_experiment")

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        raise _required(self, "get_experiment_by_name")

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Return one page of experiments."""
        raise _required(self, "search_experiments")

    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Rename, delete/restore (lifecycle_stage) or set tags on an experiment.

        Raises:
            ExperimentNotFound: No experiment has this id.
            AlreadyExistsError: ``new_name`` is taken.
            InvalidStateError: The Default experiment (id 0) cannot be deleted.
        """
        raise _required(self, "update_experiment")

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run and return it.

        Raises:
            ExperimentNotFound: No experiment has this id.
            InvalidStateError: The experiment is deleted.
        """
        raise _required(self, "create_run")

    def get_run(self, run_id: str) -> Run:
        """Return the run with its latest metrics, params, tags and inputs.

        Raises:
            RunNotFound: No run has this id.
        """
        raise _required(self, "get_run")

    def update_run_info(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time, name or lifecycle stage.

        Raises:
            RunNotFound: No run has this id.
        """
        raise _required(self, "update_run_info")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Record metrics, params and tags in one transaction (all or nothing).

        Raises:
            RunNotFound: No run has this id.
            InvalidStateError: The run is deleted.
            InvalidValueError: A key or value is invalid, or a param would change value.
        """
        raise _required(self, "log_batch")

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Record one metric point (the hot path: one round trip where the backend allows)."""
        raise _required(self, "log_metric")

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run.

        Raises:
            NotFoundError: The run has no tag with this key.
        """
        raise _required(self, "delete_tag")

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets used by a run."""
        raise _required(self, "log_inputs")

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Return the points of one metric ordered by step, then timestamp."""
        raise _required(self, "get_metric_history")

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs matching the filter, sorted by ``order_by``.

        Raises:
            InvalidValueError: The filter or order_by is malformed (the message shows where).
        """
        raise _required(self, "search_runs")

    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        """Return ids of runs in the deleted stage (deleted before ``older_than_ms`` if given)."""
        raise _required(self, "deleted_run_ids")

    def purge_run(self, run_id: str) -> None:
        """Erase a deleted run and everything it recorded, for good.

        Raises:
            RunNotFound: No run has this id.
            InvalidStateError: The run is not deleted (delete it first).
        """
        raise _required(self, "purge_run")

    # -- optional capabilities: the fallbacks -------------------------------------------------
    def close(self) -> None:
        """Release connections. The store may be used again afterwards (it reconnects).

        The fallback holds nothing, so releases nothing.
        """

    def flush(self) -> None:
        """Block until every write made so far is stored (the fallback: writes are never queued)."""

    def sync(self) -> int:
        """Send the writes waiting in the store's journal now; return the bytes sent.

        Raises:
            ConfigError: In the fallback: the store keeps no journal, since it writes straight to
                its database (it is not a tracking server's client), so nothing ever waits.
        """
        from fitscribe.errors import ConfigError

        raise ConfigError(f"The tracking store ({type(self).__name__}) is not a tracking server: it writes straight "
                          "to its database, so no journal waits to be sent.")

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int | None:
        """Return how many runs ``search_runs`` would list, or None when counting is not cheap.

        The fallback says None: counting would page through every run (the web UI then shows a
        capped count such as "1000+").

        Raises:
            InvalidValueError: The filter is malformed (the message shows where).
        """
        return None

    def record_logged_model(self, run_id: str, entry: Mapping[str, Any]) -> None:
        """Append a logged model's description to the run's ``mlflow.log-model.history`` tag.

        The fallback reads the run and writes the tag back, so two processes appending to one run
        at once may lose an entry; stores that can, do it in one transaction.

        Raises:
            RunNotFound: No run has this id.
            InvalidStateError: The run is deleted.
            InvalidValueError: The entry is invalid, or too long to fit the tag.
        """
        from fitscribe.backends.model_history import HISTORY_TAG, append_entry

        current = self.get_run(run_id).data.tags.get(HISTORY_TAG)
        self.log_batch(run_id, tags=[RunTag(HISTORY_TAG, append_entry(current, entry))])

    def purge_experiment(self, experiment_id: str) -> None:
        """Erase a deleted experiment whose runs are purged, for good (its name becomes free).

        Raises:
            ExperimentNotFound: No experiment has this id.
            InvalidStateError: The experiment is not deleted, or still has runs.
            InvalidValueError: Always, in the fallback: the store cannot purge experiments.
        """
        from fitscribe.errors import InvalidValueError

        raise InvalidValueError(f"The tracking store ({type(self).__name__}) cannot purge experiments.")

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment.

        Raises:
            InvalidValueError: Always, in the fallback: the store cannot delete experiment tags.
        """
        from fitscribe.errors import InvalidValueError

        raise InvalidValueError(f"The tracking store ({type(self).__name__}) cannot delete experiment tags.")

    # -- MLflow 3 logged models (the fallbacks refuse: the store keeps none) -------------------
    def _no_logged_models(self) -> Exception:
        from fitscribe.errors import InvalidValueError

        return InvalidValueError(f"Logged models are not supported by this store ({type(self).__name__}); "
                                 "use a database store (sqlite, postgresql, mysql) or a tracking server.")

    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        *,
        model_id: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        status: str | int = "LOGGED_MODEL_PENDING",
        status_message: str | None = None,
        artifact_location: str | None = None,
        creation_timestamp: int | None = None,
        last_updated_timestamp: int | None = None,
    ) -> LoggedModel:
        """Create a logged model (PENDING unless ``status`` says otherwise) and return it.

        An importer passes ``model_id``, ``artifact_location`` and the times to keep them; by
        default the id is new (``m-<32 hex>``), the files go under
        ``<experiment artifact location>/models/<model_id>/artifacts`` and both times are now.

        Raises:
            ExperimentNotFound: No experiment has this id.
            AlreadyExistsError: ``model_id`` is taken.
            InvalidValueError: A value is invalid, or (the fallback) the store keeps no logged models.
        """
        raise self._no_logged_models()

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """Return a logged model with its tags and params.

        Raises:
            NotFoundError: No model has this id (or it is deleted and ``allow_deleted`` is False).
            InvalidValueError: The id is malformed, or (the fallback) the store keeps no logged models.
        """
        raise self._no_logged_models()

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Return one page of the active logged models of these experiments that match the filter.

        The filter names the fields of ``fitscribe.entities.logged_model.LOGGED_MODEL_ATTRIBUTES``
        and ``tags.<key>``; ``order_by`` holds MLflow's ``{"field_name": ..., "ascending": ...}``
        (default: newest first).

        Raises:
            InvalidValueError: The filter or an ordering is invalid, or (the fallback) the store keeps
                no logged models.
        """
        raise self._no_logged_models()

    def update_logged_model(
        self,
        model_id: str,
        *,
        status: str | int | None = None,
        status_message: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """Set a logged model's status, and set tags and params on it, in one transaction; return it.

        Raises:
            NotFoundError: No active model has this id.
            InvalidValueError: A value is invalid, or (the fallback) the store keeps no logged models.
        """
        raise self._no_logged_models()

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model.

        Raises:
            NotFoundError: No active model has this id, or it has no such tag.
            InvalidValueError: (the fallback) The store keeps no logged models.
        """
        raise self._no_logged_models()

    def delete_logged_model(self, model_id: str) -> None:
        """Mark a logged model deleted (its files stay; ``get_logged_model(allow_deleted=True)`` reads it).

        Raises:
            NotFoundError: No active model has this id.
            InvalidValueError: (the fallback) The store keeps no logged models.
        """
        raise self._no_logged_models()

    @property
    def registry(self) -> ModelRegistryStore | None:
        """The store's model registry, or None (the fallback) when it has none."""
        return None

    def bulk_importer(self) -> Any:
        """A writer of whole imported runs that keeps their ids, times and metric histories
        (``fitscribe import``), or None (the fallback) when the store cannot take them."""
        return None

    def metric_arrays(
        self, run_ids: Sequence[str], key: str, min_step: int | None = None, max_step: int | None = None
    ) -> dict[str, MetricArrays]:
        """Return the history of metric ``key`` of each run as arrays ordered by step (empty if not logged).

        With a step range, a store may return points outside it (stores reading whole chunks do);
        the caller cuts them off. The fallback pages through :meth:`get_metric_history`, so it
        raises ``RunNotFound`` for a missing run, which other stores need not check. Needs numpy.
        """
        from fitscribe.backends.sql.metric_arrays import order_arrays
        import numpy as np

        found: dict[str, MetricArrays] = {}
        for run_id in run_ids:
            points: list[Metric] = []
            token: str | None = None
            while True:
                page = self.get_metric_history(run_id, key, _HISTORY_PAGE, token)
                points.extend(page)
                token = page.token
                if not token:
                    break
            found[run_id] = order_arrays(
                np.array([p.step for p in points], dtype=np.int64),
                np.array([p.timestamp for p in points], dtype=np.int64),
                np.array([p.value for p in points], dtype=np.float64),
            )
        return found

    def run_start_times(self, run_ids: Sequence[str]) -> dict[str, int | None]:
        """Return the start time (epoch ms) of each run that exists; missing runs are left out.

        The fallback asks :meth:`get_run` for each (raising its error for a malformed id).
        """
        from fitscribe.errors import RunNotFound

        found: dict[str, int | None] = {}
        for run_id in run_ids:
            try:
                found[run_id] = self.get_run(run_id).info.start_time
            except RunNotFound:
                continue
        return found


class ArtifactStore:
    """Files under a root URI. Paths are POSIX-style and relative; none may climb out of the root."""

    def put(self, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file or directory (recursively) under ``artifact_path``."""
        raise _required(self, "put")

    def get(self, artifact_path: str, dst_dir: str) -> str:
        """Download a file or directory into ``dst_dir``; return the local path."""
        raise _required(self, "get")

    def list(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of ``path`` (the root if None)."""
        raise _required(self, "list")

    def delete(self, artifact_path: str | None = None) -> None:
        """Delete a file or directory (everything if None)."""
        raise _required(self, "delete")

    def open(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks."""
        raise _required(self, "open")

    # -- optional capabilities: the fallbacks -------------------------------------------------
    reports_progress: bool = False
    """Whether ``get`` and ``put`` take a ``progress`` keyword: a callable given the bytes moved
    since its previous call. The fallback does not (progress lines then count ``open()``'s chunks)."""

    def local_path(self, artifact_path: str = "") -> str | None:
        """Return the absolute local path of an artifact (which need not exist), or None (the fallback)
        when the store's files are not on this machine's disk.

        Raises:
            InvalidValueError: ``artifact_path`` is absolute or climbs out of the root.
        """
        return None

    def scratch_folder(self) -> str | None:
        """Create and return a temporary folder from which :meth:`adopt_folder` can move content
        into the store with a rename, or None (the fallback) when the store cannot."""
        return None

    def adopt_folder(self, local_dir: str, artifact_path: str) -> bool:
        """Move a local folder into place as ``artifact_path``; return False (the fallback) when it
        cannot, so that the caller copies it with :meth:`put`."""
        return False


@runtime_checkable
class ModelRegistryStore(Protocol):
    """Registered models, their numbered versions, tags and aliases (MlflowClient's registry API).

    A tracking store offers one as its ``registry`` attribute. Version numbers start at 1 and are
    never reused; ``version`` arguments accept an int or a numeric string. Missing models raise
    ``ModelNotFound``, missing versions and aliases ``ModelVersionNotFound``; an invalid name, key,
    value, description, filter, ordering, ``max_results`` or page token ``InvalidValueError``.
    Times are epoch ms.
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
        """Rename a registered model; its versions, tags and aliases follow.

        Raises:
            AlreadyExistsError: A registered model is already named ``new_name``.
        """
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
        """Remove a tag from a registered model (nothing happens if it has no such tag)."""
        ...

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point an alias at a version (moving it if it exists).

        Raises:
            InvalidValueError: The alias is invalid or reserved (``latest``, ``v<number>``).
        """
        ...

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (nothing happens if the model has no such alias)."""
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
        """Return the newest version in each stage (or in the given stages).

        Raises:
            InvalidValueError: A stage is not None, Staging, Production or Archived.
        """
        ...

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to a stage, optionally archiving the others in that stage; the comment
        goes to the audit trail.

        Raises:
            InvalidValueError: Unknown stage, or ``archive_existing_versions`` with a stage other than
                Staging or Production.
        """
        ...

    def get_model_version_history(self, name: str, version: int | str) -> list[RegistryEvent]:
        """The audit trail of one version (who, when, what, old -> new, comment), newest first."""
        ...

    def get_registered_model_history(self, name: str) -> list[RegistryEvent]:
        """The audit trail of a registered model and its versions, newest first."""
        ...

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a tag on a model version."""
        ...

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a model version (nothing happens if it has no such tag)."""
        ...


class _Undeclared:
    """A store that does not subclass its base: every public attribute it has is its own, and the
    base's fallbacks fill in the capabilities it lacks (the one place that looks them up)."""

    _inner: Any

    def __init__(self, inner: object) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattribute__(self, name: str) -> Any:
        if not (name.startswith("__") or name == "_inner"):
            try:
                return getattr(object.__getattribute__(self, "_inner"), name)
            except AttributeError:
                pass
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_inner"), name, value)

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_inner"))


def _undeclared(base: type, store: object) -> Any:
    """Wrap ``store`` in a subclass of ``base`` named as the store's own class (messages name it)."""
    cls = type(store)
    view = type(cls.__name__, (_Undeclared, base), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return view(store)


def as_tracking_store(store: object) -> TrackingStore:
    """Return ``store`` as a :class:`TrackingStore`: itself when it subclasses it; otherwise a view
    of it (for stores written before the base class) whose missing capabilities are the fallbacks.

    >>> as_tracking_store(object()).flush() is None
    True
    """
    return store if isinstance(store, TrackingStore) else _undeclared(TrackingStore, store)  # type: ignore[no-any-return]


def as_artifact_store(store: object) -> ArtifactStore:
    """Return ``store`` as an :class:`ArtifactStore`, as :func:`as_tracking_store` does for tracking stores."""
    return store if isinstance(store, ArtifactStore) else _undeclared(ArtifactStore, store)  # type: ignore[no-any-return]
