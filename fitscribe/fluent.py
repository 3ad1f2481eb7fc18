"""The fluent API: ``start_run``, ``log_metric``... on the current run, delegating to a ``Client``.

The current run stack lives in a ``ContextVar`` (each thread and asyncio task has its own, as with
MLflow's thread-local stack). The tracking URI set by ``set_tracking_uri`` (kept in ``config``, so
``Client()`` sees it too) and the experiment set by ``set_experiment`` are process-wide.
``reset()`` puts everything back, for tests.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Sequence

from fitscribe import config, run_context
from fitscribe._time import now_ms
from fitscribe.client import Client
from fitscribe.config import ENV_EXPERIMENT_ID, ENV_EXPERIMENT_NAME, ENV_RUN_ID, resolve_registry_uri, resolve_tracking_uri
from fitscribe.entities import (
    Dataset,
    Experiment,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from fitscribe.errors import ExperimentNotFound, InvalidStateError, InvalidValueError

__all__ = [
    "ActiveRun",
    "set_tracking_uri",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "set_registry_uri",
    "get_registry_uri",
    "set_experiment",
    "get_client",
    "start_run",
    "end_run",
    "active_run",
    "last_active_run",
    "reset",
]


class ActiveRun(Run):
    """The run returned by :func:`start_run`; as a context manager it ends the run on exit.

    The run ends FINISHED, FAILED if the block raises, or KILLED on KeyboardInterrupt. A run that
    the block already ended (``end_run("KILLED")``) is left as it is.
    """

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if any(r.info.run_id == self.info.run_id for r in _STACK.get()):
            _end_run_id(self.info.run_id, status)


class _Process:
    """Process-wide fluent settings and the registry of open runs (ended at exit)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.experiment_id: str | None = None
        self.clients: dict[tuple[str, str], Client] = {}
        self.open_runs: dict[str, Client] = {}
        self.last_run_id: str | None = None
        self.last_client: Client | None = None
        self.exit_hooks = False
        self.uncaught: type[BaseException] | None = None

    def client(self, uri: str | None = None) -> Client:
        uri = resolve_tracking_uri(uri)
        key = (uri, resolve_registry_uri(None, uri))
        with self.lock:
            if key not in self.clients:
                self.clients[key] = Client(uri)  # resolves the same registry URI
            return self.clients[key]

    def install_exit_hooks(self) -> None:
        if self.exit_hooks:
            return
        self.exit_hooks = True
        atexit.register(_end_open_runs_at_exit)
        previous = sys.excepthook

        def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            self.uncaught = exc_type
            previous(exc_type, exc, tb)

        sys.excepthook = hook


_PROCESS = _Process()
_STACK: ContextVar[tuple[ActiveRun, ...]] = ContextVar("fitscribe_run_stack", default=())


def reset() -> None:
    """End no runs, but forget the current runs, tracking URI and experiment (for tests)."""
    global _PROCESS
    for client in _PROCESS.clients.values():
        client.close()
    hooks = _PROCESS.exit_hooks
    config.reset()
    _PROCESS = _Process()
    _PROCESS.exit_hooks = hooks
    _STACK.set(())


