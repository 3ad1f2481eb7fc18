"""Models go both ways between fitscribe and the REAL MLflow (3.x), run in its own virtualenv.

``scripts/mlflow_venv.sh`` builds that venv (MLflow plus the same scikit-learn, xgboost, numpy,
scipy, pandas and cloudpickle as this one); the tests find its python in ``FITSCRIBE_MLFLOW_PYTHON``,
else ``<repo>/.venv-mlflow/bin/python``. Without it they are skipped locally, with the reason, and
fail in CI (``CI`` set).

Importing MLflow costs seconds, so one module-scoped fixture prepares every case at once: fitscribe
saves its models and pickles the models MLflow should save, then ONE subprocess of MLflow's python
(``tests/_mlflow_scripts/mlflow_job.py``) loads our folders, saves its own and reads metadata,
writing predictions to ``.npy`` files. Each test then checks its case in this process, against
predictions of the original in-memory model, and fails with MLflow's traceback if its task failed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from _mlflow_support import mlflow_python, run_mlflow
from fitscribe.flavors.model import UnverifiedModelWarning

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")

REPO = Path(__file__).resolve().parent.parent
JOB_SCRIPT = Path(__file__).resolve().parent / "_mlflow_scripts" / "mlflow_job.py"
COLUMNS = ["a", "b", "c", "d"]
RUN_ID = uuid.UUID(int=0x5EED).hex
XGB_FORMATS = {"classifier": "ubj", "booster": "json"}  # both of XGBoost's formats, both ways
_SHIFTED_SOURCE = '''"""A model class that exists only in this file (its labels are shifted by 10)."""
from sklearn.linear_model import LogisticRegression


class ShiftedLogisticRegression(LogisticRegression):
    def predict(self, X):
        return super().predict(X) + 10
'''


@dataclass
class Interop:
    """All cases: the originals, the model folders, and what MLflow did with each."""

    root: Path
    X: np.ndarray
    y: np.ndarray
    models: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    prep_errors: dict[str, BaseException] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    job_output: str = ""
    user_modules: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    def folder(self, case: str) -> str:
        return str(self.root / "models" / case)

    def out(self, case: str) -> Path:
        return self.root / "out" / case

    def frame(self, X: np.ndarray | None = None) -> Any:
        import pandas as pd

        return pd.DataFrame(self.X if X is None else X, columns=COLUMNS)

    def inputs(self, columns: bool = False) -> dict[str, Any]:
        return {"x": str(self.root / "X.npy"), "columns": COLUMNS if columns else None}

    def prepare(self, case: str, make: Callable[[], dict[str, Any] | None]) -> None:
        """Run a preparation step in this process and queue the MLflow task it returns."""
        try:
            task = make()
        except Exception as exc:  # reported by the test of this case, not by every test
            self.prep_errors[case] = exc
            return
        if task is not None:
            self.tasks.append({"id": case, "out": str(self.out(case)), **task})

    def mlflow_save(self, case: str, flavor: str, pickled: str, kwargs: dict[str, Any], **task: Any) -> None:
        """Queue a task: MLflow unpickles ``root/pickled`` and saves it with ``mlflow.<flavor>.save_model``."""
        self.tasks.append({"id": case, "op": "save", "flavor": flavor, "path": self.folder(case),
                           "model_pickle": str(self.root / pickled), "kwargs": kwargs, **task})

    def needs(self, case: str, value: Any) -> Any:
        """Return ``value``, or raise the error that stopped ``case``, which it depends on."""
        if case in self.prep_errors:
            raise self.prep_errors[case]
        return value

    def result(self, case: str) -> dict[str, Any]:
        """Return MLflow's outcome for ``case``, or fail with the reason it has none."""
        if case in self.prep_errors:
            trace = "".join(traceback.format_exception(self.prep_errors[case]))
            pytest.fail(f"fitscribe failed preparing {case!r}:\n{trace}")
        outcome = self.results.get(case)
        if outcome is None:
            pytest.fail(f"The MLflow job gave no result for {case!r}. Its output:\n{self.job_output}")
        if not outcome["ok"]:
            pytest.fail(f"MLflow failed on {case!r}:\n{outcome['error']}")
        return outcome  # type: ignore[no-any-return]

    def array(self, case: str, name: str) -> np.ndarray:
        self.result(case)
        return np.load(self.out(case) / f"{name}.npy", allow_pickle=False)


def _pins(*dists: str) -> list[str]:
    return [f"{d}=={importlib.metadata.version(d)}" for d in dists]


