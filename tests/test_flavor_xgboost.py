"""The xgboost flavor: native-format round trips (also in a fresh process), MLflow layout, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fitscribe
import fitscribe.flavors
from fitscribe.errors import FitscribeWarning, InvalidValueError
from fitscribe.flavors import pyfunc
from fitscribe.flavors import xgboost as fx
from fitscribe.flavors.model import ModelIntegrityError

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")

KINDS = ["Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor", "XGBModel"]
COLUMNS = ["f0", "f1", "f2", "f3", "f4"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    return X, y


def _train(kind: str, X: Any, y: np.ndarray) -> Any:
    target = np.asarray(X)[:, 0] * 2.0 + y
    if kind == "Booster":
        return xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, y), num_boost_round=5)
    if kind == "XGBRanker":
        return xgb.XGBRanker(n_estimators=5, max_depth=3).fit(X, y, qid=np.repeat(np.arange(8), 10))
    cls = getattr(xgb, kind)
    kwargs: dict[str, Any] = {"n_estimators": 5, "max_depth": 3}
    if kind == "XGBModel":
        kwargs["objective"] = "reg:squarederror"
    return cls(**kwargs).fit(X, y if "Classifier" in kind else target)


def _predict(model: Any, X: Any) -> np.ndarray:
    if isinstance(model, xgb.Booster):
        return model.predict(xgb.DMatrix(X))
    if hasattr(model, "predict_proba"):
        return np.column_stack([model.predict(X), model.predict_proba(X)])
    return model.predict(X)


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


@pytest.mark.parametrize("fmt", ["ubj", "json"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_class_and_predictions(data, kind: str, fmt: str, tmp_path: Path) -> None:
    X, y = data
    model = _train(kind, X, y)
    path = tmp_path / "m"
    fx.save_model(model, str(path), model_format=fmt)
    loaded = fx.load_model(str(path))
    assert type(loaded) is type(model)
    assert np.array_equal(_predict(loaded, X), _predict(model, X))
    assert sorted(os.listdir(path)) == ["MLmodel", "conda.yaml", f"model.{fmt}", "python_env.yaml", "requirements.txt"]
    head = (path / f"model.{fmt}").read_bytes()[:2]
    assert head == (b'{"' if fmt == "json" else b"{L")  # JSON text vs UBJSON, never a pickle


def test_all_classes_round_trip_in_a_fresh_process(data, tmp_path: Path) -> None:
    X, y = data
    uris, expected = {}, {}
    for i, kind in enumerate(KINDS):
        model = _train(kind, X, y)
        path = tmp_path / kind
        fx.save_model(model, str(path), model_format="json" if i % 2 else "ubj")
        uris[kind], expected[kind] = str(path), (_qualname(model), _predict(model, X))
    clf = _train("XGBClassifier", X, y)
    with fitscribe.start_run():
        uris["logged"] = fx.log_model(clf, "clf").model_uri
    expected["logged"] = (_qualname(clf), _predict(clf, X))
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import json, sys, numpy as np, xgboost
        import fitscribe.flavors.xgboost as fx
        X, out = np.load(sys.argv[1]), {}
        for name, uri in json.loads(sys.argv[2]).items():
            model = fx.load_model(uri)
            if isinstance(model, xgboost.Booster):
                pred = model.predict(xgboost.DMatrix(X))
            elif hasattr(model, "predict_proba"):
                pred = np.column_stack([model.predict(X), model.predict_proba(X)])
            else:
                pred = model.predict(X)
            np.save(f"{sys.argv[3]}/{name}.npy", pred)
            out[name] = f"{type(model).__module__}.{type(model).__qualname__}"
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, str(tmp_path / "X.npy"), json.dumps(uris), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    classes = json.loads(result.stdout)
    for name, (qualname, pred) in expected.items():
        assert classes[name] == qualname
        assert np.array_equal(np.load(tmp_path / f"{name}.npy"), pred), name


def test_descriptor_matches_mlflow_xgboost_flavor(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "clf"
    fx.save_model(_train("XGBClassifier", X, y), str(path), model_format="json")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"] == {
        "xgb_version": xgb.__version__,
        "data": "model.json",
        "model_class": "xgboost.sklearn.XGBClassifier",
        "model_format": "json",
        "code": None,
    }
    assert mlmodel["flavors"]["python_function"] == {
        "loader_module": "mlflow.xgboost",
        "python_version": "{}.{}.{}".format(*sys.version_info[:3]),
        "data": "model.json",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
    }
    assert mlmodel["fitscribe"]["flavor"] == "xgboost" and mlmodel["fitscribe"]["flavor_version"] == 1
    assert set(mlmodel["fitscribe"]["files"]) == {"model.json"}  # environment files stay editable


def test_code_paths_are_recorded_in_both_blocks(data, tmp_path: Path) -> None:
    X, y = data
    helper = tmp_path / "helper.py"
    helper.write_text("VALUE = 1\n")
    path = tmp_path / "m"
    fx.save_model(_train("Booster", X, y), str(path), code_paths=[str(helper)])
    flavors = yaml.safe_load((path / "MLmodel").read_text())["flavors"]
    assert flavors["xgboost"]["code"] == "code" and flavors["python_function"]["code"] == "code"
    assert (path / "code" / "helper.py").is_file()


def test_requirements_pin_xgboost_and_sklearn_only_for_wrappers(data, tmp_path: Path) -> None:
    X, y = data
    fx.save_model(_train("Booster", X, y), str(tmp_path / "b"))
    fx.save_model(_train("XGBRegressor", X, y), str(tmp_path / "r"))
    booster_reqs = (tmp_path / "b" / "requirements.txt").read_text().splitlines()
    wrapper_reqs = (tmp_path / "r" / "requirements.txt").read_text().splitlines()
    import sklearn

    assert f"xgboost=={xgb.__version__}" in booster_reqs and f"numpy=={np.__version__}" in booster_reqs
    assert not any(line.startswith("scikit-learn") for line in booster_reqs)
    assert f"xgboost=={xgb.__version__}" in wrapper_reqs and f"scikit-learn=={sklearn.__version__}" in wrapper_reqs
    conda = yaml.safe_load((tmp_path / "r" / "conda.yaml").read_text())
    assert f"xgboost=={xgb.__version__}" in conda["dependencies"][-1]["pip"]


def test_signature_inferred_from_input_example(data, tmp_path: Path) -> None:
    X, y = data
    frame = pd.DataFrame(X, columns=COLUMNS)
    fx.save_model(_train("Booster", frame, y), str(tmp_path / "b"), input_example=frame.head(3))
    fx.save_model(_train("XGBClassifier", X, y), str(tmp_path / "c"), input_example=X[:3])
    fx.save_model(_train("XGBClassifier", X, y), str(tmp_path / "none"), input_example=X[:3], signature=False)
    booster_sig = yaml.safe_load((tmp_path / "b" / "MLmodel").read_text())["signature"]
    inputs = json.loads(booster_sig["inputs"])
    assert [c["name"] for c in inputs] == COLUMNS and {c["type"] for c in inputs} == {"double"}
    assert json.loads(booster_sig["outputs"]) == [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]
    clf_sig = pyfunc.load_model(str(tmp_path / "c")).signature
    assert clf_sig is not None and clf_sig.inputs[0].shape == (-1, 5) and clf_sig.inputs[0].dtype == "float64"
    assert clf_sig.outputs[0].dtype == "int64"
    assert pyfunc.load_model(str(tmp_path / "none")).signature is None
    assert np.array_equal(pyfunc.load_model(str(tmp_path / "c")).input_example, X[:3])


def test_pyfunc_predicts_on_dataframe_and_ndarray(data, tmp_path: Path) -> None:
    X, y = data
    frame = pd.DataFrame(X, columns=COLUMNS)
    booster = _train("Booster", frame, y)
    regressor = _train("XGBRegressor", X, y)
    fx.save_model(booster, str(tmp_path / "cols"), input_example=frame.head(3))
    fx.save_model(booster, str(tmp_path / "nosig"))
    fx.save_model(regressor, str(tmp_path / "tensor"), input_example=X[:3])
    expected = booster.predict(xgb.DMatrix(frame))
    for folder in ("cols", "nosig"):  # an array gets the Booster's feature names
        model = pyfunc.load_model(str(tmp_path / folder))
        assert model.flavor == "xgboost" and isinstance(model.get_raw_model(), xgb.Booster)
        assert np.array_equal(model.predict(frame), expected)
        assert np.array_equal(model.predict(X), expected)
    tensor = pyfunc.load_model(str(tmp_path / "tensor"))
    assert np.array_equal(tensor.predict(X), regressor.predict(X))
    assert np.array_equal(tensor.predict(frame), regressor.predict(X))


def test_pyfunc_passes_known_params_and_warns_about_others(data, tmp_path: Path) -> None:
    X, y = data
    booster = _train("Booster", X, y)
    fx.save_model(booster, str(tmp_path / "b"))
    model = pyfunc.load_model(str(tmp_path / "b"))
    margin = booster.predict(xgb.DMatrix(X), output_margin=True)
    assert np.array_equal(model.predict(X, params={"output_margin": True}), margin)
    with pytest.warns(FitscribeWarning, match=r"Ignoring predict params \['colour'\]") as record:
        out = model.predict(X, params={"colour": "red", "output_margin": True})
    assert np.array_equal(out, margin)
    assert record[0].filename == __file__


def test_corrupted_model_file_is_refused(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    fx.save_model(_train("XGBClassifier", X, y), str(path))
    raw = bytearray((path / "model.ubj").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (path / "model.ubj").write_bytes(bytes(raw))
    with pytest.raises(ModelIntegrityError, match="'model.ubj'"):
        fx.load_model(str(path))
    with pytest.raises(ModelIntegrityError, match="'model.ubj'"):
        pyfunc.load_model(str(path))


def test_bad_options_and_objects_give_clear_errors(data, tmp_path: Path) -> None:
    X, y = data
    booster = _train("Booster", X, y)
    with pytest.raises(InvalidValueError, match=r"Unknown model_format 'pickle'.*\('ubj', 'json'\)"):
        fx.save_model(booster, str(tmp_path / "a"), model_format="pickle")
    with pytest.raises(InvalidValueError, match=r"'xgb'.*'ubj' writes the same UBJSON"):
        fx.log_model(booster, "m", model_format="xgb")
    assert not (tmp_path / "a").exists()
    with pytest.raises(InvalidValueError, match="not been fitted"):
        fx.save_model(xgb.XGBClassifier(), str(tmp_path / "b"))
    with pytest.raises(InvalidValueError, match="xgb_model must be an xgboost.Booster.*LogisticRegression"):
        fx.save_model(LogisticRegression().fit(X, y), str(tmp_path / "c"))
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_model_class_outside_the_allow_list_is_never_imported(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    fx.save_model(_train("Booster", X, y), str(path))
    mlmodel_path = path / "MLmodel"
    original = yaml.safe_load(mlmodel_path.read_text())
    edited = json.loads(json.dumps(original))
    edited["flavors"]["xgboost"]["model_class"] = "this.Booster"  # importing `this` would print the Zen
    mlmodel_path.write_text(yaml.safe_dump(edited))
    assert "this" not in sys.modules
    with pytest.raises(InvalidValueError, match="'this.Booster'.*never imports"):
        fx.load_model(str(path))
    assert "this" not in sys.modules
    edited["flavors"]["xgboost"]["model_class"] = "xgboost.core.Booster"
    (tmp_path / "outside.ubj").write_bytes((path / "model.ubj").read_bytes())
    for data_entry in ("../outside.ubj", str(tmp_path / "outside.ubj")):
        edited["flavors"]["xgboost"]["data"] = data_entry
        mlmodel_path.write_text(yaml.safe_dump(edited))
        with pytest.raises(InvalidValueError, match="not a path inside the model folder"):
            fx.load_model(str(path))


def test_wrong_flavor_is_named(data, tmp_path: Path) -> None:
    X, y = data
    from fitscribe.flavors import sklearn as sk_flavor

    sk_flavor.save_model(LogisticRegression().fit(X, y), str(tmp_path / "sk"))
    with pytest.raises(InvalidValueError, match="'sklearn' flavor, not 'xgboost'"):
        fx.load_model(str(tmp_path / "sk"))


class MyClassifier(xgb.XGBClassifier):
    """A user subclass: its code is not stored, so it loads back as XGBClassifier."""


def test_subclass_is_saved_as_its_xgboost_base_with_a_warning(data, tmp_path: Path) -> None:
    X, y = data
    model = MyClassifier(n_estimators=5, max_depth=3).fit(X, y)
    assert fx.FLAVOR.handles(model)
    with pytest.warns(FitscribeWarning, match="subclass of xgboost.sklearn.XGBClassifier") as record:
        fx.save_model(model, str(tmp_path / "m"))
    assert record[0].filename == __file__
    loaded = fx.load_model(str(tmp_path / "m"))
    assert type(loaded) is xgb.XGBClassifier
    assert np.array_equal(_predict(loaded, X), _predict(model, X))


def test_handles_only_xgboost_models(data) -> None:
    X, y = data
    assert fx.FLAVOR.handles(_train("Booster", X, y)) and fx.FLAVOR.handles(_train("XGBRanker", X, y))
    assert not fx.FLAVOR.handles(LogisticRegression())
    assert not fx.FLAVOR.handles(xgb.DMatrix(X))


def test_log_model_returns_info_that_loads_back(data) -> None:
    X, y = data
    model = _train("XGBClassifier", X, y)
    with fitscribe.start_run() as run:
        info = fx.log_model(model, "clf", input_example=X[:3], metadata={"team": "risk"})
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/clf" and info.run_id == run_id and info.name == "clf"
    assert info.flavors["xgboost"]["model_class"] == "xgboost.sklearn.XGBClassifier"
    assert info.signature is not None and info.metadata == {"team": "risk"}
    loaded = fx.load_model(info.model_uri)
    assert type(loaded) is xgb.XGBClassifier and np.array_equal(_predict(loaded, X), _predict(model, X))
    assert np.array_equal(pyfunc.load_model(info.model_uri).predict(X), model.predict(X))
    client = fitscribe.Client()
    assert {f.path for f in client.list_artifacts(run_id, "clf")} >= {"clf/MLmodel", "clf/model.ubj"}
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert history[-1]["flavors"]["xgboost"]["data"] == "model.ubj"
    assert client.get_run(run_id).info.status == "FINISHED"


def test_generic_log_model_picks_the_xgboost_flavor(data) -> None:
    X, y = data
    booster, classifier = _train("Booster", X, y), _train("XGBClassifier", X, y)
    with fitscribe.start_run():
        booster_info = fitscribe.flavors.log_model(booster, "booster")
        classifier_info = fitscribe.flavors.log_model(classifier, "classifier")
    assert booster_info.descriptor.flavor_name == "xgboost"
    assert classifier_info.descriptor.flavor_name == "xgboost"  # before sklearn, which would pickle it
    assert "sklearn" not in classifier_info.flavors
    loaded = fitscribe.flavors.load_model(booster_info.model_uri)
    assert isinstance(loaded, xgb.Booster) and np.array_equal(_predict(loaded, X), _predict(booster, X))


# --- models saved by MLflow (no fitscribe block) ------------------------------------------------

MLFLOW_3_MLMODEL = """\
artifact_path: file:///home/me/mlruns/1/models/m-5f0c1d2e3a4b4c5d8e9f0a1b2c3d4e5f/artifacts
flavors:
  python_function:
    data: model.ubj
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.xgboost
    python_version: 3.11.7
  xgboost:
    code: null
    data: model.ubj
    model_class: xgboost.sklearn.XGBClassifier
    model_format: ubj
    xgb_version: {xgb_version}
