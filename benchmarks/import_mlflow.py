"""Benchmark: `fitscribe import mlflow` of an MLflow SQLite store (issue 14's targets).

The source is a database created by the real MLflow (its schema, made by MLflow's own migrations)
filled with plain SQL inserts, much faster than MLflow's API: RUNS runs x METRICS metrics x STEPS
steps, plus 10 params and 5 tags per run. Then it times the import into a fresh embedded store, and
a re-import of the unchanged source, then an export of the imported store into a bundle and that
bundle's import into a new store. Targets: 1,000 x 20 x 500 (10M points) in under 30 s, the
re-import in under 5 s, export and bundle import in under 30 s each.

Usage: python benchmarks/import_mlflow.py [--runs 1000 --metrics 20 --steps 500]
       [--mlflow-python .venv-mlflow/bin/python] [--keep DIR]
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
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHIM_MODULES = ("sqlalchemy", "alembic", "mako", "greenlet", "markupsafe", "typing_extensions", "psycopg",
                 "psycopg_binary", "pymysql")


def mlflow_env(mlflow_python: str, folder: str) -> dict[str, str]:
    """Return an environment in which ``mlflow_python`` can open SQL stores.

    mlflow-skinny lacks SQLAlchemy and Alembic: the ones of this interpreter are linked into a
    folder put on PYTHONPATH (only those the MLflow venv is missing).
    """
    import importlib.util

    shim = os.path.join(folder, "shim")
    os.makedirs(shim, exist_ok=True)
    for name in _SHIM_MODULES:
        missing = subprocess.run([mlflow_python, "-c", f"import {name}"], capture_output=True).returncode != 0
        spec = importlib.util.find_spec(name)
        if missing and spec is not None and spec.origin:
            origin = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
            site = os.path.dirname(origin)
            extras = [os.path.join(site, n) for n in os.listdir(site)
                      if n.startswith(name + "-") and n.endswith(".dist-info")]  # versions checked by drivers
            for target in (origin, *extras):
                link = os.path.join(shim, os.path.basename(target))
                if not os.path.lexists(link):
                    os.symlink(target, link)
    return {**os.environ, "PYTHONPATH": shim, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def make_source(path: str, runs: int, metrics: int, steps: int, mlflow_python: str) -> None:
    """Create an MLflow SQLite database at ``path`` with the real MLflow, then fill it by SQL."""
    env = mlflow_env(mlflow_python, os.path.dirname(path))
    subprocess.run([mlflow_python, "-c", "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).create_experiment('bench')",
                    f"sqlite:///{path}"], check=True, env=env, capture_output=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")  # a throwaway source: speed over durability
    db.execute("PRAGMA journal_mode = MEMORY")
    db.execute("PRAGMA cache_size = -262144")
    start = 1_700_000_000_000
    for r in range(runs):
        run_id = uuid.uuid4().hex
        db.execute("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                   "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
                   "(?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, 1)",
                   (run_id, f"run-{r}", start + r, start + r + 1000, f"/nonexistent/{run_id}/artifacts"))
        db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                       [(f"p{i}", str(i * r), run_id) for i in range(10)])
        db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                       [(f"t{i}", f"v{i}", run_id) for i in range(4)] + [("mlflow.runName", f"run-{r}", run_id)])
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                       [(f"m{m}", (s * 0.001 + m) / (r + 1), start + s, run_id, s)
                        for m in range(metrics) for s in range(steps)])
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "VALUES (?, ?, ?, ?, 0, ?)",
                       [(f"m{m}", (steps - 1) * 0.001 + m, start + steps - 1, steps - 1, run_id) for m in range(metrics)])
    db.commit()
    db.close()


def _bundle_round_trip(store: str) -> None:
    """Time an export of the imported store into a bundle, and the bundle's import into a new store."""
    from fitscribe.cli_import import export_bundle, import_mlflow

    with tempfile.TemporaryDirectory(prefix="fs-import-bundle-") as folder:
        t0 = time.perf_counter()
        counts = export_bundle(store, os.path.join(folder, "bundle"))
        print(f"{'export':<10} {time.perf_counter() - t0:6.2f} s  points {counts['metric_points']:,}")
        t0 = time.perf_counter()
        report, checked = import_mlflow(os.path.join(folder, "bundle"), os.path.join(folder, "store"))
        print(f"{'bundle in':<10} {time.perf_counter() - t0:6.2f} s  points added {report.points_added:,}, "
              f"verification {'ok' if checked.ok else 'DIFFERS'}")


def main() -> int:
    """Build the source, time the import and the re-import, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--mlflow-python", default=os.environ.get("FITSCRIBE_MLFLOW_PYTHON")
                        or os.path.join(REPO, ".venv-mlflow", "bin", "python"))
    parser.add_argument("--keep", help="build the source in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="fs-import-bench-")
    os.makedirs(folder, exist_ok=True)
    source = os.path.join(folder, "mlflow.db")
    if not os.path.exists(source):
        t0 = time.perf_counter()
        make_source(source, args.runs, args.metrics, args.steps, args.mlflow_python)
        print(f"source built in {time.perf_counter() - t0:.1f} s: {args.runs * args.metrics * args.steps:,} points")
    from fitscribe.cli_import import import_mlflow

    try:
        with tempfile.TemporaryDirectory(prefix="fs-import-dest-") as dest:
            for label in ("import", "re-import"):
                t0 = time.perf_counter()
                report, checked = import_mlflow(f"sqlite:///{source}", dest)
                elapsed = time.perf_counter() - t0
                print(f"{label:<10} {elapsed:6.2f} s  runs added {report.runs_added:,}, points added "
                      f"{report.points_added:,}, verification {'ok' if checked.ok else 'DIFFERS'}")
            _bundle_round_trip(dest)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
