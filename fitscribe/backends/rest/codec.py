"""MLflow's JSON <-> fitscribe entities, on the client side of the REST store.

The server's answers follow the proto3 JSON mapping of MLflow's messages: ids and version numbers
are strings, times epoch milliseconds, enums names, non-finite doubles the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, and empty lists may be left out.
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

__all__ = [
    "double_to_json",
    "double_from_json",
    "key_values",
    "key_values_to_json",
    "experiment_from_json",
    "run_info_from_json",
    "run_from_json",
    "metric_from_json",
    "metric_row_to_json",
    "dataset_input_to_json",
    "model_version_from_json",
    "registered_model_from_json",
]

_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}


def double_to_json(value: float) -> float | str:
    """Return a double as MLflow's JSON carries it (non-finite values as strings)."""
    if value - value == 0.0:  # finite (NaN and +-inf give NaN)
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
