"""What you load is what was logged: model digests in the tracking store, checked before any unpickling.

Each attack below swaps a model's pickle for one whose ``__reduce__`` creates a marker file: if any
code of the pickle ran, the marker exists. The tests assert it does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from _require import require_module
import yaml
from sklearn.linear_model import LogisticRegression

import fitscribe
from fitscribe import fluent
from fitscribe.flavors import pyfunc
from fitscribe.flavors import sklearn as sk_flavor
from fitscribe.flavors import xgboost as xgb_flavor
from fitscribe.flavors.model import ModelIntegrityError, UnverifiedModelWarning, UntrustedModelError, folder_digest
from fitscribe.flavors.saving import DIGEST_TAG_PREFIX


class _Marker:
    """Unpickling this creates the file ``path`` (the proof that a pickle's code ran)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return X, (X[:, 0] > 0).astype(int)


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pwned"
    yield path


def _evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Marker(str(marker)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _swap_pickle(folder: Path, marker: Path, name: str = "model.pkl", rewrite_mlmodel: bool = True) -> None:
    """Replace ``name`` with the marker pickle and, as a careful attacker would, fix its hash in MLmodel."""
    evil = _evil_pickle(marker)
    (folder / name).write_bytes(evil)
    if rewrite_mlmodel:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        mlmodel["fitscribe"]["files"][name] = _sha256(evil)
        (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))


def _run_folder(run_id: str, name: str = "model") -> Path:
    """The model folder inside a local store's artifacts (what an artifact-store writer can change)."""
    uri = fluent.get_client().get_run(run_id).info.artifact_uri
    from fitscribe.uri import file_uri_to_path

    return Path(file_uri_to_path(uri)) / name


def _log_sklearn(data: tuple[np.ndarray, np.ndarray], **kwargs: Any) -> Any:
    X, y = data
    with fitscribe.start_run():
        return sk_flavor.log_model(LogisticRegression().fit(X, y), "model", **kwargs)


# --- the digest is recorded in the tracking store at log time ------------------------------------

def test_log_model_records_the_whole_folder_digest_in_the_tracking_store(data, tmp_path: Path) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data)
    tags = fluent.get_client().get_run(info.run_id).data.tags
    seal = json.loads(tags[DIGEST_TAG_PREFIX + "model"])
    downloaded = fluent.get_client().download_artifacts(info.run_id, "model", str(tmp_path / "dl"))
    assert seal == folder_digest(downloaded)
    assert seal["mlmodel"] == _sha256((Path(downloaded) / "MLmodel").read_bytes())  # MLmodel itself is covered
    history = json.loads(tags["mlflow.log-model.history"])
    assert history[-1]["fitscribe_digest"] == seal
    # A verified model loads without any warning (pytest turns warnings into errors).
    X, y = data
    assert sk_flavor.load_model(info.model_uri).predict(X).tolist() == LogisticRegression().fit(X, y).predict(X).tolist()


# --- tampering is refused before any code of the model runs --------------------------------------

@pytest.mark.parametrize("loader", ["sklearn", "pyfunc", "generic"])
def test_swapped_pickle_with_rewritten_mlmodel_is_refused_before_any_code_runs(
    data, tmp_path: Path, marker: Path, loader: str
) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data, registered_model_name="victim")
    _swap_pickle(_run_folder(info.run_id), marker)
    load = {"sklearn": sk_flavor.load_model, "pyfunc": pyfunc.load_model,
            "generic": fitscribe.flavors.load_model}[loader]
    for uri in (info.model_uri, "models:/victim/1", "models:/victim/latest"):
        with pytest.raises(ModelIntegrityError, match=r"digest recorded in the tracking store.*'MLmodel' was changed"):
            load(uri)
        assert not marker.exists(), f"the swapped pickle ran when loading {uri}"


def test_swapped_pickle_alone_is_refused_naming_the_file(data, tmp_path: Path, marker: Path) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data)
    _swap_pickle(_run_folder(info.run_id), marker, rewrite_mlmodel=False)
    with pytest.raises(ModelIntegrityError, match=r"'model.pkl' was changed"):
        sk_flavor.load_model(info.model_uri)
    assert not marker.exists()


