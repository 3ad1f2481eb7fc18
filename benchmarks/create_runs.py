"""Run creation rate (create_run + set_terminated) and how long a brand-new store takes to be ready."""

from __future__ import annotations

import os
import statistics
import sys

import _harness as h

# Runs in a fresh process per measurement: `import <lib>`, then the first operation on a new folder.
READY = """
import sys, time
sys.path.insert(0, {bench_dir!r})
t0 = time.perf_counter()
import {lib}
t1 = time.perf_counter()
import _harness as h
client = h.open_client({lib!r}, {folder!r})
client.{call}
t2 = time.perf_counter()
print((t2 - t1) * 1000, (t2 - t0) * 1000)
"""


def _ready_ms(bench: h.Bench, call: str, repeats: int) -> tuple[float, float]:
    after_import, total = [], []
    for i in range(repeats):
        folder = os.path.join(bench.tmp, f"new-{call[:10]}-{i}")
        code = READY.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), lib=bench.lib,
                            folder=folder, call=call)
        a, b = map(float, h.run_python(sys.executable, code).split())
        after_import.append(a)
        total.append(b)
    return statistics.median(after_import), statistics.median(total)


def workload(bench: h.Bench, p: dict) -> dict:
    create_ms, create_total_ms = _ready_ms(bench, 'create_run("0")', p["ready_repeats"])
    get_ms, _ = _ready_ms(bench, 'get_experiment("0")', p["ready_repeats"])
    client = bench.client
    exp_id = client.create_experiment("bench")
    client.create_run(exp_id)  # warm up: the store is open before timing
    n = p["runs"]
    with bench.timer() as t:
        for _ in range(n):
            run_id = client.create_run(exp_id).info.run_id
            client.set_terminated(run_id)
    return {"runs_per_s": n / t.seconds, "ms_per_run": t.seconds / n * 1000, "ready_create_ms": create_ms,
            "ready_create_total_ms": create_total_ms, "ready_get_ms": get_ms}


FIGURES = [
    h.Figure("runs_per_s", "create_run + set_terminated", "runs/s", "higher"),
    h.Figure("ms_per_run", "time per run", "ms", "lower"),
    h.Figure("ready_create_ms", "new store: client + first create_run", "ms", "lower"),
    h.Figure("ready_create_total_ms", "  same, including the import", "ms", "lower"),
    h.Figure("ready_get_ms", "new store: client + first get_experiment", "ms", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "runs created per second; time until a brand-new store is ready (after import)",
           workload, FIGURES, lambda quick: {"runs": 200 if quick else 1000, "ready_repeats": 3 if quick else 7})
