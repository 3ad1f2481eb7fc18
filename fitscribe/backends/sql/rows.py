"""Rows and rules of the SQL store, shared by the writer, the statements and the readers, with no
database or SQLAlchemy (the embedded hot path uses it): floats as ``(value, special)`` (NaN and
+-inf survive on every database), the write-once rule for params, the rows of metric points, and
the column orders of runs and experiments with the entities built from them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from fitscribe.entities import Experiment, Param, RunInfo, RunStatus, RunTag
from fitscribe.errors import InvalidValueError

from .chunks import MAX_POINTS_PER_CHUNK, Batch, group_batches, latest_of, pack_floats, pack_ints

__all__ = ["MAX_DOUBLE", "SPECIAL_FINITE", "SPECIAL_NAN", "SPECIAL_POS_INF", "SPECIAL_NEG_INF", "CHUNK_COLUMNS",
           "LATEST_COLUMNS", "RUN_COLUMNS", "EXPERIMENT_COLUMNS", "run_info", "experiment", "encode_value",
           "decode_value", "clamp", "decode_bound", "metric_rows", "series_rows", "merge_params",
           "check_stored_params", "merge_tags"]

MAX_DOUBLE = 1.7976931348623157e308
"""The largest finite double; +-inf are stored clamped to it (special 2 and 3)."""
SPECIAL_FINITE = 0
SPECIAL_NAN = 1
SPECIAL_POS_INF = 2
SPECIAL_NEG_INF = 3

CHUNK_COLUMNS = ("run_uuid", "key", "points", "min_step", "max_step", "step_blob", "timestamp_blob", "value_blob")
"""The columns of a ``metric_chunks`` row built by :func:`metric_rows`, in order."""
LATEST_COLUMNS = ("run_uuid", "key", "value", "special", "timestamp", "step", "min_value", "max_value")
"""The columns of a ``latest_metrics`` row built by :func:`metric_rows`, in order."""
RUN_COLUMNS = ("run_uuid", "experiment_id", "name", "user_id", "status", "start_time", "end_time",
               "lifecycle_stage", "artifact_uri")
"""The ``runs`` columns of a new run and of :func:`run_info`, in order."""
EXPERIMENT_COLUMNS = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time",
                      "last_update_time")
"""The ``experiments`` columns read by :func:`experiment`, in order."""


def run_info(row: Sequence[Any]) -> RunInfo:
    """Return the RunInfo of a ``runs`` row given in :data:`RUN_COLUMNS` order."""
    run_id, exp_id, name, user_id, status, start, end, stage, artifact_uri = row
    return RunInfo(run_id, str(exp_id), name, user_id, RunStatus(status), start, end, artifact_uri, stage)


def experiment(row: Sequence[Any], tags: dict[str, str]) -> Experiment:
    """Return the Experiment of an ``experiments`` row given in :data:`EXPERIMENT_COLUMNS` order."""
    exp_id, name, location, stage, created, updated = row
    return Experiment(str(exp_id), name, location, stage, tags, created, updated)


def encode_value(value: float) -> tuple[float | None, int]:
    """Return the (value, special) columns for a float.

    >>> encode_value(float("inf"))
    (1.7976931348623157e+308, 2)
    """
    if math.isnan(value):
        return None, SPECIAL_NAN
    if math.isinf(value):
        return (MAX_DOUBLE, SPECIAL_POS_INF) if value > 0 else (-MAX_DOUBLE, SPECIAL_NEG_INF)
    return value, SPECIAL_FINITE


def decode_value(value: float | None, special: int) -> float:
    """Return the float stored as (value, special)."""
    if special == SPECIAL_FINITE and value is not None:
        return float(value)
    if special == SPECIAL_POS_INF:
        return math.inf
    if special == SPECIAL_NEG_INF:
        return -math.inf
    return math.nan


def clamp(bound: float | None) -> float | None:
    """Return a min/max as stored: infinities clamped to +-max double (NaN never reaches here)."""
    if bound is None or -MAX_DOUBLE <= bound <= MAX_DOUBLE:
        return bound
    return MAX_DOUBLE if bound > 0 else -MAX_DOUBLE


def decode_bound(value: float | None) -> float | None:
    """Return a stored min/max (clamped infinities become infinities again)."""
    if value is None:
        return None
    if value >= MAX_DOUBLE:
        return math.inf
    if value <= -MAX_DOUBLE:
        return -math.inf
    return float(value)


def metric_rows(batches: Sequence[Batch]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return the ``metric_chunks`` rows and ``latest_metrics`` rows for batches of points
    ``(run_id, keys, values, timestamps, steps)`` (see chunks.py), by :func:`series_rows`."""
    return series_rows([(run_id, key, *columns) for (run_id, key), columns in group_batches(batches).items()])


def series_rows(series: Iterable[Sequence[Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return the :data:`CHUNK_COLUMNS` rows (split past ``MAX_POINTS_PER_CHUNK``) and the one
    :data:`LATEST_COLUMNS` row of each whole series ``(run_id, key, values, timestamps, steps)``."""
    chunk_rows: list[tuple[Any, ...]] = []
    latest: list[tuple[Any, ...]] = []
    size = MAX_POINTS_PER_CHUNK
    for run_id, key, values, timestamps, steps in series:
        for start in range(0, len(values), size):
            part = slice(start, start + size)
            vals, times, stps = values[part], timestamps[part], steps[part]
            chunk_rows.append((run_id, key, len(vals), min(stps), max(stps),
                               pack_ints(stps), pack_ints(times), pack_floats(vals)))
        last, timestamp, step, low, high = latest_of(values, timestamps, steps)
        value, special = (last, SPECIAL_FINITE) if -MAX_DOUBLE <= last <= MAX_DOUBLE else encode_value(last)
        latest.append((run_id, key, value, special, timestamp, step, clamp(low), clamp(high)))
    return chunk_rows, latest


def merge_params(params: Sequence[Param]) -> dict[str, str]:
    """Return ``{key: value}`` of a batch of params.

    Raises:
        InvalidValueError: A key appears twice with different values (params are write-once).
    """
    wanted: dict[str, str] = {}
    for p in params:
        if p.key in wanted and wanted[p.key] != p.value:
            raise InvalidValueError(
                f"The param {p.key!r} appears twice in one batch with different values "
                f"{wanted[p.key]!r} and {p.value!r}; params are write-once."
            )
        wanted[p.key] = p.value
    return wanted


def check_stored_params(run_id: str, wanted: dict[str, str], stored: Iterable[tuple[str, str]]) -> None:
    """Refuse a param whose ``stored`` value (``(key, value)`` read after the insert) differs from
    the one ``wanted`` (:func:`merge_params`).

    Raises:
        InvalidValueError: A param would change value; the message names both values.
    """
    for key, value in stored:
        if value != wanted[key]:
            raise InvalidValueError(
                f"The param {key!r} of run {run_id} is already {value!r}; it cannot change to "
                f"{wanted[key]!r}. Params are write-once: log the new value under another key, "
                "or start a new run."
            )


def merge_tags(tags: Iterable[RunTag]) -> dict[str, str]:
    """Return ``{key: value}`` of a batch of tags (the last value for a key wins)."""
    return {tag.key: tag.value for tag in tags}