def _end_open_runs_at_exit() -> None:
    uncaught = _PROCESS.uncaught
    if uncaught is None:
        status = RunStatus.FINISHED
    elif issubclass(uncaught, KeyboardInterrupt):
        status = RunStatus.KILLED
    else:
        status = RunStatus.FAILED
    for run_id, client in list(_PROCESS.open_runs.items()):
        try:
            client.set_terminated(run_id, status)
            client.flush()
        except Exception:  # at exit, a store error must not mask the user's own exit status
            pass
    _PROCESS.open_runs.clear()


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Set where runs are recorded, for the whole process: the fluent API, ``Client()``, autolog,
    flavors and the CLI in this process, and (through ``MLFLOW_TRACKING_URI`` and
    ``FITSCRIBE_TRACKING_URI``) child processes. It overrides the environment; None undoes it."""
    config.set_tracking_uri(os.fspath(uri) if uri is not None else None)


def get_tracking_uri() -> str:
    """Return the tracking URI the fluent API and ``Client()`` use now."""
    return resolve_tracking_uri()


def is_tracking_uri_set() -> bool:
    """Return True when a tracking URI was set with ``set_tracking_uri`` or the environment."""
    return bool(config.current_tracking_uri() or config.env_value(config.ENV_TRACKING_URI))


def set_registry_uri(uri: str | os.PathLike[str] | None) -> None:
    """Set where the model registry lives, for the whole process (default: the tracking URI)."""
    config.set_registry_uri(os.fspath(uri) if uri is not None else None)


def get_registry_uri() -> str:
    """Return the model registry URI used now (the tracking URI unless one was set)."""
    return resolve_registry_uri()


def get_client() -> Client:
    """Return the ``Client`` the fluent API uses for the current tracking URI."""
    return _PROCESS.client()


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current for new runs, creating it by name if needed; return it.

    Raises:
        InvalidValueError: Neither or both of name and id were given.
        ExperimentNotFound: ``experiment_id`` names no experiment.
        InvalidStateError: The experiment is deleted.
    """
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidValueError("Give exactly one of experiment_name and experiment_id.")
    client = get_client()
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        assert experiment_name is not None
        exp = client.get_experiment(client.get_experiment_id(experiment_name, create=True))
    if exp.lifecycle_stage != "active":
        raise InvalidStateError(
            f"The experiment {exp.name!r} is deleted; restore it (fitscribe experiments restore "
            f"{exp.experiment_id}) or use another name."
        )
    _PROCESS.experiment_id = exp.experiment_id
    return exp


def _current_experiment_id(client: Client) -> str:
    if _PROCESS.experiment_id is not None:
        return _PROCESS.experiment_id
    from_env = _experiment_id_from_env(client)
    if from_env is not None:
        return from_env
    try:
        return client.get_experiment("0").experiment_id
    except ExperimentNotFound:
        return client.get_experiment_id("Default", create=True)


def _experiment_id_from_env(client: Client) -> str | None:
    """The experiment named by ``$FITSCRIBE_EXPERIMENT_NAME`` (created if missing) or
    ``$FITSCRIBE_EXPERIMENT_ID`` (or their ``MLFLOW_`` twins), checked to agree; None if unset."""
    name, exp_id = config.env_value(ENV_EXPERIMENT_NAME), config.env_value(ENV_EXPERIMENT_ID)
    id_var = config.env_source(ENV_EXPERIMENT_ID)
    if name:
        found = client.get_experiment_id(name, create=True)
        if exp_id and exp_id != found:
            raise InvalidValueError(
                f"{id_var}={exp_id!r} does not match the experiment {name!r} named by "
                f"{config.env_source(ENV_EXPERIMENT_NAME)} (id {found}); unset one of them."
            )
        return found
    if exp_id:
        try:
            return client.get_experiment(exp_id).experiment_id
        except ExperimentNotFound:
            raise ExperimentNotFound(
                f"{id_var}={exp_id!r} names no experiment in {client!r}; set it to an existing id or "
                "unset it."
            ) from None
    return None


