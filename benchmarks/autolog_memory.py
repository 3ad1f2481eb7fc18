"""Peak memory of a RandomForest fit, bare and autologged (model logged), each in a fresh process.

Prints the peak resident set size (``ru_maxrss``) of the whole process and the part added while
fitting (peak minus the RSS just before ``fit``). Target (issue 4): the autologged fit under 1.2x
the bare one; MLflow, for scale, 2.6x (it deep-copies the training data).

The baseline is the strict one: a fit alone, no fitscribe imported. Two more rows say what a
fair comparison would add: "bare + dump" also cloudpickles the model to a file, as a script that
keeps its model does; "bare + store" also records one param through fitscribe (the SQLite store's
imports: SQLAlchemy, Alembic), which any tracking pays. "no plots" is ``log_plots=False``
(the plots are drawn with Pillow; matplotlib is not imported).

    python benchmarks/autolog_memory.py [--rows 50000] [--mlflow-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
lib, rows = sys.argv[1], int(sys.argv[2])

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
X, y = make_classification(n_samples=rows, n_features=20, random_state=0)
if lib.startswith("fitscribe"):
    import fitscribe
    fitscribe.autolog(log_plots=lib != "fitscribe-noplots")
elif lib == "bare-store":
    import fitscribe
elif lib == "mlflow":
    import mlflow
    mlflow.set_tracking_uri("sqlite:///" + os.path.abspath("mlflow.db"))
    mlflow.sklearn.autolog()
before = rss_mb()
model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
if lib.startswith("fitscribe"):
    fitscribe.flush()
elif lib == "bare-dump":
    import cloudpickle
    with open("model.pkl", "wb") as fh:
        cloudpickle.dump(model, fh)
elif lib == "bare-store":
    with fitscribe.start_run():
        fitscribe.log_param("n_estimators", 100)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
print(json.dumps({"before_mb": before, "peak_mb": peak, "added_mb": peak - before}))
"""


def measure(python: str, lib: str, rows: int) -> dict:
    """Run one variant in a fresh process and return its memory figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    with tempfile.TemporaryDirectory(prefix="fitscribe-mem-") as tmp:
        out = subprocess.run([python, "-c", CHILD, lib, str(rows)], cwd=tmp, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--mlflow-python", default=None)
    args = parser.parse_args()
    rows = {
        "bare": measure(sys.executable, "bare", args.rows),
        "bare + dump": measure(sys.executable, "bare-dump", args.rows),
        "bare + store": measure(sys.executable, "bare-store", args.rows),
        "fitscribe": measure(sys.executable, "fitscribe", args.rows),
        "  no plots": measure(sys.executable, "fitscribe-noplots", args.rows),
    }
    if args.mlflow_python:
        rows["mlflow bare"] = measure(args.mlflow_python, "bare", args.rows)
        rows["mlflow"] = measure(args.mlflow_python, "mlflow", args.rows)
    print(f"RandomForest(100 trees) on {args.rows:,}x20, peak memory (MB)")
    print(f"{'variant':<14} {'before fit':>10} {'peak':>8} {'added by fit':>13} {'peak ratio':>11} {'added ratio':>12}")
    for name, r in rows.items():
        base = rows["mlflow bare" if name == "mlflow" else "bare"]
        print(f"{name:<14} {r['before_mb']:>10.1f} {r['peak_mb']:>8.1f} {r['added_mb']:>13.1f} "
              f"{r['peak_mb'] / base['peak_mb']:>10.2f}x {r['added_mb'] / max(base['added_mb'], 1e-9):>11.2f}x")


if __name__ == "__main__":
    main()
