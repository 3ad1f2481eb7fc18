"""Several processes log metrics into one store at once: throughput, errors and lost points."""

from __future__ import annotations

import multiprocessing as mp
import time

import _harness as h


def writer(lib: str, folder: str, run_id: str, n: int, barrier: object, queue: object) -> None:
    """Log ``n`` points one call at a time, counting the calls that fail, and report."""
    client = h.open_client(lib, folder)
    client.log_metric(run_id, "opened", 0.0)  # connect before the start line
    errors: list[str] = []
    barrier.wait()  # type: ignore[attr-defined]
    start = time.perf_counter()
    for i in range(n):
        try:
            client.log_metric(run_id, "x", float(i), step=i)
        except Exception as exc:  # counted, not hidden: "database is locked" shows here
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    flush = getattr(client, "flush", None)  # fitscribe: until every point is in the database
    if callable(flush):
        flush()
    queue.put((start, time.perf_counter(), errors))  # type: ignore[attr-defined]


def workload(bench: h.Bench, p: dict) -> dict:
    client, folder = bench.client, bench.tmp + "/store"
    exp_id = client.create_experiment("bench")
    run_ids = [client.create_run(exp_id).info.run_id for _ in range(p["writers"])]
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(p["writers"]), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(bench.lib, folder, r, p["points"], barrier, queue)) for r in run_ids]
    for proc in procs:
        proc.start()
    reports = [queue.get(timeout=h.WORKER_TIMEOUT_S) for _ in procs]
    for proc in procs:
        proc.join()
    seconds = max(r[1] for r in reports) - min(r[0] for r in reports)
    errors = [e for r in reports for e in r[2]]
    total = p["writers"] * p["points"]
    stored = h.attempt(lambda: sum(len(client.get_metric_history(r, "x")) for r in run_ids))
    in_db = h.count_metric_rows(bench.lib, folder, run_ids, "x")
    return {
        "points_per_s": total / seconds, "seconds": seconds, "errors": len(errors),
        "locked": sum("locked" in e for e in errors), "first_error": errors[0][:60] if errors else "none",
        "stored": stored, "in_db": in_db, "lost": total - stored if isinstance(stored, int) else stored,
        "exit_codes": ",".join(str(proc.exitcode) for proc in procs),
    }


FIGURES = [
    h.Figure("points_per_s", "total log_metric rate, all writers", "points/s", "higher"),
    h.Figure("seconds", "wall time, first start to last end", "s", "lower"),
    h.Figure("errors", "failed calls", "calls", "lower"),
    h.Figure("locked", '  of which "database is locked"', "calls", "lower"),
    h.Figure("first_error", "  first error", "", "info"),
    h.Figure("stored", "points read back (get_metric_history)", "points", "info"),
    h.Figure("lost", "points lost (expected - read back)", "points", "info"),
    h.Figure("in_db", "points in the database (plain SQL count)", "points", "info"),
    h.Figure("exit_codes", "writer exit codes", "", "info"),
]

if __name__ == "__main__":
    h.main(__file__, "4 spawned processes, each logging into its own run of one store with log_metric",
           workload, FIGURES, lambda quick: {"writers": 4, "points": 500 if quick else 2_000})