def _sklearn_models(ix: Interop) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def pipe() -> Any:
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])

    ix.models["array"] = pipe().fit(ix.X, ix.y)
    ix.models["frame"] = pipe().fit(ix.frame(), ix.y)
    for name in ("array", "frame"):
        with open(ix.root / f"{name}.pkl", "wb") as fh:
            pickle.dump(ix.models[name], fh)


def _prepare_ours_sklearn(ix: Interop) -> None:
    """fitscribe saves; MLflow loads (a) and reads the metadata (d)."""
    import fitscribe.flavors.sklearn as fs_sklearn
    from fitscribe.flavors.saving import save_model as core_save

    array, frame = ix.models["array"], ix.models["frame"]

    def ours(case: str, fmt: str) -> dict[str, Any]:
        fs_sklearn.save_model(array, ix.folder(case), serialization_format=fmt, input_example=ix.X[:3])
        return {"op": "load", "flavor": "sklearn", "path": ix.folder(case), "inputs": ix.inputs()}

    def ours_frame() -> dict[str, Any]:
        fs_sklearn.save_model(frame, ix.folder("ours_sklearn_frame"), input_example=ix.frame(ix.X[:3]))
        return {"op": "load", "flavor": "sklearn", "path": ix.folder("ours_sklearn_frame"),
                "inputs": ix.inputs(columns=True), "drop_column": "b"}

    def meta_frame() -> dict[str, Any]:
        # saving.save_model is what log_model calls, with the run's id and the model's artifact path.
        core_save(frame, ix.folder("meta_frame"), flavor="sklearn", run_id=RUN_ID, artifact_path="model",
                  input_example=ix.frame(ix.X[:3]), metadata={"team": "interop"})
        return {"op": "meta", "path": ix.folder("meta_frame")}

    def ours_proba() -> dict[str, Any]:
        fs_sklearn.save_model(array, ix.folder("ours_sklearn_proba"), predict_fn="predict_proba")
        return {"op": "load", "flavor": "sklearn", "path": ix.folder("ours_sklearn_proba"), "inputs": ix.inputs()}

    for fmt in ("cloudpickle", "pickle", "skops"):
        ix.prepare(f"ours_sklearn_{fmt}", lambda fmt=fmt: ours(f"ours_sklearn_{fmt}", fmt))
    ix.prepare("ours_sklearn_proba", ours_proba)
    ix.prepare("ours_sklearn_frame", ours_frame)
    ix.prepare("meta_array", lambda: ix.needs(
        "ours_sklearn_cloudpickle", {"op": "meta", "path": ix.folder("ours_sklearn_cloudpickle")}
    ))
    ix.prepare("meta_frame", meta_frame)


def _prepare_mlflow_sklearn(ix: Interop) -> None:
    """MLflow saves (b, e); fitscribe loads in the tests."""
    requirements = _pins("scikit-learn", "cloudpickle")  # given, so MLflow skips its slow inference
    for fmt in ("cloudpickle", "pickle", "skops"):
        ix.mlflow_save(f"mlflow_sklearn_{fmt}", "sklearn", "array.pkl",
                       {"serialization_format": fmt, "pip_requirements": requirements})
    ix.mlflow_save("mlflow_sklearn_signature", "sklearn", "frame.pkl",
                   {"serialization_format": "cloudpickle", "pip_requirements": requirements},
                   signature=True, example={"x": str(ix.root / "X3.npy"), "columns": COLUMNS})
    ix.mlflow_save("mlflow_sklearn_proba", "sklearn", "array.pkl", {
        "serialization_format": "cloudpickle", "pyfunc_predict_fn": "predict_proba", "pip_requirements": requirements,
    })
    ix.mlflow_save("mlflow_sklearn_params", "sklearn", "array.pkl",
                   {"serialization_format": "cloudpickle", "pip_requirements": requirements},
                   signature=True, params={"threshold": 0.5}, example={"x": str(ix.root / "X3.npy"), "columns": None})
    ix.tasks.append({  # MLflow's own pyfunc on that model, called with params
        "id": "mlflow_sklearn_params_load", "op": "load", "flavor": "sklearn", "path": ix.folder("mlflow_sklearn_params"),
        "inputs": ix.inputs(), "predict_params": {"threshold": 0.9}, "out": str(ix.out("mlflow_sklearn_params_load")),
    })
    ix.tasks.append({
        "id": "mlflow_custom", "op": "save_custom", "path": ix.folder("mlflow_custom"), "n": 3,
        "pip_requirements": _pins("cloudpickle"),
    })


