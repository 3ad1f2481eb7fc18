"""M4 downsampling of metric histories for charts that never hide a spike.

A chart of ``W`` pixels cannot show more than a few points per pixel column, so the server sends
for each column (bucket) its first, minimum, maximum and last point: the line drawn through them
covers exactly the pixels the full series would (the M4 aggregation of Jugel et al., VLDB 2014).
NaN and infinite values cannot be drawn on a linear axis; they are never dropped but returned
apart, one position per bucket that holds them, so the chart can mark them at the plot's edge.

Everything here is a pure function over sequences or numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
import numpy.typing as npt

ArrayLike = Union[Sequence[float], npt.NDArray[np.generic]]

#: Default number of output points of a series: about twice a wide chart's width in pixels.
DEFAULT_POINTS = 2000


@dataclass(frozen=True)
class Downsampled:
    """One series reduced for drawing.

    Attributes:
        index: Positions in the arrays given of the kept finite points, in ascending x order;
            use it to pick aligned columns (e.g. the step of each point of a time axis).
        x: The x values of the kept finite points.
        y: Their values.
        nan: x positions of NaN values (at most one per bucket).
        pos_inf: x positions of +inf values (at most one per bucket).
        neg_inf: x positions of -inf values (at most one per bucket).
        total: Number of points of the series inside the requested range (finite or not).
        nonfinite: Number of NaN/inf points inside the range (before thinning per bucket).
    """

    index: npt.NDArray[np.intp]
    x: npt.NDArray[Any]
    y: npt.NDArray[np.float64]
    nan: npt.NDArray[Any]
    pos_inf: npt.NDArray[Any]
    neg_inf: npt.NDArray[Any]
    total: int
    nonfinite: int


def bucket_starts(x: npt.NDArray[Any], buckets: int) -> npt.NDArray[np.intp]:
    """Return where each non-empty bucket starts in ascending ``x``.

    The buckets split ``x[0]..x[-1]`` into ``buckets`` equal widths; bucket ``b`` holds the x with
    ``edge(b) <= x < edge(b + 1)``, ``edge(b) = x[0] + (x[-1] - x[0]) * b / buckets``.
    """
    lo, hi = float(x[0]), float(x[-1])
    if hi <= lo:
        return np.zeros(1, dtype=np.intp)
    edges = lo + (hi - lo) * (np.arange(1, buckets) / buckets)
    return np.unique(np.concatenate(([0], np.searchsorted(x, edges, side="left")))).astype(np.intp)


def m4_indices(x: npt.NDArray[Any], y: npt.NDArray[np.float64], buckets: int) -> npt.NDArray[np.intp]:
    """Return the sorted positions of the first, min, max and last point of each bucket.

    Args:
        x: Ascending x values (finite), same length as ``y``.
        y: Finite values.
        buckets: Number of equal-width x buckets (at least 1), see :func:`bucket_starts`.

    Returns:
        Unique ascending positions; at most ``4 * buckets`` of them. When the series has no more
        than ``4 * buckets`` points, every position is returned.
    """
    n = len(x)
    if n <= 4 * buckets:
        return np.arange(n, dtype=np.intp)
    bounds = np.append(bucket_starts(x, buckets), n).tolist()
    kept: list[int] = []
    for start, end in zip(bounds, bounds[1:]):  # a loop of argmin/argmax over slices: no n-sized temporaries
        part = y[start:end]
        kept += (start, start + int(part.argmin()), start + int(part.argmax()), end - 1)
    return np.unique(np.array(kept, dtype=np.intp))


def _as_array(a: ArrayLike, *, numbers: bool = False) -> npt.NDArray[Any]:
    """Return ``a`` as a one-dimensional array: float64, or kept integer when ``numbers`` allows it."""
    out = np.asarray(a)
    if not (numbers and out.dtype.kind in "iu") and out.dtype != np.float64:
        out = out.astype(np.float64)
    if out.ndim != 1:
        raise ValueError(f"expected a one-dimensional sequence, got shape {out.shape}")
    return out


def _thin_per_bucket(xs: npt.NDArray[Any], lo: float, hi: float, buckets: int) -> npt.NDArray[Any]:
    """Keep the first of the ascending positions ``xs`` in each of ``buckets`` buckets over lo..hi."""
    if len(xs) <= buckets or hi <= lo:
        return xs if hi > lo or len(xs) <= 1 else xs[:1]
    ids = np.minimum(((xs - lo) * (buckets / (hi - lo))).astype(np.intp), buckets - 1)
    keep = np.concatenate(([True], ids[1:] != ids[:-1]))
    return xs[keep]


def downsample_series(
    x: ArrayLike,
    y: ArrayLike,
    points: int = DEFAULT_POINTS,
    x_min: float | None = None,
    x_max: float | None = None,
) -> Downsampled:
    """Reduce one series to about ``points`` drawable points inside ``[x_min, x_max]``.

    Args:
        x: The x value of each point (step, wall time or relative time), in any order; points
            are put in ascending x order (stable, so equal x keep their logged order). Integer
            x stay integers in the result.
        y: The value of each point; NaN and +-inf are returned apart, never dropped.
        points: The most finite points to return (at least 4); ``points // 4`` buckets are used.
        x_min: Smallest x to include (inclusive); ``None`` for no lower bound.
        x_max: Largest x to include (inclusive); ``None`` for no upper bound.

    Returns:
        The kept points and the positions of non-finite values, see :class:`Downsampled`.

    Raises:
        ValueError: When the lengths differ, ``points`` is below 4 or ``x_min > x_max``.
    """
    xs, ys = _as_array(x, numbers=True), _as_array(y)
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but y has {len(ys)}; give one x per value")
    if points < 4:
        raise ValueError(f"points must be at least 4 (one bucket of first/min/max/last), got {points}")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise ValueError(f"x_min ({x_min}) is greater than x_max ({x_max}); swap them")
    order: npt.NDArray[np.intp] | None = None
    if len(xs) > 1 and bool(np.any(xs[1:] < xs[:-1])):
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    lo_i = 0 if x_min is None else int(np.searchsorted(xs, x_min, side="left"))
    hi_i = len(xs) if x_max is None else int(np.searchsorted(xs, x_max, side="right"))
    xs, ys = xs[lo_i:hi_i], ys[lo_i:hi_i]
    buckets = points // 4
    finite = np.isfinite(ys)
    all_finite = bool(finite.all())
    fin_pos = np.arange(len(xs), dtype=np.intp) if all_finite else np.flatnonzero(finite)
    fx, fy = (xs, ys) if all_finite else (xs[fin_pos], ys[fin_pos])
    kept = m4_indices(fx, fy, buckets) if len(fx) else np.empty(0, dtype=np.intp)
    empty = np.empty(0, dtype=xs.dtype)
    nan = pos = neg = empty
    if not all_finite:
        lo, hi = (float(xs[0]), float(xs[-1])) if len(xs) else (0.0, 0.0)
        nan = _thin_per_bucket(xs[np.isnan(ys)], lo, hi, buckets)
        pos = _thin_per_bucket(xs[ys == np.inf], lo, hi, buckets)
        neg = _thin_per_bucket(xs[ys == -np.inf], lo, hi, buckets)
    index = fin_pos[kept] + lo_i
    return Downsampled(
        index=index if order is None else order[index],
        x=fx[kept],
        y=fy[kept],
        nan=nan,
        pos_inf=pos,
        neg_inf=neg,
        total=len(xs),
        nonfinite=len(xs) - len(fx),
    )


def downsample_m4(steps: ArrayLike, values: ArrayLike, buckets: int) -> tuple[list[float], list[float]]:
    """Keep the first, min, max and last finite point of each of ``buckets`` step buckets.

    A small entry point for sparklines: non-finite values are left out (use
    :func:`downsample_series` to get them apart).

    Args:
        steps: Step (or any x) of each point, in any order.
        values: Value of each point.
        buckets: Number of buckets (at least 1); at most ``4 * buckets`` points are returned.

    Returns:
        ``(steps, values)`` of the kept points as lists, ascending in step.

    Raises:
        ValueError: When the lengths differ or ``buckets`` is below 1.

    Example:
        >>> downsample_m4([0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 9, 0, 0, 0, 0, 0, 1], 1)
        ([0, 2, 8], [0.0, 9.0, 1.0])
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    out = downsample_series(steps, values, points=4 * buckets)
    return out.x.tolist(), out.y.tolist()
