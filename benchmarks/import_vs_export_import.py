"""Benchmark: `fitscribe import mlflow` against mlflow-export-import copying the same MLflow store (issue 14).

The source is an MLflow SQLite database made by the full MLflow of ``.venv-mlflow-server`` and
filled by SQL (``import_mlflow.make_source``: RUNS x METRICS x STEPS points, 10 params and 5 tags a
run). Timed, one after the other on the same source:

- ``fitscribe import mlflow sqlite:///source.db --to <fresh folder>`` (with its verification);
- mlflow-export-import, the tool MLflow users copy stores with: ``export-experiments --experiments
  all`` from the database, then ``import-experiments`` into a fresh ``mlflow server`` (SQLite backend,
  one worker), the two summed, and the metric rows that arrived counted;
- ``fitscribe import mlflow http://that-server`` (the REST source) with 1 and 8 fetching threads.

Needs mlflow-export-import in the MLflow server venv, for this benchmark only:
``FITSCRIBE_MLFLOW_EXPORT_IMPORT=1 bash scripts/mlflow_server_venv.sh``. mlflow-export-import moved
1M points in 482 s here (export 71 s, import 411 s, load 7-9), so 10M points would take over an
hour: the default scale is 100 x 20 x 500 (1M points), printed with the figures.

Usage: python benchmarks/import_vs_export_import.py [--runs 100 --metrics 20 --steps 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import MLFLOW_ENV, MLFLOW_SERVER_VENV, Server  # noqa: E402
from import_mlflow import make_source  # noqa: E402


def _timed(label: str, fn: object, *args: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed, result


def _run(command: list[str], tracking_uri: str, cwd: str) -> None:
    env = {**os.environ, **MLFLOW_ENV, "MLFLOW_TRACKING_URI": tracking_uri}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")


def _metric_rows(db: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0])
    finally:
        conn.close()


def _fitscribe_from_server(url: str, dest: str, workers: int) -> int:
    """Import from the server with ``workers`` fetching threads; return the points added."""
    from fitscribe.cli_import import _sql_destination
    from fitscribe.migrate.mlflow_rest import MlflowRestSource
    from fitscribe.migrate.plan import Importer

    source = MlflowRestSource(url, workers=workers)
    bulk = _sql_destination(dest)
    try:
        return Importer(source, bulk).run().points_added
    finally:
        source.close()
        bulk.store.close()


def main() -> int:
    """Build the source, time both tools, print the figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    bin_dir = os.path.join(MLFLOW_SERVER_VENV, "bin")
    if not os.access(os.path.join(bin_dir, "export-experiments"), os.X_OK):
        print("mlflow-export-import is not installed; run: FITSCRIBE_MLFLOW_EXPORT_IMPORT=1 bash scripts/mlflow_server_venv.sh")
        return 2
    from fitscribe.cli_import import import_mlflow

    folder = args.keep or tempfile.mkdtemp(prefix="fs-vs-export-import-")
    os.makedirs(folder, exist_ok=True)
    points = args.runs * args.metrics * args.steps
    try:
        source = os.path.join(folder, "source.db")
        if not os.path.exists(source):
            _timed("source built", make_source, source, args.runs, args.metrics, args.steps,
                   os.path.join(bin_dir, "python"))
        print(f"scale: {args.runs} runs x {args.metrics} metrics x {args.steps} steps = {points:,} points", flush=True)
        ours, (_report, checked) = _timed("fitscribe import mlflow sqlite:///", import_mlflow, f"sqlite:///{source}",
                                          os.path.join(folder, "fitscribe"))
        assert checked.ok, checked.table()
        with Server("mlflow", f"sqlite:///{os.path.join(folder, 'server.db')}", os.path.join(folder, "srv-art")) as server:
            url = f"http://127.0.0.1:{server.port}"
            exported, _ = _timed("export-experiments (from the database)", _run, [
                os.path.join(bin_dir, "export-experiments"), "--experiments", "all", "--output-dir",
                os.path.join(folder, "export")], f"sqlite:///{source}", folder)
            imported, _ = _timed("import-experiments (into a fresh mlflow server)", _run, [
                os.path.join(bin_dir, "import-experiments"), "--input-dir", os.path.join(folder, "export")], url, folder)
            arrived = _metric_rows(os.path.join(folder, "server.db"))
            rest = {w: _timed(f"fitscribe import mlflow {url} ({w} thread{'s' * (w > 1)})", _fitscribe_from_server,
                              url, os.path.join(folder, f"from-server-{w}"), w)[0] for w in (1, 8)}
        theirs = exported + imported
        print(f"\n{'':44}{'seconds':>10}{'points/s':>12}")
        print(f"{'fitscribe import mlflow (database)':44}{ours:10.1f}{points / ours:12,.0f}")
        print(f"{'mlflow-export-import (export + import)':44}{theirs:10.1f}{arrived / theirs:12,.0f}"
              f"   ({arrived:,} metric rows arrived)")
        for workers, seconds in rest.items():
            print(f"{f'fitscribe import mlflow (server, {workers} thr.)':44}{seconds:10.1f}{points / seconds:12,.0f}")
        print(f"fitscribe is {theirs / ours:.1f}x faster than mlflow-export-import at this scale")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
