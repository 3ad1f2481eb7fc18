"""fitscribe entities <-> MLflow's JSON wire format, for the REST client, the server and the web UI.

MLflow's REST API carries its protobuf messages in the proto3 JSON mapping: field names are
snake_case, ids and version numbers strings, times epoch milliseconds (JSON numbers), enums their
names, and doubles that are not finite the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
Empty lists are left out, as MLflow's server does (its client accepts either).

The ``*_to_json`` functions write messages; the ``*_from_json`` ones read what a server sent,
trusting its shape. The server reads what clients send with the checking readers of
:mod:`fitscribe.server.serialization`, which raise ``InvalidValueError`` for a wrong field.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence, overload

from fitscribe.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    MetricSummary,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
)
from fitscribe.entities.logged_model import LoggedModel


__all__ = [
    "double_to_json",
    "double_from_json",
    "key_values",
    "key_values_to_json",
    "experiment_to_json",
    "experiment_from_json",
    "run_info_to_json",
    "run_info_from_json",
    "run_to_json",
    "run_from_json",
    "metric_to_json",
    "metric_from_json",
    "metric_row_to_json",
    "params_to_json",
    "tags_to_json",
    "dataset_input_to_json",
    "model_version_to_json",
    "model_version_from_json",
    "registered_model_to_json",
    "registered_model_from_json",
    "logged_model_to_json",
    "logged_model_from_json",
    "file_info_to_json",
    "page_to_json",
]

_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}


@overload
def double_to_json(value: float) -> float | str: ...
@overload
def double_to_json(value: None) -> None: ...
def double_to_json(value: float | None) -> float | str | None:
    """Return a double as MLflow's JSON carries it: finite as is, else ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"`` (None stays None, for optional fields).

    >>> [double_to_json(x) for x in (1.5, float("nan"), float("-inf"), None)]
    [1.5, 'NaN', '-Infinity', None]
    """
    if value is None or value - value == 0.0:  # finite (NaN and +-inf give NaN)
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def double_from_json(value: Any) -> float:
    """Read a JSON double: a number, or ``"NaN"``/``"Infinity"``/``"-Infinity"`` (numeric strings too)."""
    if isinstance(value, str):
        special = _SPECIAL.get(value.strip().lower())
        return special if special is not None else float(value)
    return float(value)


def key_values(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Read ``[{"key", "value"}, ...]`` into a dict (a missing value is ``""``)."""
    return {str(item["key"]): str(item.get("value", "")) for item in items or ()}


def key_values_to_json(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    """Return ``[{"key": k, "value": v}, ...]``."""
    return [{"key": k, "value": val} for k, val in mapping.items()]


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def experiment_to_json(exp: Experiment) -> dict[str, Any]:
    """Return an MLflow Experiment message."""
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": str(exp.lifecycle_stage),
    }
    if exp.last_update_time is not None:
        out["last_update_time"] = exp.last_update_time
    if exp.creation_time is not None:
        out["creation_time"] = exp.creation_time
    if exp.tags:
        out["tags"] = key_values_to_json(exp.tags)
    return out


def experiment_from_json(obj: Mapping[str, Any]) -> Experiment:
    """Read an MLflow Experiment message."""
    return Experiment(
        experiment_id=str(obj["experiment_id"]),
        name=obj["name"],
        artifact_location=obj.get("artifact_location", ""),
        lifecycle_stage=obj.get("lifecycle_stage", "active"),
        tags=key_values(obj.get("tags")),
        creation_time=_int_or_none(obj.get("creation_time")),
        last_update_time=_int_or_none(obj.get("last_update_time")),
    )


def run_info_to_json(info: RunInfo) -> dict[str, Any]:
    """Return an MLflow RunInfo message (``run_uuid`` duplicates ``run_id``, as MLflow sends it)."""
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name or "",
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": RunStatus.parse(info.status).value,
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": str(info.lifecycle_stage),
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def run_info_from_json(obj: Mapping[str, Any]) -> RunInfo:
    """Read an MLflow RunInfo message (an end time of 0 means not ended, as in MLflow)."""
    end = _int_or_none(obj.get("end_time"))
    return RunInfo(
        run_id=obj.get("run_id") or obj["run_uuid"],
        experiment_id=str(obj["experiment_id"]),
        run_name=obj.get("run_name") or None,
        user_id=obj.get("user_id", ""),
        status=RunStatus.parse(obj.get("status", "RUNNING")),
        start_time=int(obj.get("start_time") or 0),
        end_time=end or None,
        artifact_uri=obj.get("artifact_uri", ""),
        lifecycle_stage=obj.get("lifecycle_stage", "active"),
    )