is_signature_from_type_hint: false
mlflow_version: 3.17.2
model_id: m-5f0c1d2e3a4b4c5d8e9f0a1b2c3d4e5f
model_size_bytes: 9012
model_uuid: m-5f0c1d2e3a4b4c5d8e9f0a1b2c3d4e5f
prompts: null
run_id: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  serving_input_path: serving_input_example.json
  type: dataframe
signature:
  inputs: '{inputs}'
  outputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "int64", "shape": [-1]}}}}]'
  params: null
type_hint_from_example: false
utc_time_created: '2026-11-22 07:22:55.601749'
"""


def _write_mlflow_environment(folder: Path, *pins: str) -> None:
    (folder / "requirements.txt").write_text("\n".join(["mlflow==3.17.2", *pins]))
    (folder / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip==24.0\n- setuptools==69.0.0\n- wheel\ndependencies:\n- -r requirements.txt\n"
    )
    (folder / "conda.yaml").write_text(
        "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip<=24.0\n- pip:\n"
        + "".join(f"  - {line}\n" for line in ["mlflow==3.17.2", *pins])
        + "name: mlflow-env\n"
    )


def test_loads_a_model_folder_saved_by_mlflow_3(data, tmp_path: Path) -> None:
    X, y = data
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = _train("XGBClassifier", frame, y)
    folder = tmp_path / "mlflow_model"
    folder.mkdir()
    model.save_model(str(folder / "model.ubj"))
    inputs = json.dumps([{"type": "double", "name": c, "required": True} for c in COLUMNS])
    (folder / "MLmodel").write_text(MLFLOW_3_MLMODEL.format(xgb_version=xgb.__version__, inputs=inputs))
    split = {"columns": COLUMNS, "data": X[:2].tolist()}
    (folder / "input_example.json").write_text(json.dumps(split))
    (folder / "serving_input_example.json").write_text(json.dumps({"dataframe_split": split}))
    import sklearn

    _write_mlflow_environment(folder, f"numpy=={np.__version__}", f"scikit-learn=={sklearn.__version__}",
                              f"xgboost=={xgb.__version__}")

    loaded = fx.load_model(str(folder))
    assert type(loaded) is xgb.XGBClassifier and np.array_equal(_predict(loaded, frame), _predict(model, frame))
    assert type(fitscribe.flavors.load_model(str(folder))) is xgb.XGBClassifier
    served = pyfunc.load_model(str(folder))
    assert served.flavor == "xgboost" and served.metadata.fitscribe == {}
    assert np.array_equal(served.predict(frame), model.predict(frame))
    assert np.array_equal(served.predict(X), model.predict(frame))  # columns named by the signature
    assert list(served.input_example.columns) == COLUMNS


@pytest.mark.parametrize("model_class", [None, "xgboost.core.Booster"])
def test_loads_older_mlflow_models_written_as_model_xgb(data, model_class: str | None, tmp_path: Path) -> None:
    X, y = data
    booster = _train("Booster", X, y)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.xgb").write_bytes(bytes(booster.save_raw("ubj")))  # what xgboost >= 2 wrote there
    block = {"data": "model.xgb", "xgb_version": "2.0.3"}
    if model_class:
        block.update(model_class=model_class, model_format="xgb")
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"data": "model.xgb", "env": "conda.yaml", "loader_module": "mlflow.xgboost",
                                "python_version": "3.8.10"},
            "xgboost": block,
        },
        "run_id": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
        "utc_time_created": "2021-05-04 10:11:12.123456",
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    loaded = fx.load_model(str(folder))
    assert type(loaded) is xgb.Booster and np.array_equal(_predict(loaded, X), _predict(booster, X))
    assert np.array_equal(pyfunc.load_model(str(folder)).predict(X), _predict(booster, X))


def test_unreadable_model_file_from_elsewhere_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.xgb").write_bytes(b"binf\x00\x00\x00\x01 legacy or damaged")
    mlmodel = {"flavors": {"xgboost": {"data": "model.xgb", "xgb_version": "0.90"}}}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(InvalidValueError, match="'model.xgb'.*could not be read.*save it again as .ubj"):
        fx.load_model(str(folder))
    (folder / "model.xgb").unlink()
    with pytest.raises(fitscribe.errors.NotFoundError, match="'model.xgb'.*missing"):
        fx.load_model(str(folder))


def test_importing_the_flavor_does_not_import_xgboost() -> None:
    probe = "import sys, fitscribe.flavors.xgboost as fx; fx.FLAVOR.handles(object()); print('xgboost' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
