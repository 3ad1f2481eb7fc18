"""Model URIs through the registry: models:/<name>/<version|latest|stage>, @alias, sub-paths, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import fitscribe
from fitscribe.errors import InvalidValueError, NotFoundError
from fitscribe.flavors import pyfunc
from fitscribe.flavors import sklearn as sk_flavor

X = np.arange(12, dtype=float).reshape(6, 2)


def _model(slope: float) -> LinearRegression:
    return LinearRegression().fit(X, X[:, 0] * slope)


def test_registered_versions_resolve_by_number_latest_stage_and_alias() -> None:
    with fitscribe.start_run():
        first = sk_flavor.log_model(_model(1.0), "model", registered_model_name="slope")
    with fitscribe.start_run():
        second = sk_flavor.log_model(_model(2.0), "model", registered_model_name="slope")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    client = fitscribe.Client()
    version = client.get_model_version("slope", 1)
    assert version.run_id == first.run_id and version.source == first.model_uri

    def slope_of(uri: str) -> float:
        predictions = sk_flavor.load_model(uri).predict(X)
        return float(round(predictions[-1] / X[-1, 0], 6))

    assert slope_of("models:/slope/1") == 1.0
    assert slope_of("models:/slope/2") == 2.0
    assert slope_of("models:/slope/latest") == 2.0
    client.set_registered_model_alias("slope", "champion", 1)
    assert slope_of("models:/slope@champion") == 1.0
    client.transition_model_version_stage("slope", 1, "Production")
    assert slope_of("models:/slope/Production") == 1.0
    assert slope_of("models:/slope/production") == 1.0  # stages are case-insensitive
    assert pyfunc.load_model("models:/slope@champion").predict(X).tolist() == pytest.approx(X[:, 0].tolist())


def test_sub_path_after_a_models_uri() -> None:
    with fitscribe.start_run():
        sk_flavor.log_model(_model(3.0), "model", registered_model_name="sub")
    from fitscribe.flavors.loading import resolve_model_uri

    local = resolve_model_uri("models:/sub/1/requirements.txt")
    with open(local) as fh:
        assert fh.readline().startswith("fitscribe==")


def test_registry_errors_are_clear() -> None:
    with pytest.raises(NotFoundError, match="nobody"):
        sk_flavor.load_model("models:/nobody/1")
    with fitscribe.start_run():
        sk_flavor.log_model(_model(1.0), "model", registered_model_name="one")
    with pytest.raises(NotFoundError, match="7"):
        sk_flavor.load_model("models:/one/7")
    with pytest.raises(NotFoundError, match="alias"):
        sk_flavor.load_model("models:/one@missing")
    with pytest.raises(NotFoundError, match="no versions in stage 'Staging'"):
        sk_flavor.load_model("models:/one/Staging")
    with pytest.raises(InvalidValueError, match="not a valid models URI"):
        sk_flavor.load_model("models:/")
