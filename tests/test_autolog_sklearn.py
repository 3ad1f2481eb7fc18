"""scikit-learn autolog against real estimators: what a fit records, read back through the Client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import fitscribe
from fitscribe.errors import FitscribeWarning


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    fitscribe.autolog(disable=True)
    fitscribe.autolog.sklearn.autolog(disable=True)
    fitscribe.flush()


@pytest.fixture
def binary() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def _runs() -> list[fitscribe.Run]:
    return fitscribe.search_runs(output_format="list", order_by=["attributes.start_time ASC"])


def _report(run_id: str, name: str = "fitscribe.autolog.report.json") -> dict:
    with open(fitscribe.download_artifacts(run_id, name)) as fh:
        return json.load(fh)


def test_classifier_fit_records_params_metrics_tags_plots_model(binary) -> None:
    X, y = binary
    fitscribe.autolog()
    model = LogisticRegression(C=0.5).fit(X, y)
    (run,) = _runs()
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5" and run.data.params["max_iter"] == "100"
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.data.tags["mlflow.autologging"] == "sklearn"
    assert set(run.data.metrics) == {
        "training_precision_score", "training_recall_score", "training_f1_score", "training_accuracy_score",
        "training_log_loss", "training_roc_auc", "training_score",
    }
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    artifacts = {f.path for f in fitscribe.list_artifacts(run.info.run_id)}
    assert {"estimator.html", "model", "fitscribe.autolog.report.json", "training_confusion_matrix.png",
            "training_roc_curve.png", "training_precision_recall_curve.png"} <= artifacts
    png = Path(fitscribe.download_artifacts(run.info.run_id, "training_roc_curve.png")).read_bytes()
    assert png.startswith(b"\x89PNG")
    loaded = fitscribe.flavors.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    signature = fitscribe.flavors.pyfunc.load_model(f"runs:/{run.info.run_id}/model").signature
    assert [c.name for c in signature.inputs] == ["a", "b", "c", "d"]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["dataset"]
    report = _report(run.info.run_id)
    assert report["managed_run"] is True and "training_roc_auc" in report["logged"]["metrics"]
    assert report["skipped"] == []


def test_regressor_metrics_and_no_classifier_plots() -> None:
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    fitscribe.autolog(log_models=False)
    LinearRegression().fit(X, y)
    (run,) = _runs()
    assert {"training_mean_squared_error", "training_root_mean_squared_error", "training_mean_absolute_error",
            "training_r2_score", "training_score"} == set(run.data.metrics)
    assert run.data.metrics["training_root_mean_squared_error"] == pytest.approx(
        run.data.metrics["training_mean_squared_error"] ** 0.5)
    artifacts = {f.path for f in fitscribe.list_artifacts(run.info.run_id)}
    assert "model" not in artifacts and not any(a.endswith(".png") for a in artifacts)


def test_pipeline_logs_one_run_and_transformer_alone_logs_none(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False, log_plots=False)
    StandardScaler().fit(X)
    make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    (run,) = _runs()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["logisticregression__C"] == "1.0"


def test_grid_search_parent_and_best_children() -> None:
    X, y = load_iris(return_X_y=True)
    fitscribe.autolog(log_plots=False)
    fitscribe.autolog.sklearn.autolog(log_plots=False, max_tuning_runs=3)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=3).fit(X, y)
    runs = _runs()
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert {"cv_results.csv", "model", "best_estimator"} <= {f.path for f in fitscribe.list_artifacts(parent.info.run_id)}
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    best = [c for c in children if c.data.metrics["rank_test_score"] == 1]
    assert str(search.best_params_["C"]) in {c.data.params["C"] for c in best}  # ties share rank 1
    assert all(c.data.metrics["mean_test_score"] == pytest.approx(search.best_score_) for c in best)
    assert children[0].data.params["max_iter"] == "300"  # the seed estimator's params underneath
    assert any("max_tuning_runs" in note for note in _report(parent.info.run_id)["notes"])


def test_cv_results_csv_leaves_params_a_candidate_lacks_empty(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    fitscribe.autolog(log_plots=False, log_models=False)
    grids = [{"C": [0.1, 1.0]}, {"fit_intercept": [False]}]  # each grid lacks the other's param
    GridSearchCV(LogisticRegression(max_iter=300), grids, cv=3).fit(X, y)
    parent = next(r for r in _runs() if "mlflow.parentRunId" not in r.data.tags)
    local = fitscribe.Client().download_artifacts(parent.info.run_id, "cv_results.csv", str(tmp_path))
    import csv

    with open(local, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["param_C"] for r in rows] == ["0.1", "1.0", ""]
    assert [r["param_fit_intercept"] for r in rows] == ["", "", "False"]


def test_cross_val_score_logs_nothing_even_when_imported_before_autolog(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False)
    scores = cross_val_score(LogisticRegression(), X, y, cv=3)  # bound at this module's import
    assert len(scores) == 3
    assert _runs() == []


def test_user_run_gets_the_logging_but_is_not_ended(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False, log_plots=False)
    with fitscribe.start_run() as run:
        LogisticRegression().fit(X, y)
        assert fitscribe.active_run().info.run_id == run.info.run_id
        assert fitscribe.get_run(run.info.run_id).info.status == "RUNNING"
    (logged,) = _runs()
    assert "mlflow.autologging" not in logged.data.tags and "training_accuracy_score" in logged.data.metrics


def test_second_fit_in_a_user_run_skips_conflicting_params(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False, log_plots=False)
    with fitscribe.start_run() as run:
        LogisticRegression(C=1.0).fit(X, y)
        LogisticRegression(C=2.0).fit(X, y)
    reports = fitscribe.get_run(run.info.run_id).data.params
    assert reports["C"] == "1.0"
    assert _report(run.info.run_id)["skipped"] == []
    report = _report(run.info.run_id, "fitscribe.autolog.report-2.json")
    assert any("the run already has C='1.0'" in item["reason"] for item in report["skipped"])


def test_exclusive_leaves_user_runs_alone(binary) -> None:
    X, y = binary
    fitscribe.autolog(exclusive=True, log_models=False)
    with fitscribe.start_run() as run:
        LogisticRegression().fit(X, y)
    assert fitscribe.get_run(run.info.run_id).data.params == {}


def test_training_errors_propagate_and_the_run_ends_failed(binary) -> None:
    X, _ = binary
    fitscribe.autolog()
    with pytest.raises(ValueError, match="needs samples of at least 2 classes"):
        LogisticRegression().fit(X, np.zeros(len(X)))
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert fitscribe.active_run() is None


def test_keyboard_interrupt_ends_the_run_killed() -> None:
    X, y = load_iris(return_X_y=True)

    def interrupting_scorer(estimator, X_, y_):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    fitscribe.autolog(log_models=False)
    with pytest.raises(KeyboardInterrupt):
        GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=2, scoring=interrupting_scorer).fit(X, y)
    (run,) = _runs()
    assert run.info.status == "KILLED"


def test_our_own_failure_never_breaks_training(binary, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = binary
    monkeypatch.setenv("FITSCRIBE_STRICT", "0")
    from fitscribe.autolog import _logging

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("injected failure")

    monkeypatch.setattr(_logging, "log_params", broken)
    fitscribe.autolog(log_models=False, log_plots=False)
    model = LogisticRegression().fit(X, y)  # the broken step is skipped, the others still log
    assert model.predict(X).shape == (80,)
    (run,) = _runs()
    assert run.data.params == {} and "training_accuracy_score" in run.data.metrics
    assert any("injected failure" in item["reason"] for item in _report(run.info.run_id)["skipped"])


def test_failure_outside_a_step_warns_once_and_switches_the_integration_off(binary, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = binary
    monkeypatch.setenv("FITSCRIBE_STRICT", "0")
    from fitscribe.autolog import _session

    def broken_open(self):  # noqa: ANN001, ANN202
        raise RuntimeError("store down")

    monkeypatch.setattr(_session.TrainingCall, "open_run", broken_open)
    fitscribe.autolog(log_models=False)
    with pytest.warns(FitscribeWarning, match="autolog for sklearn failed while preparing to log.*store down"):
        assert LogisticRegression().fit(X, y).coef_.shape == (1, 4)
    LogisticRegression().fit(X, y)  # off now: no second warning (pytest would turn it into an error)
    assert _runs() == []


def test_strict_mode_reraises_our_failures(binary, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = binary
    from fitscribe.autolog import _session

    def broken_open(self):  # noqa: ANN001, ANN202
        raise RuntimeError("store down")

    monkeypatch.setattr(_session.TrainingCall, "open_run", broken_open)
    fitscribe.autolog(log_models=False)
    with pytest.raises(RuntimeError, match="store down"):
        LogisticRegression().fit(X, y)


def test_disable_restores_every_original_exactly() -> None:
    own = LogisticRegression.__dict__["fit"]
    assert "fit" not in RandomForestClassifier.__dict__  # inherited from BaseForest
    fitscribe.autolog()
    assert LogisticRegression.__dict__["fit"] is not own and "fit" in RandomForestClassifier.__dict__
    assert LogisticRegression.fit.__name__ == "fit" and LogisticRegression.fit.__doc__ == own.__doc__
    fitscribe.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is own and "fit" not in RandomForestClassifier.__dict__
    fitscribe.autolog(disable=True)  # twice is harmless
    fitscribe.autolog()
    fitscribe.autolog()  # enabling twice never wraps twice
    from fitscribe.autolog._patch import original_of

    assert original_of(LogisticRegression.__dict__["fit"]) is own


def test_framework_autolog_settings_win_over_the_universal_call(binary) -> None:
    X, y = binary
    fitscribe.autolog.sklearn.autolog(log_models=False, log_plots=False)
    fitscribe.autolog()  # does not override the explicit sklearn settings
    LogisticRegression().fit(X, y)
    (run,) = _runs()
    assert "model" not in {f.path for f in fitscribe.list_artifacts(run.info.run_id)}


def test_only_rank_zero_logs(binary, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False)
    monkeypatch.setenv("RANK", "1")
    LogisticRegression().fit(X, y)
    assert _runs() == []


def test_concurrent_fits_in_threads_get_their_own_runs(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False, log_plots=False)
    errors: list[BaseException] = []

    def fit(c: float) -> None:
        try:
            LogisticRegression(C=c).fit(X, y)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(c,)) for c in (0.1, 0.2, 0.3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.data.params["C"] for r in _runs()) == ["0.1", "0.2", "0.3"]


def _identity(X, note):
    return X


def test_long_param_values_are_truncated_with_a_note(binary) -> None:
    X, y = binary
    fitscribe.autolog(log_models=False, log_plots=False)
    LogisticRegression(class_weight={i: 1.0 for i in range(2)}, solver="lbfgs").fit(X, y)
    (run,) = _runs()
    assert run.data.params["class_weight"] == "{0: 1.0, 1: 1.0}"
    long_value = {"note": "n" * 7000}  # the param's text is over the 6,000-character limit
    make_pipeline(FunctionTransformer(_identity, kw_args=long_value), LogisticRegression()).fit(X, y)
    piped = _runs()[-1]
    assert piped.data.params["functiontransformer__kw_args"] == str(long_value)[:6000]  # kept, truncated
    assert any("functiontransformer__kw_args" in note and "truncated" in note
               for note in _report(piped.info.run_id)["notes"])
    with fitscribe.start_run() as user_run:
        fitscribe.autolog.sklearn.autolog(log_models=False, log_plots=False, extra_tags={"team": "x" * 9000})
    assert user_run  # extra_tags apply to managed runs only; the fit below opens one
    LogisticRegression().fit(X, y)
    newest = _runs()[-1]
    assert len(newest.data.tags["team"]) == 8000
    assert any("truncated" in note for note in _report(newest.info.run_id)["notes"])


def test_autolog_imports_no_framework_and_patches_on_import(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        import fitscribe
        start = time.perf_counter()
        fitscribe.autolog(log_models=False, log_plots=False)
        took = time.perf_counter() - start
        heavy = [m for m in ("sklearn", "numpy", "xgboost", "torch", "lightning", "sqlalchemy") if m in sys.modules]
        from sklearn.linear_model import LogisticRegression
        LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        run = fitscribe.last_active_run()
        print(heavy, run.data.tags["mlflow.autologging"], round(took * 1000))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    heavy, tag, _ms = out.stdout.split()
    assert (heavy, tag) == ("[]", "sklearn")


def test_post_training_metrics_even_for_functions_imported_before_autolog() -> None:
    from sklearn.metrics import accuracy_score, f1_score  # bound before autolog() is called

    inner = accuracy_score.__wrapped__
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = X[::2], X[1::2], y[::2], y[1::2]
    fitscribe.autolog(log_models=False, log_plots=False)
    model = LogisticRegression(max_iter=300).fit(X_train, y_train)
    preds = model.predict(X_test)
    first = accuracy_score(y_test, preds)
    accuracy_score(y_test, preds)
    f1 = f1_score(y_test, preds, average="macro")
    score = model.score(X_test, y_test)
    accuracy_score(y_test, y_test)  # not a prediction of an autologged model: not logged
    (run,) = _runs()
    metrics = run.data.metrics
    assert metrics["accuracy_score_X_test"] == pytest.approx(first)
    assert metrics["accuracy_score-2_X_test"] == pytest.approx(first)
    assert metrics["f1_score_X_test"] == pytest.approx(f1)
    assert metrics["LogisticRegression_score_X_test"] == pytest.approx(score)
    assert not any(k.startswith("accuracy_score-3") for k in metrics)
    with open(fitscribe.download_artifacts(run.info.run_id, "metric_info.json")) as fh:
        info = json.load(fh)
    assert info["f1_score_X_test"] == "f1_score(y_test, preds, average='macro')"
    fitscribe.autolog(disable=True)
    cell = next(c for c in accuracy_score.__closure__ if c.cell_contents is inner)
    assert cell.cell_contents is inner  # put back exactly


def test_available_if_methods_are_wrapped_without_changing_hasattr() -> None:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    raw = Pipeline.__dict__["fit_transform"]
    fitscribe.autolog(log_models=False, log_plots=False)
    assert not hasattr(make_pipeline(StandardScaler(), LogisticRegression()), "fit_transform")
    out = make_pipeline(StandardScaler(), PCA(2)).fit_transform(np.random.default_rng(0).random((10, 3)))
    assert out.shape == (10, 2)
    (run,) = _runs()
    assert run.data.tags["estimator_name"] == "Pipeline"
    fitscribe.autolog(disable=True)
    assert Pipeline.__dict__["fit_transform"] is raw


def test_a_process_exiting_right_after_fit_loses_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import fitscribe
        fitscribe.autolog()
        from sklearn.linear_model import LogisticRegression
        LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        """  # no flush: plots and metrics are finished in the background before the interpreter exits
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    client = fitscribe.Client(str(tmp_path / "fitruns"))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and "training_roc_auc" in run.data.metrics
    assert {"training_confusion_matrix.png", "estimator.html", "fitscribe.autolog.report.json"} <= {
        f.path for f in client.list_artifacts(run.info.run_id)}
    client.close()
