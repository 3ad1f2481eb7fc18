"""``Client``: the explicit, complete API over one tracking store and its artifact stores.

Method names and signatures follow ``mlflow.MlflowClient`` so code moves over by changing an import.
The constructor does no I/O: the store connects on first use.

>>> import tempfile, fitscribe
>>> client = fitscribe.Client(tempfile.mkdtemp())
>>> run = client.create_run("0")
>>> client.log_metric(run.info.run_id, "loss", 0.5, step=1)
>>> client.get_run(run.info.run_id).data.metrics
{'loss': 0.5}
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe import _pending, run_context
from fitscribe._time import now_ms
from fitscribe.backends import FileInfo, get_artifact_store, get_tracking_store
from fitscribe.config import resolve_registry_uri, resolve_tracking_uri
from fitscribe.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from fitscribe.errors import ExperimentNotFound
from fitscribe.model_registry import RegistryClientMixin
from fitscribe.uri import check_relative_path
from fitscribe.validation import check_experiment_id

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore, TrackingStore

__all__ = ["Client"]



class Client(RegistryClientMixin):
    """Explicit access to experiments, runs, artifacts and the model registry of one tracking store.

    The model registry methods (``create_registered_model``, ``create_model_version``,
    ``get_model_version_by_alias``...) come from :class:`~fitscribe.model_registry.RegistryClientMixin`.

    Args:
        tracking_uri: Where runs are recorded: a folder (embedded SQLite store), ``sqlite:///``,
            ``postgresql://``, ``mysql://`` URI, or any scheme a plugin registers. Default: the
            URI set with ``fitscribe.set_tracking_uri``, else ``$FITSCRIBE_TRACKING_URI``, else
            ``$MLFLOW_TRACKING_URI``, else ``./fitruns``.
        artifact_uri: Artifact root for new experiments (default: ``$FITSCRIBE_ARTIFACT_URI``,
            else beside an embedded database).
        registry_uri: Where the model registry lives (default: ``fitscribe.set_registry_uri``,
            ``$FITSCRIBE_REGISTRY_URI``, ``$MLFLOW_REGISTRY_URI``, else the tracking store).
    """

    def __init__(self, tracking_uri: str | None = None, artifact_uri: str | None = None, *,
                 registry_uri: str | None = None) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.registry_uri = resolve_registry_uri(registry_uri, self.tracking_uri)
        self._artifact_uri = artifact_uri
        self._store: TrackingStore | None = None
        self._registry_client: Client | None = None
        self._artifact_uris: dict[str, str] = {}
        self._lock = threading.Lock()  # threads sharing a new Client build one store, not one each

    def __repr__(self) -> str:
        from fitscribe.uri import redact

        return f"Client(tracking_uri={redact(self.tracking_uri)!r})"

    @property
    def store(self) -> "TrackingStore":
        """The tracking store, built on first access."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from fitscribe.offline import store_uri

                    options = {"artifact_uri": self._artifact_uri} if self._artifact_uri else {}
                    self._store = get_tracking_store(store_uri(self.tracking_uri), **options)
        return self._store

    @property
    def _registry(self) -> Any:
        """The model registry: the tracking store's, or that of a separate ``registry_uri``."""
        _pending.settle()  # a version autolog registers in the background is there for the next read
        if self.registry_uri == self.tracking_uri:
            return RegistryClientMixin._registry.fget(self)  # type: ignore[attr-defined]
        if self._registry_client is None:
            with self._lock:
                if self._registry_client is None:
                    self._registry_client = Client(self.registry_uri)
        return self._registry_client._registry

    def close(self) -> None:
        """Flush pending writes and release the store's connections."""
        if self._registry_client is not None:
            self._registry_client.close()
        if self._store is not None:
            self.flush()
            self._store.close()

    def flush(self) -> None:
        """Block until everything logged so far is stored (immediate for database stores)."""
        if self._store is not None:
            self._store.flush()

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Create an experiment and return its id.

        Raises:
            AlreadyExistsError: The name is taken (by an active or deleted experiment).
        """
        str_tags = {k: str(v) for k, v in (tags or {}).items()}
        return self.store.create_experiment(name, artifact_location, str_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id.

        Raises:
            ExperimentNotFound: No experiment has this id.
        """
        _pending.settle()
        return self.store.get_experiment(check_experiment_id(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        _pending.settle()
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Return one page of experiments, e.g. ``filter_string="name LIKE 'mnist%'"``."""
        _pending.settle()
        return self.store.search_experiments(ViewType.parse(view_type), max_results, filter_string, order_by, page_token)

    def delete_experiment(self, experiment_id: str) -> None:
        """Move an experiment and its runs to the trash (restorable until purged)."""
        self.store.update_experiment(check_experiment_id(experiment_id), lifecycle_stage=LifecycleStage.DELETED.value)

    def restore_experiment(self, experiment_id: str) -> None:
        """Bring a deleted experiment and its runs back."""
        self.store.update_experiment(check_experiment_id(experiment_id), lifecycle_stage=LifecycleStage.ACTIVE.value)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self.store.update_experiment(check_experiment_id(experiment_id), new_name=new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self.store.update_experiment(check_experiment_id(experiment_id), tags={key: str(value)})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        self.store.delete_experiment_tag(check_experiment_id(experiment_id), key)  # type: ignore[attr-defined]

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run and return it. A run name is generated when none is given.

        Raises:
            ExperimentNotFound: No experiment has this id.
        """
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        run_name = run_name or all_tags.get(run_context.TAG_RUN_NAME) or run_context.generate_run_name()
        all_tags[run_context.TAG_RUN_NAME] = run_name
        user = all_tags.get(run_context.TAG_USER) or run_context.current_user()
        return self.store.create_run(
            check_experiment_id(experiment_id),
            user_id=user,
            start_time=start_time if start_time is not None else now_ms(),
            tags=[RunTag(k, v) for k, v in all_tags.items()],
            run_name=run_name,
        )

    def get_run(self, run_id: str) -> Run:
        """Return a run with its latest metrics, params, tags and inputs.

        Raises:
            RunNotFound: No run has this id.
        """
        _pending.settle()  # autolog's background work for a fit that returned is visible to every read
        return self.store.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        """Return the parent of a nested run, or None."""
        parent_id = self.get_run(run_id).data.tags.get(run_context.TAG_PARENT_RUN_ID)
        return self.get_run(parent_id) if parent_id else None

    def update_run(self, run_id: str, status: RunStatus | str | None = None, name: str | None = None) -> None:
        """Change a run's status or name."""
        self.store.update_run_info(
            run_id, status=RunStatus.parse(status) if status is not None else None, run_name=name
        )

    def set_terminated(self, run_id: str, status: RunStatus | str = "FINISHED", end_time: int | None = None) -> None:
        """End a run with a status (FINISHED, FAILED or KILLED) and an end time (now by default)."""
        self.store.update_run_info(
            run_id, status=RunStatus.parse(status), end_time=end_time if end_time is not None else now_ms()
        )

    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash (restorable until ``fitscribe gc`` purges it)."""
        self.store.update_run_info(run_id, lifecycle_stage=LifecycleStage.DELETED.value)

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back."""
        self.store.update_run_info(run_id, lifecycle_stage=LifecycleStage.ACTIVE.value)

    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        """Return the ids of deleted runs, only those deleted before ``older_than_ms`` if given."""
        _pending.settle()
        return self.store.deleted_run_ids(older_than_ms)

    def purge_experiment(self, experiment_id: str) -> None:
        """Erase a deleted experiment for good, once its runs are purged (``fitscribe gc`` does both).

        Raises:
            InvalidStateError: The experiment is not deleted, or still has runs.
        """
        self.store.purge_experiment(check_experiment_id(experiment_id))

    def purge_run(self, run_id: str) -> None:
        """Erase a deleted run for good: its artifacts first, then everything it recorded.

        Raises:
            InvalidStateError: The run is not deleted (``delete_run`` it first).
        """
        run = self.get_run(run_id)
        if run.info.lifecycle_stage != LifecycleStage.DELETED:
            from fitscribe.errors import InvalidStateError

            raise InvalidStateError(f"The run {run_id} is not deleted; delete it before purging it.")
        self._artifact_store(run_id).delete(None)
        self.store.purge_run(run_id)
        self._artifact_uris.pop(run_id, None)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: ViewType | str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs of one or more experiments.

        Args:
            experiment_ids: Experiment ids to search (several at once are fine).
            filter_string: e.g. ``"metrics.acc > 0.9 AND (params.model = 'rf' OR tags.best = 'yes')"``.
            run_view_type: ACTIVE_ONLY, DELETED_ONLY or ALL.
            max_results: Page size, 1 to 50,000.
            order_by: e.g. ``["metrics.acc DESC", "attributes.start_time"]``.
            page_token: ``token`` of the previous page.

        Raises:
            InvalidValueError: The filter or order_by is malformed (the message shows where).
        """
        given = [experiment_ids] if isinstance(experiment_ids, str) else experiment_ids
        ids = [check_experiment_id(e) for e in given]
        _pending.settle()
        return self.store.search_runs(
            ids, filter_string or None, ViewType.parse(run_view_type), max_results, order_by, page_token
        )

    # -- logging ------------------------------------------------------------------------------
    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        """Log a param (stored as a string) and return ``value``.

        Raises:
            InvalidValueError: The key is invalid, the value too long, or the param already has
                another value (params are write-once).
        """
        self.store.log_batch(run_id, params=[Param(key, str(value))])
        return value

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None
    ) -> None:
        """Log one metric point; NaN and +-inf are stored exactly.

        Args:
            run_id: The run.
            key: The metric name.
            value: A number.
            timestamp: Epoch milliseconds (default now).
            step: Training step (default 0).
        """
        ts = timestamp if timestamp is not None else now_ms()
        self.store.log_metric(run_id, Metric(key, value, ts, step or 0))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag (tags are mutable: a new value replaces the old one)."""
        self.store.log_batch(run_id, tags=[RunTag(key, str(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        self.store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Log metrics, params and tags at once, atomically."""
        del synchronous  # accepted for MLflow compatibility; database stores always write at once
        params = [Param(p.key, str(p.value)) for p in params]
        tags = [RunTag(tg.key, str(tg.value)) for tg in tags]
        self.store.log_batch(run_id, metrics, params, tags)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None) -> None:
        """Record datasets a run used."""
        self.store.log_inputs(run_id, list(datasets or ()))

    def log_input(
        self, run_id: str, dataset: Dataset, context: str | None = None, tags: dict[str, str] | None = None
    ) -> None:
        """Record one dataset, with its context (``"training"``, ``"evaluation"``...)."""
        input_tags = [InputTag(k, str(v)) for k, v in (tags or {}).items()]
        if context:
            input_tags.append(InputTag("mlflow.data.context", context))
        self.log_inputs(run_id, [DatasetInput(dataset, tuple(input_tags))])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of a metric, ordered by step then timestamp."""
        _pending.settle()
        return list(self.store.get_metric_history(run_id, key))

    # -- artifacts ----------------------------------------------------------------------------
    def _artifact_store(self, run_id: str) -> "ArtifactStore":
        _pending.settle()  # listing and downloading see the files autolog writes in the background
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self.get_run(run_id).info.artifact_uri
            self._artifact_uris[run_id] = uri
        return get_artifact_store(uri)

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        """Return the URI of a run's artifact root, or of a path inside it."""
        from fitscribe.uri import join_uri

        if run_id not in self._artifact_uris:
            self._artifact_uris[run_id] = self.get_run(run_id).info.artifact_uri
        root = self._artifact_uris[run_id]
        return join_uri(root, check_relative_path(artifact_path)) if artifact_path else root

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file (or folder) into the run's artifacts, under ``artifact_path``.

        Raises:
            NotFoundError: ``local_path`` does not exist.
            InvalidValueError: ``artifact_path`` is absolute or climbs out with ``..``.
        """
        path = check_relative_path(artifact_path) if artifact_path else None
        self._artifact_store(run_id).put(os.fspath(local_path), path or None)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy the contents of a local folder into the run's artifacts."""
        self.log_artifact(run_id, local_dir, artifact_path)

    def _log_generated(self, run_id: str, artifact_file: str, write: Any) -> None:
        artifact_file = check_relative_path(artifact_file, "artifact file")
        if not artifact_file:
            from fitscribe.errors import InvalidValueError

            raise InvalidValueError("artifact_file is empty; give a file name such as 'notes.txt'.")
        folder, filename = os.path.split(artifact_file)
        with tempfile.TemporaryDirectory(prefix="fitscribe-") as tmp:
            local = write(tmp, filename)
            self.log_artifact(run_id, local, folder or None)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Save ``text`` as an artifact file, e.g. ``"notes/summary.md"``."""
        from fitscribe.artifact_writers import write_text

        self._log_generated(run_id, artifact_file, lambda d, f: write_text(text, d, f))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Save a dict as JSON, or YAML when ``artifact_file`` ends in ``.yaml``/``.yml``."""
        from fitscribe.artifact_writers import write_dict

        self._log_generated(run_id, artifact_file, lambda d, f: write_dict(dictionary, d, f))

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Save a matplotlib (or plotly) figure as an artifact, e.g. ``"plots/loss.png"``."""
        from fitscribe.artifact_writers import write_figure

        self._log_generated(run_id, artifact_file, lambda d, f: write_figure(figure, d, f, **(save_kwargs or {})))

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None, key: str | None = None,
                  step: int | None = None, timestamp: int | None = None, synchronous: bool | None = None) -> None:
        """Save a numpy array or PIL image as the file ``artifact_file``, or (``key``, ``step``) as one
        frame of a time-stepped image series in MLflow's layout (see :mod:`fitscribe.image_series`).

        Raises:
            TypeError: Neither or both of ``artifact_file`` and ``key`` were given (as in MLflow).
            InvalidValueError: ``key`` has characters other than letters, digits, ``_-./`` and space.
        """
        from fitscribe import image_series

        image_series.check_arguments(artifact_file, key, step, timestamp)
        if artifact_file is None:
            assert key is not None
            image_series.log_frame(self, run_id, image, key, step, timestamp)
            return
        from fitscribe.artifact_writers import write_image

        self._log_generated(run_id, artifact_file, lambda d, f: write_image(image, d, f))

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Save a DataFrame or dict of columns as the table ``artifact_file`` (``.json`` or ``.parquet``)
        of a run in MLflow's format, appending to the rows already there (see :mod:`fitscribe.tables`).

        Raises:
            InvalidValueError: ``data`` is not a table, or the name does not end in .json or .parquet.
        """
        from fitscribe.tables import log_table

        log_table(self, run_id, data, artifact_file)

    def load_table(self, experiment_id: str, artifact_file: str, run_ids: Sequence[str] | None = None,
                   extra_columns: Sequence[str] | None = None) -> Any:
        """Return the table ``artifact_file`` of every run of the experiment that logged it (or of
        ``run_ids``) as one DataFrame, with ``extra_columns`` such as ``["run_id"]`` added per run.

        Raises:
            NotFoundError: No run has logged this table.
        """
        from fitscribe.tables import load_table

        return load_table(self, experiment_id, artifact_file, run_ids, extra_columns)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """List the files and folders directly under ``path`` in the run's artifacts."""
        rel = check_relative_path(path) if path else None
        return self._artifact_store(run_id).list(rel or None)

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Download an artifact file or folder (all artifacts for ``""``) and return its local path."""
        rel = check_relative_path(path) if path else ""
        dst = dst_path or tempfile.mkdtemp(prefix="fitscribe-download-")
        return self._artifact_store(run_id).get(rel, dst)

    def get_experiment_id(self, name: str, create: bool = False) -> str:
        """Return the id of the experiment named ``name`` (creating it if asked).

        Raises:
            ExperimentNotFound: No such experiment and ``create`` is False.
        """
        exp = self.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        if not create:
            raise ExperimentNotFound(f"No experiment is named {name!r}. Create it with create_experiment.")
        from fitscribe.errors import AlreadyExistsError

        try:
            return self.create_experiment(name)
        except AlreadyExistsError:  # created meanwhile by another process
            found = self.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

