"""Sorting runs by a key some of them lack, on every database, against MLflow's order (issue 17, item 4).

MLflow's SQL store sorts by the value (ASC or DESC), with NaN after every number and runs lacking
the key after those, in both directions; ties go to ``start_time DESC``, then the run id
(``_mlflow_order`` below; it gave the same order as MLflow 3.18's SqlAlchemyStore on SQLite for
every ordering here without min/max, checked by hand). fitscribe stores a NaN latest value as NULL,
so a NaN sorts with the missing ones, newest first: it differs from MLflow when the NaN run is older
than a run lacking the key, or when a later key breaks their tie. Here the NaN run is the newest and
no later key reorders it, where both rules agree. +-inf are stored as +-max double, so they must
still sort beyond a finite 1e308.

The SQL differs by database: ``NULLS LAST`` on SQLite and PostgreSQL, a ``CASE WHEN ... IS NULL``
term on MariaDB (the two forms order rows alike on any database: both rank by null-ness first,
then by the value, and NULLs tie with each other); and by plan: one metric, param or tag is read
by a join on the key's table, the rest (several keys, ``end_time``, ``min()``/``max()`` except on
PostgreSQL) by one ORDER BY. Each ordering is read whole and page by page (three runs a page), so
both plans and the page boundary between runs with a value and runs without one are covered.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from fitscribe.backends import get_tracking_store
from fitscribe.entities import Metric, Param, RunStatus, RunTag

INF = math.inf
NAN = math.nan
# letter: (start_time, end_time or None (running), metric m's history (latest last), param p, tag t);
# None = the run lacks the key. g (NaN) is the newest run, see the module docstring.
RUNS: dict[str, tuple[int, int | None, list[float] | None, str | None, str | None]] = {
    "a": (1000, 5000, [5.0, 2.0], "c", "x"),
    "b": (1001, None, [-INF], "", None),
    "c": (1002, 3000, None, None, "y"),
    "d": (1003, 4000, [0.0, INF], "a", ""),
    "e": (1004, None, [1e308], "B", None),
    "f": (1005, 2000, None, "c", "x"),
    "g": (1006, 6000, [1.0, NAN], None, None),
}


def _value(letter: str, key: str) -> Any:
    """What run ``letter`` holds for an order_by key (None: lacks it); min/max ignore NaN points."""
    start, end, history, param, tag = RUNS[letter]
    if key == "end_time":
        return end
    if key == "params.p":
        return param
    if key == "tags.t":
        return tag
    if history is None:
        return None
    if key == "metrics.m":
        return history[-1]
    numbers = [v for v in history if not math.isnan(v)]
    return (min if key == "min(metrics.m)" else max)(numbers) if numbers else None


def _mlflow_order(order_by: list[str]) -> str:
    """The order MLflow's SQL store documents: by each key's value (numbers, then NaN, then missing,
    in either direction), then start_time DESC, then run id (the letters follow the run's age here)."""
    keys = []
    for term in order_by:
        name, _, direction = term.partition(" ")
        keys.append((name, direction.upper() != "DESC"))

    def compare(x: str, y: str) -> int:
        for name, ascending in keys:
            vx, vy = _value(x, name), _value(y, name)
            rank_x = 2 if vx is None else 1 if isinstance(vx, float) and math.isnan(vx) else 0
            rank_y = 2 if vy is None else 1 if isinstance(vy, float) and math.isnan(vy) else 0
            if rank_x != rank_y:
                return rank_x - rank_y
            if rank_x == 0 and vx != vy:
                return (-1 if vx < vy else 1) * (1 if ascending else -1)
        return RUNS[y][0] - RUNS[x][0]  # newest first

    return "".join(sorted(RUNS, key=functools.cmp_to_key(compare)))


# Every ordering is compared with _mlflow_order; the first four also with the order written out by hand.
ORDERS: list[tuple[list[str], str | None]] = [
    (["metrics.m"], "baedgfc"),  # -inf < 2 < 1e308 < +inf (latest values), NaN, then f and c (missing, newest first)
    (["metrics.m DESC"], "deabgfc"),
    (["params.p"], "bedfagc"),  # '' < 'B' < 'a' < 'c' (code points); the tie f/a newest first; g, c lack it
    (["end_time DESC"], "gadcfeb"),  # e and b are running: no end time
    (["params.p DESC"], None),
    (["tags.t"], None),
    (["tags.t DESC"], None),
    (["end_time"], None),
    (["min(metrics.m)"], None),
    (["max(metrics.m) DESC"], None),
    (["min(metrics.m) DESC"], None),
    (["max(metrics.m)"], None),
    (["params.p", "metrics.m DESC"], None),
    (["params.p DESC", "tags.t"], None),
    (["tags.t DESC", "metrics.m"], None),
    (["tags.t", "params.p DESC"], None),
    (["end_time", "params.p"], None),
    (["metrics.m DESC", "end_time DESC"], None),
    (["min(metrics.m)", "tags.t DESC"], None),
]


def _populate(store: Any) -> tuple[str, dict[str, str]]:
    exp = store.create_experiment("orderings")
    ids: dict[str, str] = {}
    for letter, (start, end, history, param, tag) in RUNS.items():
        tags = [] if tag is None else [RunTag("t", tag)]
        run_id = store.create_run(exp, "ann", start, tags, f"run-{letter}").info.run_id
        ids[letter] = run_id
        metrics = [Metric("m", v, 5, step) for step, v in enumerate(history or [])]
        store.log_batch(run_id, metrics, [] if param is None else [Param("p", param)])
        if end is not None:
            store.update_run_info(run_id, status=RunStatus.FINISHED, end_time=end)
    return exp, ids


def test_the_reference_order_is_the_one_written_out() -> None:
    for order_by, expected in ORDERS:
        if expected is not None:
            assert _mlflow_order(order_by) == expected, order_by


def test_keys_some_runs_lack_sort_as_in_mlflow_whole_and_by_pages(tracking_uri: str) -> None:
    store = get_tracking_store(tracking_uri)
    try:
        wrong = _wrong_orders(store)
    finally:
        store.close()
    assert wrong == []


def _wrong_orders(store: Any) -> list[tuple[list[str], str, str, str]]:
    exp, ids = _populate(store)
    names = {run_id: letter for letter, run_id in ids.items()}
    wrong = []
    for order_by, _ in ORDERS:
        expected = _mlflow_order(order_by)
        whole = "".join(names[r.info.run_id] for r in store.search_runs([exp], None, max_results=50, order_by=order_by))
        paged, token = "", None
        for _ in range(len(RUNS)):
            page = store.search_runs([exp], None, max_results=3, order_by=order_by, page_token=token)
            paged += "".join(names[r.info.run_id] for r in page)
            token = page.token
            if token is None:
                break
        if (whole, paged) != (expected, expected):
            wrong.append((order_by, expected, whole, paged))
    return wrong
