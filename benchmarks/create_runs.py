"""Run creation rate (create_run + set_terminated) and how long a brand-new store takes to be ready.

"New store ready" is measured in a fresh process per sample, from right after ``import <lib>`` (and,
in the second figure, including it) until a client on a folder that does not exist yet has made the
store and answered its first call; then the same on the existing store. Each run in the rate loop
is committed before its call returns. fitscribe is byte-compiled first, as an installed package is
(this machine sets ``PYTHONDONTWRITEBYTECODE=1``, which would add compiling to every sample).
"""

from __future__ import annotations

import os
import statistics
import sys

import _harness as h

# Runs in a fresh process per measurement: `import <lib>`, then the first operation on a new folder.
READY = """
import sys, time
sys.path.insert(0, {bench_dir!r})
import _harness as h  # the benchmark's helpers, not timed
t0 = time.perf_counter()
import {lib}
t1 = time.perf_counter()
client = h.open_client({lib!r}, {folder!r})
client.{call}
t2 = time.perf_counter()
print((t2 - t1) * 1000, (t2 - t0) * 1000, int("sqlalchemy" in sys.modules))
"""


def _ready_ms(bench: h.Bench, call: str, repeats: int, existing: bool = False) -> tuple[float, float, bool]:
    """Median ms after the import and including it, and whether SQLAlchemy was loaded."""
    after_import, total, loaded = [], [], False
    for i in range(repeats):
        folder = os.path.join(bench.tmp, f"new-{call[:10]}-{i}")
        code = READY.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), lib=bench.lib,
                            folder=folder, call=call)
        if existing:
            h.run_python(sys.executable, code)
        a, b, sa = h.run_python(sys.executable, code).split()
        after_import.append(float(a))
        total.append(float(b))
        loaded = loaded or sa == "1"
    return statistics.median(after_import), statistics.median(total), loaded


def workload(bench: h.Bench, p: dict) -> dict:
    create_ms, create_total_ms, create_sa = _ready_ms(bench, 'create_run("0")', p["ready_repeats"])
    existing_ms, _, existing_sa = _ready_ms(bench, 'create_run("0")', p["ready_repeats"], existing=True)
    get_ms, _, _ = _ready_ms(bench, 'get_experiment("0")', p["ready_repeats"])
    client = bench.client
    exp_id = client.create_experiment("bench")
    client.create_run(exp_id)  # warm up: the store is open before timing
    n = p["runs"]
    with bench.timer() as t:
        for _ in range(n):
            run_id = client.create_run(exp_id).info.run_id
            client.set_terminated(run_id)
    return {"runs_per_s": n / t.seconds, "ms_per_run": t.seconds / n * 1000, "ready_create_ms": create_ms,
            "ready_create_total_ms": create_total_ms, "ready_get_ms": get_ms, "existing_create_ms": existing_ms,
            "sqlalchemy_loaded": create_sa or existing_sa}


FIGURES = [
    h.Figure("runs_per_s", "create_run + set_terminated", "runs/s", "higher"),
    h.Figure("ms_per_run", "time per run", "ms", "lower"),
    h.Figure("ready_create_ms", "new store: client + first create_run", "ms", "lower"),
    h.Figure("ready_create_total_ms", "  same, including the import", "ms", "lower"),
    h.Figure("ready_get_ms", "new store: client + first get_experiment", "ms", "lower"),
    h.Figure("existing_create_ms", "existing store: client + first create_run", "ms", "lower"),
    h.Figure("sqlalchemy_loaded", "  SQLAlchemy imported on these paths", "", "info"),
]

if __name__ == "__main__":
    import compileall

    compileall.compile_dir(os.path.join(h.REPO_ROOT, "fitscribe"), quiet=2)
    h.main(__file__, "runs created per second; time until a brand-new store is ready (after import)",
           workload, FIGURES, lambda quick: {"runs": 200 if quick else 1000, "ready_repeats": 3 if quick else 7})
