"""Sealed model folders over the artifact proxy on every kind of destination (issue 16 item 2, server
part), and experiment ids no store can hold (issue 16 item 5).

The server runs in this process (uvicorn on 127.0.0.1, port 0) with a SQLite tracking store; its
artifact destination is S3 (moto's S3 server in a child process on loopback, spoken to by real
boto3) or a local folder. A model is logged by fitscribe's own client through the proxy, then
tampered with over HTTP, and what the destination holds is checked directly.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from fitscribe import Client
from fitscribe.errors import ExperimentNotFound

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
HUGE_ID = "1" + "0" * 39


@dataclass
class Server:
    """A tracking server, and direct access to its artifact destination (a local folder, or
    ``s3://<bucket>/dest`` read with boto3) to check what the proxy really stored."""

    url: str
    http: httpx.Client
    folder: Path | None = None
    s3: Any = None
    bucket: str = ""

    def stored(self, relative: str) -> bytes:
        """The bytes stored behind a proxy path, read from the destination directly."""
        if self.folder is not None:
            return (self.folder / relative).read_bytes()
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=f"dest/{relative}")["Body"].read()
        return body

    def names(self, relative: str) -> list[str]:
        """The paths of the files under a proxy folder, relative to it, read from the destination directly."""
        if self.folder is not None:
            below = self.folder / relative
            return sorted(p.relative_to(below).as_posix() for p in below.rglob("*") if p.is_file())
        prefix = f"dest/{relative}/"
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(entry["Key"].removeprefix(prefix) for entry in answer.get("Contents", ()))


@pytest.fixture(params=["s3", "local"])
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Server]:
    """A server with a SQLite store whose artifact destination is in S3 (moto) or a local folder."""
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    folder, s3, bucket = None, None, ""
    if request.param == "s3":
        from fitscribe.testing.s3_server import FAKE_CREDENTIALS

        moto = request.getfixturevalue("moto_server")
        for name, value in FAKE_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
        monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto.endpoint_url)
        bucket = f"sealed-{uuid.uuid4().hex[:12]}"
        moto.create_bucket(bucket)
        s3, destination = moto.client(), f"s3://{bucket}/dest"
    else:
        folder = tmp_path / "artifacts"
        destination = str(folder)
    app = create_app(str(tmp_path / "store"), destination)
    with ThreadedServer(app) as threaded, httpx.Client(base_url=threaded.url, timeout=30) as client:
        monkeypatch.setenv("FITSCRIBE_TRACKING_URI", threaded.url)
        yield Server(threaded.url, client, folder, s3, bucket)


