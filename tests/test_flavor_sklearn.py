"""The sklearn flavor: round trips (also in a fresh process), descriptor, integrity, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fitscribe
from fitscribe.errors import AlreadyExistsError, InvalidValueError, NotFoundError, RunNotFound
from fitscribe.flavors import sklearn as sk_flavor
from fitscribe.flavors.model import ModelIntegrityError

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def _fresh_process_predict(model_uri: str, X: np.ndarray, tmp_path: Path, loader: str = "sklearn") -> np.ndarray:
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, fitscribe
        model = fitscribe.flavors.{loader}.load_model(sys.argv[1])
        np.save(sys.argv[3], np.asarray(model.predict(np.load(sys.argv[2]))))
        """
    )
    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    result = subprocess.run(
        [sys.executable, "-c", script, model_uri, str(tmp_path / "X.npy"), str(tmp_path / "out.npy")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return np.load(tmp_path / "out.npy")


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_pipeline_round_trip_in_fresh_process(data, fmt: str, tmp_path: Path) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y)
    with fitscribe.start_run() as run:
        info = sk_flavor.log_model(model, "model", serialization_format=fmt)
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    expected = model.predict(X.to_numpy())
    assert np.array_equal(sk_flavor.load_model(info.model_uri).predict(X.to_numpy()), expected)
    assert np.array_equal(_fresh_process_predict(info.model_uri, X.to_numpy(), tmp_path), expected)


def test_descriptor_and_environment_files(data, tmp_path: Path) -> None:
    X, y = data
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    path = tmp_path / "rf"
    sk_flavor.save_model(model, str(path), input_example=X.head(3), metadata={"owner": "me"})
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert mlmodel["flavors"]["sklearn"]["pickled_model"] == "model.pkl"
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["fitscribe"]["flavor"] == "sklearn"
    assert mlmodel["fitscribe"]["version"] == fitscribe.__version__
    assert set(mlmodel["fitscribe"]["files"]) == {"model.pkl", "input_example.json"}
    assert mlmodel["metadata"] == {"owner": "me"}
    assert mlmodel["model_size_bytes"] > (path / "model.pkl").stat().st_size
    assert len(mlmodel["model_uuid"]) == 32 and mlmodel["utc_time_created"]
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == ["a", "b", "c", "d"] and inputs[0]["type"] == "double"
    assert mlmodel["saved_input_example_info"] == {
        "artifact_path": "input_example.json", "type": "dataframe", "pandas_orient": "split",
    }
    requirements = (path / "requirements.txt").read_text().splitlines()
    assert not [line for line in requirements if line.startswith("fitscribe")]  # MLflow loads it without fitscribe
    import cloudpickle
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"cloudpickle=={cloudpickle.__version__}" in requirements
    conda = yaml.safe_load((path / "conda.yaml").read_text())
    assert conda["dependencies"][0] == "python={}.{}.{}".format(*sys.version_info[:3])
    assert f"scikit-learn=={sklearn.__version__}" in conda["dependencies"][-1]["pip"]
    python_env = yaml.safe_load((path / "python_env.yaml").read_text())
    assert python_env["dependencies"] == ["-r requirements.txt"]
    example = fitscribe.flavors.pyfunc.load_model(str(path)).input_example
    pd.testing.assert_frame_equal(example, X.head(3).reset_index(drop=True))


def test_pip_requirements_override_and_extend(data, tmp_path: Path) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    sk_flavor.save_model(model, str(tmp_path / "a"), pip_requirements=["scikit-learn>=1.0", "pandas"])
    assert (tmp_path / "a" / "requirements.txt").read_text().splitlines() == ["scikit-learn>=1.0", "pandas"]
    sk_flavor.save_model(model, str(tmp_path / "b"), extra_pip_requirements=["scikit-learn>=1.0", "boto3==1.0"])
    lines = (tmp_path / "b" / "requirements.txt").read_text().splitlines()
    assert "scikit-learn>=1.0" in lines and "boto3==1.0" in lines
    assert not any(line.startswith("scikit-learn==") for line in lines)
    with pytest.raises(InvalidValueError, match="not both"):
        sk_flavor.save_model(model, str(tmp_path / "c"), pip_requirements=["x"], extra_pip_requirements=["y"])
    assert not (tmp_path / "c").exists()


def test_corrupted_or_missing_file_is_refused(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    sk_flavor.save_model(LogisticRegression().fit(X, y), str(path))
    with open(path / "model.pkl", "r+b") as fh:
        fh.seek(10)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ModelIntegrityError, match=r"'model.pkl'.*does not match the sha256"):
        sk_flavor.load_model(str(path))
    (path / "model.pkl").unlink()
    with pytest.raises(ModelIntegrityError, match="'model.pkl' is missing"):
        sk_flavor.load_model(str(path))


def test_edited_requirements_warn_on_version_mismatch(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    sk_flavor.save_model(LinearRegression().fit(X, y), str(path))
    lines = (path / "requirements.txt").read_text().splitlines()
    lines = ["scikit-learn==0.24.2" if line.startswith("scikit-learn==") else line for line in lines]
    (path / "requirements.txt").write_text("\n".join(lines) + "\n")
    import sklearn

    with pytest.warns(fitscribe.errors.FitscribeWarning, match=rf"scikit-learn==0.24.2 but {sklearn.__version__} is installed"):
        model = sk_flavor.load_model(str(path))
    assert model.predict(X).shape == (60,)


def test_bad_inputs_give_clear_errors(data, tmp_path: Path) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InvalidValueError, match="Unknown serialization_format 'skops2'"):
        sk_flavor.save_model(model, str(tmp_path / "x"), serialization_format="skops2")
    assert not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        sk_flavor.save_model(model, str(tmp_path / "taken"))
    with pytest.raises(NotFoundError, match="does not exist"):
        sk_flavor.load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="holds no MLmodel"):
        sk_flavor.load_model(str(tmp_path / "empty"))
    with pytest.raises(InvalidValueError, match="not a valid runs URI"):
        sk_flavor.load_model("runs:/abc/model")
    with pytest.raises(RunNotFound):
        sk_flavor.load_model(f"runs:/{'0' * 32}/model")
    with fitscribe.start_run() as run:
        pass
    with pytest.raises(NotFoundError, match="has no model at 'model'"):
        sk_flavor.load_model(f"runs:/{run.info.run_id}/model")


