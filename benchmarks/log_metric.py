"""``log_metric`` throughput: N calls in one run, each durable (survives SIGKILL) when it returns.

Two figures: the rate the training loop sees (calls returning), and the sustained rate including
the time until every point is in the database (fitscribe's journal drained; MLflow commits each
call to SQLite before returning, so for MLflow both are the same).
"""

from __future__ import annotations

import _harness as h


def workload(bench: h.Bench, p: dict) -> dict:
    client = bench.client
    run_id = client.create_run(client.create_experiment("bench")).info.run_id
    client.log_metric(run_id, "warmup", 0.0)  # the first write opens the connection pool
    n = p["calls"]
    with bench.timer() as t:
        for i in range(n):
            client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    with bench.timer() as drain:
        bench.flush()
    client.set_terminated(run_id)
    stored = h.attempt(lambda: len(client.get_metric_history(run_id, "loss")))
    return {"calls_per_s": n / t.seconds, "sustained_per_s": n / (t.seconds + drain.seconds),
            "us_per_call": t.seconds / n * 1e6, "seconds": t.seconds, "stored": stored}


FIGURES = [
    h.Figure("calls_per_s", "log_metric rate (calls returning)", "calls/s", "higher"),
    h.Figure("sustained_per_s", "sustained rate (until all in the database)", "calls/s", "higher"),
    h.Figure("us_per_call", "latency per call", "us", "lower"),
    h.Figure("seconds", "total", "s", "lower"),
    h.Figure("stored", "points read back", "points", "info"),
]

if __name__ == "__main__":
    h.main(__file__, "Client.log_metric calls in one run (each durable on return)", workload, FIGURES,
           lambda quick: {"calls": 2_000 if quick else 10_000})
