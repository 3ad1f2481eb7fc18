"""Columnar reads of metric histories for charts: numpy arrays straight from the packed chunks
(``numpy.frombuffer`` decodes a 1,000,000-point history in milliseconds, where
``get_metric_history`` builds a ``Metric`` per point). numpy comes with the ``server`` extra only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .store import SqlTrackingStore

__all__ = ["MetricArrays", "read_metric_arrays", "order_arrays"]


class MetricArrays(NamedTuple):
    """One metric history as three equally long arrays, by step, then timestamp, then logging order."""

    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


def order_arrays(steps: npt.NDArray[np.int64], timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> MetricArrays:
    """Return the columns ordered by step, then timestamp, keeping logging order among equals.

    Nothing is copied when the steps already increase strictly (the usual case).
    """
    if len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return MetricArrays(steps, timestamps, values)
    order = np.lexsort((timestamps, steps))  # stable: logging order among equal (step, timestamp)
    return MetricArrays(steps[order], timestamps[order], values[order])


def _decode(rows: Sequence[Any]) -> MetricArrays:
    if not rows:
        return MetricArrays(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    steps = np.frombuffer(b"".join(bytes(r[0]) for r in rows), dtype="<i8").astype(np.int64, copy=False)
    timestamps = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<i8").astype(np.int64, copy=False)
    values = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype="<f8").astype(np.float64, copy=False)
    return order_arrays(steps, timestamps, values)


def read_metric_arrays(
    store: "SqlTrackingStore", run_ids: Sequence[str], key: str, min_step: int | None = None, max_step: int | None = None
) -> dict[str, MetricArrays]:
    """Return ``store.metric_arrays(...)`` (:meth:`~fitscribe.backends.base.TrackingStore.metric_arrays`),
    after flushing this process's metric journal, reading only the chunks holding a step in the range
    (each records its smallest and largest step); the runs are not checked for existence.
    """
    store.flush()
    with store.read() as w:
        return {run_id: _decode(w.metric_chunks(run_id, key, min_step, max_step)) for run_id in run_ids}
