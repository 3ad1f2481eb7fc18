"""Metric history as packed chunks: one ``metric_chunks`` row per series and write, holding arrays.

A row holds one (run, key) series' points in logging order as little-endian arrays: int64 steps and
timestamps, IEEE 754 doubles (NaN, -0.0 and +-inf come back bit for bit on every database); a
series of more than ``MAX_POINTS_PER_CHUNK`` points is split. A history read fetches a few rows and
decodes them in C (``array``) instead of one B-tree insert and one row per point. Histories come by
step, then timestamp, then logging order: a stable sort, skipped when already ordered (the usual case).

Points travel between the store, the journal and the writer as *batches* in columns:
``(run_id, keys, values, timestamps, steps)`` (``metric_columns`` validates Metric objects into them).
"""

from __future__ import annotations

import sys
from array import array
from functools import partial
from itertools import groupby, islice
from operator import itemgetter, le, lt
from typing import Any, Callable, Iterable, Sequence

from fitscribe import validation as v

__all__ = ["Batch", "metric_columns", "MAX_POINTS_PER_CHUNK", "pack", "unpack", "pack_ints", "pack_floats", "unpack_ints",
           "unpack_floats", "decode_chunks", "group_batches", "latest_of", "order_points"]

Batch = tuple  # (run_id: str, keys, values: floats, timestamps: ints, steps: ints)

MAX_POINTS_PER_CHUNK = 16384
"""Points per stored row at most (3 x 128 KiB of arrays), so rows stay small on every database."""

_SWAP = sys.byteorder == "big"  # the stored arrays are little-endian
assert array("q").itemsize == 8 and array("d").itemsize == 8 and array("I").itemsize == 4


def metric_columns(
    metrics: Sequence[Any], known_keys: set[str], key_of: Callable[[Any], str]
) -> tuple[Sequence[Any], ...]:
    """Validate metric points into columns ``(keys, values, timestamps, steps)``.

    Known keys with float values and int steps and timestamps in range are checked in C over whole
    columns; anything else point by point (``key_of`` for keys, validation.py for the rest, which
    converts numpy numbers and names the first bad value).
    """
    if len(metrics) == 1:  # log_metric
        key, value, timestamp, step = _checked_point(metrics[0], key_of)
        return (key,), (value,), (timestamp,), (step,)
    if not metrics:
        return (), (), (), ()
    try:  # four comprehensions cost less than zip(*map(attrgetter(...)))
        keys = [m.key for m in metrics]
        values = [m.value for m in metrics]
        timestamps = [m.timestamp for m in metrics]
        steps = [m.step for m in metrics]
    except AttributeError:
        keys = []  # not Metric-like: the per-point checks say which item is wrong
    if (
        not keys
        or not known_keys.issuperset(keys)
        or not _only(values, float)
        or not _only(timestamps, int) or not _in_int64(timestamps)
        or not _only(steps, int) or not _in_int64(steps)
    ):
        return tuple(zip(*(_checked_point(m, key_of) for m in metrics)))
    return keys, values, timestamps, steps


def _checked_point(m: Any, key_of: Callable[[Any], str]) -> tuple[str, float, int, int]:
    key = key_of(m.key)
    value = m.value
    if type(value) is not float:
        value = v.check_metric_value(key, value)
    timestamp, step = m.timestamp, m.step
    if type(timestamp) is not int or not -v.MAX_INT64 <= timestamp <= v.MAX_INT64:
        timestamp = v.check_int(timestamp, "timestamp")
    if type(step) is not int or not -v.MAX_INT64 <= step <= v.MAX_INT64:
        step = v.check_int(step, "step")
    return key, value, timestamp, step


def _only(items: Sequence[Any], kind: type) -> bool:
    """True if every item is exactly of ``kind`` (not a subclass such as bool), checked in C."""
    return set(map(type, items)) == {kind}


def _in_int64(items: Sequence[int]) -> bool:
    return -v.MAX_INT64 <= min(items) and max(items) <= v.MAX_INT64


def pack(typecode: str, values: Iterable[Any]) -> bytes:
    """Return ``values`` as an ``array`` of ``typecode``, little-endian (the ``pack_*`` below)."""
    packed = array(typecode, values)
    if _SWAP:  # pragma: no cover - big-endian machines
        packed.byteswap()
    return packed.tobytes()


def unpack(typecode: str, blob: Any) -> list[Any]:
    """Return the values :func:`pack` packed with ``typecode``."""
    unpacked = array(typecode)
    unpacked.frombytes(blob)
    if _SWAP:  # pragma: no cover - big-endian machines
        unpacked.byteswap()
    return unpacked.tolist()