def _prepare_xgboost(ix: Interop) -> None:
    import xgboost

    ix.models["xgb_classifier"] = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(ix.X, ix.y)
    ix.models["xgb_booster"] = xgboost.train({"max_depth": 2}, xgboost.DMatrix(ix.X, label=ix.y), 3)
    for kind, fmt in XGB_FORMATS.items():
        with open(ix.root / f"xgb_{kind}.pkl", "wb") as fh:
            pickle.dump(ix.models[f"xgb_{kind}"], fh)
        ix.mlflow_save(f"mlflow_xgb_{kind}", "xgboost", f"xgb_{kind}.pkl",
                       {"model_format": fmt, "pip_requirements": _pins("xgboost")},
                       signature=True, example={"x": str(ix.root / "X3.npy"), "columns": None})

    def ours(kind: str) -> dict[str, Any]:
        import fitscribe.flavors.xgboost as fs_xgboost

        case = f"ours_xgb_{kind}"
        fs_xgboost.save_model(ix.models[f"xgb_{kind}"], ix.folder(case), model_format=XGB_FORMATS[kind],
                              input_example=ix.X[:3])
        return {"op": "load", "flavor": "xgboost", "path": ix.folder(case), "inputs": ix.inputs()}

    for kind in XGB_FORMATS:
        ix.prepare(f"ours_xgb_{kind}", lambda kind=kind: ours(kind))