def test_an_added_or_edited_environment_file_is_refused(data, tmp_path: Path) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data)
    folder = _run_folder(info.run_id)
    (folder / "extra.py").write_text("print('hi')")
    with pytest.raises(ModelIntegrityError, match=r"'extra.py' was added"):
        sk_flavor.load_model(info.model_uri)
    (folder / "extra.py").unlink()
    with open(folder / "requirements.txt", "a", encoding="utf-8") as fh:
        fh.write("evil-package==6.6.6\n")
    with pytest.raises(ModelIntegrityError, match=r"environment file"):
        sk_flavor.load_model(info.model_uri)


def test_tampering_through_a_tracking_server_is_refused(data, tmp_path: Path, marker: Path) -> None:
    """The model is logged to a real server over HTTP; someone with write access to its artifact
    storage swaps the pickle and rewrites MLmodel; loading through the server refuses it."""
    require_module("httpx")
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    artifacts = tmp_path / "server-artifacts"
    with ThreadedServer(create_app(str(tmp_path / "server-store"), str(artifacts))) as server:
        fitscribe.set_tracking_uri(server.url)
        info = _log_sklearn(data)
        X, _ = data
        assert sk_flavor.load_model(info.model_uri).predict(X).shape == (len(X),)  # verified: no warning
        folders = [p.parent for p in artifacts.rglob("MLmodel")]
        assert len(folders) == 1
        _swap_pickle(folders[0], marker)
        with pytest.raises(ModelIntegrityError, match=r"'MLmodel' was changed"):
            pyfunc.load_model(info.model_uri)
        assert not marker.exists()


# --- models nothing vouches for ------------------------------------------------------------------

def test_pickle_model_in_a_bare_folder_warns_naming_the_risk(data, tmp_path: Path) -> None:
    X, y = data
    sk_flavor.save_model(LogisticRegression().fit(X, y), str(tmp_path / "m"))
    with pytest.warns(UnverifiedModelWarning, match=r"runs code when loaded \(pickle\).*FITSCRIBE_TRUSTED_ONLY=1") as caught:
        sk_flavor.load_model(str(tmp_path / "m"))
    assert caught[0].filename == __file__  # points at the caller


def test_trusted_only_refuses_a_bare_pickle_folder_before_unpickling(
    data, tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    folder = tmp_path / "m"
    sk_flavor.save_model(LogisticRegression().fit(X, y), str(folder))
    _swap_pickle(folder, marker)  # hashes in MLmodel match: the folder checks itself as fine
    monkeypatch.setenv("FITSCRIBE_TRUSTED_ONLY", "1")
    with pytest.raises(UntrustedModelError, match="FITSCRIBE_TRUSTED_ONLY"):
        pyfunc.load_model(str(folder))
    assert not marker.exists()


def test_trusted_only_still_loads_logged_models_and_code_free_formats(
    data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xgboost

    X, y = data
    monkeypatch.setenv("FITSCRIBE_TRUSTED_ONLY", "1")
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data)
    assert sk_flavor.load_model(info.model_uri).predict(X).shape == (len(X),)
    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=y), 2)
    xgb_flavor.save_model(booster, str(tmp_path / "xgb"))
    assert xgb_flavor.load_model(str(tmp_path / "xgb")).num_boosted_rounds() == 2  # no pickle: no warning


def test_a_model_logged_before_digests_existed_loads_with_the_warning(data, tmp_path: Path) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    info = _log_sklearn(data)
    client = fluent.get_client()
    client.delete_tag(info.run_id, DIGEST_TAG_PREFIX + "model")
    history = json.loads(client.get_run(info.run_id).data.tags["mlflow.log-model.history"])
    for entry in history:
        entry.pop("fitscribe_digest")
    client.set_tag(info.run_id, "mlflow.log-model.history", json.dumps(history))
    with pytest.warns(UnverifiedModelWarning):
        sk_flavor.load_model(info.model_uri)


# --- probe H3: the pyfunc loader reads python_model only through the recorded-hash check -----------