pack_ints = partial(pack, "q")
"""Return signed 64-bit integers packed little-endian."""
pack_floats = partial(pack, "d")
"""Return doubles packed little-endian (NaN and infinities included, bit for bit)."""
unpack_ints = partial(unpack, "q")
"""Return the integers packed by :func:`pack_ints`."""
unpack_floats = partial(unpack, "d")
"""Return the doubles packed by :func:`pack_floats`."""


def decode_chunks(rows: Iterable[Sequence[Any]]) -> tuple[list[float], list[int], list[int]]:
    """Return a series' ``(step_blob, timestamp_blob, value_blob)`` rows (in logging order) as
    (values, timestamps, steps) ordered by :func:`order_points`."""
    values: list[float] = []
    timestamps: list[int] = []
    steps: list[int] = []
    for step_blob, timestamp_blob, value_blob in rows:
        steps += unpack_ints(step_blob)
        timestamps += unpack_ints(timestamp_blob)
        values += unpack_floats(value_blob)
    return order_points(values, timestamps, steps)


def group_batches(batches: Sequence[Batch]) -> dict[tuple[str, str], list[list[Any]]]:
    """Return ``{(run_id, key): [values, timestamps, steps]}``, each series in logging order.

    Consecutive batches of one run are joined first, then split by key with C-level slicing: whole
    when there is one key, by stride when the keys repeat in a fixed order (one dict of metrics
    logged per step, the usual case), else after a stable sort on the key.
    """
    joined: list[list[Any]] = []
    for run_id, keys, values, timestamps, steps in batches:
        if joined and joined[-1][0] == run_id:
            last = joined[-1]
            last[1].extend(keys)
            last[2].extend(values)
            last[3].extend(timestamps)
            last[4].extend(steps)
        elif keys:
            joined.append([run_id, list(keys), list(values), list(timestamps), list(steps)])
    series: dict[tuple[str, str], list[list[Any]]] = {}
    for run_id, keys, values, timestamps, steps in joined:
        for key, vals, times, stps in _split_by_key(keys, values, timestamps, steps):
            found = series.get((run_id, key))
            if found is None:
                series[(run_id, key)] = [vals, times, stps]
            else:
                found[0].extend(vals)
                found[1].extend(times)
                found[2].extend(stps)
    return series


def _split_by_key(keys: list[str], values: list[float], timestamps: list[int], steps: list[int]) -> list[tuple[Any, ...]]:
    distinct = list(dict.fromkeys(keys))
    period = len(distinct)
    if period == 1:
        return [(keys[0], values, timestamps, steps)]
    if keys[:period] == distinct and keys[period:] == keys[:-period]:  # k1 k2 k3 k1 k2 k3 ...
        return [(key, values[i::period], timestamps[i::period], steps[i::period]) for i, key in enumerate(distinct)]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: logging order within a key
    pick = itemgetter(*order)
    sorted_keys = pick(keys)
    columns = pick(values), pick(timestamps), pick(steps)
    parts = []
    start = 0
    for key, same in groupby(sorted_keys):
        end = start + len(list(same))
        parts.append((key, *(list(column[start:end]) for column in columns)))
        start = end
    return parts


def latest_of(values: list[float], timestamps: list[int], steps: list[int]) -> tuple[float, int, int, float | None, float | None]:
    """Return (value, timestamp, step) of the point with the largest (step, timestamp), the last
    logged among equals, then the minimum and maximum value ignoring NaN (None if all are NaN)."""
    count = len(values)
    if count == 1:
        index = 0
    elif _increasing(steps):
        index = count - 1
    else:
        index = max(zip(steps, timestamps, range(count)))[2]
    total = sum(values)
    if total == total:  # no NaN (a NaN makes the sum NaN)
        low, high = min(values), max(values)
    else:  # NaN compares false with everything, so min/max cannot be used on the raw list
        numbers = [x for x in values if x == x]
        low, high = (min(numbers), max(numbers)) if numbers else (None, None)
    return values[index], timestamps[index], steps[index], low, high


def order_points(values: list[float], timestamps: list[int], steps: list[int]) -> tuple[list[float], list[int], list[int]]:
    """Return the columns ordered by step, then timestamp, keeping logging order among equals."""
    if _increasing(steps):
        return values, timestamps, steps
    pairs = list(zip(steps, timestamps))
    if all(map(le, pairs, islice(pairs, 1, None))):
        return values, timestamps, steps
    order = sorted(range(len(pairs)), key=pairs.__getitem__)  # stable: logging order among ties
    pick = itemgetter(*order)
    return list(pick(values)), list(pick(timestamps)), list(pick(steps))


def _increasing(steps: list[int]) -> bool:
    """True if every step is larger than the one before (then steps alone give the order)."""
    return all(map(lt, steps, islice(steps, 1, None)))