def _user_module(ix: Interop, name: str) -> tuple[Path, Any]:
    """Write a module defining a model class into its own folder and import it (not on sys.path)."""
    path = ix.root / "src" / name / f"{name}.py"
    path.parent.mkdir(parents=True)
    path.write_text(_SHIFTED_SOURCE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickle refers to classes by module name, as after an import
    ix.user_modules.append(name)
    spec.loader.exec_module(module)
    return path, module.ShiftedLogisticRegression().fit(ix.X, ix.y)


def _prepare_code_paths(ix: Interop) -> None:
    """A model whose class lives in the user's code: plain pickle plus ``code_paths``, both ways."""
    import fitscribe.flavors.sklearn as fs_sklearn

    def ours_by_value() -> dict[str, Any]:
        ix.paths["code_ours"], ix.models["code_ours"] = _user_module(ix, "interop_shift_ours")
        fs_sklearn.save_model(ix.models["code_ours"], ix.folder("ours_by_value"))
        return {"op": "load", "flavor": "sklearn", "path": ix.folder("ours_by_value"), "inputs": ix.inputs()}

    def ours_code() -> dict[str, Any]:
        model, path = ix.needs("ours_by_value", ix.models.get("code_ours")), ix.paths.get("code_ours")
        fs_sklearn.save_model(model, ix.folder("ours_code"), serialization_format="pickle", code_paths=[str(path)])
        return {"op": "load", "flavor": "sklearn", "path": ix.folder("ours_code"), "inputs": ix.inputs()}

    def theirs() -> None:
        path, ix.models["code_mlflow"] = _user_module(ix, "interop_shift_mlflow")
        with open(ix.root / "code_mlflow.pkl", "wb") as fh:
            pickle.dump(ix.models["code_mlflow"], fh)
        kwargs = {"serialization_format": "pickle", "code_paths": [str(path)], "pip_requirements": _pins("scikit-learn")}
        ix.mlflow_save("mlflow_code", "sklearn", "code_mlflow.pkl", kwargs, sys_path=[str(path.parent)])

    # By value first: the MLflow process has not imported the module from ours_code's code/ folder yet.
    ix.prepare("ours_by_value", ours_by_value)
    ix.prepare("ours_code", ours_code)
    ix.prepare("mlflow_code", theirs)


_ADD_N_SOURCE = '''"""A fitscribe custom model whose predict takes no context (MLflow's newer form)."""
from fitscribe.flavors.pyfunc import PythonModel


class AddN(PythonModel):
    def __init__(self, n):
        self.n = n

    def predict(self, model_input, params=None):
        return model_input + self.n * (params or {}).get("times", 1)
'''
_CODE_MODEL_SOURCE = '''import mlflow
from mlflow.pyfunc import PythonModel


class Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * 2


mlflow.models.set_model(Doubler())
'''


def _prepare_pytorch(ix: Interop) -> None:
    """Both ways: fitscribe's torch.save layout; MLflow's pt2 (its default) and pickle formats."""
    import torch

    import fitscribe.flavors.pytorch as fs_pytorch

    torch.manual_seed(0)
    ix.models["torch"] = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    with open(ix.root / "torch.pkl", "wb") as fh:
        pickle.dump(ix.models["torch"], fh)
    x32 = {"x": str(ix.root / "X3.npy"), "columns": None, "dtype": "float32"}
    for fmt in ("pt2", "pickle"):
        ix.mlflow_save(f"mlflow_torch_{fmt}", "pytorch", "torch.pkl",
                       {"serialization_format": fmt, "pip_requirements": _pins("torch")}, example=x32)

    def ours() -> dict[str, Any]:
        fs_pytorch.save_model(ix.models["torch"], ix.folder("ours_torch"), input_example=ix.X[:3].astype(np.float32))
        return {"op": "load", "flavor": "pytorch", "path": ix.folder("ours_torch"),
                "inputs": {**ix.inputs(), "dtype": "float32"}}

    ix.prepare("ours_torch", ours)


def _prepare_onnx(ix: Interop) -> None:
    """Both ways: an ONNX graph converted from a scikit-learn regression (one output)."""
    from sklearn.linear_model import LinearRegression

    import fitscribe.flavors.onnx as fs_onnx

    regression = LinearRegression().fit(ix.X.astype(np.float32), ix.y)
    ix.models["onnx_regression"] = regression

    def ours() -> dict[str, Any]:
        proto = fs_onnx.convert_sklearn(regression, ix.X[:3].astype(np.float32))
        ix.models["onnx"] = proto
        (ix.root / "model.onnx").write_bytes(proto.SerializeToString())
        fs_onnx.save_model(proto, ix.folder("ours_onnx"))
        return {"op": "load", "flavor": "onnx", "path": ix.folder("ours_onnx"), "inputs": {**ix.inputs(), "dtype": "float32"}}

    ix.prepare("ours_onnx", ours)
    if "ours_onnx" not in ix.prep_errors:
        ix.tasks.append({"id": "mlflow_onnx", "op": "save", "flavor": "onnx", "path": ix.folder("mlflow_onnx"),
                         "model_onnx": str(ix.root / "model.onnx"), "kwargs": {"pip_requirements": _pins("onnx")}})


def _prepare_pyfunc(ix: Interop) -> None:
    """fitscribe's PythonModel, loaded by MLflow (with fitscribe importable there); MLflow's
    models-from-code, loaded by fitscribe."""
    import fitscribe.flavors.pyfunc as fs_pyfunc

    def ours() -> dict[str, Any]:
        path = ix.root / "src" / "interop_addn" / "interop_addn.py"
        path.parent.mkdir(parents=True)
        path.write_text(_ADD_N_SOURCE, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("interop_addn", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["interop_addn"] = module
        ix.user_modules.append("interop_addn")
        spec.loader.exec_module(module)
        fs_pyfunc.save_model(ix.folder("ours_pyfunc"), python_model=module.AddN(5), code_paths=[str(path)])
        return {"op": "load", "flavor": "pyfunc", "path": ix.folder("ours_pyfunc"), "inputs": ix.inputs(),
                "sys_path": [str(REPO)]}

    ix.prepare("ours_pyfunc", ours)
    ix.tasks.append({"id": "mlflow_code_model", "op": "save_code", "path": ix.folder("mlflow_code_model"),
                     "script_name": "doubler.py", "source": _CODE_MODEL_SOURCE, "pip_requirements": []})


def _run_job(ix: Interop, python: str) -> None:
    plan, result = ix.root / "plan.json", ix.root / "result.json"
    plan.write_text(json.dumps({"tasks": ix.tasks}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITSCRIBE_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_TRACKING_URI=(ix.root / "mlruns").as_uri())
    proc = run_mlflow([str(JOB_SCRIPT), str(plan), str(result)], cwd=ix.root, env=env, timeout=600)
    ix.job_output = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-8000:]}"
    if proc.returncode == 0 and result.exists():
        ix.results = json.loads(result.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interop]:
    """Prepare every case, run MLflow once over all of them, and hand back the outcomes."""
    python = mlflow_python()
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    ix = Interop(tmp_path_factory.mktemp("mlflow-interop"), X, y)
    np.save(ix.root / "X.npy", X)
    np.save(ix.root / "X3.npy", X[:3])
    _sklearn_models(ix)
    _prepare_ours_sklearn(ix)
    _prepare_mlflow_sklearn(ix)
    _prepare_xgboost(ix)
    _prepare_code_paths(ix)
    _prepare_pytorch(ix)
    _prepare_onnx(ix)
    _prepare_pyfunc(ix)
    try:
        _run_job(ix, python)
        yield ix
    finally:
        for name in ix.user_modules:
            sys.modules.pop(name, None)


def _same(actual: Any, expected: Any) -> None:
    """Assert two predictions are identical (values, not only close), whatever container they are in."""
    actual = actual.to_numpy() if hasattr(actual, "to_numpy") else np.asarray(actual)
    np.testing.assert_array_equal(actual, np.asarray(expected))


# --- a. fitscribe saves, MLflow loads ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle", "skops"])
def test_mlflow_loads_our_sklearn_pipeline(interop: Interop, fmt: str) -> None:
    case = f"ours_sklearn_{fmt}"
    model = interop.models["array"]
    assert interop.result(case)["native_class"] == "sklearn.pipeline.Pipeline"
    _same(interop.array(case, "native_predict"), model.predict(interop.X))
    _same(interop.array(case, "native_proba"), model.predict_proba(interop.X))
    _same(interop.array(case, "pyfunc_predict"), model.predict(interop.X))


def test_mlflow_pyfunc_uses_our_predict_fn(interop: Interop) -> None:
    _same(interop.array("ours_sklearn_proba", "pyfunc_predict"), interop.models["array"].predict_proba(interop.X))


@pytest.mark.parametrize("case", ["ours_sklearn_cloudpickle", "ours_xgb_classifier"])
def test_mlflow_finds_our_pins_installed_except_fitscribe(interop: Interop, case: str) -> None:
    """requirements.txt pins fitscribe itself (issue 3 asks for it); every other pin matches MLflow's venv."""
    logs = interop.result(case)["logs"]
    mismatches = [m for m in logs if "mismatches between the model's dependencies" in m]
    assert all("fitscribe" in m for m in mismatches), "\n".join(logs)
    assert not [m for m in mismatches if "scikit-learn" in m or "xgboost" in m or "numpy" in m], "\n".join(logs)


def test_mlflow_enforces_our_column_signature(interop: Interop) -> None:
    outcome = interop.result("ours_sklearn_frame")
    _same(interop.array("ours_sklearn_frame", "pyfunc_predict"), interop.models["frame"].predict(interop.frame()))
    inputs = json.loads(outcome["pyfunc_signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in inputs] == [(c, "double") for c in COLUMNS]
    error = outcome["drop_column_error"]
    assert error is not None and "MlflowException" in error and "'b'" in error, error


# --- b. MLflow saves, fitscribe loads ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_we_load_mlflow_sklearn(interop: Interop, fmt: str) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc
    import fitscribe.flavors.sklearn as fs_sklearn

    case = f"mlflow_sklearn_{fmt}"
    assert "model.pkl" in interop.result(case)["files"]
    model, X = interop.models["array"], interop.X
    native = fs_sklearn.load_model(interop.folder(case))
    _same(native.predict(X), model.predict(X))
    _same(native.predict_proba(X), model.predict_proba(X))
    loaded = fs_pyfunc.load_model(interop.folder(case))
    assert loaded.flavor == "sklearn"
    _same(loaded.predict(X), model.predict(X))


def test_we_load_mlflow_sklearn_skops(interop: Interop) -> None:
    """MLflow 3's default format; fitscribe reads it with skops, or says to install skops."""
    import fitscribe.flavors.sklearn as fs_sklearn
    from fitscribe.errors import MissingDependencyError

    case = "mlflow_sklearn_skops"
    assert "model.skops" in interop.result(case)["files"]
    if importlib.util.find_spec("skops") is None:
        with pytest.raises(MissingDependencyError, match=r"skops format.*pip install skops"):
            fs_sklearn.load_model(interop.folder(case))
        return
    _same(fs_sklearn.load_model(interop.folder(case)).predict(interop.X), interop.models["array"].predict(interop.X))


def test_we_load_mlflow_sklearn_with_signature_and_example(interop: Interop) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc
    import fitscribe.flavors.sklearn as fs_sklearn
    from fitscribe.flavors.signature import SchemaError

    case = "mlflow_sklearn_signature"
    assert "input_example.json" in interop.result(case)["files"]
    model, frame = interop.models["frame"], interop.frame()
    _same(fs_sklearn.load_model(interop.folder(case)).predict(frame), model.predict(frame))
    loaded = fs_pyfunc.load_model(interop.folder(case))
    _same(loaded.predict(frame), model.predict(frame))
    assert loaded.signature is not None
    assert [(c.name, c.type, c.required) for c in loaded.signature.inputs] == [(c, "double", True) for c in COLUMNS]
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['b'\]"):
        loaded.predict(frame.drop(columns=["b"]))
    example = loaded.input_example
    assert list(example.columns) == COLUMNS
    _same(example, interop.X[:3])


def test_we_use_mlflow_pyfunc_predict_fn(interop: Interop) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc

    interop.result("mlflow_sklearn_proba")
    loaded = fs_pyfunc.load_model(interop.folder("mlflow_sklearn_proba"))
    _same(loaded.predict(interop.X), interop.models["array"].predict_proba(interop.X))


def test_mlflow_pyfunc_accepts_params_for_sklearn(interop: Interop) -> None:
    """MLflow's sklearn pyfunc takes ``params`` (declared in the signature) and predicts as without."""
    expected = interop.models["array"].predict(interop.X)
    _same(interop.array("mlflow_sklearn_params_load", "pyfunc_params_predict"), expected)


def test_we_accept_params_for_mlflow_sklearn(interop: Interop) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc

    interop.result("mlflow_sklearn_params")
    loaded = fs_pyfunc.load_model(interop.folder("mlflow_sklearn_params"))
    _same(loaded.predict(interop.X, params={"threshold": 0.9}), interop.models["array"].predict(interop.X))


def test_wrong_flavor_on_mlflow_model_names_the_right_loader(interop: Interop) -> None:
    import fitscribe.flavors.xgboost as fs_xgboost
    from fitscribe.errors import InvalidValueError

    interop.result("mlflow_sklearn_pickle")
    with pytest.raises(InvalidValueError, match=r"not 'xgboost'") as caught:
        fs_xgboost.load_model(interop.folder("mlflow_sklearn_pickle"))
    assert "fitscribe.flavors.sklearn.load_model" in str(caught.value)


# --- code_paths: the model's class is in the user's own module, both ways -----------------------

def test_mlflow_loads_our_model_with_code_paths(interop: Interop) -> None:
    """MLflow finds the class in our ``code/`` folder: it is on no path of the MLflow process."""
    outcome = interop.result("ours_code")
    assert outcome["native_class"] == "interop_shift_ours.ShiftedLogisticRegression"
    expected = interop.models["code_ours"].predict(interop.X)
    assert set(expected) == {10, 11}
    _same(interop.array("ours_code", "native_predict"), expected)
    _same(interop.array("ours_code", "pyfunc_predict"), expected)


def test_mlflow_loads_our_cloudpickle_of_a_local_class_without_its_code(interop: Interop) -> None:
    """fitscribe pickles classes of the user's own modules by value: MLflow needs no code_paths."""
    outcome = interop.result("ours_by_value")
    assert not os.path.exists(os.path.join(interop.folder("ours_by_value"), "code"))
    assert outcome["native_class"] == "interop_shift_ours.ShiftedLogisticRegression"
    expected = interop.models["code_ours"].predict(interop.X)
    _same(interop.array("ours_by_value", "native_predict"), expected)
    _same(interop.array("ours_by_value", "pyfunc_predict"), expected)


_FRESH_LOAD = """
import sys
import numpy as np
import fitscribe.flavors.pyfunc as fs_pyfunc
import fitscribe.flavors.sklearn as fs_sklearn
import warnings
from fitscribe.flavors.model import UnverifiedModelWarning
warnings.filterwarnings("ignore", category=UnverifiedModelWarning)  # an MLflow folder: nothing vouches for it
folder, x, out = sys.argv[1:4]
X = np.load(x)
np.save(out + "/native.npy", fs_sklearn.load_model(folder).predict(X))
np.save(out + "/pyfunc.npy", fs_pyfunc.load_model(folder).predict(X))
"""


def test_we_load_mlflow_model_with_code_paths_in_fresh_process(interop: Interop, tmp_path: Path) -> None:
    """A new interpreter, where only MLflow's ``code/`` folder can provide the model's class."""
    assert "code" in interop.result("mlflow_code")["files"]
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _FRESH_LOAD, interop.folder("mlflow_code"), str(interop.root / "X.npy"),
         str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    expected = interop.models["code_mlflow"].predict(interop.X)
    _same(np.load(tmp_path / "native.npy"), expected)
    _same(np.load(tmp_path / "pyfunc.npy"), expected)


# --- c. XGBoost, both ways ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["classifier", "booster"])
def test_mlflow_loads_our_xgboost(interop: Interop, kind: str) -> None:
    import xgboost

    case, model = f"ours_xgb_{kind}", interop.models[f"xgb_{kind}"]
    expected_class = "xgboost.sklearn.XGBClassifier" if kind == "classifier" else "xgboost.core.Booster"
    assert interop.result(case)["native_class"] == expected_class
    expected = model.predict(interop.X) if kind == "classifier" else model.predict(xgboost.DMatrix(interop.X))
    _same(interop.array(case, "native_predict"), expected)
    _same(interop.array(case, "pyfunc_predict"), expected)
    if kind == "classifier":
        _same(interop.array(case, "native_proba"), model.predict_proba(interop.X))


@pytest.mark.parametrize("kind", ["classifier", "booster"])
def test_we_load_mlflow_xgboost(interop: Interop, kind: str) -> None:
    import xgboost

    import fitscribe.flavors.pyfunc as fs_pyfunc

    import fitscribe.flavors.xgboost as fs_xgboost
    case, model, X = f"mlflow_xgb_{kind}", interop.models[f"xgb_{kind}"], interop.X
    assert f"model.{XGB_FORMATS[kind]}" in interop.result(case)["files"]
    native = fs_xgboost.load_model(interop.folder(case))
    assert type(native) is type(model)
    if kind == "classifier":
        expected = model.predict(X)
        _same(native.predict(X), expected)
        _same(native.predict_proba(X), model.predict_proba(X))
    else:
        expected = model.predict(xgboost.DMatrix(X))
        _same(native.predict(xgboost.DMatrix(X)), expected)
    loaded = fs_pyfunc.load_model(interop.folder(case))
    assert loaded.flavor == "xgboost" and loaded.signature is not None
    _same(loaded.predict(X), expected)
    _same(loaded.input_example, X[:3])


# --- d. MLflow reads our metadata --------------------------------------------------------------

def test_mlflow_reads_our_metadata_tensor_example(interop: Interop) -> None:
    from fitscribe.flavors.model import Model

    outcome = interop.result("meta_array")
    ours = Model.load(interop.folder("ours_sklearn_cloudpickle"))
    _same_signature(outcome["signature"], ours.signature)
    _same_signature(outcome["info_signature"], ours.signature)
    assert outcome["utc_time_created"] == ours.utc_time_created
    assert outcome["model_uuid"] == ours.model_uuid
    assert outcome["saved_input_example_info"] == ours.saved_input_example_info
    assert outcome["example_type"] == "numpy.ndarray"
    _same(interop.array("meta_array", "example"), interop.X[:3])


def test_mlflow_reads_our_metadata_frame_example(interop: Interop) -> None:
    from fitscribe.flavors.model import Model

    outcome = interop.result("meta_frame")
    ours = Model.load(interop.folder("meta_frame"))
    _same_signature(outcome["signature"], ours.signature)
    assert outcome["run_id"] == RUN_ID and outcome["artifact_path"] == "model"
    assert outcome["utc_time_created"] == ours.utc_time_created
    assert outcome["saved_input_example_info"] == ours.saved_input_example_info
    assert outcome["metadata"] == {"team": "interop"}
    assert {"python_function", "sklearn"} <= set(outcome["flavors"])
    assert outcome["example_type"] == "pandas.DataFrame" and outcome["example_columns"] == COLUMNS
    _same(interop.array("meta_frame", "example"), interop.X[:3])


def test_mlflow_reads_our_environment_files(interop: Interop) -> None:
    """What ``mlflow models serve`` would install: our requirements.txt and python_env.yaml."""
    from fitscribe.flavors.model import python_version

    outcome = interop.result("meta_frame")
    ours = Path(interop.folder("meta_frame"), "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert outcome["requirements"] == [line.split("#")[0].strip() for line in ours if line.strip()]
    assert {"scikit-learn", "cloudpickle"} <= {r.split("==")[0] for r in outcome["requirements"]}
    assert outcome["python_env"]["python"] == python_version()
    assert outcome["python_env"]["dependencies"] == ["-r requirements.txt"]


def _same_signature(mlflow_signature: dict[str, Any] | None, ours: dict[str, Any] | None) -> None:
    """MLflow's ModelSignature.to_dict() and ours describe the same inputs and outputs."""
    assert mlflow_signature is not None and ours is not None
    for part in ("inputs", "outputs"):
        assert json.loads(mlflow_signature[part]) == json.loads(ours[part]), part


# --- e. MLflow custom PythonModel ---------------------------------------------------------------

def test_we_load_mlflow_custom_python_model_without_mlflow(interop: Interop) -> None:
    """MLflow's pickled PythonModel subclass: its base class is read as ours, MLflow is never imported."""
    import fitscribe.flavors.pyfunc as fs_pyfunc

    interop.result("mlflow_custom")
    with pytest.warns(UnverifiedModelWarning, match="pickle"):
        loaded = fs_pyfunc.load_model(interop.folder("mlflow_custom"))
    assert "mlflow" not in sys.modules
    assert isinstance(loaded.unwrap_python_model(), fs_pyfunc.PythonModel)
    _same(loaded.predict(interop.X), interop.X + 3)


# --- f. PyTorch, ONNX and custom models, both ways -----------------------------------------------

def _torch_out(model: Any, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(X.astype(np.float32))).numpy()  # type: ignore[no-any-return]


def test_mlflow_loads_our_pytorch_model(interop: Interop) -> None:
    expected = _torch_out(interop.models["torch"], interop.X)
    assert interop.result("ours_torch")["native_class"] == "torch.nn.modules.container.Sequential"
    _same(interop.array("ours_torch", "native_predict"), expected)
    _same(interop.array("ours_torch", "pyfunc_predict"), expected)


@pytest.mark.parametrize("fmt", ["pt2", "pickle"])
def test_we_load_mlflow_pytorch_model(interop: Interop, fmt: str) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc
    import fitscribe.flavors.pytorch as fs_pytorch

    case = f"mlflow_torch_{fmt}"
    interop.result(case)
    data = os.listdir(os.path.join(interop.folder(case), "data"))
    assert ("model.pt2" in data) == (fmt == "pt2"), data
    expected = _torch_out(interop.models["torch"], interop.X)
    with pytest.warns(UnverifiedModelWarning):  # both formats unpickle: nothing vouches for MLflow's folder
        native = fs_pytorch.load_model(interop.folder(case))
    _same(_torch_out(native, interop.X), expected)
    with pytest.warns(UnverifiedModelWarning):
        loaded = fs_pyfunc.load_model(interop.folder(case))
    _same(loaded.predict(interop.X.astype(np.float32)), expected)


def test_mlflow_loads_our_onnx_model(interop: Interop) -> None:
    expected = interop.models["onnx_regression"].predict(interop.X.astype(np.float32))
    assert interop.result("ours_onnx")["native_class"] == "onnx.onnx_ml_pb2.ModelProto"
    np.testing.assert_allclose(interop.array("ours_onnx", "pyfunc_predict").ravel(), expected, rtol=1e-5)


def test_we_load_mlflow_onnx_model_without_warning(interop: Interop) -> None:
    import fitscribe.flavors.onnx as fs_onnx
    import fitscribe.flavors.pyfunc as fs_pyfunc

    assert "model.onnx" in interop.result("mlflow_onnx")["files"]
    assert fs_onnx.load_model(interop.folder("mlflow_onnx")) == interop.models["onnx"]  # no pickle: no warning
    expected = interop.models["onnx_regression"].predict(interop.X.astype(np.float32))
    prediction = fs_pyfunc.load_model(interop.folder("mlflow_onnx")).predict(interop.X.astype(np.float32))
    assert set(prediction) == {"variable"}  # one array per named output, as MLflow's ONNX pyfunc
    np.testing.assert_allclose(np.asarray(prediction["variable"]).ravel(), expected, rtol=1e-5)


def test_mlflow_loads_our_python_model_in_mlflow_layout(interop: Interop) -> None:
    """MLflow's pyfunc loader reads our python_function block; predict takes no context, and params."""
    from fitscribe.flavors.model import Model

    outcome = interop.result("ours_pyfunc")
    block = Model.load(interop.folder("ours_pyfunc")).flavors["python_function"]
    assert block["loader_module"] == "mlflow.pyfunc.model" and block["python_model"] == "python_model.pkl"
    assert outcome["native_class"] == "mlflow.pyfunc.PyFuncModel"
    _same(interop.array("ours_pyfunc", "pyfunc_predict"), interop.X + 5)
    requirements = Path(interop.folder("ours_pyfunc"), "requirements.txt").read_text(encoding="utf-8")
    assert requirements.splitlines()[0].split("#")[0].strip() == "fitscribe"  # a dev build: never pinned


def test_our_python_model_without_context_takes_params(interop: Interop) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc

    interop.result("ours_pyfunc")
    with pytest.warns(UnverifiedModelWarning):
        loaded = fs_pyfunc.load_model(interop.folder("ours_pyfunc"))
    _same(loaded.predict(interop.X), interop.X + 5)
    _same(loaded.predict(interop.X, params={"times": 2}), interop.X + 10)


def test_we_load_mlflow_model_from_code_without_mlflow(interop: Interop) -> None:
    import fitscribe.flavors.pyfunc as fs_pyfunc

    folder = interop.folder("mlflow_code_model")
    assert "doubler.py" in interop.result("mlflow_code_model")["files"]
    with pytest.warns(UnverifiedModelWarning):
        loaded = fs_pyfunc.load_model(folder)
    assert "mlflow" not in sys.modules  # the script's "import mlflow" was served by fitscribe, then removed
    _same(loaded.predict(interop.X), interop.X * 2)


def test_models_mlflow_loads_alone_do_not_list_fitscribe(interop: Interop) -> None:
    for case in ("ours_sklearn_cloudpickle", "ours_xgb_classifier", "ours_torch", "ours_onnx"):
        interop.result(case)
        lines = Path(interop.folder(case), "requirements.txt").read_text(encoding="utf-8").splitlines()
        assert not [line for line in lines if line.startswith("fitscribe")], (case, lines)