def test_wrong_flavor_is_named(tmp_path: Path) -> None:
    from fitscribe.flavors.pyfunc import PythonModel

    class Echo(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    fitscribe.flavors.pyfunc.save_model(str(tmp_path / "echo"), python_model=Echo())
    with pytest.raises(InvalidValueError, match="saved with the 'pyfunc' flavor, not 'sklearn'"):
        sk_flavor.load_model(str(tmp_path / "echo"))


def test_log_model_without_active_run_opens_and_finishes_one(data) -> None:
    X, y = data
    info = sk_flavor.log_model(LogisticRegression().fit(X, y), "clf", registered_model_name=None)
    run = fitscribe.get_run(info.run_id)
    assert run.info.status == "FINISHED"
    history = json.loads(run.data.tags["mlflow.log-model.history"])
    assert history[0]["artifact_path"] == "clf" and history[0]["model_uuid"] == info.model_uuid
    assert fitscribe.active_run() is None
    assert [f.path for f in fitscribe.Client().list_artifacts(info.run_id, "clf")] == [
        "clf/MLmodel", "clf/conda.yaml", "clf/model.pkl", "clf/python_env.yaml", "clf/requirements.txt",
    ]


def test_two_models_in_one_run_share_the_history_tag(data) -> None:
    X, y = data
    with fitscribe.start_run() as run:
        sk_flavor.log_model(LogisticRegression().fit(X, y), "first")
        sk_flavor.log_model(LinearRegression().fit(X, y), "second")
    history = json.loads(fitscribe.get_run(run.info.run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["first", "second"]


def test_local_module_class_travels_by_value(tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    (code / "my_estimators.py").write_text(textwrap.dedent(
        """
        from sklearn.base import BaseEstimator, RegressorMixin
        import numpy as np

        class Doubler(RegressorMixin, BaseEstimator):
            def fit(self, X, y=None):
                self.fitted_ = True
                return self
            def predict(self, X):
                return np.asarray(X)[:, 0] * 2
        """
    ))
    sys.path.insert(0, str(code))
    try:
        import my_estimators

        sk_flavor.save_model(my_estimators.Doubler().fit([[1.0]]), str(tmp_path / "m"))
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("my_estimators", None)
    out = _fresh_process_predict(str(tmp_path / "m"), np.array([[1.5], [2.0]]), tmp_path)
    assert out.tolist() == [3.0, 4.0]


def test_generic_log_model_detects_sklearn_and_refuses_unknown_objects(data) -> None:
    X, y = data
    info = fitscribe.flavors.log_model(LogisticRegression().fit(X, y), "auto")
    assert info.descriptor.flavor_name == "sklearn"
    assert type(fitscribe.flavors.load_model(info.model_uri)).__name__ == "LogisticRegression"
    with pytest.raises(fitscribe.errors.ConfigError, match="No model flavor knows how to save a builtins.object"):
        fitscribe.flavors.log_model(object(), "nope")


def test_unknown_flavor_and_newer_format_are_refused(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    sk_flavor.save_model(LogisticRegression().fit(X, y), str(path))
    original = (path / "MLmodel").read_text()
    (path / "MLmodel").write_text(original.replace("flavor: sklearn", "flavor: catboost"))
    with pytest.raises(fitscribe.errors.ConfigError, match="No model flavor is registered for 'catboost'.*fitscribe.flavors"):
        fitscribe.flavors.pyfunc.load_model(str(path))
    (path / "MLmodel").write_text(original.replace("flavor_version: 1", "flavor_version: 7"))
    with pytest.raises(InvalidValueError, match="newer fitscribe.*format 7.*pip install -U fitscribe"):
        sk_flavor.load_model(str(path))
    (path / "MLmodel").write_text("flavors: [oops")
    with pytest.raises(InvalidValueError, match="not valid YAML"):
        sk_flavor.load_model(str(path))


def test_model_uri_forms_for_a_local_folder(data, tmp_path: Path) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    sk_flavor.save_model(model, str(tmp_path / "m"))
    expected = model.predict(X).tolist()
    assert sk_flavor.load_model((tmp_path / "m").as_uri()).predict(X).tolist() == expected
    assert sk_flavor.load_model(tmp_path / "m").predict(X).tolist() == expected  # a pathlib.Path too


def test_mlmodel_cannot_point_the_loader_at_an_unchecked_file(data, tmp_path: Path) -> None:
    X, y = data
    path = tmp_path / "m"
    sk_flavor.save_model(LogisticRegression().fit(X, y), str(path))
    original = (path / "MLmodel").read_text()
    import shutil

    shutil.copy(path / "model.pkl", path / "other.pkl")
    (path / "MLmodel").write_text(original.replace("pickled_model: model.pkl", "pickled_model: other.pkl"))
    with pytest.raises(ModelIntegrityError, match="'other.pkl', which has no sha256 recorded"):
        sk_flavor.load_model(str(path))
    (path / "MLmodel").write_text(original.replace("pickled_model: model.pkl", "pickled_model: ../evil.pkl"))
    with pytest.raises(ModelIntegrityError, match="outside the model"):
        sk_flavor.load_model(str(path))


def test_hashing_writer_matches_sha256_with_reused_buffers() -> None:
    import hashlib
    import io
    import pickle

    from fitscribe.flavors.model import HashingWriter

    out = io.BytesIO()
    writer = HashingWriter(out)
    pickle.dump({"big": np.arange(300_000, dtype=np.float64), "small": [1, 2]}, writer, protocol=5)
    buffer = bytearray(b"first")
    writer.write(memoryview(buffer))
    buffer[:] = b"again"  # a writer that refills its buffer, as torch.save does
    writer.write(memoryview(buffer))
    assert writer.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()


@pytest.mark.parametrize("batch", [1 << 20, 1000])  # one batch per MiB; and many, big chunks sliced
@pytest.mark.parametrize(("target", "ahead"), [("file", 2), ("file", 0), ("memory", 2)])  # ahead=0: all inline
def test_threaded_writer_writes_and_hashes_everything(batch: int, target: str, ahead: int, tmp_path: Path) -> None:
    import hashlib
    import io
    import pickle

    from fitscribe.flavors.model import ThreadedHashWriter

    payload = {"big": np.arange(300_000, dtype=np.float64), "small": [1, 2], "text": "x" * 5000}
    buffer = bytearray(b"tail")
    with open(tmp_path / "p.pkl", "wb") if target == "file" else io.BytesIO() as fh:
        with ThreadedHashWriter(fh, batch=batch, ahead=ahead) as writer:
            pickle.dump(payload, writer, protocol=5)
            writer.write(memoryview(buffer))
            buffer[:] = b"XXXX"  # a writer that refills its buffer: what was given must be kept
            digest = writer.finish()
        assert fh.tell() == len(pickle.dumps(payload, protocol=5)) + 4
        data = (tmp_path / "p.pkl").read_bytes() if target == "file" else fh.getvalue()  # type: ignore[union-attr]
    assert digest == hashlib.sha256(data).hexdigest() and data.endswith(b"tail")
    assert np.array_equal(pickle.loads(data[:-4])["big"], payload["big"])


def test_threaded_writer_raises_write_errors_and_stops_its_helper(tmp_path: Path) -> None:
    import _thread
    import time

    from fitscribe.flavors.model import ThreadedHashWriter

    threads = _thread._count()
    (tmp_path / "ro.bin").write_bytes(b"")
    with open(tmp_path / "ro.bin", "rb") as fh:  # a descriptor the helper cannot write to
        with ThreadedHashWriter(fh, batch=10) as writer:
            writer.write(b"x" * 100)
            with pytest.raises(OSError):
                writer.finish()
    with open(tmp_path / "w.bin", "wb") as fh:
        with pytest.raises(RuntimeError, match="pickler failed"):
            with ThreadedHashWriter(fh, batch=10) as writer:
                writer.write(b"y" * 100)  # a full batch: the helper starts
                raise RuntimeError("pickler failed")
    for _ in range(500):  # a helper that has returned may take a moment to leave the thread count
        if _thread._count() == threads:
            break
        time.sleep(0.01)
    assert _thread._count() == threads


def test_seal_hashes_nested_files_and_sizes_the_folder_in_one_pass(tmp_path: Path) -> None:
    import hashlib

    from fitscribe.flavors.model import Model, folder_size, hash_folder

    (tmp_path / "code" / "pkg").mkdir(parents=True)
    (tmp_path / "code" / "pkg" / "helper.py").write_text("X = 1\n")
    (tmp_path / "model.pkl").write_bytes(b"p" * 1000)
    (tmp_path / "requirements.txt").write_text("numpy==1\n")  # editable by users: not hashed
    descriptor = Model(flavors={"python_function": {}})
    descriptor.seal(str(tmp_path), known={"model.pkl": "recorded-while-writing"})
    assert descriptor.fitscribe["files"] == {
        "code/pkg/helper.py": hashlib.sha256(b"X = 1\n").hexdigest(),
        "model.pkl": "recorded-while-writing",
    }
    assert descriptor.model_size_bytes == 6 + 1000 + len("numpy==1\n")
    assert hash_folder(str(tmp_path))["model.pkl"] == hashlib.sha256(b"p" * 1000).hexdigest()
    assert folder_size(str(tmp_path)) == descriptor.model_size_bytes + (tmp_path / "MLmodel").stat().st_size


def test_threaded_writer_writes_inline_into_a_pipe() -> None:
    import hashlib
    import os

    from fitscribe.flavors.model import ThreadedHashWriter

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as fh:
        with ThreadedHashWriter(fh, batch=4) as writer:
            writer.write(b"0123456789")
            digest = writer.finish()
        fh.close()
        assert reader.read() == b"0123456789"
    assert digest == hashlib.sha256(b"0123456789").hexdigest()
