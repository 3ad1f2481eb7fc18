"""A cheap, order-free hash of a metric series' points (step, timestamp, value), the same in SQL and numpy.

The verification closing an import compares it between source and destination for every series,
so a point whose value, step or timestamp differs is found even when the point counts agree.
Each point maps to an integer in (-P, P), P = 2**31 - 1, and a series (or a key over many runs)
hashes to the sum of its points modulo P, so the hash of a key is the sum of the hashes of its
series and the order points are read in does not matter:

    f = (step % P * K1 + timestamp % P * K2 + K0) % P
    g = (hi % P * K3 + frac % P * K4 + nan * K5 + K6) % P
    point = f * g % P

where ``hi`` is the value's integer part and ``frac`` 52 bits of its fraction, as SQLite computes
them (``CAST(value AS INTEGER)`` truncates and saturates at the int64 limits), ``nan`` is 1 for
NaN (MLflow's SQL stores keep NaN as 0 with ``is_nan`` set), +-inf counts as +-DBL_MAX (MLflow's SQL
clamp), and ``%`` keeps the sign of the dividend, as in C and SQL. The product ``f * g`` ties each
value to its step and timestamp, so values swapped between steps change the sum. What it does not
see: bits below 2**-52 of values under 1 in magnitude, the sign of zero, and timestamps swapped
between two points of equal value. Every intermediate fits in 63 bits. The SQL form
(:data:`SQLITE_POINT`) runs in SQLite over MLflow's ``metrics`` table; numpy computes the same
numbers over arrays (with a pure-Python fallback when numpy is missing).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Iterable, Sequence

__all__ = ["P", "SQLITE_POINT", "series_hash", "point_hashes", "add_hashes", "hashes_of_series", "by_key",
           "chunk_hashes", "column_hashes"]

P = 2147483647
_K0, _K1, _K2, _K3, _K4, _K5, _K6 = 40503, 95755609, 39083849, 160658331, 111389769, 63568359, 26805481
_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)
_TWO63 = 9223372036854775808.0
_FRACTION = 4503599627370496.0  # 2**52
_DBL_MAX = 1.7976931348623157e308

SQLITE_POINT = (
    f"(((step % {P}) * {_K1} + (timestamp % {P}) * {_K2} + {_K0}) % {P}) * "
    f"(((CAST(value AS INTEGER) % {P}) * {_K3} "
    f"+ (CAST((value - CAST(value AS INTEGER)) * {_FRACTION!r} AS INTEGER) % {P}) * {_K4} "
    f"+ is_nan * {_K5} + {_K6}) % {P}) % {P}"
)
"""The hash of one point of MLflow's ``metrics`` table, in SQLite's SQL (sum it, then take it modulo P)."""


def add_hashes(*hashes: int) -> int:
    """Combine the hashes of disjoint sets of points (a key's series) into the hash of their union."""
    return sum(hashes) % P


def series_hash(values: Sequence[float], timestamps: Sequence[int], steps: Sequence[int]) -> int:
    """Return the hash of a series given as columns (NaN and +-inf allowed), in [0, P)."""
    if not len(values):
        return 0
    try:
        import numpy as np
    except ImportError:
        return sum(_point(v, t, s) for v, t, s in zip(values, timestamps, steps)) % P
    total = point_hashes(np.asarray(values, dtype=np.float64), np.asarray(timestamps, dtype=np.int64),
                         np.asarray(steps, dtype=np.int64)).sum()
    return int(total) % P


def column_hashes(series: Sequence[tuple[Sequence[float], Sequence[int], Sequence[int]]]) -> list[int]:
    """Return the hash of each series given as ``(values, timestamps, steps)`` columns, as
    :func:`series_hash` does one by one, in one numpy pass over all of them (many short series)."""
    try:
        import numpy as np
    except ImportError:
        return [series_hash(*columns) for columns in series]
    sizes = [len(columns[0]) for columns in series]
    if not sum(sizes):
        return [0] * len(series)
    values, timestamps, steps = (np.concatenate([np.asarray(c[i], dtype=dtype) for c in series])
                                 for i, dtype in ((0, np.float64), (1, np.int64), (2, np.int64)))
    points = point_hashes(values, timestamps, steps)
    starts = np.cumsum([0] + sizes[:-1])
    sums = iter(np.add.reduceat(points, starts[np.asarray(sizes) > 0]))  # empty series have no segment
    return [int(next(sums)) % P if size else 0 for size in sizes]


def point_hashes(values: Any, timestamps: Any, steps: Any) -> Any:
    """Return each point's hash (an int64 numpy array, values in (-P, P)) for numpy columns."""
    import numpy as np

    nan = np.isnan(values)
    v = np.where(nan, 0.0, np.clip(values, -_DBL_MAX, _DBL_MAX))
    hi = _sqlite_int(v)
    with np.errstate(over="ignore"):  # beyond 2**63 the product may be inf: saturated, as SQLite does
        frac = _sqlite_int((v - hi.astype(np.float64)) * _FRACTION)
    f = np.fmod(np.fmod(steps, P) * _K1 + np.fmod(timestamps, P) * _K2 + _K0, P)
    g = np.fmod(np.fmod(hi, P) * _K3 + np.fmod(frac, P) * _K4 + nan.astype(np.int64) * _K5 + _K6, P)
    return np.fmod(f * g, P)


def _sqlite_int(x: Any) -> Any:
    """SQLite's ``CAST(real AS INTEGER)`` over a float64 array: truncated, saturated at the int64 limits."""
    import numpy as np

    inside = (x < _TWO63) & (x >= -_TWO63)
    out = np.where(inside, x, 0.0).astype(np.int64)
    out[x >= _TWO63] = _INT64_MAX
    out[x < -_TWO63] = _INT64_MIN
    return out


def _c_mod(a: int, m: int = P) -> int:
    """``a % m`` with the sign of ``a`` (C's and SQL's remainder)."""
    r = abs(a) % m
    return r if a >= 0 else -r


def _cast(x: float) -> int:
    if x >= _TWO63:
        return _INT64_MAX
    if x < -_TWO63:
        return _INT64_MIN
    return int(x)


def _point(value: float, timestamp: int, step: int) -> int:
    """One point's hash without numpy (the same numbers as :func:`point_hashes`)."""
    nan = math.isnan(value)
    v = 0.0 if nan else max(-_DBL_MAX, min(_DBL_MAX, value))
    hi = _cast(v)
    frac = _cast((v - float(hi)) * _FRACTION)
    f = _c_mod(_c_mod(step) * _K1 + _c_mod(timestamp) * _K2 + _K0)
    g = _c_mod(_c_mod(hi) * _K3 + _c_mod(frac) * _K4 + nan * _K5 + _K6)
    return _c_mod(f * g)


def hashes_of_series(series: Iterable[tuple[str, str, Sequence[float], Sequence[int], Sequence[int]]]
                     ) -> dict[tuple[str, str], int]:
    """Return ``{(run_id, key): hash}`` of series given as ``(run_id, key, values, timestamps, steps)``."""
    return {(run_id, key): series_hash(values, timestamps, steps) for run_id, key, values, timestamps, steps in series}


def by_key(hashes: dict[tuple[str, str], int]) -> dict[str, int]:
    """Return the hash of each key over all runs, from the hashes of its series."""
    found: dict[str, int] = {}
    for (_run, key), h in hashes.items():
        found[key] = (found.get(key, 0) + h) % P
    return found


def chunk_hashes(rows: Sequence[tuple[Any, Any, bytes, bytes, bytes]]) -> list[int]:
    """Return the hash of each stored chunk ``(run_id, key, step_blob, timestamp_blob, value_blob)``
    (little-endian int64, int64 and float64 arrays, as fitscribe's SQL store keeps them)."""
    if not rows:
        return []
    try:
        import numpy as np
    except ImportError:
        from array import array

        def column(blob: bytes, code: str) -> list[Any]:
            found = array(code, bytes(blob))
            if sys.byteorder == "big":
                found.byteswap()
            return found.tolist()

        return [sum(map(_point, column(r[4], "d"), column(r[3], "q"), column(r[2], "q"))) % P for r in rows]
    steps = np.frombuffer(b"".join(r[2] for r in rows), dtype="<i8")
    timestamps = np.frombuffer(b"".join(r[3] for r in rows), dtype="<i8")
    values = np.frombuffer(b"".join(r[4] for r in rows), dtype="<f8")
    starts = np.cumsum([0] + [len(r[2]) // 8 for r in rows[:-1]])
    points = point_hashes(values.astype(np.float64), timestamps.astype(np.int64), steps.astype(np.int64))
    sums = np.add.reduceat(points, starts)  # every stored chunk holds at least one point
    return [int(x) % P for x in sums]
