"""Run endpoints: create, get, update, delete, restore, search, and logging metrics, params, tags,
inputs and (MLflow's legacy ``runs/log-model``) logged models."""

from __future__ import annotations

from typing import Any, Sequence

from fitscribe._time import now_ms
from fitscribe.backends.model_history import record_logged_model
from fitscribe.entities import LifecycleStage, Metric, Param, RunStatus, RunTag
from fitscribe.errors import InvalidStateError, InvalidValueError
from fitscribe.run_context import TAG_RUN_NAME, TAG_USER, generate_run_name
from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.routes.experiments import MAX_SEARCH_RESULTS, view_type
from fitscribe.server.serialization import (
    dataset_input_from_json,
    metric_from_json,
    page_to_json,
    params_from_json,
    run_info_to_json,
    run_status_from_json,
    run_to_json,
    tags_from_json,
)
from fitscribe.server.state import ServerState

__all__ = ["ENDPOINTS", "MAX_BATCH_METRICS", "MAX_BATCH_PARAMS", "MAX_BATCH_TAGS", "MAX_BATCH_ENTITIES",
           "REQUEST_ID_HEADER"]

MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
REQUEST_ID_HEADER = "x-fitscribe-request-id"
"""A log-batch request carrying this header is applied once: a repeat (a client retrying after losing
the answer) is answered with success and not applied again, on any replica (the id is recorded in the
database, in the batch's transaction). Requests without it (the mlflow client) are applied as sent."""


def _run_name(run_name: str | None, tags: list[RunTag]) -> str:
    """Reconcile ``run_name`` with the ``mlflow.runName`` tag; invent a name when neither is given."""
    tagged = next((t.value for t in reversed(tags) if t.key == TAG_RUN_NAME), None)
    if run_name and tagged and run_name != tagged:
        raise InvalidValueError(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tagged}'); give one, or the same value."
        )
    return run_name or tagged or generate_run_name()


def create_run(s: ServerState, p: Params) -> dict[str, Any]:
    """Create a RUNNING run; answer it."""
    tags = tags_from_json(p.objects("tags"))
    name = _run_name(p.text("run_name"), tags)
    tags = [t for t in tags if t.key != TAG_RUN_NAME] + [RunTag(TAG_RUN_NAME, name)]
    user = p.text("user_id") or next((t.value for t in tags if t.key == TAG_USER), "")
    start = p.integer("start_time", minimum=0)
    run = s.tracking.create_run(
        p.required_text("experiment_id"), user, start if start is not None else now_ms(),
        tags, name,
    )
    return {"run": run_to_json(run)}


