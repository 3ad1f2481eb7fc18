"""Shared harness for the benchmark scripts: temp folders, timing, workers, tables.

A benchmark script defines ``workload(bench, params) -> dict`` and a list of :class:`Figure`, then
calls :func:`main`. ``main`` runs the workload in a fresh worker process for fitscribe (this
interpreter) and, with ``--mlflow-python PATH``, runs the *same* function in a worker started with
that interpreter against MLflow. Each worker gets its own fresh temp folder as working directory,
prints its figures as one JSON line, and the parent prints both side by side.

This module uses only the standard library so that an MLflow-only interpreter can import it;
fitscribe or mlflow is imported inside the worker, on first use.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JSON_MARKER = "@@BENCH-JSON@@ "
WORKER_TIMEOUT_S = 3600
# Keep MLflow from trying to reach the network (telemetry) while it is being timed.
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


# -- figures and table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One printed row: ``key`` in the workload's result, a label, a unit and which way is better.

    ``better`` is ``"higher"``, ``"lower"`` or ``"info"`` (no ratio is printed for ``"info"``).
    """

    key: str
    label: str
    unit: str = ""
    better: str = "higher"


def advantage(figure: Figure, ours: Any, theirs: Any) -> float | None:
    """Return how many times better fitscribe is (>1: fitscribe better), or None."""
    if figure.better == "info" or not _is_number(ours) or not _is_number(theirs):
        return None
    if figure.better == "higher":
        return ours / theirs if theirs else None
    return theirs / ours if ours else None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def fmt(x: Any) -> str:
    """Format a figure for a table cell."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.3g}" if abs(x) >= 0.01 else f"{x:.2g}"
    return str(x)


def print_table(header: list[str], rows: list[list[str]], title: str = "") -> None:
    """Print rows aligned under a header: the first column left, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    if title:
        print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def figure_rows(figures: list[Figure], ours: dict | None, theirs: dict | None) -> list[dict]:
    """Return one dict per figure: label, unit, both values and the advantage."""
    rows = []
    for f in figures:
        a = (ours or {}).get(f.key)
        b = (theirs or {}).get(f.key) if theirs is not None else None
        rows.append({"label": f.label, "unit": f.unit, "better": f.better, "fitscribe": a, "mlflow": b,
                     "advantage": advantage(f, a, b) if theirs is not None else None})
    return rows


def table_cells(row: dict, with_mlflow: bool, label: str | None = None) -> list[str]:
    """Format one figure row as table cells."""
    cells = [label or row["label"], row["unit"], fmt(row["fitscribe"])]
    if with_mlflow:
        adv = row["advantage"]
        cells += [fmt(row["mlflow"]), f"{adv:.2f}x" if adv is not None else "-"]
    return cells


def header(with_mlflow: bool, first: str = "figure") -> list[str]:
    """Return the table header."""
    return [first, "unit", "fitscribe"] + (["MLflow", "fitscribe advantage"] if with_mlflow else [])


# -- the worker's view: one library, one temp folder ----------------------------------------------
class Bench:
    """What a workload gets: the library under test, its client, entity classes, a timer.

    Args:
        lib: ``"fitscribe"`` or ``"mlflow"``.
        tmp: The worker's fresh temp folder (also its working directory).
        quick: ``--quick`` was given.
        profiler: When set, only the code inside :meth:`timer` blocks is profiled.
    """

    def __init__(self, lib: str, tmp: str, quick: bool, profiler: cProfile.Profile | None = None) -> None:
        self.lib = lib
        self.tmp = tmp
        self.quick = quick
        self.profiler = profiler
        self._client: Any = None
        mod = __import__("fitscribe.entities" if lib == "fitscribe" else "mlflow.entities", fromlist=["Metric"])
        self.Metric, self.Param, self.RunTag = mod.Metric, mod.Param, mod.RunTag

    @property
    def client(self) -> Any:
        """The client on this worker's store, ``<tmp>/store``, made on first use."""
        if self._client is None:
            self._client = open_client(self.lib, os.path.join(self.tmp, "store"))
        return self._client

    def flush(self) -> None:
        """Wait until everything logged is in the database (fitscribe's journal); MLflow's
        client writes synchronously, so there is nothing to wait for."""
        flush = getattr(self.client, "flush", None)
        if callable(flush):
            flush()

    def timer(self) -> "Timer":
        """Return a context manager measuring wall time with ``time.perf_counter``."""
        return Timer(self.profiler)

    def median_seconds(self, fn: Callable[[], Any], repeats: int) -> float:
        """Call ``fn`` ``repeats`` times and return the median wall time in seconds."""
        times = []
        for _ in range(repeats):
            with self.timer() as t:
                fn()
            times.append(t.seconds)
        return statistics.median(times)


