"""MLflow's JSON as clients send it to the server: checking readers, and the wire encoders re-exported.

The readers here take what a client sent and refuse a missing field or a wrong type with
``InvalidValueError`` (answered 400), naming the field. Every message the server writes is encoded
by :mod:`fitscribe.wire`, the one module for MLflow's JSON, whose encoders are re-exported here for
the route modules.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from fitscribe.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from fitscribe.errors import InvalidValueError
from fitscribe.server.params import MISSING_MESSAGE, Params, to_double
from fitscribe.wire import (
    dataset_input_to_json,
    double_to_json,
    experiment_to_json,
    file_info_to_json,
    key_values_to_json,
    metric_to_json,
    model_version_to_json,
    page_to_json,
    registered_model_to_json,
    run_info_to_json,
    run_to_json,
)

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
    "model_version_to_json",
    "registered_model_to_json",
]

_RUN_STATUS_NUMBERS = {1: RunStatus.RUNNING, 2: RunStatus.SCHEDULED, 3: RunStatus.FINISHED,
                       4: RunStatus.FAILED, 5: RunStatus.KILLED}


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


def run_status_from_json(value: Any) -> RunStatus:
    """Read a RunStatus given by name (``"FINISHED"``) or number (``3``).

    Raises:
        InvalidValueError: The value names no status.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value in _RUN_STATUS_NUMBERS:
        return _RUN_STATUS_NUMBERS[value]
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) in _RUN_STATUS_NUMBERS:
        return _RUN_STATUS_NUMBERS[int(value)]
    if isinstance(value, str):
        return RunStatus.parse(value)
    raise InvalidValueError(f"Invalid run status {value!r}; use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.")


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