def get_run(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer a run (deleted runs too) with its latest metrics, params, tags and inputs."""
    return {"run": run_to_json(s.tracking.get_run(p.run_id()))}


def _status(text: str | None) -> RunStatus | None:
    """Read a run status given by name or number (None when absent)."""
    if not text:
        return None
    if not text.isascii():  # '²' passes str.isdigit() but not int()
        raise InvalidValueError(f"Invalid run status {text!r}; use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.")
    return run_status_from_json(text)


def update_run(s: ServerState, p: Params) -> dict[str, Any]:
    """Change a run's status, end time or name; answer its info."""
    status = _status(p.text("status"))
    run_id = p.run_id()
    if status in (RunStatus.RUNNING, RunStatus.SCHEDULED):
        run = s.tracking.get_run(run_id)
        if run.info.lifecycle_stage == LifecycleStage.DELETED.value:
            raise InvalidStateError(f"Run '{run_id}' is deleted; restore it before setting its status to {status.value}.")
    info = s.tracking.update_run_info(
        run_id,
        status=status,
        end_time=p.integer("end_time", minimum=0),
        run_name=p.text("run_name") or None,
    )
    return {"run_info": run_info_to_json(info)}


def delete_run(s: ServerState, p: Params) -> dict[str, Any]:
    """Move a run to the deleted stage."""
    s.tracking.update_run_info(p.run_id(), lifecycle_stage=LifecycleStage.DELETED.value)
    return {}


def restore_run(s: ServerState, p: Params) -> dict[str, Any]:
    """Bring a deleted run back."""
    s.tracking.update_run_info(p.run_id(), lifecycle_stage=LifecycleStage.ACTIVE.value)
    return {}


def search_runs(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer one page of runs of the experiments matching the filter, in the requested order."""
    experiment_ids = p.strings("experiment_ids")
    if not experiment_ids:
        return {}
    page = s.tracking.search_runs(
        experiment_ids,
        p.text("filter") or None,
        view_type(p, "run_view_type"),
        p.integer("max_results", 1000, minimum=1, maximum=MAX_SEARCH_RESULTS) or 1000,
        p.strings("order_by") or None,
        p.text("page_token") or None,
    )
    return page_to_json("runs", [run_to_json(r) for r in page], page.token)


def log_metric(s: ServerState, p: Params) -> dict[str, Any]:
    """Record one metric point."""
    value = p.double("value", required=True)
    timestamp = p.integer("timestamp", required=True, minimum=0)
    assert value is not None and timestamp is not None
    metric = Metric(p.required_text("key"), value, timestamp, p.integer("step", 0) or 0)
    run_id = p.run_id()
    if not p.text("model_id") or _new_points(s, run_id, [metric]):
        s.tracking.log_metric(run_id, metric)
    return {}


def _new_points(s: ServerState, run_id: str, linked: Sequence[Metric]) -> list[Metric]:
    """Return the points the run does not have yet, among metrics sent with a ``model_id``.

    MLflow's ``log_model`` re-logs a run's metrics with the new model's id to link them to the
    model; MLflow's store keeps one row per exact duplicate, so the run's history is unchanged.
    """
    seen: dict[str, set[tuple[int, int, str]]] = {}
    for key in {m.key for m in linked}:
        seen[key] = {(m.timestamp, m.step, repr(m.value)) for m in s.tracking.get_metric_history(run_id, key)}
    return [m for m in linked if (m.timestamp, m.step, repr(m.value)) not in seen[m.key]]


def _log(s: ServerState, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
         tags: Sequence[RunTag] = (), request_id: str | None = None) -> None:
    """Log through the store (once per ``request_id`` when the store records them); a
    ``mlflow.runName`` tag also renames the run, as in MLflow."""
    if request_id is not None and s.tracking.accepts_request_ids:
        s.tracking.log_batch(run_id, metrics, params, tags, request_id=request_id)  # type: ignore[call-arg]
    else:
        s.tracking.log_batch(run_id, metrics, params, tags)
    names = [t.value for t in tags if t.key == TAG_RUN_NAME]
    if names and names[-1]:
        s.tracking.update_run_info(run_id, run_name=names[-1])


def log_param(s: ServerState, p: Params) -> dict[str, Any]:
    """Record a param (write-once: a different value for the same key is refused)."""
    if p.is_null("value"):
        _refuse_null_values([{"key": p.text("key"), "value": None}], "value")
    _log(s, p.run_id(), params=[Param(p.required_text("key"), p.text("value") or "")])
    return {}


def _refuse_null_values(items: Sequence[Any], what: str) -> None:
    """Refuse a param sent with a JSON ``null`` value (it would be stored as ``""``)."""
    for item in items:
        if isinstance(item, dict) and "value" in item and item["value"] is None:
            key = item.get("key")
            raise InvalidValueError(f"The param {key!r} has a null {what}; a param's value is a string "
                                    "(send \"\" for an empty value).")


def set_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Set (or replace) a tag on a run."""
    _log(s, p.run_id(), tags=[RunTag(p.required_text("key"), p.text("value") or "")])
    return {}


def delete_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove a tag from a run; 404 when it has no such tag."""
    s.tracking.delete_tag(p.run_id(), p.required_text("key"))
    return {}


def _check_batch(metrics: list[Metric], params: list[Param], tags: list[RunTag]) -> list[Param]:
    """Apply MLflow's log-batch limits; return the params without exact duplicates."""
    counts = ((len(metrics), MAX_BATCH_METRICS, "metrics"), (len(params), MAX_BATCH_PARAMS, "params"),
              (len(tags), MAX_BATCH_TAGS, "tags"),
              (len(metrics) + len(params) + len(tags), MAX_BATCH_ENTITIES, "metrics, params and tags in total"))
    for count, limit, what in counts:
        if count > limit:
            raise InvalidValueError(
                f"A batch may hold at most {limit} {what}; this one has {count}. Split it into several requests."
            )
    seen: dict[str, str] = {}
    for param in params:
        if seen.setdefault(param.key, param.value) != param.value:
            raise InvalidValueError(
                f"Duplicate parameter keys have been submitted with different values: {param.key!r} "
                f"({seen[param.key]!r} and {param.value!r}); a param has one value."
            )
    return [Param(k, v) for k, v in seen.items()]


def log_batch(s: ServerState, p: Params) -> dict[str, Any]:
    """Record metrics, params and tags in one transaction."""
    _refuse_null_values(p.objects("params"), "value")
    raw = p.objects("metrics")
    metrics = [metric_from_json(m, "metrics") for m in raw]
    params = params_from_json(p.objects("params"))
    tags = tags_from_json(p.objects("tags"))
    unique_params = _check_batch(metrics, params, tags)
    run_id = p.run_id()
    linked = [m for m, r in zip(metrics, raw) if r.get("model_id")]
    if linked:
        fresh = set(map(id, _new_points(s, run_id, linked)))
        metrics = [m for m, r in zip(metrics, raw) if not r.get("model_id") or id(m) in fresh]
    _log(s, run_id, metrics, unique_params, tags, p.header(REQUEST_ID_HEADER))
    return {}


def log_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Append a logged model (``model_json``: its MLmodel dict as a JSON string) to the run's
    ``mlflow.log-model.history`` tag, atomically (MLflow 2.x clients send this)."""
    import json

    run_id = p.run_id()
    text = p.required_text("model_json")
    try:
        entry = json.loads(text)
    except ValueError as exc:
        raise InvalidValueError(f"model_json is not valid JSON ({exc}); send the MLmodel dict as a JSON string.") from None
    if not isinstance(entry, dict):
        raise InvalidValueError(f"model_json must hold a JSON object (the MLmodel dict), not {type(entry).__name__}.")
    record_logged_model(s.tracking, run_id, entry)
    return {}


def log_inputs(s: ServerState, p: Params) -> dict[str, Any]:
    """Record the datasets a run used (``models`` inputs are accepted and not stored)."""
    datasets = [dataset_input_from_json(d) for d in p.objects("datasets")]
    p.objects("models")  # type-checked only
    s.tracking.log_inputs(p.run_id(), datasets)
    return {}


def log_outputs(s: ServerState, p: Params) -> dict[str, Any]:
    """Accept the logged models a run produced (checked to exist; the link is not stored)."""
    run_id = p.run_id()
    s.tracking.get_run(run_id)
    for model in p.objects("models"):
        model_id = model.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise p.missing("models.model_id")
        s.logged_models.get_logged_model(model_id)
    return {}


_RUN = "run_id run_uuid"
ENDPOINTS = (
    Endpoint("POST", "runs/create", create_run, "Create a run.",
             fields("experiment_id! user_id run_name start_time:int64 tags:objects")),
    Endpoint("GET", "runs/get", get_run, "Get a run.", fields(_RUN)),
    Endpoint("POST", "runs/update", update_run, "Update a run's status, end time or name.",
             fields(f"{_RUN} status end_time:int64 run_name")),
    Endpoint("POST", "runs/delete", delete_run, "Delete a run (restorable).", fields("run_id!")),
    Endpoint("POST", "runs/restore", restore_run, "Restore a deleted run.", fields("run_id!")),
    Endpoint("POST", "runs/search", search_runs, "Search runs.",
             fields("experiment_ids:strings filter run_view_type max_results:int64 order_by:strings page_token"),
             read_only=True),
    Endpoint("POST", "runs/log-metric", log_metric, "Log a metric point.",
             fields(f"{_RUN} key! value:double! timestamp:int64! step:int64 model_id dataset_name dataset_digest")),
    Endpoint("POST", "runs/log-parameter", log_param, "Log a param.", fields(f"{_RUN} key! value")),
    Endpoint("POST", "runs/set-tag", set_tag, "Set a tag on a run.", fields(f"{_RUN} key! value")),
    Endpoint("POST", "runs/delete-tag", delete_tag, "Delete a tag from a run.", fields(f"{_RUN} key!")),
    Endpoint("POST", "runs/log-batch", log_batch, "Log metrics, params and tags at once.",
             fields("run_id! metrics:objects params:objects tags:objects")),
    Endpoint("POST", "runs/log-model", log_model, "Record a logged model in the run's model history (legacy).",
             fields("run_id! model_json!")),
    Endpoint("POST", "runs/log-inputs", log_inputs, "Log the datasets a run used.",
             fields("run_id! datasets:objects models:objects")),
    Endpoint("POST", "runs/outputs", log_outputs, "Log the models a run produced.",
             fields("run_id! models:objects!")),
)
