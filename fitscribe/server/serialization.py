"""fitscribe entities <-> MLflow's JSON (the proto3 JSON mapping of MLflow's protobuf messages).

Field names are MLflow's snake_case ones; ids are strings; times are epoch milliseconds (JSON
numbers); enums travel as their names. Doubles that are not finite travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, as MLflow's client sends and parses them. Empty lists are left
out, as MLflow's server does (its client accepts either).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from fitscribe.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
)
from fitscribe.backends.rest.codec import dataset_input_to_json  # one MLflow DatasetInput encoder for client and server
from fitscribe.errors import InvalidValueError
from fitscribe.server.params import MISSING_MESSAGE, Params, to_double

__all__ = [
    "double_to_json",
    "key_values_to_json",
    "key_values_from_json",
    "experiment_to_json",
    "run_info_to_json",
    "run_to_json",
    "metric_to_json",
    "metric_from_json",
    "params_from_json",
    "tags_from_json",
    "dataset_input_from_json",
    "dataset_input_to_json",
    "file_info_to_json",
    "page_to_json",
    "run_status_from_json",
]

_RUN_STATUS_NUMBERS = {1: RunStatus.RUNNING, 2: RunStatus.SCHEDULED, 3: RunStatus.FINISHED,
                       4: RunStatus.FAILED, 5: RunStatus.KILLED}


def double_to_json(value: float) -> float | str:
    """Return a double as MLflow's JSON carries it: a number, or ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def key_values_to_json(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    """Return ``[{"key": k, "value": v}, ...]`` (MLflow's tag and param lists)."""
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _text(obj: Mapping[str, Any], field: str, what: str, *, required: bool = True) -> str:
    value = obj.get(field)
    if value is None:
        if required:
            raise InvalidValueError(MISSING_MESSAGE.format(f"{what}.{field}"))
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidValueError(f"Invalid value {value!r} for '{what}.{field}': expected a string.")
    return value if isinstance(value, str) else str(value)


def key_values_from_json(items: Iterable[Mapping[str, Any]], what: str) -> list[tuple[str, str]]:
    """Read ``[{"key", "value"}, ...]``; a missing value is ``""`` (MLflow's default).

    Raises:
        InvalidValueError: An entry has no key, or a key or value is not a string.
    """
    return [(_text(item, "key", what), _text(item, "value", what, required=False)) for item in items]


def params_from_json(items: Iterable[Mapping[str, Any]]) -> list[Param]:
    """Read a list of MLflow Param messages."""
    return [Param(k, v) for k, v in key_values_from_json(items, "params")]


def tags_from_json(items: Iterable[Mapping[str, Any]]) -> list[RunTag]:
    """Read a list of MLflow RunTag messages."""
    return [RunTag(k, v) for k, v in key_values_from_json(items, "tags")]


def _int_field(obj: Mapping[str, Any], field: str, what: str, default: int | None) -> int:
    value = Params(obj).integer(field, default, required=default is None)
    assert value is not None
    if field == "timestamp" and value < 0:
        raise InvalidValueError(
            f"Invalid value {value} for parameter '{what}.timestamp': a timestamp must be a nonnegative "
            "long (64-bit integer), in milliseconds since the epoch."
        )
    return value


def metric_from_json(obj: Mapping[str, Any], what: str = "metric") -> Metric:
    """Read an MLflow Metric message: ``key`` R, ``value`` R, ``timestamp`` R, ``step`` (default 0).

    ``model_id``, ``dataset_name`` and ``dataset_digest`` are accepted and not stored.

    Raises:
        InvalidValueError: A field is missing or has the wrong type, or the timestamp is negative.
    """
    key, value, timestamp, step = obj.get("key"), obj.get("value"), obj.get("timestamp"), obj.get("step", 0)
    if (type(key) is str and key and type(value) in (float, int) and type(timestamp) is int and timestamp >= 0
            and type(step) is int):  # the common case, checked in one go (log-batch's hot path)
        return Metric(key, float(value), timestamp, step)
    key = _text(obj, "key", what)
    if not key:
        raise InvalidValueError(MISSING_MESSAGE.format("key"))
    value = to_double(obj.get("value"), "value")
    assert value is not None
    timestamp = _int_field(obj, "timestamp", what, None)
    step = _int_field(obj, "step", what, 0)
    return Metric(key, value, timestamp, step)


def metric_to_json(metric: Metric) -> dict[str, Any]:
    """Return an MLflow Metric message."""
    return {"key": metric.key, "value": double_to_json(metric.value),
            "timestamp": metric.timestamp, "step": metric.step}


def run_status_from_json(value: Any) -> RunStatus:
    """Read a RunStatus given by name (``"FINISHED"``) or number (``3``).

    Raises:
        InvalidValueError: The value names no status.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value in _RUN_STATUS_NUMBERS:
        return _RUN_STATUS_NUMBERS[value]
    if isinstance(value, str) and value.isdigit() and int(value) in _RUN_STATUS_NUMBERS:
        return _RUN_STATUS_NUMBERS[int(value)]
    if isinstance(value, str):
        return RunStatus.parse(value)
    raise InvalidValueError(f"Invalid run status {value!r}; use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.")


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


def _latest_metrics(run: Run) -> list[dict[str, Any]]:
    summaries = run.data.metric_summaries
    metrics = []
    for key, value in run.data.metrics.items():
        summary = summaries.get(key)
        timestamp, step = (summary.timestamp, summary.step) if summary is not None else (0, 0)
        metrics.append({"key": key, "value": double_to_json(value), "timestamp": timestamp, "step": step})
    return metrics


def run_to_json(run: Run) -> dict[str, Any]:
    """Return an MLflow Run message: info, data (latest metric values, params, tags) and inputs."""
    data: dict[str, Any] = {}
    if run.data.metrics:
        data["metrics"] = _latest_metrics(run)
    if run.data.params:
        data["params"] = key_values_to_json(run.data.params)
    if run.data.tags:
        data["tags"] = key_values_to_json(run.data.tags)
    inputs: dict[str, Any] = {}
    if run.inputs.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input_to_json(d) for d in run.inputs.dataset_inputs]
    return {"info": run_info_to_json(run.info), "data": data, "inputs": inputs}


def dataset_input_from_json(obj: Mapping[str, Any]) -> DatasetInput:
    """Read an MLflow DatasetInput: ``dataset`` {name, digest, source_type, source R; schema, profile}, ``tags``.

    Raises:
        InvalidValueError: The dataset or one of its required fields is missing.
    """
    dataset = obj.get("dataset")
    if not isinstance(dataset, dict):
        raise InvalidValueError(MISSING_MESSAGE.format("datasets.dataset"))
    fields = {f: _text(dataset, f, "dataset") for f in ("name", "digest", "source_type", "source")}
    optional = {f: (_text(dataset, f, "dataset", required=False) or None) for f in ("schema", "profile")}
    tags_raw = obj.get("tags") or []
    if not isinstance(tags_raw, list) or not all(isinstance(t, dict) for t in tags_raw):
        raise InvalidValueError("Invalid value for 'datasets.tags': expected a list of {key, value} objects.")
    tags = tuple(InputTag(k, v) for k, v in key_values_from_json(tags_raw, "datasets.tags"))
    return DatasetInput(Dataset(**fields, **optional), tags)


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
