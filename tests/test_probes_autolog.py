"""Autolog's param logging at its size limits, read back as a user would (issue 17 probes P1 and P3).

P1: an estimator with more than 100 params (one log batch holds 100) records every one of them.
P3: a param value longer than 6,000 characters (the param limit) is kept, truncated, with a note in
the run's report; it is never dropped.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

import fitscribe
from fitscribe.validation import MAX_PARAM_VALUE_LENGTH


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    fitscribe.autolog(disable=True)
    fitscribe.flush()


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=60, n_features=4, random_state=0)


def _only_run() -> fitscribe.Run:
    fitscribe.flush()
    (run,) = fitscribe.search_runs(output_format="list")
    return run


def _report(run_id: str) -> dict[str, Any]:
    with open(fitscribe.download_artifacts(run_id, "fitscribe.autolog.report.json")) as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def _voting() -> VotingClassifier:
    return VotingClassifier([
        ("lr", LogisticRegression()), ("rf", RandomForestClassifier(n_estimators=3, random_state=0)),
        ("gb", GradientBoostingClassifier(n_estimators=3, random_state=0)),
        ("et", ExtraTreesClassifier(n_estimators=3, random_state=0)), ("dt", DecisionTreeClassifier(random_state=0)),
        ("nb", GaussianNB()), ("knn", KNeighborsClassifier(n_neighbors=3)),
    ])


def test_p1_a_voting_classifier_records_all_of_its_params(data: Any) -> None:
    X, y = data
    model = _voting()
    expected = {key: str(value) for key, value in model.get_params(deep=True).items()}
    assert len(expected) > 100  # more than one log batch: the probe's case (126 params there)
    fitscribe.autolog(log_models=False, log_plots=False, log_datasets=False)
    model.fit(X, y)
    run = _only_run()
    assert len(run.data.params) == len(expected)
    assert run.data.params == expected
    assert sorted(_report(run.info.run_id)["logged"]["params"]) == sorted(expected)


def _passthrough(X: Any, note: str) -> Any:
    return X


def test_p3_a_param_over_6000_characters_is_truncated_with_a_note_not_dropped(data: Any) -> None:
    X, y = data
    note = "x" * (MAX_PARAM_VALUE_LENGTH + 1500)
    model = make_pipeline(FunctionTransformer(_passthrough, kw_args={"note": note}), LogisticRegression())
    full = str(model.get_params(deep=True)["functiontransformer__kw_args"])
    assert len(full) > MAX_PARAM_VALUE_LENGTH
    fitscribe.autolog(log_models=False, log_plots=False, log_datasets=False)
    model.fit(X, y)
    run = _only_run()
    value = run.data.params["functiontransformer__kw_args"]  # present...
    assert value == full[:MAX_PARAM_VALUE_LENGTH]  # ...truncated to the limit, from the start
    assert run.data.params["logisticregression__C"] == "1.0"  # and the others beside it
    report = _report(run.info.run_id)
    assert "functiontransformer__kw_args" in report["logged"]["params"]
    notes = [n for n in report["notes"] if "functiontransformer__kw_args" in n]
    assert notes and "truncated" in notes[0] and str(len(full)) in notes[0], report["notes"]
    assert not [s for s in report["skipped"] if "functiontransformer__kw_args" in json.dumps(s)]


def test_keys_and_values_at_their_limits(data: Any) -> None:
    """A key over the limit is skipped with a reason and the keys after it are still logged; a key and
    a value exactly at their limits are logged whole, with no note."""
    from sklearn.preprocessing import StandardScaler

    from fitscribe.validation import MAX_KEY_LENGTH

    X, y = data
    too_long, at_limit = "s" * (MAX_KEY_LENGTH + 1), "f" * (MAX_KEY_LENGTH - len("__kw_args"))
    exact = {"note": "x" * (MAX_PARAM_VALUE_LENGTH - len(str({"note": ""})))}
    model = Pipeline([(too_long, StandardScaler()), (at_limit, FunctionTransformer(_passthrough, kw_args=exact)),
                      ("lr", LogisticRegression())])
    fitscribe.autolog(log_models=False, log_plots=False, log_datasets=False)
    model.fit(X, y)
    run = _only_run()
    assert run.data.params[f"{at_limit}__kw_args"] == str(exact)  # 250-character key, 6,000-character value
    assert run.data.params["lr__C"] == "1.0"  # logged after the skipped keys
    assert not [k for k in run.data.params if k.startswith(too_long)]
    report = _report(run.info.run_id)
    assert [s for s in report["skipped"] if too_long[:60] in json.dumps(s) and "key length" in json.dumps(s)]
    assert not [n for n in report["notes"] if "truncated" in n]