def _dataset_input_from_json(obj: Mapping[str, Any]) -> DatasetInput:
    d = obj["dataset"]
    dataset = Dataset(d["name"], d["digest"], d.get("source_type", ""), d.get("source", ""),
                      d.get("schema"), d.get("profile"))
    return DatasetInput(dataset, tuple(InputTag(t["key"], t.get("value", "")) for t in obj.get("tags") or ()))


def run_to_json(run: Run) -> dict[str, Any]:
    """Return an MLflow Run message: info, data (the latest point of each metric, params, tags) and inputs."""
    data: dict[str, Any] = {}
    if run.data.metrics:
        summaries = run.data.metric_summaries
        metrics = []
        for key, value in run.data.metrics.items():
            summary = summaries.get(key)
            timestamp, step = (summary.timestamp, summary.step) if summary is not None else (0, 0)
            metrics.append(metric_row_to_json(key, value, timestamp, step))
        data["metrics"] = metrics
    if run.data.params:
        data["params"] = key_values_to_json(run.data.params)
    if run.data.tags:
        data["tags"] = key_values_to_json(run.data.tags)
    inputs: dict[str, Any] = {}
    if run.inputs.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input_to_json(d) for d in run.inputs.dataset_inputs]
    return {"info": run_info_to_json(run.info), "data": data, "inputs": inputs}


def run_from_json(obj: Mapping[str, Any]) -> Run:
    """Read an MLflow Run message.

    MLflow's JSON carries the latest point of each metric only: the summaries have its value, step
    and timestamp, and no min or max (None).
    """
    data = obj.get("data") or {}
    metrics: dict[str, float] = {}
    summaries: dict[str, MetricSummary] = {}
    for m in data.get("metrics") or ():
        value = double_from_json(m["value"])
        metrics[m["key"]] = value
        summaries[m["key"]] = MetricSummary(m["key"], value, int(m.get("step", 0)), int(m.get("timestamp", 0)),
                                            None, None)
    run_data = RunData(metrics=metrics, params=key_values(data.get("params")), tags=key_values(data.get("tags")),
                       metric_summaries=summaries)
    inputs = obj.get("inputs") or {}
    datasets = tuple(_dataset_input_from_json(d) for d in inputs.get("dataset_inputs") or ())
    return Run(run_info_from_json(obj["info"]), run_data, RunInputs(datasets))


def metric_from_json(obj: Mapping[str, Any]) -> Metric:
    """Read an MLflow Metric message."""
    return Metric(obj["key"], double_from_json(obj["value"]), int(obj.get("timestamp", 0)), int(obj.get("step", 0)))


