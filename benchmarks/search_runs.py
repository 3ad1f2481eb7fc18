"""``search_runs`` over one experiment of N runs with 10 params and 10 metrics each."""

from __future__ import annotations

import random
import time

import _harness as h

FILTER = "metrics.m1 > 0.5 AND params.p1 = 'a'"
ORDER_BY = ["metrics.m2 DESC"]


def _populate(bench: h.Bench, exp_id: str, n_runs: int) -> None:
    client, Metric, Param = bench.client, bench.Metric, bench.Param
    rng = random.Random(42)
    now = int(time.time() * 1000)
    for _ in range(n_runs):
        run_id = client.create_run(exp_id).info.run_id
        metrics = [Metric(f"m{k}", rng.random(), now, 0) for k in range(1, 11)]
        params = [Param(f"p{k}", rng.choice("abcd")) for k in range(1, 11)]
        client.log_batch(run_id, metrics=metrics, params=params)


def _check(runs: list, limit: int) -> bool:
    """Every run matches the filter and the page is sorted by m2, descending."""
    m2 = [r.data.metrics["m2"] for r in runs]
    matches = all(r.data.metrics["m1"] > 0.5 and r.data.params["p1"] == "a" for r in runs)
    return matches and m2 == sorted(m2, reverse=True) and 0 < len(runs) <= limit


def _search_figures(bench: h.Bench, exp_id: str, repeats: int) -> dict:
    client, result = bench.client, {}
    for limit in (100, 1000):
        def search() -> list:
            return list(client.search_runs([exp_id], FILTER, max_results=limit, order_by=ORDER_BY))

        found = search()  # warm-up and check
        result[f"ms_{limit}"] = bench.median_seconds(search, repeats) * 1000
        result[f"n_{limit}"] = len(found)
        result[f"ok_{limit}"] = _check(found, limit)
        result[f"top_m2_{limit}"] = round(found[0].data.metrics["m2"], 6) if found else None
    result["ms_unfiltered_1000"] = bench.median_seconds(
        lambda: list(client.search_runs([exp_id], max_results=1000)), repeats) * 1000
    result["ms_sorted_100"] = bench.median_seconds(  # the web UI's sort: one page, no filter
        lambda: list(client.search_runs([exp_id], max_results=100, order_by=ORDER_BY)), repeats) * 1000
    return result


def workload(bench: h.Bench, p: dict) -> dict:
    exp_id = bench.client.create_experiment("bench")
    with bench.timer() as t:
        _populate(bench, exp_id, p["runs"])
    searched = h.attempt(lambda: _search_figures(bench, exp_id, p["repeats"]))
    figures = searched if isinstance(searched, dict) else {"ms_100": searched, "ms_1000": searched}
    return {"populate_runs_per_s": p["runs"] / t.seconds, **figures}


FIGURES = [
    h.Figure("populate_runs_per_s", "populate: create_run + log_batch(10 m, 10 p)", "runs/s", "higher"),
    h.Figure("ms_100", "search, filter + order_by, max_results=100", "ms", "lower"),
    h.Figure("n_100", "  runs returned", "runs", "info"),
    h.Figure("ok_100", "  all match the filter, sorted", "", "info"),
    h.Figure("top_m2_100", "  first run's m2", "", "info"),
    h.Figure("ms_1000", "search, filter + order_by, max_results=1000", "ms", "lower"),
    h.Figure("n_1000", "  runs returned", "runs", "info"),
    h.Figure("ok_1000", "  all match the filter, sorted", "", "info"),
    h.Figure("ms_unfiltered_1000", "search, no filter, max_results=1000", "ms", "lower"),
    h.Figure("ms_sorted_100", "search, order_by only, max_results=100", "ms", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, f"search_runs with filter {FILTER!r}, order_by {ORDER_BY}, median of several",
           workload, FIGURES, lambda quick: {"runs": 2_000 if quick else 10_000, "repeats": 5 if quick else 7})
