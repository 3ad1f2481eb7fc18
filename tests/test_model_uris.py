"""Model URIs through the registry: models:/<name>/<version|latest|stage>, @alias, sub-paths, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _require import require_module
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
        assert fh.readline().startswith("scikit-learn==")  # the file itself, not the model folder


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


# --- MLflow 3 logged models: models:/m-<id> ---------------------------------------------------------

_MLFLOW_LOGS = """
import json, pickle, sys
import mlflow, mlflow.sklearn
with open(sys.argv[1], "rb") as fh:
    model = pickle.load(fh)
out = {}
for target in sys.argv[2:]:
    mlflow.set_tracking_uri(target)
    mlflow.set_experiment("logged")
    ids = out[target] = {}
    for fmt in ("skops", "cloudpickle"):
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(model, name=f"model-{fmt}", serialization_format=fmt,
                                            pip_requirements=["scikit-learn"])
        ids[fmt], ids[fmt + "-run"] = info.model_id, run.info.run_id
print(json.dumps(out))
"""


def _mlflow_logs_models(tmp_path: Any, *targets: str) -> dict[str, dict[str, str]]:
    """Log one model per sklearn format with the real MLflow into each tracking URI; return their ids."""
    import json
    import os
    import pickle
    import subprocess

    from _mlflow_support import mlflow_python

    with open(tmp_path / "model.pkl", "wb") as fh:
        pickle.dump(_model(3.0), fh)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITSCRIBE_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_ALLOW_FILE_STORE="true")
    proc = subprocess.run([mlflow_python(), "-c", _MLFLOW_LOGS, str(tmp_path / "model.pkl"), *targets],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _check_logged(ids: dict[str, str], by_run: bool) -> None:
    from fitscribe.flavors.model import UnverifiedModelWarning

    expected = X[:, 0] * 3.0
    assert ids["skops"].startswith("m-")
    # skops: no pickle, so no warning (pytest turns warnings into errors)
    assert sk_flavor.load_model(f"models:/{ids['skops']}").predict(X) == pytest.approx(expected)
    if by_run:  # runs:/<run>/<name> finds the run's logged model, as MLflow's client does
        assert sk_flavor.load_model(f"runs:/{ids['skops-run']}/model-skops").predict(X) == pytest.approx(expected)
        with pytest.raises(NotFoundError):
            sk_flavor.load_model(f"runs:/{ids['skops-run']}/model-cloudpickle")  # another run's model
    with pytest.warns(UnverifiedModelWarning):  # MLflow's cloudpickle: nothing vouches for it
        assert pyfunc.load_model(f"models:/{ids['cloudpickle']}").predict(X) == pytest.approx(expected)
    with pytest.raises(NotFoundError):
        sk_flavor.load_model(f"models:/m-{'0' * 32}")


def test_mlflow_logged_models_load_by_id_through_our_server_and_from_a_file_store(tmp_path: Any) -> None:
    """The real MLflow logs models into our server and into an MLflow file store (mlruns) folder."""
    require_module("httpx")
    require_module("skops")
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    mlruns = tmp_path / "mlruns"
    with ThreadedServer(create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"))) as server:
        found = _mlflow_logs_models(tmp_path, server.url, mlruns.as_uri())
        fitscribe.set_tracking_uri(server.url)
        _check_logged(found[server.url], by_run=True)
    fitscribe.set_tracking_uri(str(mlruns))
    _check_logged(found[mlruns.as_uri()], by_run=False)
    assert not (mlruns / "tracking.db").exists()  # read MLflow's layout; opened no store of ours there
