"""Run every benchmark with the same flags, then print one summary table of their figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import _harness as h

SCRIPTS = ["import_time", "log_metric", "log_batch", "create_runs", "search_runs", "metric_history",
           "concurrent_writers"]


def main() -> None:
    args = h.parse_args()
    flags = ["--quick"] if args.quick else []
    flags += ["--mlflow-python", args.mlflow_python] if args.mlflow_python else []
    flags += ["--profile", str(args.profile)] if args.profile else []
    here = os.path.dirname(os.path.abspath(__file__))
    with_mlflow = bool(args.mlflow_python)
    rows: list[list[str]] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="fitscribe-bench-all-") as tmp:
        for name in SCRIPTS:
            out = os.path.join(tmp, f"{name}.json")
            start = time.perf_counter()
            code = subprocess.call([sys.executable, os.path.join(here, f"{name}.py"), *flags, "--json-out", out])
            print(f"   ({name} took {time.perf_counter() - start:.1f} s)\n", flush=True)
            if code:
                failed.append(name)
            if not os.path.exists(out):
                rows.append([f"{name}: FAILED (exit {code})", "", "-"] + (["-", "-"] if with_mlflow else []))
                continue
            with open(out) as f:
                report = json.load(f)
            for lib, err in report["errors"].items():
                rows.append([f"{name}: {lib} worker FAILED", "", "-"] + (["-", "-"] if with_mlflow else []))
            for r in report["rows"]:
                if r["better"] != "info" and not r["label"].startswith(" "):
                    rows.append(h.table_cells(r, with_mlflow, f"{name}: {r['label']}"))
    h.print_table(h.header(with_mlflow), rows, "== summary" + (" (--quick)" if args.quick else ""))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
