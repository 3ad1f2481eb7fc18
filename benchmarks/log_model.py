"""Model logging cost: ``sklearn.log_model`` of a 100-tree RandomForest against cloudpickling it
to a file, environment-file generation, and pyfunc ``predict`` overhead on one row.

Targets (issue 3): log_model within 1.5x of the bare cloudpickle dump; environment files under
20 ms; pyfunc predict under 1 ms over the native predict for one row.
"""

from __future__ import annotations

import os
import tempfile
import time

import _harness as h


def _train(p: dict):  # noqa: ANN202 - sklearn objects
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=p["rows"], n_features=20, random_state=0)
    return RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y), X, y


def _flavors(bench: h.Bench):  # noqa: ANN202 - the library's sklearn and pyfunc modules
    if bench.lib == "fitscribe":
        import fitscribe
        from fitscribe.flavors import pyfunc, sklearn

        fitscribe.set_tracking_uri(os.path.join(bench.tmp, "store"))
        return fitscribe, sklearn, pyfunc
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    os.makedirs(os.path.join(bench.tmp, "store"), exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{os.path.join(bench.tmp, 'store', 'mlflow.db')}")
    return mlflow, mlflow.sklearn, mlflow.pyfunc


def workload(bench: h.Bench, p: dict) -> dict:
    import cloudpickle

    model, X, y = _train(p)
    lib, sk, pyfunc = _flavors(bench)
    folder = tempfile.mkdtemp(dir=bench.tmp)

    def dump() -> None:
        with open(os.path.join(folder, "model.pkl"), "wb") as fh:
            cloudpickle.dump(model, fh)

    dump()
    size = os.path.getsize(os.path.join(folder, "model.pkl"))

    def log(name: str):  # noqa: ANN202 - same format on both sides (MLflow 3 defaults to skops)
        if bench.lib == "mlflow":
            return sk.log_model(model, name=name, serialization_format="cloudpickle")
        return sk.log_model(model, name)

    # Taken in turns (dump, log_model, dump, ...) so that drift of the machine hits both alike;
    # the ratio is the median of the per-pair ratios.
    dumps, times, ratios = [], [], []
    with lib.start_run():
        log("warmup")
        for i in range(p["repeats"]):
            with bench.timer() as t:
                dump()
            dumps.append(t.seconds)
            with bench.timer() as t:
                log(f"m{i}")
            times.append(t.seconds)
            ratios.append(times[-1] / dumps[-1])
    dump_s, log_s = sorted(dumps)[len(dumps) // 2], sorted(times)[len(times) // 2]
    ratio = sorted(ratios)[len(ratios) // 2]
    out = {"dump_ms": dump_s * 1000, "log_model_ms": log_s * 1000, "ratio": ratio, "model_mb": size / 1e6}
    out.update(_floor_ms(bench, lib, sk, model, p["repeats"]))
    out.update(_environment_ms(bench, model))
    out.update(_predict_overhead(bench, lib, sk, pyfunc, X, y, p["repeats"]))
    return out


def _floor_ms(bench: h.Bench, lib, sk, model, repeats: int) -> dict:  # noqa: ANN001
    """Where log_model's time beyond the dump goes: the sha256 of the pickled bytes (fitscribe
    records it for every model file) and the fixed cost of logging a tiny model (descriptor,
    environment files, run tag, folder moves)."""
    import hashlib

    import cloudpickle
    from sklearn.linear_model import LogisticRegression

    data = cloudpickle.dumps(model)
    tiny = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    names = iter(range(10_000))
    with lib.start_run():
        log_tiny = lambda: sk.log_model(tiny, name=f"t{next(names)}") if bench.lib == "mlflow" else sk.log_model(tiny, f"t{next(names)}")  # noqa: E731
        log_tiny()
        fixed = bench.median_seconds(log_tiny, repeats)
    return {"sha256_ms": bench.median_seconds(lambda: hashlib.sha256(data).digest(), repeats) * 1000,
            "fixed_ms": fixed * 1000}


def _environment_ms(bench: h.Bench, model) -> dict:  # noqa: ANN001
    if bench.lib != "fitscribe":
        return {}
    from fitscribe.flavors import environment
    from fitscribe.flavors.sklearn import _model_modules

    def generate() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            reqs = environment.requirements_for(_model_modules(model), ["scikit-learn", "numpy", "scipy", "cloudpickle"])
            environment.write_environment(tmp, reqs)

    inspector = environment.EnvironmentInspector()  # cold: nothing cached yet
    with bench.timer() as t:
        environment.requirements_for(_model_modules(model), ["scikit-learn", "cloudpickle"], inspector=inspector)
    return {"env_cold_ms": t.seconds * 1000, "env_ms": bench.median_seconds(generate, 20) * 1000}


def _predict_overhead(bench: h.Bench, lib, sk, pyfunc, X, y, repeats: int) -> dict:  # noqa: ANN001
    """pyfunc's cost over the native predict, on a LogisticRegression (a fast native predict, so
    the difference is pyfunc's own: signature check, conversion, dispatch)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(X[:, :5], columns=[f"f{i}" for i in range(5)])
    model = LogisticRegression(max_iter=500).fit(frame, y)
    with lib.start_run():
        info = sk.log_model(model, name="lr", input_example=frame.head(3)) if bench.lib == "mlflow" else sk.log_model(model, "lr", input_example=frame.head(3))
    loaded = pyfunc.load_model(info.model_uri)
    row = frame.head(1)
    n = 500

    def native() -> None:
        for _ in range(n):
            model.predict(row)

    def wrapped() -> None:
        for _ in range(n):
            loaded.predict(row)

    native_s = bench.median_seconds(native, repeats) / n
    wrapped_s = bench.median_seconds(wrapped, repeats) / n
    return {"predict_native_ms": native_s * 1000, "predict_pyfunc_ms": wrapped_s * 1000,
            "predict_overhead_ms": (wrapped_s - native_s) * 1000}


FIGURES = [
    h.Figure("model_mb", "RandomForest(100 trees) pickled size", "MB", "info"),
    h.Figure("dump_ms", "cloudpickle.dump to a file (baseline)", "ms", "info"),
    h.Figure("log_model_ms", "sklearn.log_model into a run", "ms", "lower"),
    h.Figure("ratio", "  log_model / bare dump (median of pairs taken in turns)", "x", "lower"),
    h.Figure("sha256_ms", "sha256 of the pickled bytes (recorded for every model file)", "ms", "info"),
    h.Figure("fixed_ms", "log_model of a 1-feature LogisticRegression (fixed cost)", "ms", "lower"),
    h.Figure("env_cold_ms", "requirements inference, cold", "ms", "info"),
    h.Figure("env_ms", "environment files (requirements, conda, python_env)", "ms", "info"),
    h.Figure("predict_native_ms", "native predict, 1-row DataFrame (LogisticRegression)", "ms", "info"),
    h.Figure("predict_pyfunc_ms", "pyfunc predict, same row, signature enforced", "ms", "lower"),
    h.Figure("predict_overhead_ms", "  pyfunc overhead", "ms", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "log_model of a 100-tree RandomForest; environment files; pyfunc overhead",
           workload, FIGURES, lambda quick: {"rows": 2_000 if quick else 10_000, "repeats": 3 if quick else 15})