class _AddOne(pyfunc.PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input + 1


def test_pyfunc_refuses_python_model_pointing_at_an_unrecorded_pickle(tmp_path: Path, marker: Path) -> None:
    """An edited MLmodel (a local folder: no tracking store to compare with) names another pickle."""
    folder = tmp_path / "m"
    pyfunc.save_model(str(folder), python_model=_AddOne())
    (folder / "evil.pkl").write_bytes(_evil_pickle(marker))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["python_model"] = "evil.pkl"
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    with pytest.warns(UnverifiedModelWarning), pytest.raises(ModelIntegrityError, match=r"'evil.pkl'.*no sha256"):
        pyfunc.load_model(str(folder))
    assert not marker.exists()


def test_pyfunc_refuses_a_changed_python_model(tmp_path: Path, marker: Path) -> None:
    folder = tmp_path / "m"
    pyfunc.save_model(str(folder), python_model=_AddOne())
    _swap_pickle(folder, marker, name="python_model.pkl", rewrite_mlmodel=False)
    with pytest.raises(ModelIntegrityError, match=r"'python_model.pkl'"):  # refused before the warning
        pyfunc.load_model(str(folder))
    assert not marker.exists()


# --- skops: no pickle, only trusted types ---------------------------------------------------------

def test_skops_format_round_trips_without_pickle_or_warning(data, tmp_path: Path) -> None:
    require_module("skops")
    X, y = data
    model = LogisticRegression().fit(X, y)
    sk_flavor.save_model(model, str(tmp_path / "m"), serialization_format="skops")
    assert sorted(os.listdir(tmp_path / "m")) == ["MLmodel", "conda.yaml", "model.skops", "python_env.yaml",
                                                   "requirements.txt"]
    assert sk_flavor.load_model(str(tmp_path / "m")).predict(X).tolist() == model.predict(X).tolist()
    assert "skops==" in (tmp_path / "m" / "requirements.txt").read_text()


class MyScaler(LogisticRegression):
    """A class skops does not trust by default."""


def test_skops_refuses_untrusted_types_on_save_and_load(data, tmp_path: Path) -> None:
    require_module("skops")
    from fitscribe.errors import InvalidValueError

    X, y = data
    model = MyScaler().fit(X, y)
    with pytest.raises(InvalidValueError, match=r"skops does not trust.*MyScaler"):
        sk_flavor.save_model(model, str(tmp_path / "m"), serialization_format="skops")
    assert not (tmp_path / "m").exists()
    name = f"{MyScaler.__module__}.MyScaler"
    sk_flavor.save_model(model, str(tmp_path / "ok"), serialization_format="skops", skops_trusted_types=[name])
    # Trusting a type named in MLmodel is the author's choice, so an unverified folder warns.
    with pytest.warns(UnverifiedModelWarning):
        assert sk_flavor.load_model(str(tmp_path / "ok")).predict(X).tolist() == model.predict(X).tolist()
    mlmodel = yaml.safe_load((tmp_path / "ok" / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"] = None
    (tmp_path / "ok" / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    with pytest.raises(InvalidValueError, match="not trusted"):
        sk_flavor.load_model(str(tmp_path / "ok"))
    shutil.rmtree(tmp_path / "ok")


def test_pyfunc_refuses_an_artifact_path_leaving_the_model(tmp_path: Path) -> None:
    (tmp_path / "factor.txt").write_text("2")
    folder = tmp_path / "m"
    pyfunc.save_model(str(folder), python_model=_AddOne(), artifacts={"factor": str(tmp_path / "factor.txt")})
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["artifacts"]["factor"]["path"] = "../../../etc/passwd"
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    with pytest.warns(UnverifiedModelWarning), pytest.raises(ModelIntegrityError, match="artifact outside the model"):
        pyfunc.load_model(str(folder))


def test_a_model_name_that_is_no_valid_tag_key_is_sealed_under_its_hash(data, tmp_path: Path, marker: Path) -> None:
    from fitscribe.flavors.saving import digest_tag

    X, y = data
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    with fitscribe.start_run():
        info = sk_flavor.log_model(LogisticRegression().fit(X, y), "model+v2 (final)")
    assert digest_tag("model+v2 (final)") in fluent.get_client().get_run(info.run_id).data.tags
    assert sk_flavor.load_model(info.model_uri).predict(X).shape == (len(X),)  # verified: no warning
    _swap_pickle(_run_folder(info.run_id, "model+v2 (final)"), marker)
    with pytest.raises(ModelIntegrityError, match="'MLmodel' was changed"):
        sk_flavor.load_model(info.model_uri)
    assert not marker.exists()
