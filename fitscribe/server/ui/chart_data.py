"""Data behind the chart pages: metric histories as arrays, downsampled series, run summaries.

Everything returned here is ready for ``json.dumps(..., allow_nan=False)``: drawable values are
finite numbers; NaN and infinities travel apart (``nan``/``pos_inf``/``neg_inf`` x positions in a
series) or, in summaries, as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (MLflow's
JSON spelling), so no point is ever silently dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from fitscribe.errors import InvalidValueError
from fitscribe.server.ui.downsample import DEFAULT_POINTS, downsample_series
from fitscribe.wire import double_to_json

if TYPE_CHECKING:
    from fitscribe.backends import TrackingStore
    from fitscribe.backends.sql.metric_arrays import MetricArrays
    from fitscribe.entities import Run

__all__ = [
    "AXES", "MAX_RUNS", "MAX_POINTS", "DEFAULT_POINTS", "SeriesRequest", "load_histories", "start_times",
    "series_json", "summary_json", "parse_run_ids",
]

AXES = ("step", "time", "relative")
"""x axes of a metric chart: step, wall time (epoch milliseconds), seconds since the run started."""

MAX_RUNS = 100
"""Runs in one chart request at most (as MLflow's bulk history endpoint)."""

MAX_POINTS = 20_000
"""Points per series in one answer at most (a 4K screen is 3,840 pixels wide)."""


def parse_run_ids(raw: str | None, *, limit: int = MAX_RUNS) -> list[str]:
    """Split ``run_ids=a,b,c`` (repeats dropped, order kept).

    Raises:
        InvalidValueError: No run id, or more than ``limit`` of them.
    """
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if not ids:
        raise InvalidValueError("Missing value for parameter 'run_ids': give comma-separated run ids, e.g. run_ids=a1b2,c3d4.")
    if len(ids) > limit:
        raise InvalidValueError(
            f"Too many runs: {len(ids)} run ids were given, at most {limit} are allowed per request; "
            "select fewer runs or ask in several requests."
        )
    return ids


def load_histories(
    store: "TrackingStore", run_ids: Sequence[str], key: str, min_step: int | None = None, max_step: int | None = None
) -> dict[str, "MetricArrays"]:
    """Return the history of ``key`` of each run as arrays ordered by step (empty when not logged).

    Read through the store's ``metric_arrays`` (the SQL store decodes its packed chunks column-wise,
    only those overlapping the step range when one is given, so the arrays may hold points outside it).
    """
    return store.metric_arrays(run_ids, key, min_step, max_step)


def start_times(store: "TrackingStore", run_ids: Sequence[str]) -> dict[str, int | None]:
    """Return each run's start time (epoch ms), checking that every run exists.

    Raises:
        RunNotFound: A run does not exist (answered 404).
        InvalidValueError: A run id is malformed.
    """
    found = store.run_start_times(run_ids)
    for run_id in run_ids:
        if run_id not in found:
            store.get_run(run_id)  # raises the store's own error (malformed id, or no such run)
    return found


class SeriesRequest:
    """What a chart asks for: x axis, output points and an optional step or x range.

    Args:
        axis: ``step``, ``time`` (epoch ms) or ``relative`` (seconds since the run started).
        points: Finite points per series at most (about twice the chart's width in pixels).
        min_step: Smallest step to include.
        max_step: Largest step to include.
        x_min: Smallest x (in the axis' unit) to include.
        x_max: Largest x to include.

    Raises:
        InvalidValueError: An unknown axis, points out of range, or a reversed range.
    """

    def __init__(self, axis: str = "step", points: int = DEFAULT_POINTS, min_step: int | None = None,
                 max_step: int | None = None, x_min: float | None = None, x_max: float | None = None) -> None:
        if axis not in AXES:
            raise InvalidValueError(f"Invalid value {axis!r} for parameter 'x': use one of {', '.join(AXES)}.")
        if not 4 <= points <= MAX_POINTS:
            raise InvalidValueError(f"Invalid value {points} for parameter 'points': it must be from 4 to {MAX_POINTS}.")
        for low, high, names in ((min_step, max_step, "min_step/max_step"), (x_min, x_max, "x_min/x_max")):
            if low is not None and high is not None and low > high:
                raise InvalidValueError(f"Invalid range {names} = {low}..{high}: the minimum is above the maximum.")
        self.axis, self.points = axis, points
        self.min_step, self.max_step, self.x_min, self.x_max = min_step, max_step, x_min, x_max


def _x_of(arrays: "MetricArrays", axis: str, start_ms: int | None) -> np.ndarray[Any, Any]:
    if axis == "step":
        return arrays.steps
    if axis == "time":
        return arrays.timestamps
    first = int(arrays.timestamps.min()) if len(arrays.timestamps) else 0
    origin = start_ms if start_ms is not None and start_ms <= first else first
    return (arrays.timestamps - origin) / 1000.0


def series_json(run_id: str, arrays: "MetricArrays", request: SeriesRequest, start_ms: int | None = None) -> dict[str, Any]:
    """Return one run's series for a chart: downsampled finite points and non-finite positions.

    Args:
        run_id: The run.
        arrays: Its history (ordered by step).
        request: Axis, points and range.
        start_ms: The run's start time, origin of the ``relative`` axis (the first point's time
            when missing or later than it).

    Returns:
        ``{"run_id", "x", "y", "steps"?, "nan", "pos_inf", "neg_inf", "total", "nonfinite",
        "downsampled"}``: ``steps`` (the step of each kept point) is there when the axis is not
        ``step``; ``total`` counts the points inside the range, ``nonfinite`` the NaN/inf among them.
    """
    steps = arrays.steps
    lo = 0 if request.min_step is None else int(np.searchsorted(steps, request.min_step, side="left"))
    hi = len(steps) if request.max_step is None else int(np.searchsorted(steps, request.max_step, side="right"))
    x = _x_of(arrays, request.axis, start_ms)[lo:hi]
    out = downsample_series(x, arrays.values[lo:hi], request.points, request.x_min, request.x_max)
    body: dict[str, Any] = {
        "run_id": run_id,
        "x": out.x.tolist(),
        "y": out.y.tolist(),
        "nan": out.nan.tolist(),
        "pos_inf": out.pos_inf.tolist(),
        "neg_inf": out.neg_inf.tolist(),
        "total": out.total,
        "nonfinite": out.nonfinite,
        "downsampled": len(out.x) < out.total - out.nonfinite,
    }
    if request.axis != "step":
        body["steps"] = steps[lo:hi][out.index].tolist()
    return body


def summary_json(runs: Sequence["Run"]) -> dict[str, Any]:
    """Return params and metric summaries (last, min, max, step) of runs, for parcoords and scatter.

    Returns:
        ``{"runs": [{"run_id", "name", "experiment_id", "status", "params", "metrics"}],
        "param_keys": [...], "metric_keys": [...]}``; the keys are sorted and span all runs.
    """
    items = []
    params: set[str] = set()
    metrics: set[str] = set()
    for run in runs:
        data = run.data
        summaries = {}
        for key, value in data.metrics.items():
            found = data.metric_summaries.get(key)
            summaries[key] = {
                "last": double_to_json(value),
                "min": double_to_json(found.min if found else None),
                "max": double_to_json(found.max if found else None),
                "step": found.step if found else None,
            }
        params.update(data.params)
        metrics.update(summaries)
        items.append({
            "run_id": run.info.run_id,
            "name": run.info.run_name or run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status.name if hasattr(run.info.status, "name") else str(run.info.status),
            "params": dict(data.params),
            "metrics": summaries,
        })
    return {"runs": items, "param_keys": sorted(params), "metric_keys": sorted(metrics)}
