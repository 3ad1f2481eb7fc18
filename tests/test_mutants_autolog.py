"""Autolog's param, tag, metric and dataset logging (autolog/_logging.py) as a user reads it back:
at once after fit, without ``flush()``, through ``Client`` (issue 17, items 4 and 5).

Each test trains a tiny real scikit-learn model. The params are read back whole: over 500 in one
fit (six log batches of 100), keys and values at and over their limits, keys the store refuses
(the failing batch is retried item by item), an empty key; then tags over their limit, training
metrics with their step and time, a user's run holding params already, and the dataset record.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import fitscribe
from fitscribe.validation import MAX_KEY_LENGTH, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH

QUIET = {"log_models": False, "log_plots": False, "log_datasets": False}


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    fitscribe.autolog(disable=True)
    fitscribe.flush()


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=40, n_features=4, random_state=0)


def _runs() -> list[fitscribe.Run]:
    """Every run of the default experiment, oldest first, read at once (no flush) through a Client."""
    client = fitscribe.Client()
    experiment = client.get_experiment_by_name("Default")
    return client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])


def _report(run_id: str, name: str = "fitscribe.autolog.report.json") -> dict[str, Any]:
    with open(fitscribe.Client().download_artifacts(run_id, name)) as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def _passthrough(X: Any, note: str = "") -> Any:
    return X


def _wide_pipeline(steps: int) -> Pipeline:
    """A pipeline of ``steps`` pass-through transformers (8 params each) and a classifier."""
    named = [(f"t{i:03d}", FunctionTransformer(_passthrough)) for i in range(steps)]
    return Pipeline(named + [("lr", LogisticRegression())])


# --- params -------------------------------------------------------------------------------------

def test_over_500_params_keys_and_values_at_their_limits_read_back_at_once(data: Any) -> None:
    X, y = data
    long_value = {"note": "v" * (MAX_PARAM_VALUE_LENGTH + 700)}
    exact_value = {"note": "w" * (MAX_PARAM_VALUE_LENGTH - len(str({"note": ""})))}
    long_key = "k" * (MAX_KEY_LENGTH - len("__validate") + 1)  # its longest param key is 251 characters
    exact_key = "e" * (MAX_KEY_LENGTH - len("__validate"))  # 250
    model = _wide_pipeline(60)
    model.steps[10:10] = [
        ("", StandardScaler()),  # an empty step name: the param key '' and keys '__copy'...
        ("bad*step", StandardScaler()),  # '*' is no valid key character: the store refuses the batch
        (long_key, FunctionTransformer(_passthrough)),
        (exact_key, FunctionTransformer(_passthrough, kw_args=exact_value)),
        ("long", FunctionTransformer(_passthrough, kw_args=long_value)),
    ]
    params = {key: str(value) for key, value in model.get_params(deep=True).items()}
    assert len(params) > 500
    fitscribe.autolog(**QUIET)
    model.fit(X, y)
    (run,) = _runs()
    refused = {key for key in params if "*" in key}
    too_long = {key for key in params if len(key) > MAX_KEY_LENGTH or not key}
    expected = {key: value[:MAX_PARAM_VALUE_LENGTH] for key, value in params.items()
                if key not in refused | too_long}
    assert run.data.params == expected
    assert run.data.params[f"{exact_key}__kw_args"] == str(exact_value)  # whole, at the limit
    assert run.data.params["long__kw_args"] == str(long_value)[:MAX_PARAM_VALUE_LENGTH]
    report = _report(run.info.run_id)
    assert sorted(report["logged"]["params"]) == sorted(expected)
    assert report["notes"] == [  # 'steps' (the list of every step) is over the limit too
        f"param {key!r} truncated from {len(value)} to {MAX_PARAM_VALUE_LENGTH} characters"
        for key, value in params.items() if len(value) > MAX_PARAM_VALUE_LENGTH and key not in too_long
    ]
    assert [note.split("'")[1] for note in report["notes"]] == ["steps", "long__kw_args"]
    skipped = {item["item"]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == {f"param {key[:60]!r}" for key in too_long} | {f"param {key!r}" for key in refused}
    assert skipped["param ''"] == f"key length 0 outside 1..{MAX_KEY_LENGTH}"
    assert skipped[f"param {long_key[:60]!r}"] == f"key length {MAX_KEY_LENGTH + 1} outside 1..{MAX_KEY_LENGTH}"
    assert all("characters that are not allowed" in skipped[f"param {key!r}"] for key in refused)


def test_a_users_run_keeps_its_params_and_autolog_reports_the_conflicts(data: Any) -> None:
    X, y = data
    fitscribe.autolog(**QUIET)
    with fitscribe.start_run() as run:
        fitscribe.log_param("C", "0.5")  # differs from the estimator's C=1.0
        fitscribe.log_param("max_iter", "100")  # the estimator's own value
        model = LogisticRegression().fit(X, y)
    (read,) = _runs()
    params = {key: str(value) for key, value in model.get_params().items()}
    assert read.info.run_id == run.info.run_id
    assert read.data.params == {**params, "C": "0.5"}
    report = _report(run.info.run_id)
    assert report["skipped"] == [{"item": "param 'C'", "reason": "the run already has C='0.5'; new value '1.0' not logged"}]
    assert sorted(report["logged"]["params"]) == sorted(set(params) - {"C", "max_iter"})


# --- tags ---------------------------------------------------------------------------------------

def test_tags_over_their_limit_are_truncated_with_a_note_and_at_it_kept_whole(data: Any) -> None:
    X, y = data
    prefix = f"{__name__}."
    exact = type("E" * (MAX_TAG_VALUE_LENGTH - len(prefix)), (LogisticRegression,), {})  # class path: 8,000
    over = type("O" * (MAX_TAG_VALUE_LENGTH + 1), (LogisticRegression,), {})
    fitscribe.autolog(**QUIET)
    exact().fit(X, y)
    over().fit(X, y)
    first, second = _runs()
    assert first.data.tags["estimator_class"] == prefix + exact.__name__
    assert first.data.tags["estimator_name"] == exact.__name__
    assert _report(first.info.run_id)["notes"] == []
    assert second.data.tags["estimator_name"] == over.__name__[:MAX_TAG_VALUE_LENGTH]
    assert second.data.tags["estimator_class"] == (prefix + over.__name__)[:MAX_TAG_VALUE_LENGTH]
    report = _report(second.info.run_id)
    assert report["notes"] == [
        f"tag 'estimator_name' truncated from {MAX_TAG_VALUE_LENGTH + 1} to {MAX_TAG_VALUE_LENGTH} characters",
        f"tag 'estimator_class' truncated from {len(prefix) + MAX_TAG_VALUE_LENGTH + 1} to {MAX_TAG_VALUE_LENGTH} characters",
    ]
    assert sorted(report["logged"]["tags"]) == ["estimator_class", "estimator_name"]


# --- metrics ------------------------------------------------------------------------------------

def test_training_metrics_read_back_at_once_at_step_0_with_the_fit_time(data: Any) -> None:
    X, y = data
    fitscribe.autolog(**QUIET)
    before = int(time.time() * 1000)
    model = LogisticRegression().fit(X, y)
    (run,) = _runs()  # waits for the metrics computed after fit
    after = int(time.time() * 1000)
    names = {"training_precision_score", "training_recall_score", "training_f1_score", "training_accuracy_score",
             "training_log_loss", "training_roc_auc", "training_score"}
    assert set(run.data.metrics) == names
    assert run.data.metrics["training_accuracy_score"] == model.score(X, y)
    client = fitscribe.Client()
    for name in names:
        (point,) = client.get_metric_history(run.info.run_id, name)
        assert point.step == 0 and before <= point.timestamp <= after, (name, point)
    assert sorted(_report(run.info.run_id)["logged"]["metrics"]) == sorted(names)


# --- the dataset record -------------------------------------------------------------------------

SMALL_X = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0], [6.0, 1.0]]
SMALL_Y = [0, 1, 0, 1, 0, 1, 0]


def _dataset(run: fitscribe.Run) -> Any:
    (item,) = run.inputs.dataset_inputs
    assert [(tag.key, tag.value) for tag in item.tags] == [("mlflow.data.context", "train")]
    assert (item.dataset.name, item.dataset.source_type, item.dataset.source) == ("dataset", "code", "")
    assert json.loads(item.dataset.profile) == {"num_rows": len(SMALL_X)}
    return item.dataset


def test_the_training_set_of_every_input_type_is_recorded_with_its_digest_schema_and_example() -> None:
    """A DataFrame, an array, a sparse matrix and plain lists. The digest is pinned: the same data
    must keep its digest across versions, or runs could no longer be matched by it."""
    from scipy import sparse

    X, y = np.array(SMALL_X), np.array(SMALL_Y)
    inputs = [pd.DataFrame(X, columns=["a", "b"]), X, sparse.csr_matrix(X), SMALL_X]
    fitscribe.autolog(log_plots=False, log_input_examples=True)
    for data in inputs:
        LogisticRegression().fit(data, y if data is not SMALL_X else SMALL_Y)
    runs = _runs()
    digests = [_dataset(run).digest for run in runs]
    assert digests == ["448c25d7", "44b3ddc7", "44b3ddc7", "08e99369"]  # sparse: the same as its dense array
    assert json.loads(_dataset(runs[0]).schema) == [
        {"type": "double", "name": "a", "required": True}, {"type": "double", "name": "b", "required": True}]
    for run in runs[1:]:
        assert json.loads(_dataset(run).schema) == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]
    client = fitscribe.Client()
    for run in runs:
        report = _report(run.info.run_id)
        assert report["skipped"] == [] and report["logged"]["datasets"] == ["dataset (train)"]
        with open(client.download_artifacts(run.info.run_id, "model/input_example.json")) as fh:
            example = json.load(fh)
        assert example == ({"columns": ["a", "b"], "data": SMALL_X[:5]} if run is runs[0] else SMALL_X[:5])


def test_the_digest_covers_the_first_10000_rows_of_x_and_y_and_strings_by_value() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10_001, 2)), np.arange(10_001) % 2
    changed_x_last, changed_x_in = X.copy(), X.copy()
    changed_x_last[10_000, 0] += 1
    changed_x_in[9_999, 0] += 1
    changed_y_last, changed_y_in = y.copy(), y.copy()
    changed_y_last[10_000] = 1 - y[10_000]
    changed_y_in[9_999] = 1 - y[9_999]
    words = pd.DataFrame({"colour": ["red", "blue"] * 4})
    fitscribe.autolog(log_models=False, log_plots=False, log_training_metrics=False)
    for data, target in [(X, y), (changed_x_last, y), (changed_x_in, y), (X, changed_y_last), (X, changed_y_in)]:
        LogisticRegression(max_iter=5).fit(data, target)
    for frame in (words, words.replace("blue", "green")):
        make_pipeline(OneHotEncoder(), LogisticRegression()).fit(frame, [0, 1] * 4)
    same, x_last, x_in, y_last, y_in, strings, other_strings = [run.inputs.dataset_inputs[0].dataset.digest for run in _runs()]
    assert x_last == same and y_last == same  # the 10,001st row is not read
    assert len({same, x_in, y_in}) == 3
    assert (strings, other_strings) == ("a5a97d1b", "4154298c")  # object columns hashed by value
