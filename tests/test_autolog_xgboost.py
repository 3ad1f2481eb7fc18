"""XGBoost autolog against real training: what xgb.train and the sklearn wrappers record, read back
through the Client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fitscribe
from fitscribe.autolog._patch import is_patched, original_of
from fitscribe.errors import InvalidValueError

ROUNDS = 5


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    fitscribe.autolog(disable=True)
    fitscribe.autolog.xgboost.autolog(disable=True)
    fitscribe.autolog.sklearn.autolog(disable=True)
    fitscribe.flush()


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.3, size=120) > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture
def dmatrices(data) -> tuple[xgb.DMatrix, xgb.DMatrix]:  # noqa: ANN001
    X, y = data
    return xgb.DMatrix(X[:80], label=y[:80]), xgb.DMatrix(X[80:], label=y[80:])


def _runs() -> list[fitscribe.Run]:
    return fitscribe.search_runs(output_format="list", order_by=["attributes.start_time ASC"])


def _report(run_id: str) -> dict:
    with open(fitscribe.download_artifacts(run_id, "fitscribe.autolog.report.json")) as fh:
        return json.load(fh)


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in fitscribe.get_metric_history(run_id, key)]


def _artifacts(run_id: str) -> set[str]:
    return {f.path for f in fitscribe.list_artifacts(run_id)}


def test_train_records_user_params_full_histories_importances_model_datasets(dmatrices) -> None:  # noqa: ANN001
    dtrain, deval = dmatrices
    fitscribe.autolog()
    result: dict = {}
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "eval_metric": ["logloss", "auc"], "nthread": 1}
    booster = xgb.train(params, dtrain, ROUNDS, evals=[(dtrain, "train"), (deval, "eval")],
                        evals_result=result, verbose_eval=False)
    (run,) = _runs()
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.autologging"] == "xgboost"
    assert run.data.params == {"objective": "binary:logistic", "max_depth": "2", "eta": "0.3", "nthread": "1",
                               "eval_metric": "['logloss', 'auc']", "num_boost_round": "5", "verbose_eval": "False"}
    assert set(run.data.metrics) == {"train-logloss", "train-auc", "eval-logloss", "eval-auc"}
    for data_name in ("train", "eval"):
        for metric in ("logloss", "auc"):
            history = _history(rid, f"{data_name}-{metric}")
            assert [s for s, _ in history] == list(range(ROUNDS))
            assert [v for _, v in history] == pytest.approx(result[data_name][metric])
    assert {"feature_importance_weight.json", "feature_importance_gain.json", "feature_importance_weight.png",
            "feature_importance_gain.png", "model", "fitscribe.autolog.report.json"} == _artifacts(rid)
    with open(fitscribe.download_artifacts(rid, "feature_importance_gain.json")) as fh:
        assert json.load(fh) == pytest.approx(booster.get_score(importance_type="gain"))
    assert Path(fitscribe.download_artifacts(rid, "feature_importance_weight.png")).read_bytes().startswith(b"\x89PNG")
    loaded = fitscribe.flavors.xgboost.load_model(f"runs:/{rid}/model")
    assert isinstance(loaded, xgb.Booster)
    assert np.array_equal(loaded.predict(deval), booster.predict(deval))
    signature = fitscribe.flavors.pyfunc.load_model(f"runs:/{rid}/model").signature
    assert [c.name for c in signature.inputs] == ["a", "b", "c", "d"]  # from the DMatrix's feature names
    inputs = {(i.dataset.name, dict((t.key, t.value) for t in i.tags)["mlflow.data.context"]) for i in run.inputs.dataset_inputs}
    assert inputs == {("dataset", "train"), ("eval", "eval")}  # dtrain listed in evals is not logged twice
    report = _report(rid)
    assert report["skipped"] == [] and report["managed_run"] is True


def test_early_stopping_logs_best_values_under_their_own_names(data) -> None:  # noqa: ANN001
    X, _ = data
    noise = np.random.default_rng(1).integers(0, 2, size=len(X))  # unlearnable: eval loss rises fast
    dtrain, deval = xgb.DMatrix(X[:80], label=noise[:80]), xgb.DMatrix(X[80:], label=noise[80:])
    fitscribe.autolog(log_models=False, log_plots=False)
    result: dict = {}
    booster = xgb.train({"objective": "binary:logistic", "eta": 1.0, "max_depth": 6, "nthread": 1}, dtrain, 100,
                        evals=[(dtrain, "train"), (deval, "eval")], early_stopping_rounds=3,
                        evals_result=result, verbose_eval=False)
    (run,) = _runs()
    rid, metrics = run.info.run_id, run.data.metrics
    iterations = len(result["eval"]["logloss"])
    assert iterations < 100 and booster.best_iteration < iterations - 1
    assert metrics["stopped_iteration"] == iterations - 1
    assert metrics["best_iteration"] == booster.best_iteration
    assert run.data.params["early_stopping_rounds"] == "3"
    history = _history(rid, "eval-logloss")
    assert len(history) == iterations and history[-1][0] == iterations - 1  # no extra point at the end
    assert metrics["eval-logloss"] == pytest.approx(result["eval"]["logloss"][-1])  # latest = final iteration
    best = booster.best_iteration
    assert metrics["best-eval-logloss"] == pytest.approx(result["eval"]["logloss"][best])
    assert metrics["best-train-logloss"] == pytest.approx(result["train"]["logloss"][best])
    assert _history(rid, "best-eval-logloss") == [(best, pytest.approx(result["eval"]["logloss"][best]))]


def test_classifier_fit_logs_one_run_with_inner_train_metrics_and_model(data) -> None:  # noqa: ANN001
    X, y = data
    fitscribe.autolog(log_input_examples=True)
    model = xgb.XGBClassifier(n_jobs=1, n_estimators=ROUNDS, max_depth=2, learning_rate=0.5)
    model.fit(X[:80], y[:80], eval_set=[(X[80:], y[80:])], verbose=False)
    (run,) = _runs()
    rid = run.info.run_id
    assert run.data.tags["estimator_name"] == "XGBClassifier"
    params = run.data.params
    assert {"n_estimators": "5", "max_depth": "2", "learning_rate": "0.5", "objective": "binary:logistic"}.items() <= params.items()
    assert "None" not in params.values() and "callbacks" not in params
    history = _history(rid, "validation_0-logloss")
    assert [s for s, _ in history] == list(range(ROUNDS))
    assert [v for _, v in history] == pytest.approx(model.evals_result()["validation_0"]["logloss"])
    assert "stopped_iteration" not in run.data.metrics  # no early stopping
    loaded = fitscribe.flavors.xgboost.load_model(f"runs:/{rid}/model")
    assert type(loaded) is xgb.XGBClassifier
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert "model/input_example.json" in {f.path for f in fitscribe.list_artifacts(rid, "model")}
    inputs = {(i.dataset.name, i.tags[0].value) for i in run.inputs.dataset_inputs}
    assert inputs == {("dataset", "train"), ("validation_0", "eval")}
    assert _report(rid)["skipped"] == []


def test_wrapper_early_stopping_and_user_callbacks_are_left_alone(data) -> None:  # noqa: ANN001
    X, y = data
    seen: list[int] = []

    class Counter(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):  # noqa: ANN001, ANN201
            seen.append(epoch)
            return False

    callbacks = [Counter()]
    fitscribe.autolog(log_models=False, log_plots=False)
    model = xgb.XGBClassifier(n_jobs=1, n_estimators=50, learning_rate=1.0, max_depth=6, early_stopping_rounds=2, callbacks=callbacks)
    model.fit(X[:80], y[:80], eval_set=[(X[80:], y[80:])], verbose=False)
    assert model.callbacks is callbacks and len(callbacks) == 1 and isinstance(callbacks[0], Counter)
    assert model.get_params()["callbacks"] is callbacks
    (run,) = _runs()
    assert run.data.params["callbacks"] == "['Counter']"
    assert len(_history(run.info.run_id, "validation_0-logloss")) == len(seen)
    assert run.data.metrics["best_iteration"] == model.best_iteration
    assert run.data.metrics["stopped_iteration"] == seen[-1]
    assert "best-validation_0-logloss" in run.data.metrics


def test_regressor_and_random_forest_wrappers(data) -> None:  # noqa: ANN001
    X, y = data
    fitscribe.autolog(log_models=False, log_plots=False, log_datasets=False)
    xgb.XGBRegressor(n_jobs=1, n_estimators=3).fit(X, y.astype(float), eval_set=[(X, y.astype(float))], verbose=False)
    xgb.XGBRFClassifier(n_jobs=1, n_estimators=4, max_depth=2).fit(X, y, eval_set=[(X, y)], verbose=False)  # RF refuses callbacks
    regressor, forest = _runs()
    assert regressor.data.tags["estimator_name"] == "XGBRegressor"
    assert len(_history(regressor.info.run_id, "validation_0-rmse")) == 3
    assert forest.data.tags["estimator_name"] == "XGBRFClassifier"
    assert len(_history(forest.info.run_id, "validation_0-logloss")) == 1  # one boosting round of 4 trees


def test_disable_restores_every_original_exactly() -> None:
    import xgboost.sklearn
    import xgboost.training

    train = xgboost.training.__dict__["train"]
    assert xgboost.train is train and xgboost.sklearn.train is train
    own_fit = xgb.XGBClassifier.__dict__["fit"]
    assert "fit" not in xgb.XGBRegressor.__dict__  # inherited from XGBModel
    fitscribe.autolog()
    for module in (xgboost, xgboost.training, xgboost.sklearn):
        assert module.train is not train and module.train.__name__ == "train"
    assert xgb.XGBClassifier.__dict__["fit"] is not own_fit and "fit" not in xgb.XGBRegressor.__dict__
    assert is_patched(xgb.XGBRegressor.fit)  # through XGBModel.fit, patched once
    fitscribe.autolog(disable=True)
    assert xgboost.train is train and xgboost.training.train is train and xgboost.sklearn.train is train
    assert xgb.XGBClassifier.__dict__["fit"] is own_fit and "fit" not in xgb.XGBRegressor.__dict__
    fitscribe.autolog.xgboost.autolog()
    fitscribe.autolog.xgboost.autolog()  # enabling twice never wraps twice
    assert original_of(xgboost.sklearn.train) is train and original_of(xgb.XGBClassifier.fit) is own_fit
    fitscribe.autolog.xgboost.autolog(disable=True)
    assert xgboost.sklearn.train is train and xgb.XGBClassifier.__dict__["fit"] is own_fit


def test_inside_an_autologged_sklearn_pipeline_there_is_one_run(data) -> None:  # noqa: ANN001
    X, y = data
    fitscribe.autolog(log_models=False, log_plots=False)
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_jobs=1, n_estimators=3)).fit(X, y)
    (run,) = _runs()
    assert run.data.tags["mlflow.autologging"] == "sklearn" and run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["xgbclassifier__n_estimators"] == "3"


def test_cross_val_score_and_search_candidates_log_nothing(data) -> None:  # noqa: ANN001
    X, y = data
    fitscribe.autolog.xgboost.autolog(log_models=False, log_plots=False)
    assert len(cross_val_score(xgb.XGBClassifier(n_jobs=1, n_estimators=2), X, y, cv=2)) == 2
    assert _runs() == []
    GridSearchCV(xgb.XGBClassifier(n_jobs=1, n_estimators=2), {"max_depth": [1, 2]}, cv=2).fit(X, y)
    (refit,) = _runs()  # only the refit of the best candidate, called by GridSearchCV itself
    assert refit.data.tags["estimator_name"] == "XGBClassifier"


def test_user_run_gets_the_logging_and_training_errors_end_managed_runs_failed(dmatrices) -> None:  # noqa: ANN001
    dtrain, _ = dmatrices
    fitscribe.autolog(log_models=False, log_plots=False)
    with fitscribe.start_run() as run:
        xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 2, evals=[(dtrain, "train")], verbose_eval=False)
        assert fitscribe.get_run(run.info.run_id).info.status == "RUNNING"
    with pytest.raises(ValueError, match="at least 1 validation dataset"):
        xgb.train({}, dtrain, 2, early_stopping_rounds=2)
    user, failed = _runs()
    assert user.info.run_id == run.info.run_id and "mlflow.autologging" not in user.data.tags
    assert len(_history(user.info.run_id, "train-rmse")) == 2
    assert failed.info.status == "FAILED" and fitscribe.active_run() is None


def test_metrics_logged_before_a_training_error_are_kept(dmatrices) -> None:  # noqa: ANN001
    dtrain, deval = dmatrices

    class Crash(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):  # noqa: ANN001, ANN201
            if epoch == 2:
                raise ArithmeticError("user callback broke")
            return False

    fitscribe.autolog(log_models=False)
    with pytest.raises(ArithmeticError, match="user callback broke"):
        xgb.train({"nthread": 1}, dtrain, ROUNDS, evals=[(deval, "eval")], verbose_eval=False, callbacks=[Crash()])
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert [s for s, _ in _history(run.info.run_id, "eval-rmse")] == [0, 1, 2]  # ours comes first; buffered points are written


def test_injected_failure_in_the_callback_leaves_training_intact(dmatrices, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    dtrain, deval = dmatrices
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    bare = xgb.train(params, dtrain, ROUNDS, evals=[(deval, "eval")], verbose_eval=False)
    monkeypatch.setenv("FITSCRIBE_STRICT", "0")
    from fitscribe.autolog import xgboost as integration

    def broken(self, epoch, evals_log):  # noqa: ANN001, ANN202
        raise RuntimeError("injected failure")

    monkeypatch.setattr(integration._IterationLogger, "_collect", broken)
    fitscribe.autolog(log_plots=False)
    booster = xgb.train(params, dtrain, ROUNDS, evals=[(deval, "eval")], verbose_eval=False)
    assert booster.num_boosted_rounds() == ROUNDS
    assert np.array_equal(booster.predict(deval), bare.predict(deval))
    (run,) = _runs()
    assert run.info.status == "FINISHED" and run.data.metrics == {} and run.data.params["max_depth"] == "2"
    assert "model" in _artifacts(run.info.run_id)  # the other steps still logged
    skipped = _report(run.info.run_id)["skipped"]
    assert [s["item"] for s in skipped] == ["per-iteration metrics"] and "injected failure" in skipped[0]["reason"]


def test_options_importance_types_json_format_and_registration(data) -> None:  # noqa: ANN001
    X, y = data
    with pytest.raises(InvalidValueError, match="Unknown importance_types"):
        fitscribe.autolog.xgboost.autolog(importance_types=["weight", "splits"])
    fitscribe.autolog.xgboost.autolog(importance_types=["cover"], model_format="json", log_plots=False,
                                      registered_model_name="xgb-autolog")
    fitscribe.autolog()  # the explicit settings win
    xgb.XGBClassifier(n_jobs=1, n_estimators=2).fit(X, y)
    (run,) = _runs()
    assert {"feature_importance_cover.json", "model"} <= _artifacts(run.info.run_id)
    assert not any(p.startswith("feature_importance_w") or p.endswith(".png") for p in _artifacts(run.info.run_id))
    assert "model/model.json" in {f.path for f in fitscribe.list_artifacts(run.info.run_id, "model")}
    version = fitscribe.Client().get_model_version("xgb-autolog", 1)
    assert version.run_id == run.info.run_id


def test_autolog_imports_no_framework_and_patches_on_import(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        import fitscribe
        fitscribe.autolog(log_models=False, log_plots=False)
        heavy = [m for m in ("sklearn", "numpy", "xgboost", "torch", "lightning", "sqlalchemy") if m in sys.modules]
        import numpy as np
        import xgboost as xgb
        X = np.arange(40, dtype=float).reshape(20, 2)
        d = xgb.DMatrix(X, label=X[:, 0] > 20)
        xgb.train({"objective": "binary:logistic"}, d, 3, evals=[(d, "train")], verbose_eval=False)
        run = fitscribe.last_active_run()
        fitscribe.autolog(disable=True)  # xgboost bound train while it was patched: restored everywhere
        from fitscribe.autolog._patch import is_patched
        import xgboost.sklearn, xgboost.training
        bindings = (xgb.train, xgboost.training.train, xgboost.sklearn.train, xgb.XGBClassifier.fit)
        restored = xgb.train is xgboost.training.train is xgboost.sklearn.train and not any(map(is_patched, bindings))
        print(heavy, run.data.tags["mlflow.autologging"], sorted(run.data.metrics), restored)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "xgboost", "['train-logloss']", "True"]


def test_importance_plots_are_drawn_without_matplotlib(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import fitscribe
        import xgboost as xgb
        fitscribe.autolog(log_models=False)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 5))
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
        xgb.XGBClassifier(n_jobs=1, n_estimators=3, max_depth=2).fit(X, y)
        run = fitscribe.last_active_run()
        rid = run.info.run_id
        files = {n: fitscribe.download_artifacts(rid, n) for n in ("feature_importance_gain.json", "feature_importance_gain.png")}
        print(json.dumps({"mpl": "matplotlib" in sys.modules, "artifacts": [a.path for a in fitscribe.list_artifacts(rid)],
                          "files": files}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    env["FITSCRIBE_TRACKING_URI"] = str(tmp_path / "store")
    out = subprocess.run([sys.executable, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mpl"] is False
    assert {"feature_importance_weight.png", "feature_importance_gain.png"} <= set(result["artifacts"])
    from PIL import Image

    with open(result["files"]["feature_importance_gain.json"]) as fh:
        features = len(json.load(fh))
    with Image.open(result["files"]["feature_importance_gain.png"]) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    bar_rows = (np.abs(pixels - np.array((31, 119, 180))).max(axis=2) <= 12).sum(axis=1) >= 3
    assert features >= 2 and int((np.diff(bar_rows.astype(int)) == 1).sum()) == features  # one bar per feature