def open_client(lib: str, folder: str) -> Any:
    """Return a client on the store in ``folder``: fitscribe's embedded folder store, or MLflow on
    ``sqlite:///<folder>/mlflow.db``."""
    if lib == "fitscribe":
        from fitscribe import Client

        return Client(folder)
    from mlflow import MlflowClient

    os.makedirs(folder, exist_ok=True)
    return MlflowClient(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")


def fluent_lib(bench: "Bench") -> Any:
    """Return the library module (``fitscribe`` or ``mlflow``) with its fluent API pointed at a store
    in the worker's temp folder (for autolog workloads): the same layout as :func:`open_client`."""
    folder = os.path.join(bench.tmp, "store")
    if bench.lib == "fitscribe":
        import fitscribe

        fitscribe.set_tracking_uri(folder)
        return fitscribe
    import mlflow

    os.makedirs(folder, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")
    return mlflow


def read_back(lib: Any) -> bool:
    """Read the newest run back at once, as a user's script does after ``fit`` (no ``flush()``):
    ``search_runs`` through the fluent API. Return True if it reads FINISHED (everything recorded;
    fitscribe's reads wait for autolog's background work, MLflow's autolog writes before returning)."""
    runs = lib.search_runs(max_results=1, order_by=["attributes.start_time DESC"], output_format="list")
    return bool(runs) and str(runs[0].info.status).endswith("FINISHED")


def db_file(lib: str, folder: str) -> str:
    """Return the SQLite file behind :func:`open_client`'s store in ``folder``."""
    return os.path.join(folder, "tracking.db" if lib == "fitscribe" else "mlflow.db")


def count_metric_rows(lib: str, folder: str, run_ids: list[str], key: str) -> int:
    """Count a metric's points with plain SQL, bypassing the client: a cross-check independent of
    the read API (MLflow has one ``metrics`` row per point; fitscribe packs them in ``metric_chunks``
    rows whose ``points`` column holds their count)."""
    import sqlite3

    marks = ",".join("?" * len(run_ids))
    count, table = ("SUM(points)", "metric_chunks") if lib == "fitscribe" else ("COUNT(*)", "metrics")
    with sqlite3.connect(db_file(lib, folder)) as conn:
        sql = f"SELECT COALESCE({count}, 0) FROM {table} WHERE key = ? AND run_uuid IN ({marks})"
        return int(conn.execute(sql, [key, *run_ids]).fetchone()[0])


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __init__(self, profiler: cProfile.Profile | None = None) -> None:
        self.profiler = profiler
        self.seconds = 0.0

    def __enter__(self) -> "Timer":
        if self.profiler is not None:
            self.profiler.enable()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._start
        if self.profiler is not None:
            self.profiler.disable()


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Yield consecutive slices of at most ``size`` items (MLflow's log_batch takes 1,000 metrics)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def attempt(fn: Callable[[], Any]) -> Any:
    """Return ``fn()``, or ``"error: <type>"`` if it raises, so that one failing step does not hide
    the other figures; the error is printed with the worker's output."""
    try:
        return fn()
    except Exception as exc:
        print(f"!! {type(exc).__name__}: {exc}")
        return f"error: {type(exc).__name__}"


def run_python(python: str, code: str, env: dict[str, str] | None = None, cwd: str | None = None) -> str:
    """Run ``python -c code`` and return its stdout (raises on a non-zero exit)."""
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode:
        raise RuntimeError(f"{python} -c {code!r} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


# -- the parent: run workers, print the table -----------------------------------------------------
def worker_env(lib: str) -> dict[str, str]:
    """Return the environment for a worker: fitscribe from this checkout, or MLflow's quiet settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITSCRIBE_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT, os.path.dirname(os.path.abspath(__file__))])
    if lib == "mlflow":
        env.update(MLFLOW_ENV)
    return env


def run_worker(python: str, script: str, lib: str, params: dict, quick: bool, profile: int, keep: bool) -> dict:
    """Run ``script`` as a worker for ``lib`` with ``python`` in a fresh temp folder; return its JSON."""
    tmp = tempfile.mkdtemp(prefix=f"fitscribe-bench-{lib}-")
    cmd = [python, os.path.abspath(script), "--worker", lib, "--params", json.dumps(params), "--tmp", tmp]
    cmd += ["--quick"] if quick else []
    cmd += ["--profile", str(profile)] if profile else []
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=worker_env(lib),
                              timeout=WORKER_TIMEOUT_S)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = None
    for out_line in proc.stdout.splitlines():
        if out_line.startswith(JSON_MARKER):
            result = json.loads(out_line[len(JSON_MARKER):])
        else:
            print(out_line)
    if proc.returncode or result is None:
        raise RuntimeError(f"the {lib} worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return result


def _worker_main(args: argparse.Namespace, workload: Callable[[Bench, dict], dict]) -> None:
    profiler = cProfile.Profile() if args.profile else None
    bench = Bench(args.worker, args.tmp, args.quick, profiler)
    result = workload(bench, json.loads(args.params))
    if profiler is not None:
        for order in ("tottime", "cumulative"):
            print(f"--- cProfile of the timed sections ({args.worker}), top {args.profile} by {order} ---")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(args.profile)
    print(JSON_MARKER + json.dumps(result), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags every benchmark script takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--mlflow-python", metavar="PATH", help="interpreter with mlflow installed, to compare")
    p.add_argument("--quick", action="store_true", help="smaller workload")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="cProfile the fitscribe worker's timed sections and print the top N functions")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON (used by run_all.py)")
    p.add_argument("--keep", action="store_true", help="keep the temp folders")
    p.add_argument("--worker", choices=["fitscribe", "mlflow"], help=argparse.SUPPRESS)
    p.add_argument("--params", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(
    script: str,
    title: str,
    workload: Callable[[Bench, dict], dict],
    figures: list[Figure],
    params: Callable[[bool], dict],
) -> None:
    """Entry point of a benchmark script (see the module docstring)."""
    args = parse_args()
    if args.worker:
        _worker_main(args, workload)
        return
    p = params(args.quick)
    name = os.path.splitext(os.path.basename(script))[0]
    print(f"== {name}: {title}")
    print(f"   params: {json.dumps(p)}{' (--quick)' if args.quick else ''}")
    results: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    sides = [("fitscribe", sys.executable)] + ([("mlflow", args.mlflow_python)] if args.mlflow_python else [])
    for lib, python in sides:
        try:
            results[lib] = run_worker(python, script, lib, p, args.quick,
                                      args.profile if lib == "fitscribe" else 0, args.keep)
        except Exception as exc:  # report and go on: the other side's figures are still useful
            results[lib] = None
            errors[lib] = str(exc)
            print(f"!! {lib}: {exc}", flush=True)
    with_mlflow = bool(args.mlflow_python)
    rows = figure_rows(figures, results.get("fitscribe"), results.get("mlflow") if with_mlflow else None)
    print_table(header(with_mlflow), [table_cells(r, with_mlflow) for r in rows])
    if with_mlflow:
        print("(fitscribe advantage: >1 means fitscribe is better by that factor)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"name": name, "title": title, "params": p, "rows": rows, "errors": errors}, f)
    if errors:
        sys.exit(1)

