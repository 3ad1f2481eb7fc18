"""XGBoost autolog overhead: the same training with and without autolog, in one process.

Figures: ``autolog()`` call time (and whether it imported xgboost); ``xgboost.train`` 100 rounds on
50,000x20 (40,000 train rows, a 10,000-row eval set, train and eval metrics every round) as the ratio
autologged / bare, with the default autolog (model, datasets, importances logged; the importance
plots are drawn on the background thread after ``train`` returns; the ratio until a read made at once
(``search_runs``, no ``flush()``) sees the finished run is reported too); the same for
``XGBClassifier.fit`` with ``eval_set``; and the per-iteration metric logging alone
(``log_models=False``, no importances, no datasets). Each is the median of several trainings after
one warm-up (first-call imports are reported separately); bare and autologged trainings alternate,
and the process's CPU time is reported beside wall time, since a shared machine's load drifts.
``nthread=1`` keeps the timing stable there too.

Target (issue 4): < 10% added with the model logged. What autolog adds is mostly a fixed cost per
training (run start and end, datasets, model files: about 100 ms here), so the ratio falls as
training grows; ``added by autolog`` shows it in ms. MLflow, for scale: run with ``--mlflow-python``.
"""

from __future__ import annotations

import statistics
import sys
import time

import _harness as h


def _flush(lib) -> None:  # noqa: ANN001
    flush = getattr(lib, "flush", None)
    if callable(flush):
        flush()


def _timed(lib, train) -> tuple[float, float, float]:  # noqa: ANN001
    """Wall seconds of ``train()``, the same until a read made at once sees the finished run, and
    the process's CPU seconds for ``train()`` (steadier than wall time on a loaded machine)."""
    cpu, start = time.process_time(), time.perf_counter()
    train()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    h.read_back(lib)
    return took, time.perf_counter() - start, cpu


def _interleaved(lib, train, enable, repeats: int) -> dict[str, float]:  # noqa: ANN001
    """Alternate bare and autologged trainings (a shared machine's load drifts); return medians."""
    bare, bare_cpu, auto, finished, auto_cpu = [], [], [], [], []
    for _ in range(repeats):
        lib.autolog(disable=True)
        took, _, cpu = _timed(lib, train)
        bare.append(took)
        bare_cpu.append(cpu)
        enable()
        took, done, cpu = _timed(lib, train)
        auto.append(took)
        finished.append(done)
        auto_cpu.append(cpu)
    lib.autolog(disable=True)
    b, m = statistics.median(bare), statistics.median
    return {"bare": b, "ratio": m(auto) / b, "finished": m(finished) / b, "added_ms": (m(auto) - b) * 1000,
            "cpu_ratio": m(auto_cpu) / m(bare_cpu)}


def workload(bench: h.Bench, p: dict) -> dict:
    lib = h.fluent_lib(bench)
    start = time.perf_counter()
    lib.autolog(disable=True)
    handle_ms = (time.perf_counter() - start) * 1000
    imported = "xgboost" in sys.modules
    import xgboost as xgb
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=p["rows"], n_features=20, random_state=0)
    cut = int(p["rows"] * 0.8)
    dtrain, dvalid = xgb.DMatrix(X[:cut], label=y[:cut]), xgb.DMatrix(X[cut:], label=y[cut:])
    params = {"objective": "binary:logistic", "max_depth": 6, "eval_metric": "logloss", "nthread": 1}

    def train() -> None:
        xgb.train(params, dtrain, 100, evals=[(dtrain, "train"), (dvalid, "valid")], verbose_eval=False)

    def fit() -> None:
        xgb.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1).fit(
            X[:cut], y[:cut], eval_set=[(X[:cut], y[:cut]), (X[cut:], y[cut:])], verbose=False)

    train(), fit()  # warm up xgboost itself
    start = time.perf_counter()
    lib.autolog()
    out = {"autolog_call_ms": (time.perf_counter() - start) * 1000 + handle_ms, "imported_xgboost": imported}
    start = time.perf_counter()
    train()
    out["first_train_s"] = time.perf_counter() - start
    _flush(lib)
    full = _interleaved(lib, train, lib.autolog, p["repeats"])
    wrapped = _interleaved(lib, fit, lib.autolog, p["repeats"])
    if bench.lib == "fitscribe":
        light = lambda: lib.autolog.xgboost.autolog(  # noqa: E731
            log_models=False, log_datasets=False, importance_types=[], log_plots=False)
    else:
        light = lambda: lib.xgboost.autolog(log_models=False, log_datasets=False, importance_types=[])  # noqa: E731
    metrics_only = _interleaved(lib, train, light, p["repeats"])
    return {
        **out,
        "train_bare_s": full["bare"], "train_ratio": full["ratio"], "train_ratio_finished": full["finished"],
        "train_added_ms": full["added_ms"], "train_cpu_ratio": full["cpu_ratio"],
        "fit_bare_s": wrapped["bare"], "fit_ratio": wrapped["ratio"], "fit_ratio_finished": wrapped["finished"],
        "fit_cpu_ratio": wrapped["cpu_ratio"],
        "metrics_only_ratio": metrics_only["ratio"], "metrics_only_cpu_ratio": metrics_only["cpu_ratio"],
    }


FIGURES = [
    h.Figure("autolog_call_ms", "autolog() call", "ms", "lower"),
    h.Figure("imported_xgboost", "  imported xgboost", "", "info"),
    h.Figure("first_train_s", "first autologged train (one-off imports)", "s", "lower"),
    h.Figure("train_bare_s", "xgboost.train 100 rounds, eval set, bare", "s", "info"),
    h.Figure("train_ratio", "  autologged / bare (model logged)", "x", "lower"),
    h.Figure("train_added_ms", "  added by autolog", "ms", "lower"),
    h.Figure("train_cpu_ratio", "  CPU time autologged / bare", "x", "lower"),
    h.Figure("train_ratio_finished", "  until a read sees everything (plots, run end)", "x", "lower"),
    h.Figure("metrics_only_ratio", "  per-iteration metrics only / bare", "x", "lower"),
    h.Figure("metrics_only_cpu_ratio", "  CPU time, per-iteration metrics only / bare", "x", "lower"),
    h.Figure("fit_bare_s", "XGBClassifier.fit 100 rounds, eval_set, bare", "s", "info"),
    h.Figure("fit_ratio", "  autologged / bare (model logged)", "x", "lower"),
    h.Figure("fit_ratio_finished", "  until a read sees everything (plots, run end)", "x", "lower"),
    h.Figure("fit_cpu_ratio", "  CPU time autologged / bare", "x", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "XGBoost autolog overhead (median of trainings after a warm-up)", workload, FIGURES,
           lambda quick: {"repeats": 3 if quick else 7, "rows": 10_000 if quick else 50_000})