def _run_id_from_env() -> str | None:
    """Take the run to resume from ``$FITSCRIBE_RUN_ID`` / ``$MLFLOW_RUN_ID`` and remove both."""
    run_id = config.env_value(ENV_RUN_ID)
    if run_id:
        os.environ.pop(ENV_RUN_ID, None)
        os.environ.pop(config.MLFLOW_TWINS[ENV_RUN_ID], None)
    return run_id or None


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it current; use it as a context manager.

    Args:
        run_id: Resume this existing run instead of creating one (its status goes back to RUNNING).
            Default: ``$FITSCRIBE_RUN_ID`` or ``$MLFLOW_RUN_ID``, removed from the environment
            once used.
        experiment_id: Experiment of the new run (default: the one set by ``set_experiment``, then
            ``$FITSCRIBE_EXPERIMENT_NAME``, then ``$FITSCRIBE_EXPERIMENT_ID`` (or the ``MLFLOW_``
            twins), then ``Default``).
        run_name: A name; a memorable one is generated if omitted.
        nested: Allow starting a child of the current run (its parent is the current run).
        parent_run_id: Make the new run a child of this run.
        tags: Tags to set on the run.
        description: Free text, stored as the ``mlflow.note.content`` tag.
        log_system_metrics: Accepted for MLflow's signature; fitscribe records no system metrics.

    Raises:
        InvalidStateError: A run is already active and ``nested`` is False, or ``run_id`` is deleted.
        RunNotFound: ``run_id`` names no run.
    """
    stack = _STACK.get()
    if stack and not nested and parent_run_id is None:
        raise InvalidStateError(
            f"Run {stack[-1].info.run_id} is already active. End it with fitscribe.end_run(), or "
            "start a child run with start_run(nested=True)."
        )
    client = get_client()
    run_id = run_id or _run_id_from_env()
    if run_id is not None:
        run = _resume(client, run_id, tags, description)
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
        all_tags = run_context.system_tags()
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        if parent:
            all_tags[run_context.TAG_PARENT_RUN_ID] = parent
        if description:
            all_tags[run_context.TAG_NOTE] = description
        exp_id = str(experiment_id) if experiment_id is not None else _current_experiment_id(client)
        run = client.create_run(exp_id, tags=all_tags, run_name=run_name)
    active = ActiveRun(run.info, run.data, run.inputs)
    _STACK.set(stack + (active,))
    with _PROCESS.lock:
        _PROCESS.open_runs[active.info.run_id] = client
        _PROCESS.install_exit_hooks()
    return active


def _resume(client: Client, run_id: str, tags: dict[str, Any] | None, description: str | None) -> Run:
    if client.get_run(run_id).info.lifecycle_stage != "active":
        raise InvalidStateError(
            f"Cannot resume run {run_id}: it is deleted. Restore it first (fitscribe.restore_run("
            f"{run_id!r}) or `fitscribe runs restore {run_id}`), or start a new run."
        )
    extra = {k: str(v) for k, v in (tags or {}).items()}
    if description:
        extra[run_context.TAG_NOTE] = description
    if extra:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in extra.items()])
    client.update_run(run_id, status=RunStatus.RUNNING)
    return client.get_run(run_id)


def _end_run_id(run_id: str, status: RunStatus) -> None:
    stack = _STACK.get()
    client = _PROCESS.open_runs.pop(run_id, None) or get_client()
    # A run ended while children are still open ends them too (innermost first).
    if any(r.info.run_id == run_id for r in stack):
        while stack:
            top = stack[-1]
            stack = stack[:-1]
            if top.info.run_id == run_id:
                break
            child_client = _PROCESS.open_runs.pop(top.info.run_id, client)
            child_client.set_terminated(top.info.run_id, status)
        _STACK.set(stack)
    client.set_terminated(run_id, status)
    client.flush()
    _PROCESS.last_run_id = run_id
    _PROCESS.last_client = client


def _detach_run(run_id: str) -> None:
    """Take a run off the current stack without ending it (autolog ends it in the background)."""
    stack = _STACK.get()
    if stack and stack[-1].info.run_id == run_id:
        _STACK.set(stack[:-1])
    client = _PROCESS.open_runs.pop(run_id, None) or get_client()
    _PROCESS.last_run_id = run_id
    _PROCESS.last_client = client


def _wait_for_autolog() -> None:
    session = sys.modules.get("fitscribe.autolog._session")
    if session is not None:
        session.DEFERRED.wait()


def end_run(status: RunStatus | str = "FINISHED") -> None:
    """End the current run (no-op if there is none) with FINISHED, FAILED or KILLED."""
    stack = _STACK.get()
    if stack:
        _end_run_id(stack[-1].info.run_id, RunStatus.parse(status))


def active_run() -> ActiveRun | None:
    """Return the current run, or None."""
    stack = _STACK.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """Return the current run, else the run most recently ended in this process, re-read from the store."""
    current = active_run()
    if current is not None:
        return get_client().get_run(current.info.run_id)
    if _PROCESS.last_run_id is None or _PROCESS.last_client is None:
        return None
    _wait_for_autolog()
    return _PROCESS.last_client.get_run(_PROCESS.last_run_id)


def _run_id() -> str:
    """Return the current run's id, starting a run if none is active (as MLflow does)."""
    current = active_run()
    if current is None:
        current = start_run()
    return current.info.run_id


