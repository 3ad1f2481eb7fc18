"""``log_batch`` throughput: batches of 1,000 metrics (100 keys x 10 steps), repeated."""

from __future__ import annotations

import time

import _harness as h

KEYS = 100


def workload(bench: h.Bench, p: dict) -> dict:
    client, Metric = bench.client, bench.Metric
    run_id = client.create_run(client.create_experiment("bench")).info.run_id
    size, repeats = p["batch_size"], p["repeats"]
    now = int(time.time() * 1000)
    steps_per_batch = size // KEYS
    batches = [
        [Metric(f"m{j % KEYS}", (r * size + j) * 1e-6, now, r * steps_per_batch + j // KEYS) for j in range(size)]
        for r in range(repeats)
    ]
    client.log_batch(run_id, metrics=[Metric("warmup", 0.0, now, 0)])
    with bench.timer() as t:
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
    with bench.timer() as drain:
        bench.flush()
    client.set_terminated(run_id)
    stored = h.attempt(lambda: len(client.get_metric_history(run_id, "m0")))
    total = size * repeats
    return {"metrics_per_s": total / t.seconds, "sustained_per_s": total / (t.seconds + drain.seconds), "ms_per_batch": t.seconds / repeats * 1000,
            "seconds": t.seconds, "stored_m0": stored, "expected_m0": repeats * steps_per_batch}


FIGURES = [
    h.Figure("metrics_per_s", "log_batch rate (calls returning)", "metrics/s", "higher"),
    h.Figure("sustained_per_s", "sustained rate (until all in the database)", "metrics/s", "higher"),
    h.Figure("ms_per_batch", "time per 1,000-metric batch", "ms", "lower"),
    h.Figure("seconds", "total", "s", "lower"),
    h.Figure("stored_m0", "points of m0 read back", "points", "info"),
    h.Figure("expected_m0", "points of m0 expected", "points", "info"),
]

if __name__ == "__main__":
    h.main(__file__, "log_batch of 1,000 metrics, repeated", workload, FIGURES,
           lambda quick: {"batch_size": 1000, "repeats": 5 if quick else 20})