def _log_model(server: Server) -> tuple[str, str]:
    """Log a small sklearn model through the proxy; return its proxy folder and model URI."""
    from sklearn.linear_model import LinearRegression

    import fitscribe
    from fitscribe.flavors import sklearn as sk_flavor

    fitscribe.set_experiment(f"sealed-{uuid.uuid4().hex[:8]}")
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with fitscribe.start_run() as run:
        info = sk_flavor.log_model(model, "model")
    answer = server.http.get("/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id})
    root = answer.json()["run"]["info"]["artifact_uri"]
    assert root.startswith("mlflow-artifacts:/")
    return f"{root.removeprefix('mlflow-artifacts:/')}/model", info.model_uri


def test_a_sealed_model_cannot_be_replaced_extended_or_deleted_through_the_proxy(server: Server) -> None:
    from fitscribe.flavors import sklearn as sk_flavor

    folder, model_uri = _log_model(server)
    names = server.names(folder)
    assert "MLmodel" in names and "model.pkl" in names, names
    for name in names:
        original = server.stored(f"{folder}/{name}")
        swapped = server.http.put(f"{PROXY}/{folder}/{name}", content=b"import os; os.system('evil')")
        assert swapped.status_code == 409, (name, swapped.text)
        assert swapped.json()["error_code"] == "RESOURCE_CONFLICT"
        assert server.stored(f"{folder}/{name}") == original  # the object in S3 is unchanged
        again = server.http.put(f"{PROXY}/{folder}/{name}", content=original)
        assert again.status_code == 200, (name, again.text)  # a retried upload of the same bytes is fine
        assert server.stored(f"{folder}/{name}") == original
        assert server.http.delete(f"{PROXY}/{folder}/{name}").status_code == 409
    run_folder = folder.rsplit("/", 2)[0]
    for path in (folder, run_folder):  # the model folder, and the run's folder holding it
        refused = server.http.delete(f"{PROXY}/{path}")
        assert refused.status_code == 409, (path, refused.text)
    added = server.http.put(f"{PROXY}/{folder}/extra.txt", content=b"new")
    assert added.status_code == 409
    nested = server.http.put(f"{PROXY}/{folder}/sub/MLmodel", content=b"flavors: {}\n")
    assert nested.status_code == 409  # nor a descriptor of a model of one's own inside it
    assert server.names(folder) == names  # nothing added, nothing removed
    assert sk_flavor.load_model(model_uri).predict([[3.0]])[0] == pytest.approx(6.0)


def test_files_outside_sealed_models_stay_writable(server: Server) -> None:
    folder, _ = _log_model(server)
    beside = f"{folder.rsplit('/', 1)[0]}/notes.txt"  # the run's artifacts, beside the model folder
    for content in (b"1", b"2"):
        assert server.http.put(f"{PROXY}/{beside}", content=content).status_code == 200
        assert server.stored(beside) == content
    assert server.http.put(f"{PROXY}/loose/MLmodel", content=b"flavors: {}\n").status_code == 200  # not sealed
    assert server.http.put(f"{PROXY}/loose/model.pkl", content=b"a").status_code == 200
    assert server.http.put(f"{PROXY}/loose/model.pkl", content=b"b").status_code == 200
    assert server.http.delete(f"{PROXY}/{beside}").status_code == 200
    assert server.http.delete(f"{PROXY}/loose").status_code == 200
    assert server.names("loose") == []


def test_a_model_whose_mlmodel_arrived_first_only_accepts_the_recorded_bytes(server: Server,
                                                                            tmp_path: Path) -> None:
    """Uploads arrive one file at a time: once a sealed MLmodel is stored, a recorded file may follow
    only with the bytes whose sha256 the MLmodel records (no one can plant another model.pkl first)."""
    from sklearn.linear_model import LinearRegression

    from fitscribe.flavors import sklearn as sk_flavor

    saved = tmp_path / "saved"
    sk_flavor.save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), str(saved))
    folder = "planted/model"
    mlmodel = server.http.put(f"{PROXY}/{folder}/MLmodel", content=(saved / "MLmodel").read_bytes())
    assert mlmodel.status_code == 200
    planted = server.http.put(f"{PROXY}/{folder}/model.pkl", content=b"not the logged pickle")
    assert planted.status_code == 409
    assert server.names(folder) == ["MLmodel"]
    for path in sorted(saved.rglob("*")):
        if path.is_file() and path.name != "MLmodel":
            relative = path.relative_to(saved).as_posix()
            answer = server.http.put(f"{PROXY}/{folder}/{relative}", content=path.read_bytes())
            assert answer.status_code == 200, (relative, answer.text)


# -- issue 16 item 5: an experiment id no store can hold is not found, never an OverflowError -----------------
def test_an_experiment_id_beyond_64_bits_is_not_found(tracking_uri: str) -> None:
    client = Client(tracking_uri=tracking_uri)
    calls: list[Callable[[Any], object]] = [
        client.get_experiment,
        client.delete_experiment,
        client.restore_experiment,
        lambda i: client.rename_experiment(i, "renamed"),
        lambda i: client.set_experiment_tag(i, "k", "v"),
        lambda i: client.delete_experiment_tag(i, "k"),
        client.create_run,
        lambda i: client.search_runs(["0", i]),
    ]
    try:
        for experiment_id, call in itertools.product([HUGE_ID, "-" + HUGE_ID, int(HUGE_ID), "9" * 5000], calls):
            with pytest.raises(ExperimentNotFound, match="No experiment has the id") as caught:
                call(experiment_id)
            assert len(str(caught.value)) < 300  # a 5,000-digit id is not echoed whole
        assert client.get_experiment("0").name == "Default"  # the store still answers
        assert client.search_runs(["0"]) == []
    finally:
        client.close()
