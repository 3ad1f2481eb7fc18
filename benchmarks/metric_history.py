"""``get_metric_history`` of one metric with N steps (logged by log_batch in chunks of 1,000)."""

from __future__ import annotations

import time

import _harness as h


def workload(bench: h.Bench, p: dict) -> dict:
    client, Metric = bench.client, bench.Metric
    run_id = client.create_run(client.create_experiment("bench")).info.run_id
    now, n = int(time.time() * 1000), p["steps"]
    points = [Metric("loss", 1.0 / (s + 1), now + s, s) for s in range(n)]
    with bench.timer() as t:
        for chunk in h.chunks(points, 1000):  # MLflow's log_batch takes at most 1,000 metrics
            client.log_batch(run_id, metrics=chunk)
    read = h.attempt(lambda: _read_figures(bench, run_id, n, p["repeats"]))
    return {"log_metrics_per_s": n / t.seconds, **(read if isinstance(read, dict) else {"read_ms": read})}


def _read_figures(bench: h.Bench, run_id: str, n: int, repeats: int) -> dict:
    history = bench.client.get_metric_history(run_id, "loss")
    ms = bench.median_seconds(lambda: bench.client.get_metric_history(run_id, "loss"), repeats) * 1000
    return {"read_ms": ms, "read_points_per_s": n / (ms / 1000), "points": len(history),
            "ordered": [m.step for m in history] == list(range(n))}


FIGURES = [
    h.Figure("log_metrics_per_s", "log_batch in chunks of 1,000", "metrics/s", "higher"),
    h.Figure("read_ms", "get_metric_history", "ms", "lower"),
    h.Figure("read_points_per_s", "  points read per second", "points/s", "higher"),
    h.Figure("points", "  points returned", "points", "info"),
    h.Figure("ordered", "  ordered by step, none missing", "", "info"),
]

if __name__ == "__main__":
    h.main(__file__, "one metric with many steps: log_batch chunks, then get_metric_history (median)",
           workload, FIGURES, lambda quick: {"steps": 20_000 if quick else 100_000, "repeats": 3 if quick else 5})
