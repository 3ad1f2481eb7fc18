"""scikit-learn autolog overhead: the same fit with and without autolog, in one process.

Figures: ``autolog()`` call time (and whether it imported scikit-learn); LogisticRegression on
2,000x20 with the default autolog (model logged) minus the bare fit; a 100-tree RandomForest on
10,000x20 as a ratio to the bare fit; GridSearchCV (8 candidates x 3 folds, iris) as a ratio. Each
is the median of several fits after one warm-up fit (first-call imports are reported separately).

Two views of each autologged fit: the time until ``fit`` returns (what the training script
waits for; plots, ``estimator.html``, child runs and ``cv_results.csv`` are then finished on a
background thread), and the time until a read sees everything (``fit`` plus a ``search_runs`` made
at once, without ``flush()``: the read waits for the background work; ``reads FINISHED`` checks
that every such read saw the run finished).

BLAS runs single-threaded here (``OPENBLAS_NUM_THREADS=1`` unless set): on a busy 2-core machine
OpenBLAS's spinning threads made the same bare GridSearchCV take 0.3 s or 3 s from run to run.

Targets (issue 4): autolog() < 20 ms importing no framework; LogisticRegression < 50 ms added;
RandomForest < 15% added; GridSearchCV < 1.5x. MLflow, for scale: ~8.5 s added, 112x for the grid.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import _harness as h


READS_FINISHED: list[bool] = []


def _median_fit(make, X, y, repeats: int, lib=None) -> tuple[float, float]:  # noqa: ANN001
    """Median seconds until fit returns, and until a read made at once sees the finished run."""
    returned, seen = [], []
    for _ in range(repeats):
        model = make()
        start = time.perf_counter()
        model.fit(X, y)
        returned.append(time.perf_counter() - start)
        if lib is not None:
            READS_FINISHED.append(h.read_back(lib))
        seen.append(time.perf_counter() - start)
    return statistics.median(returned), statistics.median(seen)


def workload(bench: h.Bench, p: dict) -> dict:
    lib = h.fluent_lib(bench)
    start = time.perf_counter()
    lib.autolog(disable=True)
    handle_ms = (time.perf_counter() - start) * 1000
    imported = "sklearn" in sys.modules
    from sklearn.datasets import load_iris, make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    Xr, yr = make_classification(n_samples=p["rf_rows"], n_features=20, random_state=0)
    Xi, yi = load_iris(return_X_y=True)
    cases = {
        "lr": (lambda: LogisticRegression(max_iter=500), X, y, p["repeats"]),
        "rf": (lambda: RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1), Xr, yr, p["rf_repeats"]),
        "grid": (lambda: GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.01, 0.1, 1, 10], "fit_intercept": [True, False]}, cv=3), Xi, yi, p["repeats"]),
    }
    bare = {name: _median_fit(make, Xc, yc, n)[0] for name, (make, Xc, yc, n) in cases.items()}
    start = time.perf_counter()
    lib.autolog()
    out = {"autolog_call_ms": (time.perf_counter() - start) * 1000 + handle_ms, "imported_sklearn": imported}
    make, Xc, yc, _ = cases["lr"]
    start = time.perf_counter()
    make().fit(Xc, yc)
    out["first_fit_s"] = time.perf_counter() - start
    h.read_back(lib)
    auto = {name: _median_fit(make, Xc, yc, n, lib) for name, (make, Xc, yc, n) in cases.items()}
    out.update({
        "reads_finished": f"{sum(READS_FINISHED)}/{len(READS_FINISHED)}",
        "lr_bare_ms": bare["lr"] * 1000, "lr_added_ms": (auto["lr"][0] - bare["lr"]) * 1000,
        "lr_added_all_ms": (auto["lr"][1] - bare["lr"]) * 1000,
        "rf_ratio": auto["rf"][0] / bare["rf"], "rf_ratio_all": auto["rf"][1] / bare["rf"],
        "grid_ratio": auto["grid"][0] / bare["grid"], "grid_ratio_all": auto["grid"][1] / bare["grid"],
        "rf_bare_s": bare["rf"], "grid_bare_s": bare["grid"],
    })
    return out


FIGURES = [
    h.Figure("autolog_call_ms", "autolog() call", "ms", "lower"),
    h.Figure("imported_sklearn", "  imported scikit-learn", "", "info"),
    h.Figure("first_fit_s", "first autologged fit (one-off imports)", "s", "lower"),
    h.Figure("lr_bare_ms", "LogisticRegression 2,000x20 bare fit", "ms", "info"),
    h.Figure("lr_added_ms", "  added until fit returns (model logged)", "ms", "lower"),
    h.Figure("lr_added_all_ms", "  added until a read sees everything", "ms", "lower"),
    h.Figure("rf_bare_s", "RandomForest 100 trees bare fit", "s", "info"),
    h.Figure("rf_ratio", "  autologged / bare, fit returns", "x", "lower"),
    h.Figure("rf_ratio_all", "  autologged / bare, until a read sees everything", "x", "lower"),
    h.Figure("grid_bare_s", "GridSearchCV 8x3 folds on iris bare fit", "s", "info"),
    h.Figure("grid_ratio", "  autologged / bare, fit returns", "x", "lower"),
    h.Figure("grid_ratio_all", "  autologged / bare, until a read sees everything", "x", "lower"),
    h.Figure("reads_finished", "reads made at once that saw the run FINISHED", "", "info"),
]

if __name__ == "__main__":
    # As after `pip install`: bytecode compiled. This machine sets PYTHONDONTWRITEBYTECODE=1, which
    # would make every import compile from source (autolog() measured 35 ms that way, 8 ms compiled).
    import compileall

    compileall.compile_dir(os.path.join(h.REPO_ROOT, "fitscribe"), quiet=2)
    h.main(__file__, "scikit-learn autolog overhead (median of fits after a warm-up)", workload, FIGURES,
           lambda quick: {"repeats": 3 if quick else 7, "rf_repeats": 2 if quick else 3, "rf_rows": 2_000 if quick else 10_000})