def metric_row_to_json(key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    """Return an MLflow Metric message for one point."""
    return {"key": key, "value": double_to_json(value), "timestamp": timestamp, "step": step}


def metric_to_json(metric: Metric) -> dict[str, Any]:
    """Return an MLflow Metric message."""
    return metric_row_to_json(metric.key, metric.value, metric.timestamp, metric.step)


def params_to_json(params: Sequence[Param]) -> list[dict[str, str]]:
    """Return MLflow Param messages."""
    return [{"key": p.key, "value": p.value} for p in params]


def tags_to_json(tags: Sequence[RunTag]) -> list[dict[str, str]]:
    """Return MLflow RunTag messages."""
    return [{"key": t.key, "value": t.value} for t in tags]


def dataset_input_to_json(item: DatasetInput) -> dict[str, Any]:
    """Return an MLflow DatasetInput message."""
    d = item.dataset
    dataset: dict[str, Any] = {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source}
    if d.schema is not None:
        dataset["schema"] = d.schema
    if d.profile is not None:
        dataset["profile"] = d.profile
    out: dict[str, Any] = {"dataset": dataset}
    if item.tags:
        out["tags"] = [{"key": t.key, "value": t.value} for t in item.tags]
    return out


_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")


def model_version_to_json(mv: ModelVersion) -> dict[str, Any]:
    """Return an MLflow ModelVersion message (``version`` as a string; unset fields left out; a
    ``models:/m-<id>`` source also gives the logged model's ``model_id``)."""
    out: dict[str, Any] = {
        "name": mv.name, "version": str(mv.version), "creation_timestamp": mv.creation_timestamp,
        "current_stage": mv.current_stage, "source": mv.source, "status": mv.status,
    }
    optional = {"last_updated_timestamp": mv.last_updated_timestamp, "description": mv.description,
                "run_id": mv.run_id, "user_id": mv.user_id, "run_link": mv.run_link}
    out.update((k, val) for k, val in optional.items() if val is not None)
    if mv.tags:
        out["tags"] = key_values_to_json(mv.tags)
    if mv.aliases:
        out["aliases"] = list(mv.aliases)
    logged = _LOGGED_MODEL_SOURCE.match(mv.source)
    if logged:
        out["model_id"] = logged.group(1)
    return out


def model_version_from_json(obj: Mapping[str, Any]) -> ModelVersion:
    """Read an MLflow ModelVersion message (``version`` is a string there, an int here)."""
    return ModelVersion(
        name=obj["name"],
        version=int(obj["version"]),
        creation_timestamp=int(obj.get("creation_timestamp") or 0),
        last_updated_timestamp=_int_or_none(obj.get("last_updated_timestamp")),
        description=obj.get("description"),
        source=obj.get("source", ""),
        run_id=obj.get("run_id") or None,
        status=obj.get("status", "READY"),
        current_stage=obj.get("current_stage", "None"),
        tags=key_values(obj.get("tags")),
        aliases=list(obj.get("aliases") or ()),
        user_id=obj.get("user_id"),
        run_link=obj.get("run_link"),
    )


def registered_model_to_json(rm: RegisteredModel) -> dict[str, Any]:
    """Return an MLflow RegisteredModel message (latest version per stage, tags, aliases)."""
    out: dict[str, Any] = {"name": rm.name, "creation_timestamp": rm.creation_timestamp}
    if rm.last_updated_timestamp is not None:
        out["last_updated_timestamp"] = rm.last_updated_timestamp
    if rm.description is not None:
        out["description"] = rm.description
    if rm.latest_versions:
        out["latest_versions"] = [model_version_to_json(mv) for mv in rm.latest_versions]
    if rm.tags:
        out["tags"] = key_values_to_json(rm.tags)
    if rm.aliases:
        out["aliases"] = [{"alias": alias, "version": str(version)} for alias, version in rm.aliases.items()]
    return out


def registered_model_from_json(obj: Mapping[str, Any]) -> RegisteredModel:
    """Read an MLflow RegisteredModel message (aliases ``[{alias, version}]`` become ``{alias: int}``)."""
    return RegisteredModel(
        name=obj["name"],
        creation_timestamp=int(obj.get("creation_timestamp") or 0),
        last_updated_timestamp=_int_or_none(obj.get("last_updated_timestamp")),
        description=obj.get("description"),
        latest_versions=[model_version_from_json(mv) for mv in obj.get("latest_versions") or ()],
        tags=key_values(obj.get("tags")),
        aliases={a["alias"]: int(a["version"]) for a in obj.get("aliases") or ()},
    )


def file_info_to_json(path: str, is_dir: bool, file_size: int | None) -> dict[str, Any]:
    """Return an MLflow FileInfo message (``file_size`` for files only)."""
    out: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if not is_dir and file_size is not None:
        out["file_size"] = file_size
    return out


def page_to_json(field: str, items: Sequence[Any], token: str | None) -> dict[str, Any]:
    """Return ``{field: items, "next_page_token": token}``, leaving out what is empty."""
    out: dict[str, Any] = {}
    if items:
        out[field] = list(items)
    if token:
        out["next_page_token"] = token
    return out


def logged_model_to_json(model: LoggedModel) -> dict[str, Any]:
    """Return an MLflow LoggedModel message ``{"info": ..., "data": {"params": ...}}`` (tags in ``info``)."""
    info: dict[str, Any] = {
        "model_id": model.model_id, "experiment_id": model.experiment_id, "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp, "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location, "status": model.status, "model_type": model.model_type or "",
        "source_run_id": model.source_run_id or "",
    }
    if model.status_message:
        info["status_message"] = model.status_message
    if model.tags:
        info["tags"] = key_values_to_json(model.tags)
    return {"info": info, "data": {"params": key_values_to_json(model.params)} if model.params else {}}


def logged_model_from_json(obj: Mapping[str, Any]) -> LoggedModel:
    """Read an MLflow LoggedModel message (a status given as a number is read as its name)."""
    from fitscribe.entities.logged_model import parse_status

    info, data = obj.get("info") or {}, obj.get("data") or {}
    return LoggedModel(
        model_id=info["model_id"], experiment_id=str(info.get("experiment_id", "")), name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=int(info.get("creation_timestamp_ms") or 0),
        last_updated_timestamp=int(info.get("last_updated_timestamp_ms") or 0),
        status=parse_status(info.get("status") or 0), model_type=info.get("model_type") or None,
        source_run_id=info.get("source_run_id") or None, status_message=info.get("status_message") or None,
        tags=key_values(info.get("tags")), params=key_values(data.get("params")),
    )
