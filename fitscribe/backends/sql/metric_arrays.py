"""Columnar reads of metric histories: numpy arrays straight from the packed chunks.

:meth:`SqlTrackingStore.get_metric_history` builds one ``Metric`` object per point, which is what a
client asking for a history wants. Charts want three arrays instead; decoding the stored blobs
with ``numpy.frombuffer`` gives them for a 1,000,000-point history in milliseconds. numpy is only
needed here (the ``server`` extra), so this module is imported by the web UI, not by the store.
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


def _empty() -> MetricArrays:
    return MetricArrays(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


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
        return _empty()
    steps = np.frombuffer(b"".join(bytes(r[0]) for r in rows), dtype="<i8").astype(np.int64, copy=False)
    timestamps = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<i8").astype(np.int64, copy=False)
    values = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype="<f8").astype(np.float64, copy=False)
    return order_arrays(steps, timestamps, values)


def read_metric_arrays(
    store: "SqlTrackingStore", run_ids: Sequence[str], key: str, min_step: int | None = None, max_step: int | None = None
) -> dict[str, MetricArrays]:
    """Return the history of metric ``key`` of each run as arrays (empty arrays when not logged).

    With a step range, only the stored chunks holding steps in it are read (each chunk records
    its smallest and largest step), so zooming into a long history reads a few chunks; the arrays
    may then hold some points outside the range, which the caller cuts off.

    Points still in this process's metric journal are flushed first, as for every read. Runs are
    not checked for existence: ask ``get_run`` first when that matters.

    Args:
        store: The SQL tracking store.
        run_ids: The runs to read.
        key: The metric key.
        min_step: Read only chunks with a step at or above this one.
        max_step: Read only chunks with a step at or below this one.

    Returns:
        ``{run_id: MetricArrays}`` for every run id given.

    Raises:
        BackendError: The database failed.
    """
    store.flush()
    with store.read() as w:
        return {run_id: _decode(w.metric_chunks(run_id, key, min_step, max_step)) for run_id in run_ids}
