"""``RestTrackingStore``: the tracking store and model registry of a tracking server, over MLflow's REST API.

Reads and other writes are one request each. Metrics, params and tags go through the background
write queue (:mod:`.queue`), so ``log_metric`` costs microseconds; what the client can check is
checked before queueing (keys, values, a run that does not exist or is deleted, a param changing
value), so those errors are raised at once. What only the server can refuse is raised by
:meth:`RestTrackingStore.flush` (and by ending the run). Every read flushes the queue first, so a
process always reads what it logged.

A server that goes away never stops training: after about 3 s of retries the writes go to a local
journal (:mod:`.journal`), and so does ending a run (``runs/update``, in order after its writes);
``flush`` then warns once per outage instead of raising. The journal is replayed as soon as the
server answers again, by this process, by the next process logging to the same server, or by
``fitscribe sync``; what is still waiting when the process exits is reported in a warning naming the
journal file. Each batch carries a request id, so a batch whose answer was lost is not stored twice.

Durability promise: a write is durable (survives a crash of this process) once it is sent and
answered, or journaled (written and fsynced). Until then it is in memory: normally for at most the
50 ms batching interval plus one request; while the server is failing, for up to the 3 s retry
budget (plus one request timeout, 15 s, for a server that accepts connections and never answers)
before it is journaled. A process killed by a signal (SIGKILL, the OOM killer, an unhandled
SIGTERM) loses those; any other exit runs the exit hook, which sends or journals everything.
"""

from __future__ import annotations

import atexit
import json
import warnings
from dataclasses import replace
from typing import Any, Sequence

from fitscribe import validation as v
from fitscribe import wire
from fitscribe.backends.base import TrackingStore
from fitscribe.backends.model_history import check_entry
from fitscribe.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from fitscribe.errors import ConfigError, FitscribeWarning, InvalidStateError, InvalidValueError, NotFoundError
from fitscribe.uri import redact

from .artifacts import PROXY_SCHEME, proxy_http_uri, proxy_scheme_uri
from .http import IDEMPOTENT, SAFE, HttpSession, ServerUnavailableError
from .journal import RestJournal
from .logged_models import RestLoggedModelsMixin
from .queue import WriteQueue
from .registry import RestRegistryMixin

__all__ = ["RestTrackingStore", "create_store"]

HISTORY_PAGE = 25_000
_INT64 = v.MAX_INT64


def create_store(uri: str, **options: Any) -> "RestTrackingStore":
    """Factory registered for the ``http`` and ``https`` tracking schemes.

    Args:
        uri: The server's URL, e.g. ``http://127.0.0.1:5000`` (a path prefix is kept).
        **options: ``timeout`` (s), ``journal_dir``; ``artifact_uri`` is accepted and ignored (the
            server chooses artifact locations).
    """
    return RestTrackingStore(uri, timeout=options.get("timeout", 60.0), journal_dir=options.get("journal_dir"))


def _param_conflict(run_id: str, key: str, old: str, new: str, *, same_batch: bool) -> InvalidValueError:
    """The error for a param changing value (the database stores' wording)."""
    if same_batch:
        return InvalidValueError(f"The param {key!r} appears twice in one batch with different values "
                                 f"{old!r} and {new!r}; params are write-once.")
    return InvalidValueError(
        f"The param {key!r} of run {run_id} is already {old!r}; it cannot change to {new!r}. Params are "
        "write-once: log the new value under another key, or start a new run."
    )