def _client_for_current() -> Client:
    current = active_run()
    if current is not None and current.info.run_id in _PROCESS.open_runs:
        return _PROCESS.open_runs[current.info.run_id]
    return get_client()


def _target(run_id: str | None) -> tuple[str, Client]:
    """The run to log into (``run_id``, else the current run, started if needed) and its client."""
    if run_id is None:
        return _run_id(), _client_for_current()
    return run_id, _PROCESS.open_runs.get(run_id) or get_client()


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param on the current run and return ``value`` (params are write-once strings).

    ``synchronous`` is accepted for MLflow's signature: every call is durable when it returns.
    """
    run_id = _run_id()
    return _client_for_current().log_param(run_id, key, value)


def log_params(params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    """Log several params on the current run (or ``run_id``) at once."""
    run_id, client = _target(run_id)
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_metric(key: str, value: float, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, model_id: str | None = None,
               dataset: Any = None) -> None:
    """Log a metric point on the current run (or ``run_id``); NaN and +-inf are stored exactly.

    The arguments are MLflow's, in its order; ``synchronous`` (every call is durable when it
    returns), ``model_id`` and ``dataset`` (MLflow 3's LoggedModel links) are accepted and ignored.
    """
    run_id, client = _target(run_id)
    client.log_metric(run_id, key, value, timestamp=timestamp, step=step)


def log_metrics(metrics: dict[str, float], step: int | None = None, synchronous: bool | None = None,
                run_id: str | None = None, timestamp: int | None = None, model_id: str | None = None,
                dataset: Any = None) -> None:
    """Log several metrics on the current run (or ``run_id``) at one step, atomically (MLflow's
    arguments, as :func:`log_metric`)."""
    run_id, client = _target(run_id)
    ts = timestamp if timestamp is not None else now_ms()
    points = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]
    client.log_batch(run_id, metrics=points)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the current run."""
    run_id = _run_id()
    _client_for_current().set_tag(run_id, key, value)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags on the current run at once."""
    run_id = _run_id()
    _client_for_current().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def delete_tag(key: str) -> None:
    """Remove a tag from the current run."""
    run_id = _run_id()
    _client_for_current().delete_tag(run_id, key)


def log_artifact(local_path: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Copy a local file into the current run's (or ``run_id``'s) artifacts, under ``artifact_path``."""
    run_id, client = _target(run_id)
    client.log_artifact(run_id, local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Copy a local folder's contents into the current run's (or ``run_id``'s) artifacts."""
    run_id, client = _target(run_id)
    client.log_artifacts(run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Save text as an artifact of the current run (or ``run_id``)."""
    run_id, client = _target(run_id)
    client.log_text(run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a dict as a JSON or YAML artifact of the current run (or ``run_id``)."""
    run_id, client = _target(run_id)
    client.log_dict(run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None) -> None:
    """Save a matplotlib or plotly figure as an artifact of the current run."""
    run_id = _run_id()
    _client_for_current().log_figure(run_id, figure, artifact_file, save_kwargs=save_kwargs)


def log_image(image: Any, artifact_file: str) -> None:
    """Save a numpy array or PIL image as an artifact of the current run."""
    run_id = _run_id()
    _client_for_current().log_image(run_id, image, artifact_file)


def log_input(dataset: Dataset, context: str | None = None, tags: dict[str, str] | None = None) -> None:
    """Record a dataset used by the current run, e.g. ``context="training"``."""
    run_id = _run_id()
    _client_for_current().log_input(run_id, dataset, context, tags)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """Return the URI of the current run's artifact root, or of a path inside it."""
    run_id = _run_id()
    return _client_for_current().get_artifact_uri(run_id, artifact_path)


def flush() -> None:
    """Block until everything logged so far by the fluent API and autolog is stored."""
    _wait_for_autolog()
    for client in list(_PROCESS.clients.values()):
        client.flush()
