"""Import cost: ``python -c "import fitscribe"`` minus ``python -c pass`` (vs ``import mlflow``)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import _harness as h

HEAVY = ["sqlalchemy", "alembic", "numpy", "pandas"]
PROBE = "import sys, json; import {lib}; print(json.dumps([len(sys.modules), [m for m in {heavy!r} if m in sys.modules]]))"


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def workload(bench: h.Bench, p: dict) -> dict:
    _wall(f"import {bench.lib}")  # warm the OS file cache once; every timed run is a new process
    bare, imported = [], []
    for _ in range(p["repeats"]):  # interleaved, so drift affects both alike
        bare.append(_wall("pass"))
        imported.append(_wall(f"import {bench.lib}"))
    base_modules = int(h.run_python(sys.executable, "import sys; print(len(sys.modules))"))
    n_modules, heavy = json.loads(h.run_python(sys.executable, PROBE.format(lib=bench.lib, heavy=HEAVY)))
    result = {
        "import_ms": (statistics.median(imported) - statistics.median(bare)) * 1000,
        "bare_ms": statistics.median(bare) * 1000,
        "modules": n_modules - base_modules,
        "heavy": ",".join(heavy) or "none",
    }
    result.update({f"has_{m}": m in heavy for m in HEAVY})
    return result


FIGURES = [
    h.Figure("import_ms", "import time (minus bare python)", "ms", "lower"),
    h.Figure("bare_ms", "bare `python -c pass`", "ms", "info"),
    h.Figure("modules", "modules loaded by the import", "modules", "lower"),
    *[h.Figure(f"has_{m}", f"{m} imported", "", "info") for m in HEAVY],
]

if __name__ == "__main__":
    h.main(__file__, "cold import cost, median of N fresh processes", workload, FIGURES,
           lambda quick: {"repeats": 5 if quick else 21})
