"""The onnx flavor: MLmodel blocks, round trips (also in a fresh process), providers, session options,
input handling, signatures, integrity, MLflow-written folders, and the sklearn flavor's ``onnx=True``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fitscribe
import fitscribe.flavors
from fitscribe.errors import FitscribeWarning, InvalidValueError, NotFoundError
from fitscribe.flavors import onnx as onnx_flavor
from fitscribe.flavors import pyfunc
from fitscribe.flavors import sklearn as sk_flavor
from fitscribe.flavors.model import ModelIntegrityError

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")

CPU = "CPUExecutionProvider"
needs_no_cuda = pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available, so nothing falls back"
)


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _linear(n_in: int = 3, n_out: int = 2, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """y = x @ W + b, with a symbolic batch dimension."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_in, n_out)).astype(np.float32)
    b = rng.normal(size=(n_out,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")],
    )
    return _finish(graph), W, b


def _two_inputs() -> onnx.ModelProto:
    """Inputs a: float [n, 1] and b: int32 [n, 1]; outputs y = a * b ([n, 1]) and z = [a, b] ([n, 2])."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["a", "bf"], ["y"]),
            helper.make_node("Concat", ["a", "bf"], ["z"], axis=1),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("b", TensorProto.INT32, [None, 1]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 2]),
        ],
    )
    return _finish(graph)


def _same_graph(a: onnx.ModelProto, b: onnx.ModelProto) -> bool:
    """Same nodes, inputs, outputs and weights (external-data bookkeeping fields aside)."""
    weights = lambda m: {t.name: numpy_helper.to_array(t).tolist() for t in m.graph.initializer}  # noqa: E731
    return (
        list(a.graph.node) == list(b.graph.node) and list(a.graph.input) == list(b.graph.input)
        and list(a.graph.output) == list(b.graph.output) and weights(a) == weights(b)
    )


def _mlmodel(path: Path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


# --- saving and loading ------------------------------------------------------------------------


def test_mlmodel_blocks_are_mlflow_s(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    onnx_flavor.save_model(proto, str(tmp_path / "m"))
    mlmodel = _mlmodel(tmp_path / "m")
    assert mlmodel["flavors"]["onnx"] == {
        "onnx_version": onnx.__version__,
        "data": "model.onnx",
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "code": None,
    }
    assert mlmodel["flavors"]["python_function"] == {
        "loader_module": "mlflow.onnx",
        "python_version": "{}.{}.{}".format(*sys.version_info[:3]),
        "data": "model.onnx",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
    }
    assert mlmodel["fitscribe"]["flavor"] == "onnx" and "model.onnx" in mlmodel["fitscribe"]["files"]
    assert "signature" not in mlmodel  # no input example: MLflow's behaviour (see graph_signature)
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert f"onnx=={onnx.__version__}" in requirements
    assert any(line.startswith("onnxruntime==") for line in requirements)


def test_round_trip_keeps_the_graph_and_the_callers_proto(tmp_path: Path) -> None:
    proto, _, _ = _linear(n_in=40, n_out=40)  # 6.4 kB of weights: stored as external data by default
    before = proto.SerializeToString()
    onnx_flavor.save_model(proto, str(tmp_path / "external"))
    side_files = [n for n in os.listdir(tmp_path / "external") if n.endswith(".data")]
    assert len(side_files) == 1
    assert proto.SerializeToString() == before  # onnx moves weights out of what it saves; not ours
    onnx_flavor.save_model(proto, str(tmp_path / "single"), save_as_external_data=False)
    assert not [n for n in os.listdir(tmp_path / "single") if n.endswith(".data")]
    for name in ("external", "single"):
        loaded = onnx_flavor.load_model(str(tmp_path / name))
        assert isinstance(loaded, onnx.ModelProto) and _same_graph(loaded, proto)
    assert onnx_flavor.load_model(str(tmp_path / "single")).SerializeToString() == before


def test_pyfunc_predictions_match_in_a_fresh_process(tmp_path: Path) -> None:
    proto, W, b = _linear()
    X = np.random.default_rng(1).normal(size=(8, 3))
    with fitscribe.start_run():
        info = onnx_flavor.log_model(proto, "model")
    expected = X.astype(np.float32) @ W + b
    here = pyfunc.load_model(info.model_uri).predict(X)
    assert set(here) == {"y"} and here["y"].dtype == np.float32
    np.testing.assert_allclose(here["y"], expected, rtol=1e-5, atol=1e-6)
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import sys, numpy as np, fitscribe.flavors.pyfunc as pyfunc
        model = pyfunc.load_model(sys.argv[1])
        np.save(sys.argv[3], model.predict(np.load(sys.argv[2]))["y"])
        """
    )
    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    result = subprocess.run(
        [sys.executable, "-c", script, info.model_uri, str(tmp_path / "X.npy"), str(tmp_path / "out.npy")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(tmp_path / "out.npy"), here["y"])


def test_save_from_a_path(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    onnx.save(proto, str(tmp_path / "linear.onnx"))
    onnx_flavor.save_model(str(tmp_path / "linear.onnx"), str(tmp_path / "from_str"))
    onnx_flavor.save_model(tmp_path / "linear.onnx", str(tmp_path / "from_path"))
    for name in ("from_str", "from_path"):
        assert onnx_flavor.load_model(str(tmp_path / name)).SerializeToString() == proto.SerializeToString()
    with pytest.raises(NotFoundError, match="nowhere.onnx"):
        onnx_flavor.save_model(str(tmp_path / "nowhere.onnx"), str(tmp_path / "x"))
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\x01 not a protobuf \xff")
    with pytest.raises(InvalidValueError, match="garbage.onnx"):
        onnx_flavor.save_model(str(tmp_path / "garbage.onnx"), str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_invalid_graphs_and_objects_are_refused_at_save(tmp_path: Path) -> None:
    broken = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["missing"], ["y"])], "broken",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    with pytest.raises(InvalidValueError, match="not a valid ONNX model.*missing"):
        onnx_flavor.save_model(broken, str(tmp_path / "broken"))
    with pytest.raises(InvalidValueError, match=r"onnx\.ModelProto or the path of a \.onnx file, got a dict"):
        onnx_flavor.save_model({"not": "a model"}, str(tmp_path / "dict"))
    assert not (tmp_path / "broken").exists() and not (tmp_path / "dict").exists()


def test_corrupted_model_file_is_refused(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    path = tmp_path / "m"
    onnx_flavor.save_model(proto, str(path))
    data = bytearray((path / "model.onnx").read_bytes())
    data[-5] ^= 0xFF
    (path / "model.onnx").write_bytes(bytes(data))
    for load in (onnx_flavor.load_model, pyfunc.load_model, onnx_flavor.load_session):
        with pytest.raises(ModelIntegrityError, match="model.onnx"):
            load(str(path))


def test_generic_log_model_detects_onnx(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    onnx.save(proto, str(tmp_path / "linear.onnx"))
    with fitscribe.start_run():
        from_proto = fitscribe.flavors.log_model(proto, "proto")
        from_file = fitscribe.flavors.log_model(str(tmp_path / "linear.onnx"), "file")
        with pytest.raises(InvalidValueError, match="serialization_format.*onnx_execution_providers"):
            fitscribe.flavors.log_model(proto, "bad", serialization_format="pickle")
    for info in (from_proto, from_file):
        assert info.descriptor.flavor_name == "onnx" and "onnx" in info.flavors
        assert isinstance(fitscribe.flavors.load_model(info.model_uri), onnx.ModelProto)


def test_importing_the_flavor_does_not_import_onnx() -> None:
    code = "import sys, fitscribe.flavors.onnx; print(sorted({'onnx', 'onnxruntime', 'skl2onnx'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- execution providers and session options ---------------------------------------------------


@needs_no_cuda
def test_missing_provider_warns_and_falls_back_to_cpu(tmp_path: Path) -> None:
    proto, W, b = _linear()
    onnx_flavor.save_model(proto, str(tmp_path / "cuda"), onnx_execution_providers=["CUDAExecutionProvider"])
    expected = r"\['CUDAExecutionProvider'\].*running on \['CPUExecutionProvider'\]"
    with pytest.warns(FitscribeWarning, match=expected) as record:
        model = pyfunc.load_model(str(tmp_path / "cuda"))
    assert record[0].filename == __file__  # the warning points at the caller
    X = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(model.predict(X)["y"], X @ W + b, rtol=1e-6)
    with pytest.warns(FitscribeWarning, match="CUDAExecutionProvider"):
        session = onnx_flavor.load_session(str(tmp_path / "cuda"))
    assert session.get_providers() == [CPU]


@needs_no_cuda
def test_default_providers_are_a_preference_and_load_quietly(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    onnx_flavor.save_model(proto, str(tmp_path / "m"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = onnx_flavor.load_session(str(tmp_path / "m"))
    assert [w for w in caught if issubclass(w.category, FitscribeWarning)] == []
    assert session.get_providers() == [CPU]
    assert onnx_flavor.load_session(str(tmp_path / "m"), providers=[CPU]).get_providers() == [CPU]


def test_unknown_provider_is_refused(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    with pytest.raises(InvalidValueError, match=r"\['CUDAExecutionProvder'\].*CPUExecutionProvider"):
        onnx_flavor.save_model(proto, str(tmp_path / "m"), onnx_execution_providers=["CUDAExecutionProvder", CPU])
    with pytest.raises(InvalidValueError, match="non-empty list"):
        onnx_flavor.save_model(proto, str(tmp_path / "m"), onnx_execution_providers=CPU)
    assert not (tmp_path / "m").exists()


def test_session_options_are_saved_and_applied(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    options = {
        "intra_op_num_threads": 1,
        "inter_op_num_threads": 2,
        "execution_mode": "parallel",
        "graph_optimization_level": 1,
        "enable_mem_pattern": False,
        "extra_session_config": {"session.intra_op.allow_spinning": "0"},
    }
    onnx_flavor.save_model(proto, str(tmp_path / "m"), onnx_execution_providers=[CPU], onnx_session_options=options)
    assert _mlmodel(tmp_path / "m")["flavors"]["onnx"]["onnx_session_options"] == options
    applied = onnx_flavor.load_session(str(tmp_path / "m")).get_session_options()
    assert applied.intra_op_num_threads == 1 and applied.inter_op_num_threads == 2
    assert applied.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert applied.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert applied.enable_mem_pattern is False
    assert applied.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"intra_threads": 2}, r"'intra_threads'.*intra_op_num_threads.*extra_session_config"),
        ({"execution_mode": "fast"}, r"\['execution_mode'\] = 'fast'.*'parallel' or 'sequential'"),
        ({"graph_optimization_level": 3}, r"\['graph_optimization_level'\] = 3.*0 \(disable all\).*99"),
        ({"intra_op_num_threads": -1}, r"\['intra_op_num_threads'\] = -1.*>= 0"),
        ({"inter_op_num_threads": True}, r"\['inter_op_num_threads'\] = True.*>= 0"),
        ({"enable_profiling": "yes"}, r"\['enable_profiling'\] = 'yes'.*a bool"),
        ({"execution_order": "fastest"}, r"'fastest'.*memory_efficient"),
        ({"extra_session_config": ["a"]}, r"extra_session_config.*must be a dict"),
        ({"extra_session_config": {"session.x": 1}}, r"'session.x': 1 must map a string to a string"),
        ("intra_op_num_threads=1", r"must be a dict, got str"),
    ],
)
def test_bad_session_options_are_refused_at_save(tmp_path: Path, options: object, match: str) -> None:
    proto, _, _ = _linear()
    with pytest.raises(InvalidValueError, match=match):
        onnx_flavor.save_model(proto, str(tmp_path / "m"), onnx_session_options=options)  # type: ignore[arg-type]
    assert not (tmp_path / "m").exists()


# --- input handling ------------------------------------------------------------------------------


def test_multi_input_model_takes_dicts_and_dataframes(tmp_path: Path) -> None:
    onnx_flavor.save_model(_two_inputs(), str(tmp_path / "m"))
    model = pyfunc.load_model(str(tmp_path / "m"))
    a = np.array([[1.5], [2.0], [-1.0]])  # float64 -> float32
    b = np.array([[2], [3], [4]])  # int64 -> int32
    out = model.predict({"a": a, "b": b})
    assert set(out) == {"y", "z"}
    np.testing.assert_allclose(out["y"], [[3.0], [6.0], [-4.0]])
    frame = pd.DataFrame({"b": [2, 3, 4], "a": [1.5, 2.0, -1.0]}, index=[10, 11, 12])
    result = model.predict(frame)
    assert isinstance(result, pd.DataFrame) and list(result.columns) == ["y", "z"]
    assert list(result.index) == [10, 11, 12]
    assert result["y"].tolist() == [3.0, 6.0, -4.0]  # [n, 1] output -> plain column
    assert [list(cell) for cell in result["z"]] == [[1.5, 2.0], [2.0, 3.0], [-1.0, 4.0]]  # [n, 2] -> one array per row
    with pytest.raises(InvalidValueError, match=r"2 inputs \['a', 'b'\].*dict"):
        model.predict(np.ones((3, 2)))
    with pytest.raises(InvalidValueError, match=r"missing \['b'\]"):
        model.predict({"a": a})
    with pytest.raises(InvalidValueError, match=r"unknown \['c'\]"):
        model.predict({"a": a, "b": b, "c": b})
    with pytest.raises(InvalidValueError, match=r"no column\(s\) \['b'\]"):
        model.predict(frame[["a"]])
    with pytest.raises(InvalidValueError, match="got str"):
        model.predict("a=1")


def test_casts_float64_and_narrows_integers_only_when_values_fit(tmp_path: Path) -> None:
    proto, W, b = _linear()
    onnx_flavor.save_model(proto, str(tmp_path / "linear"))
    onnx_flavor.save_model(_two_inputs(), str(tmp_path / "two"))
    linear = pyfunc.load_model(str(tmp_path / "linear"))
    X = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(linear.predict(X)["y"], X.astype(np.float32) @ W + b, rtol=1e-6)
    np.testing.assert_allclose(linear.predict([[1, 2, 3]])["y"], np.array([[1, 2, 3]], np.float32) @ W + b, rtol=1e-6)
    with pytest.raises(InvalidValueError, match=r"Input 'x' \(float64.*too large for float32"):
        linear.predict(np.array([[1e300, 0.0, 0.0]]))
    two = pyfunc.load_model(str(tmp_path / "two"))
    with pytest.raises(InvalidValueError, match=r"Input 'b' \(int64.*outside int32's range"):
        two.predict({"a": np.ones((1, 1)), "b": np.array([[2**40]])})
    with pytest.raises(InvalidValueError, match=r"Input 'a'.*holds text"):
        two.predict(pd.DataFrame({"a": ["x"], "b": [1]}))


def test_dataframe_input_to_a_one_input_model_gives_a_dataframe(tmp_path: Path) -> None:
    proto, W, b = _linear(n_out=1)
    onnx_flavor.save_model(proto, str(tmp_path / "m"))
    frame = pd.DataFrame(np.arange(6, dtype=np.float64).reshape(2, 3), columns=["p", "q", "r"])
    out = pyfunc.load_model(str(tmp_path / "m")).predict(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["y"]
    np.testing.assert_allclose(out["y"].to_numpy(), (frame.to_numpy(np.float32) @ W + b).ravel(), rtol=1e-6)


# --- signatures ----------------------------------------------------------------------------------


def test_signature_comes_from_the_graph_for_array_examples(tmp_path: Path) -> None:
    proto, W, b = _linear()
    X = np.random.default_rng(2).normal(size=(4, 3))
    with fitscribe.start_run():
        info = onnx_flavor.log_model(proto, "model", input_example=X[:2])
    assert info.signature is not None
    assert info.signature.to_dict()["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}, "name": "x"}]'
    )
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [("y", "float32", (-1, 2))]
    model = pyfunc.load_model(info.model_uri)
    np.testing.assert_allclose(model.predict(X)["y"], X.astype(np.float32) @ W + b, rtol=1e-5)
    np.testing.assert_allclose(model.input_example, X[:2])
    from fitscribe.flavors.signature import SchemaError

    with pytest.raises(SchemaError, match=r"shape \(4, 2\)"):
        model.predict(X[:, :2])


def test_signature_from_a_dataframe_example_keeps_dataframes(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    frame = pd.DataFrame(np.ones((3, 3)), columns=["p", "q", "r"])
    onnx_flavor.save_model(proto, str(tmp_path / "m"), input_example=frame)
    signature = pyfunc.load_model(str(tmp_path / "m")).signature
    assert [c.name for c in signature.inputs] == ["p", "q", "r"]
    assert [(s.name, s.dtype) for s in signature.outputs] == [("y", "float32")]  # from running the example
    assert isinstance(pyfunc.load_model(str(tmp_path / "m")).predict(frame), pd.DataFrame)
    onnx_flavor.save_model(proto, str(tmp_path / "none"), input_example=frame, signature=False)
    assert "signature" not in _mlmodel(tmp_path / "none")


def test_signature_from_a_dict_example_names_every_input(tmp_path: Path) -> None:
    example = {"a": np.ones((2, 1), np.float32), "b": np.ones((2, 1), np.int32)}
    onnx_flavor.save_model(_two_inputs(), str(tmp_path / "m"), input_example=example)
    model = pyfunc.load_model(str(tmp_path / "m"))
    assert [(s.name, s.dtype) for s in model.signature.inputs] == [("a", "float32"), ("b", "int32")]
    out = model.predict({"a": np.array([[2.0]]), "b": np.array([[3]])})
    assert out["y"].tolist() == [[6.0]]
    assert set(model.input_example) == {"a", "b"}


def test_graph_signature_helper() -> None:
    signature = onnx_flavor.graph_signature(_two_inputs())
    inputs = [(s.name, s.dtype, s.shape) for s in signature.inputs]
    assert inputs == [("a", "float32", (-1, 1)), ("b", "int32", (-1, 1))]
    assert [(s.name, s.shape) for s in signature.outputs] == [("y", (-1, 1)), ("z", (-1, 2))]


# --- folders written by MLflow -------------------------------------------------------------------


def test_loads_a_folder_written_by_mlflow(tmp_path: Path) -> None:
    """MLflow 3's layout: no fitscribe block, no hashes; loaded through the onnx block."""
    proto, W, b = _linear()
    folder = tmp_path / "mlflow_model"
    folder.mkdir()
    onnx.save(proto, str(folder / "model.onnx"))
    (folder / "MLmodel").write_text(textwrap.dedent(
        f"""\
        artifact_path: mlflow-artifacts:/1/models/m-0123/artifacts
        flavors:
          onnx:
            code: null
            data: model.onnx
            onnx_session_options: {{intra_op_num_threads: 1, execution_mode: SEQUENTIAL}}
            onnx_version: {onnx.__version__}
            providers:
            - CUDAExecutionProvider
            - CPUExecutionProvider
          python_function:
            data: model.onnx
            env:
              conda: conda.yaml
              virtualenv: python_env.yaml
            loader_module: mlflow.onnx
            python_version: 3.11.7
        is_signature_from_type_hint: false
        mlflow_version: 3.17.2
        model_id: m-0123
        model_size_bytes: 1234
        model_uuid: m-0123
        prompts: null
        run_id: 0123456789abcdef0123456789abcdef
        utc_time_created: '2026-11-22 07:22:55.601749'
        """
    ))
    (folder / "requirements.txt").write_text(
        f"mlflow==3.17.2\nonnx=={onnx.__version__}\nonnxruntime=={ort.__version__}\n"
    )
    assert onnx_flavor.load_model(str(folder)).SerializeToString() == proto.SerializeToString()
    model = pyfunc.load_model(str(folder))
    assert model.flavor == "onnx"
    X = np.ones((2, 3))
    np.testing.assert_allclose(model.predict(X)["y"], X.astype(np.float32) @ W + b, rtol=1e-6)
    assert onnx_flavor.load_session(str(folder)).get_session_options().intra_op_num_threads == 1


# --- scikit-learn models with onnx=True ----------------------------------------------------------


@pytest.fixture
def classification() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    return X.astype(np.float32).astype(np.float64), y  # values float32 holds exactly: same inputs for both


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(),
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    ],
    ids=["logistic", "forest", "pipeline"],
)
def test_sklearn_onnx_copy_predicts_like_sklearn(classification, make, tmp_path: Path) -> None:
    X, y = classification
    model = make().fit(X, y)
    path = str(tmp_path / "m")
    sk_flavor.save_model(model, path, onnx=True, input_example=X[:5])
    block = _mlmodel(tmp_path / "m")["flavors"]["onnx"]
    assert block["data"] == "model.onnx" and block["onnx_version"] == onnx.__version__
    proto = onnx_flavor.load_model(path)
    assert isinstance(proto, onnx.ModelProto)
    session = ort.InferenceSession(proto.SerializeToString(), providers=[CPU])
    labels, probabilities = session.run(None, {"input": X.astype(np.float32)})
    assert np.array_equal(labels, model.predict(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)
    restored = sk_flavor.load_model(path)
    assert type(restored) is type(model) and np.array_equal(restored.predict(X), model.predict(X))
    assert pyfunc.load_model(path).flavor == "sklearn"
    from_session = onnx_flavor.load_session(path).run(["label"], {"input": X[:3].astype(np.float32)})[0]
    assert from_session.tolist() == model.predict(X[:3]).tolist()


class UnconvertibleClassifier(LogisticRegression):
    """A subclass skl2onnx has no converter for."""


def test_sklearn_conversion_errors_name_the_estimator(classification, tmp_path: Path) -> None:
    X, y = classification
    with pytest.raises(InvalidValueError, match=r"skl2onnx cannot convert the .*UnconvertibleClassifier.*onnx=True"):
        sk_flavor.save_model(UnconvertibleClassifier().fit(X, y), str(tmp_path / "m"), onnx=True)
    assert not (tmp_path / "m").exists()
    regressor = LinearRegression().fit(X, y)  # no input example: the width comes from n_features_in_
    proto = onnx_flavor.convert_sklearn(regressor)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [0, 4]
    with pytest.raises(InvalidValueError, match="input_example"):
        onnx_flavor.convert_sklearn(StandardScaler())  # not fitted: no n_features_in_


def test_missing_skl2onnx_names_the_extra() -> None:
    # A None entry in sys.modules is Python's documented way to make an import fail (no fake module).
    code = textwrap.dedent(
        """
        import sys
        sys.modules["skl2onnx"] = None
        from sklearn.linear_model import LinearRegression
        from fitscribe.errors import MissingDependencyError
        from fitscribe.flavors.onnx import convert_sklearn
        try:
            convert_sklearn(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
        except MissingDependencyError as exc:
            print(exc.extra, exc.package, exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("onnx skl2onnx ") and 'pip install "fitscribe[onnx]"' in result.stdout


def test_write_onnx_returns_the_flavor_block(tmp_path: Path) -> None:
    proto, _, _ = _linear()
    block = onnx_flavor.write_onnx(proto, str(tmp_path), session_options={"intra_op_num_threads": 1})
    assert block == {
        "onnx_version": onnx.__version__,
        "data": "model.onnx",
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "onnx_session_options": {"intra_op_num_threads": 1},
    }
    assert onnx.load(str(tmp_path / "model.onnx")).SerializeToString() == proto.SerializeToString()
    assert json.dumps(block)  # plain data, safe for YAML
