"""Custom PythonModels, the generic pyfunc loader and signature enforcement."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import fitscribe
from fitscribe.flavors import pyfunc
from fitscribe.flavors.signature import ColSpec, ModelSignature, SchemaError, TensorSpec, infer_signature

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")


def _write_model_module(tmp_path: Path) -> Path:
    code = tmp_path / "code_src"
    code.mkdir()
    (code / "scaler_model.py").write_text(textwrap.dedent(
        """
        from fitscribe.flavors.pyfunc import PythonModel

        class Scaler(PythonModel):
            def load_context(self, context):
                with open(context.artifacts["factor"]) as fh:
                    self.factor = float(fh.read())
                self.offset = context.model_config.get("offset", 0)

            def predict(self, context, model_input, params=None):
                mult = (params or {}).get("mult", 1)
                return model_input["x"].to_numpy() * self.factor * mult + self.offset
        """
    ))
    return code


def test_custom_model_with_artifacts_code_and_config_in_fresh_process(tmp_path: Path) -> None:
    code = _write_model_module(tmp_path)
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    sys.path.insert(0, str(code))
    try:
        import scaler_model

        with fitscribe.start_run():
            info = pyfunc.log_model(
                "scaler", python_model=scaler_model.Scaler(), artifacts={"factor": str(factor)},
                code_paths=[str(code / "scaler_model.py")], model_config={"offset": 1},
                input_example=pd.DataFrame({"x": [1.0, 2.0]}),
            )
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("scaler_model", None)
    factor.write_text("100")  # the model keeps its own copy
    script = textwrap.dedent(
        """
        import sys, fitscribe, pandas as pd
        model = fitscribe.flavors.pyfunc.load_model(sys.argv[1])
        print(model.predict(pd.DataFrame({"x": [1.0, 2.0]})).tolist(), model.predict({"x": [4.0]}, params={"mult": 2}).tolist())
        print(type(model.unwrap_python_model()).__name__)
        """
    )
    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    out = subprocess.run([sys.executable, "-c", script, info.model_uri], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[4.0, 7.0] [25.0]", "Scaler"]
    assert info.signature is not None and info.signature.inputs == [ColSpec("double", "x")]


def test_pyfunc_loads_sklearn_and_accepts_many_input_types(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    fitscribe.flavors.sklearn.save_model(model, str(tmp_path / "m"), input_example=X.head(2))
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    assert loaded.flavor == "sklearn" and type(loaded.get_raw_model()) is LogisticRegression
    expected = model.predict(X).tolist()
    assert loaded.predict(X).tolist() == expected
    assert loaded.predict(X.to_numpy()).tolist() == expected
    assert loaded.predict({"a": X["a"].tolist(), "b": X["b"].tolist()}).tolist() == expected
    assert loaded.predict(X.to_dict(orient="records")).tolist() == expected
    assert loaded.predict(X.to_numpy().tolist()).tolist() == expected
    assert loaded.predict(X[["b", "a"]]).tolist() == expected  # reordered columns
    assert loaded.predict({"a": 3, "b": 0}).tolist() == [expected[3]]  # one row, Python ints: exact in double
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['b'\].*extra columns \['z'\]"):
        loaded.predict(pd.DataFrame({"a": [1.0], "z": [2.0]}))
    with pytest.raises(SchemaError, match="Column 'a' has type object but the model expects float64"):
        loaded.predict(pd.DataFrame({"a": ["x"], "b": [1.0]}))
    with pytest.raises(SchemaError, match="expects 2 columns"):
        loaded.predict(np.zeros((2, 3)))
    with pytest.warns(fitscribe.errors.FitscribeWarning, match=r"does not use: \['extra'\]"):
        assert loaded.predict(X.assign(extra=1.0)).tolist() == expected
    with pytest.raises(fitscribe.errors.InvalidValueError, match="not as a PythonModel"):
        loaded.unwrap_python_model()


def test_integer_columns_cast_only_when_exact(tmp_path: Path) -> None:
    sig = ModelSignature(inputs=[ColSpec("double", "a")])
    ok = sig.enforce(pd.DataFrame({"a": np.array([1, 2**53], dtype=np.int64)}))
    assert ok["a"].dtype == np.float64
    with pytest.raises(SchemaError, match="too large to be exact"):
        sig.enforce(pd.DataFrame({"a": np.array([2**53 + 1], dtype=np.int64)}))
    long_sig = ModelSignature(inputs=[ColSpec("long", "a")])
    with pytest.raises(SchemaError, match="has type float64 but the model expects int64"):
        long_sig.enforce(pd.DataFrame({"a": [1.5]}))
    text_sig = ModelSignature(inputs=[ColSpec("string", "s")])
    with pytest.raises(SchemaError, match="expects text"):
        text_sig.enforce(pd.DataFrame({"s": [1.0]}))
    optional = ModelSignature(inputs=[ColSpec("double", "a"), ColSpec("double", "b", required=False)])
    assert list(optional.enforce(pd.DataFrame({"a": [1.0]})).columns) == ["a"]


def test_tensor_signature_casts_and_checks_shape() -> None:
    sig = ModelSignature(inputs=[TensorSpec("float32", (-1, 3))])
    out = sig.enforce(np.ones((2, 3)))
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert sig.enforce([1.0, 2.0, 3.0]).shape == (1, 3)  # one row without the batch dimension
    with pytest.raises(SchemaError, match=r"shape \(2, 4\) but the model expects \(-1, 3\)"):
        sig.enforce(np.ones((2, 4)))
    with pytest.raises(SchemaError, match="has type str32"):
        sig.enforce(np.array([["a", "b", "c"]]))
    named = ModelSignature(inputs=[TensorSpec("float64", (-1,), "x"), TensorSpec("int64", (-1,), "y")])
    with pytest.raises(SchemaError, match=r"missing the tensor\(s\) \['y'\]"):
        named.enforce({"x": np.ones(2)})


def test_signature_json_round_trip_matches_mlflow_form() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1.0], "n": np.array([1], dtype=np.int64), "s": ["t"], "f": [True]}), np.array([0.5]))
    data = sig.to_dict()
    assert data["inputs"] == (
        '[{"type": "double", "name": "a", "required": true}, {"type": "long", "name": "n", "required": true}, '
        '{"type": "string", "name": "s", "required": true}, {"type": "boolean", "name": "f", "required": true}]'
    )
    assert data["outputs"] == '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
    assert ModelSignature.from_dict(data) == sig


def test_nan_and_infinity_survive_in_the_input_example(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [np.nan, np.inf, -np.inf, 1.0]})
    model = LinearRegression().fit(pd.DataFrame({"a": [0.0, 1.0, 2.0]}), [0.0, 1.0, 2.0])
    fitscribe.flavors.sklearn.save_model(model, str(tmp_path / "m"), input_example=X, signature=False)
    example = pyfunc.load_model(str(tmp_path / "m")).input_example
    assert np.isnan(example["a"][0]) and example["a"][1] == np.inf and example["a"][2] == -np.inf


def test_python_model_without_predict_and_non_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(fitscribe.errors.InvalidValueError, match="Pass python_model="):
        pyfunc.log_model("m")
    with pytest.raises(fitscribe.errors.InvalidValueError, match="must be an instance of"):
        pyfunc.save_model(str(tmp_path / "x"), python_model=object())  # type: ignore[arg-type]
    pyfunc.save_model(str(tmp_path / "bare"), python_model=pyfunc.PythonModel())
    with pytest.raises(NotImplementedError, match="must implement predict"):
        pyfunc.load_model(str(tmp_path / "bare")).predict([1])


def test_column_dicts_of_column_vectors_and_frames_for_named_tensors() -> None:
    sig = ModelSignature(inputs=[ColSpec("double", "a"), ColSpec("double", "b")])
    frame = sig.enforce({"a": np.ones((3, 1)), "b": [1.0, 2.0, 3.0]})
    assert frame.shape == (3, 2)
    with pytest.raises(SchemaError, match=r"Input 'a' has shape \(3, 2\)"):
        sig.enforce({"a": np.ones((3, 2)), "b": [1.0, 2.0, 3.0]})
    named = ModelSignature(inputs=[TensorSpec("float32", (-1,), "x"), TensorSpec("float32", (-1,), "y")])
    out = named.enforce(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}))
    assert set(out) == {"x", "y"} and out["x"].dtype == np.float32


_SCRIPT = '''
from fitscribe.flavors.pyfunc import PythonModel, set_model


class Tripler(PythonModel):
    def load_context(self, context):
        self.offset = context.model_config.get("offset", 0)

    def predict(self, model_input, params=None):
        return model_input * 3 + self.offset


set_model(Tripler())
'''


def test_model_from_code_round_trips_through_a_run(tmp_path: Path) -> None:
    script = tmp_path / "tripler.py"
    script.write_text(_SCRIPT)
    with fitscribe.start_run():
        info = pyfunc.log_model("model", python_model=str(script), model_config={"offset": 1})
    script.unlink()  # the model holds its own copy
    block = info.flavors["python_function"]
    assert block["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert block["model_code_path"] == str(script) and "python_model" not in block
    loaded = pyfunc.load_model(info.model_uri)  # logged, so verified: no warning
    np.testing.assert_array_equal(loaded.predict(np.arange(3.0)), np.arange(3.0) * 3 + 1)
    local = fitscribe.Client().download_artifacts(info.run_id, "model/requirements.txt", str(tmp_path))
    assert Path(local).read_text().startswith("fitscribe")  # the script imports fitscribe


def test_model_from_code_that_sets_no_model_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "empty.py"
    script.write_text("x = 1\n")
    pyfunc.save_model(str(tmp_path / "m"), python_model=str(script))
    with pytest.raises(fitscribe.errors.InvalidValueError, match=r"'empty.py'.*set no model"):
        pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(fitscribe.errors.InvalidValueError, match="not a Python file"):
        pyfunc.save_model(str(tmp_path / "n"), python_model=str(tmp_path / "missing.py"))
