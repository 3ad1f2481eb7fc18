"""``log_batch`` throughput: batches of 1,000 metrics (100 keys x 10 steps), in several rounds.

Each round logs ``batches`` batches into a new run and times the calls, then the wait until every
point is in the database (fitscribe's journal drained); the figures are the medians over the rounds
(one round of 20 batches is only ~50 ms, so single rounds swing widely on a busy machine). MLflow
commits each call before returning and runs ~100x slower, so it gets fewer, shorter rounds.
"""

from __future__ import annotations

import statistics
import time

import _harness as h

KEYS = 100


def workload(bench: h.Bench, p: dict) -> dict:
    client, Metric = bench.client, bench.Metric
    exp_id = client.create_experiment("bench")
    mlflow = bench.lib == "mlflow"
    size = p["batch_size"]
    count, rounds = (p["mlflow_batches"], p["mlflow_rounds"]) if mlflow else (p["batches"], p["rounds"])
    now = int(time.time() * 1000)
    steps_per_batch = size // KEYS
    batches = [
        [Metric(f"m{j % KEYS}", (r * size + j) * 1e-6, now, r * steps_per_batch + j // KEYS) for j in range(size)]
        for r in range(count)
    ]
    call_rates, sustained_rates, run_ids = [], [], []
    for _ in range(rounds):
        run_id = client.create_run(exp_id).info.run_id
        client.log_batch(run_id, metrics=[Metric("warmup", 0.0, now, 0)])
        bench.flush()
        with bench.timer() as t:
            for batch in batches:
                client.log_batch(run_id, metrics=batch)
        with bench.timer() as drain:
            bench.flush()
        client.set_terminated(run_id)
        total = size * count
        call_rates.append(total / t.seconds)
        sustained_rates.append(total / (t.seconds + drain.seconds))
        run_ids.append(run_id)
    stored = h.attempt(lambda: len(client.get_metric_history(run_ids[-1], "m0")))
    return {"metrics_per_s": statistics.median(call_rates), "sustained_per_s": statistics.median(sustained_rates),
            "ms_per_batch": size / statistics.median(call_rates) * 1000,
            "sustained_range": f"{min(sustained_rates):,.0f}-{max(sustained_rates):,.0f}",
            "rounds": f"{rounds} x {count:,} batches", "stored_m0": stored, "expected_m0": count * steps_per_batch}


FIGURES = [
    h.Figure("metrics_per_s", "log_batch rate (calls returning), median", "metrics/s", "higher"),
    h.Figure("sustained_per_s", "sustained rate (until all in the database), median", "metrics/s", "higher"),
    h.Figure("ms_per_batch", "time per 1,000-metric batch (median rate)", "ms", "lower"),
    h.Figure("sustained_range", "  sustained rate, slowest-fastest round", "metrics/s", "info"),
    h.Figure("rounds", "  rounds timed", "", "info"),
    h.Figure("stored_m0", "points of m0 read back (last round)", "points", "info"),
    h.Figure("expected_m0", "points of m0 expected", "points", "info"),
]

if __name__ == "__main__":
    h.main(__file__, "log_batch of 1,000 metrics, repeated (medians over rounds)", workload, FIGURES,
           lambda quick: {"batch_size": 1000, "batches": 10 if quick else 50, "rounds": 3 if quick else 9,
                          "mlflow_batches": 5 if quick else 10, "mlflow_rounds": 1 if quick else 3})