class RestTrackingStore(RestRegistryMixin, RestLoggedModelsMixin, TrackingStore):
    """A :class:`~fitscribe.backends.base.TrackingStore` and ``ModelRegistryStore`` on a tracking server.

    The constructor does no I/O; one ``httpx.Client`` is opened on the first request.

    Args:
        uri: ``http(s)://[user:password@]host[:port][/prefix]``.
        timeout: Seconds to wait for an answer.
        journal_dir: Where unsent writes are kept while the server is down (default
            ``$FITSCRIBE_REST_JOURNAL_DIR``, else ``~/.cache/fitscribe/rest-journal``).

    Raises:
        ConfigError: ``uri`` is not an http(s) URL.
    """

    def __init__(self, uri: str, *, timeout: float = 60.0, journal_dir: str | None = None) -> None:
        self.uri = uri
        self._session = HttpSession(uri, timeout=timeout)
        self.base_url = self._session.base_url
        self._queue = WriteQueue(self._session, RestJournal(self.base_url, journal_dir),
                                 on_rejected=self._forget_params)
        self._active_runs: set[str] = set()
        self._params: dict[str, dict[str, str]] = {}
        self._metric_keys: set[str] = set()
        self._infos: dict[str, RunInfo] = {}  # the last known info of each run, for ending one offline
        self._exit_hook = False
        self._warned_outage = 0

    def __repr__(self) -> str:
        return f"RestTrackingStore({redact(self.uri)!r})"

    @property
    def registry(self) -> "RestTrackingStore":
        """The model registry: this store itself (the server serves both)."""
        return self

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None, *,
              params: dict[str, Any] | None = None, retry: str | None = SAFE, drain: bool = True) -> dict[str, Any]:
        """Send one RPC, after the queued writes (so the server has them)."""
        if drain:
            self._queue.drain()
        return self._session.call(method, endpoint, body, params=params, retry=retry)

    def _get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", endpoint, params={k: val for k, val in params.items() if val is not None},
                          retry=IDEMPOTENT)

    def _artifact_uri(self, uri: str) -> str:
        """Proxy URIs as explicit URLs of this server, so any artifact store call can reach it."""
        return proxy_http_uri(uri, self.base_url) if uri.startswith(f"{PROXY_SCHEME}:") else uri

    def _experiment(self, obj: dict[str, Any]) -> Experiment:
        exp = wire.experiment_from_json(obj)
        return replace(exp, artifact_location=self._artifact_uri(exp.artifact_location))

    def _info(self, obj: dict[str, Any]) -> RunInfo:
        info = wire.run_info_from_json(obj)
        return replace(info, artifact_uri=self._artifact_uri(info.artifact_uri))

    def _run(self, obj: dict[str, Any]) -> Run:
        run = wire.run_from_json(obj)
        return replace(run, info=replace(run.info, artifact_uri=self._artifact_uri(run.info.artifact_uri)))

    def flush(self) -> None:
        """Send everything queued, and what waits in the journal if the server answers.

        With the server unreachable nothing is raised (training goes on): the writes wait in the
        journal, a :class:`~fitscribe.errors.FitscribeWarning` says where (once per outage), and
        they are sent when the server answers again.

        Raises:
            FitscribeError: A batch the server refused (its message), e.g. a param changing value.
        """
        self._install_exit_hook()
        self._queue.flush(raise_waiting=False)
        if self._queue.waiting() and self._warned_outage != self._queue.outages:
            self._warned_outage = self._queue.outages
            warnings.warn(self._queue.offline_message(), FitscribeWarning, stacklevel=2)

    def sync(self) -> int:
        """Send what waits in this server's journal (this process's and orphaned files) now.

        Returns:
            The bytes of journal the server took.

        Raises:
            ServerUnavailableError: The server is still unreachable (the writes stay in the journal).
            FitscribeError: A batch the server refused (its message).
        """
        self._install_exit_hook()
        before = self._queue.journal.bytes_on_disk()
        self._queue.flush()
        return before - self._queue.journal.bytes_on_disk()

    def pending(self) -> bool:
        """Return True when writes wait in the journal for an unreachable server."""
        return self._queue.waiting()

    def close(self) -> None:
        """Send (or journal) what is queued and close the connections; the store can be used again.

        Errors no flush reported, and writes left in the journal, are reported as warnings.
        """
        if self._exit_hook:
            atexit.unregister(self._at_exit)
            self._exit_hook = False
        self._finish(stacklevel=3)

    def _finish(self, stacklevel: int) -> None:
        waiting = self._queue.close()
        self._session.close()
        for error in self._queue.take_errors():
            warnings.warn(f"A write to {self.base_url} was lost: {error}", FitscribeWarning, stacklevel=stacklevel)
        if waiting:
            warnings.warn(waiting, FitscribeWarning, stacklevel=stacklevel)

    def _install_exit_hook(self) -> None:
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """At interpreter exit: send or journal what is queued, and warn about what failed."""
        self._exit_hook = False
        self._finish(stacklevel=1)

    # -- experiments -----------------------------------------------------------------------------
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        """Create an experiment and return its id (``AlreadyExistsError`` if the name is taken)."""
        body: dict[str, Any] = {"name": v.check_experiment_name(name)}
        if artifact_location:
            body["artifact_location"] = proxy_scheme_uri(artifact_location, self.base_url)
        if tags:
            body["tags"] = wire.key_values_to_json(tags)
        return str(self._call("POST", "experiments/create", body, drain=False)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id (``ExperimentNotFound`` if none)."""
        return self._experiment(self._get("experiments/get", experiment_id=str(experiment_id))["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        try:
            return self._experiment(self._get("experiments/get-by-name", experiment_name=name)["experiment"])
        except NotFoundError:
            return None

    def search_experiments(self, view_type: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        """Return one page of experiments."""
        body = {"view_type": ViewType.parse(view_type).value, "max_results": max_results, "filter": filter_string,
                "order_by": list(order_by or []), "page_token": page_token}
        answer = self._call("POST", "experiments/search", _compact(body), retry=IDEMPOTENT, drain=False)
        return PagedList([self._experiment(e) for e in answer.get("experiments") or ()], answer.get("next_page_token"))

    def update_experiment(self, experiment_id: str, *, new_name: str | None = None,
                          lifecycle_stage: str | None = None, tags: dict[str, str] | None = None) -> None:
        """Delete or restore (``lifecycle_stage``), rename, or set tags on an experiment."""
        exp_id = str(experiment_id)
        if lifecycle_stage is not None:
            deleting = LifecycleStage.parse(lifecycle_stage) is LifecycleStage.DELETED
            endpoint = "experiments/delete" if deleting else "experiments/restore"
            self._call("POST", endpoint, {"experiment_id": exp_id})
            self._active_runs.clear()  # its runs changed stage too
        if new_name is not None:
            self._call("POST", "experiments/update", {"experiment_id": exp_id, "new_name": v.check_experiment_name(new_name)})
        for key, value in (tags or {}).items():
            self._call("POST", "experiments/set-experiment-tag", {"experiment_id": exp_id, "key": key, "value": value},
                       retry=IDEMPOTENT, drain=False)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        self._call("POST", "experiments/delete-experiment-tag", {"experiment_id": str(experiment_id), "key": key},
                   drain=False)

    # -- runs ------------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, user_id: str, start_time: int, tags: Sequence[RunTag] = (),
                   run_name: str | None = None) -> Run:
        """Create a RUNNING run and return it."""
        body: dict[str, Any] = {"experiment_id": str(experiment_id), "user_id": user_id, "start_time": start_time,
                                "tags": wire.tags_to_json(list(tags))}
        if run_name:
            body["run_name"] = v.check_run_name(run_name)
        run = self._run(self._call("POST", "runs/create", body, drain=False)["run"])
        self._active_runs.add(run.info.run_id)
        self._infos[run.info.run_id] = run.info
        return run

    def get_run(self, run_id: str) -> Run:
        """Return a run with its latest metrics, params, tags and inputs (``RunNotFound`` if none)."""
        run = self._run(self._get("runs/get", run_id=run_id)["run"])
        self._infos[run_id] = run.info
        return run

    def update_run_info(self, run_id: str, *, status: RunStatus | None = None, end_time: int | None = None,
                        run_name: str | None = None, lifecycle_stage: str | None = None) -> RunInfo:
        """Change a run's status, end time, name or lifecycle stage; queued writes are sent first.

        With the server unreachable, a change of status, end time or name (ending a run) is queued
        behind the run's writes and journaled with them, and the info returned is the last known one
        with the change applied. Deleting or restoring a run needs the server.

        Raises:
            FitscribeError: A queued batch the server refused (raised after the update is made).
            ServerUnavailableError: Deleting or restoring a run while the server is unreachable.
        """
        v.check_run_id(run_id)
        self._queue.drain()
        self._active_runs.discard(run_id)
        if lifecycle_stage is not None:
            deleting = LifecycleStage.parse(lifecycle_stage) is LifecycleStage.DELETED
            endpoint = "runs/delete" if deleting else "runs/restore"
            self._call("POST", endpoint, {"run_id": run_id}, retry=IDEMPOTENT)
        if status is None and end_time is None and run_name is None:
            info = self.get_run(run_id).info
        else:
            body = _compact({"run_id": run_id, "status": RunStatus.parse(status).value if status else None,
                             "end_time": end_time, "run_name": v.check_run_name(run_name)})
            info = self._update(run_id, body)
        if info.status.is_terminated:
            self._params.pop(run_id, None)
        self._queue.raise_refused()
        return info

    def _update(self, run_id: str, body: dict[str, Any]) -> RunInfo:
        """POST runs/update now; with the server unreachable, journal it behind the run's writes."""
        if self._queue.online:
            try:
                info = self._info(self._call("POST", "runs/update", body, retry=IDEMPOTENT, drain=False)["run_info"])
            except ServerUnavailableError as exc:
                self._queue.mark_offline(exc)
            else:
                self._infos[run_id] = info
                return info
        self._install_exit_hook()
        self._queue.put_request("runs/update", body)
        self._queue.drain()  # journaled (or sent, if the server is back) before returning
        known = self._infos.get(run_id) or RunInfo(run_id, "", None, "", RunStatus.RUNNING, 0, None, "")
        return replace(known, status=RunStatus.parse(body["status"]) if "status" in body else known.status,
                       end_time=body.get("end_time", known.end_time), run_name=body.get("run_name", known.run_name))

    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        """Return the ids of deleted runs, over every experiment (``older_than_ms`` needs the database).

        Raises:
            ConfigError: ``older_than_ms`` was given: the REST API does not tell when a run was deleted.
        """
        if older_than_ms is not None:
            raise ConfigError("When runs were deleted is not available over REST; run `fitscribe gc` with the "
                              "database URI (--backend-store-uri) on the server's machine.")
        experiment_ids = [e.experiment_id for e in _all_pages(
            lambda token: self.search_experiments(ViewType.ALL, 1000, page_token=token))]
        if not experiment_ids:
            return []
        runs = _all_pages(lambda token: self.search_runs(experiment_ids, None, ViewType.DELETED_ONLY, 1000,
                                                         page_token=token))
        return [r.info.run_id for r in runs]

    def purge_run(self, run_id: str) -> None:
        """Not available over REST (MLflow's API has no purge).

        Raises:
            ConfigError: Always; purge with the database URI on the server's machine.
        """
        raise ConfigError(f"Purging runs is not available over REST ({self.base_url}); run `fitscribe gc` with "
                          "the database URI (--backend-store-uri) on the server's machine.")

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str | None = None,
                    run_view_type: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[Run]:
        """Return one page of runs matching the filter, sorted by ``order_by``."""
        body = {"experiment_ids": [str(e) for e in experiment_ids], "filter": filter_string,
                "run_view_type": ViewType.parse(run_view_type).value, "max_results": max_results,
                "order_by": list(order_by or []), "page_token": page_token}
        answer = self._call("POST", "runs/search", _compact(body), retry=IDEMPOTENT)
        return PagedList([self._run(r) for r in answer.get("runs") or ()], answer.get("next_page_token"))

    # -- logging ---------------------------------------------------------------------------------
    def _check_active(self, run_id: str) -> None:
        """Check once per run that it exists and is active, so logging to it can be queued.

        With the server unreachable the run is taken on trust (the writes are journaled, and the
        server refuses them later if the run is gone), so a training loop is never held up by it.
        """
        if run_id in self._active_runs:
            return
        v.check_run_id(run_id)
        self._install_exit_hook()
        if self._queue.online:
            try:
                run = self.get_run(run_id)
            except ServerUnavailableError:
                pass
            else:
                if run.info.lifecycle_stage != LifecycleStage.ACTIVE.value:
                    raise InvalidStateError(
                        f"The run {run_id} is deleted; restore it (Client.restore_run) before logging to it."
                    )
        self._active_runs.add(run_id)

    def _metric_row(self, run_id: str, m: Metric) -> tuple[str, str, float, int, int]:
        """Validate one point into a queue row."""
        key, value, timestamp, step = m.key, m.value, m.timestamp, m.step
        if key not in self._metric_keys:
            self._metric_keys.add(v.check_key(key, "metric key"))
        if type(value) is not float:
            value = v.check_metric_value(key, value)
        if type(timestamp) is not int or not 0 <= timestamp <= _INT64:
            timestamp = v.check_int(timestamp, "timestamp")
            if timestamp < 0:
                raise InvalidValueError(f"The timestamp {timestamp} of metric {key!r} is negative; give epoch milliseconds.")
        if type(step) is not int or not -_INT64 <= step <= _INT64:
            step = v.check_int(step, "step")
        return run_id, key, value, timestamp, step

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Queue one metric point (checked now; sent within about 50 ms)."""
        if run_id not in self._active_runs:
            self._check_active(run_id)
        self._queue.put_metric(*self._metric_row(run_id, metric))

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = ()) -> None:
        """Queue metrics, params and tags (all checked first: nothing is queued if one is invalid).

        Raises:
            RunNotFound: No run has this id.
            InvalidStateError: The run is deleted.
            InvalidValueError: A key or value is invalid, or a param this store logged changes value.
        """
        self._check_active(run_id)
        rows = [self._metric_row(run_id, m) for m in metrics]
        checked_params = [(v.check_key(p.key, "param key"), v.check_param_value(p.key, p.value)) for p in params]
        checked_tags = [(v.check_key(t.key, "tag key"), v.check_tag_value(t.key, t.value)) for t in tags]
        self._remember_params(run_id, checked_params)
        self._queue.put(run_id, rows, checked_params, checked_tags)

    def _remember_params(self, run_id: str, params: list[tuple[str, str]]) -> None:
        """Refuse a param this store already logged with another value; remember the new ones."""
        known = self._params.setdefault(run_id, {})
        batch: dict[str, str] = {}
        for key, value in params:
            old = batch.get(key, known.get(key))
            if old is not None and old != value:
                raise _param_conflict(run_id, key, old, value, same_batch=key in batch)
            batch[key] = value
        known.update(batch)

    def _forget_params(self, body: dict[str, Any]) -> None:
        """Forget the params of a batch the server refused (they were not stored)."""
        known = self._params.get(str(body.get("run_id")), {})
        for item in body.get("params") or ():
            if known.get(item["key"]) == item["value"]:
                del known[item["key"]]

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run (``NotFoundError`` if it has none)."""
        self._call("POST", "runs/delete-tag", {"run_id": v.check_run_id(run_id), "key": key})

    def record_logged_model(self, run_id: str, entry: dict[str, Any]) -> None:
        """Append a logged model to the run's ``mlflow.log-model.history`` tag on the server.

        Sent now (``runs/log-model``), after the run's queued writes, and not retried once the
        server may have acted on it (an append applied twice would list the model twice).

        Raises:
            RunNotFound: No run has this id.
            InvalidStateError: The run is deleted.
            InvalidValueError: The entry is invalid, or too long to fit the tag.
        """
        body = {"run_id": v.check_run_id(run_id), "model_json": json.dumps(check_entry(entry))}
        self._call("POST", "runs/log-model", body)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets used by a run."""
        body = {"run_id": v.check_run_id(run_id), "datasets": [wire.dataset_input_to_json(d) for d in datasets]}
        self._call("POST", "runs/log-inputs", body, retry=IDEMPOTENT, drain=False)

    def get_metric_history(self, run_id: str, key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]:
        """Return the points of one metric (every page when ``max_results`` is None)."""
        if max_results is not None:
            answer = self._get("metrics/get-history", run_id=run_id, metric_key=key, max_results=max_results,
                               page_token=page_token)
            return PagedList([wire.metric_from_json(m) for m in answer.get("metrics") or ()],
                             answer.get("next_page_token"))
        points: list[Metric] = []
        token = page_token
        while True:
            answer = self._get("metrics/get-history", run_id=run_id, metric_key=key, max_results=HISTORY_PAGE,
                               page_token=token)
            points.extend(wire.metric_from_json(m) for m in answer.get("metrics") or ())
            token = answer.get("next_page_token")
            if not token:
                return PagedList(points, None)


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Leave out fields that are None or empty lists."""
    return {k: val for k, val in body.items() if val is not None and val != []}


def _all_pages(fetch: Any) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items
