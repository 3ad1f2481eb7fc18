"""The model registry endpoints over real HTTP, and with the official mlflow client.

uvicorn on 127.0.0.1 (port 0) in a thread, backed by a SQLite store. Every endpoint's happy path in
MLflow's shapes (versions are strings, aliases ``[{alias, version}]``), and its errors: a missing
model, version or alias is 404 RESOURCE_DOES_NOT_EXIST, a taken name 400 RESOURCE_ALREADY_EXISTS, a
bad value 400 INVALID_PARAMETER_VALUE. Then MLflow's own client logs a scikit-learn model with
``registered_model_name``, sets an alias, and loads ``models:/m/1`` and ``models:/m@champion``.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from _mlflow_support import mlflow_python, run_mlflow

import fitscribe
from fitscribe.server import create_app
from fitscribe.server.routes.registry import ENDPOINTS, widen_prompt_filter
from fitscribe.server.run import ThreadedServer

API = "/api/2.0/mlflow"
RUN_ID = "0123456789abcdef0123456789abcdef"


@dataclass
class Served:
    url: str
    store: str
    http: httpx.Client

    def send(self, method: str, endpoint: str, body: Any = None, **params: Any) -> httpx.Response:
        if method == "GET":
            return self.http.get(f"{API}/{endpoint}", params=params)
        return self.http.request(method, f"{API}/{endpoint}", json=body if body is not None else {})

    def ok(self, method: str, endpoint: str, body: Any = None, **params: Any) -> dict[str, Any]:
        response = self.send(method, endpoint, body, **params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def error(self, status: int, code: str, method: str, endpoint: str, body: Any = None, **params: Any) -> str:
        response = self.send(method, endpoint, body, **params)
        assert response.status_code == status, response.text
        assert response.json()["error_code"] == code, response.json()
        return str(response.json()["message"])


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("registry-server")
    app = create_app(str(root / "store"), str(root / "artifacts"))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield Served(server.url, str(root / "store"), http)


_names = iter(range(10_000))


def _model(s: Served, versions: int = 0, **extra: Any) -> str:
    name = f"model-{next(_names)}"
    s.ok("POST", "registered-models/create", {"name": name, **extra})
    for i in range(versions):
        s.ok("POST", "model-versions/create", {"name": name, "source": f"runs:/{RUN_ID}/m{i}", "run_id": RUN_ID})
    return name


# -- registered models ------------------------------------------------------------------------------
def test_create_get_rename_update_delete(srv: Served) -> None:
    created = srv.ok("POST", "registered-models/create",
                     {"name": "churn", "tags": [{"key": "team", "value": "risk"}], "description": "first"})
    model = created["registered_model"]
    assert (model["name"], model["description"], model["tags"]) == ("churn", "first", [{"key": "team", "value": "risk"}])
    assert model["creation_timestamp"] == model["last_updated_timestamp"] > 0
    assert srv.ok("GET", "registered-models/get", name="churn")["registered_model"] == model
    renamed = srv.ok("POST", "registered-models/rename", {"name": "churn", "new_name": "churn-2"})["registered_model"]
    assert renamed["name"] == "churn-2"
    updated = srv.ok("PATCH", "registered-models/update", {"name": "churn-2", "description": "second"})
    assert updated["registered_model"]["description"] == "second"
    assert srv.ok("DELETE", "registered-models/delete", {"name": "churn-2"}) == {}
    srv.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "registered-models/get", name="churn-2")


def test_registered_model_errors(srv: Served) -> None:
    name = _model(srv)
    message = srv.error(400, "RESOURCE_ALREADY_EXISTS", "POST", "registered-models/create", {"name": name})
    assert f"{name!r} already exists" in message
    srv.error(400, "INVALID_PARAMETER_VALUE", "POST", "registered-models/create", {"name": "a/b"})
    srv.error(400, "INVALID_PARAMETER_VALUE", "POST", "registered-models/create", {})
    for method, endpoint, body in [("POST", "registered-models/rename", {"name": "ghost", "new_name": "x"}),
                                   ("PATCH", "registered-models/update", {"name": "ghost", "description": "x"}),
                                   ("DELETE", "registered-models/delete", {"name": "ghost"}),
                                   ("POST", "registered-models/set-tag", {"name": "ghost", "key": "k", "value": "v"}),
                                   ("POST", "registered-models/get-latest-versions", {"name": "ghost"})]:
        srv.error(404, "RESOURCE_DOES_NOT_EXIST", method, endpoint, body)
    other = _model(srv)
    srv.error(400, "RESOURCE_ALREADY_EXISTS", "POST", "registered-models/rename", {"name": name, "new_name": other})


def test_tags_and_search(srv: Served) -> None:
    name = _model(srv)
    srv.ok("POST", "registered-models/set-tag", {"name": name, "key": "stage", "value": "beta"})
    srv.ok("POST", "registered-models/set-tag", {"name": name, "key": "doomed", "value": "x"})
    assert srv.ok("DELETE", "registered-models/delete-tag", {"name": name, "key": "doomed"}) == {}
    got = srv.ok("GET", "registered-models/search", filter=f"name = '{name}' AND tags.stage = 'beta'")
    assert [m["name"] for m in got["registered_models"]] == [name]
    assert got["registered_models"][0]["tags"] == [{"key": "stage", "value": "beta"}]
    assert srv.ok("GET", "registered-models/search", filter="name = 'nothing-like-it'") == {}
    page = srv.ok("GET", "registered-models/search", max_results=1)
    assert len(page["registered_models"]) == 1 and page["next_page_token"]
    srv.error(400, "INVALID_PARAMETER_VALUE", "GET", "registered-models/search", filter="metrics.x > 1")
    srv.error(400, "INVALID_PARAMETER_VALUE", "GET", "registered-models/search", max_results=1001)


def test_mlflow_prompt_exclusion_matches_models_without_the_tag(srv: Served) -> None:
    plain = _model(srv)
    prompt = _model(srv, tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    clause = "tag.`mlflow.prompt.is_prompt` != 'true'"  # what MLflow's client appends to every search
    found = srv.ok("GET", "registered-models/search", filter=f"name IN ('{plain}', '{prompt}') AND {clause}")
    assert [m["name"] for m in found["registered_models"]] == [plain]
    only = srv.ok("GET", "registered-models/search", filter=f"name IN ('{plain}', '{prompt}') AND tags.`mlflow.prompt.is_prompt` = 'true'")
    assert [m["name"] for m in only["registered_models"]] == [prompt]
    assert widen_prompt_filter(None) is None and widen_prompt_filter("name = 'a'") == "name = 'a'"


# -- versions, stages, aliases ----------------------------------------------------------------------
def test_model_versions(srv: Served) -> None:
    name = _model(srv)
    created = srv.ok("POST", "model-versions/create", {
        "name": name, "source": f"runs:/{RUN_ID}/model", "run_id": RUN_ID, "description": "d",
        "tags": [{"key": "k", "value": "v"}], "run_link": "http://x/run"})["model_version"]
    assert created["version"] == "1" and created["status"] == "READY" and created["current_stage"] == "None"
    assert (created["source"], created["run_id"], created["run_link"]) == (f"runs:/{RUN_ID}/model", RUN_ID, "http://x/run")
    assert srv.ok("GET", "model-versions/get", name=name, version="1")["model_version"] == created
    assert srv.ok("POST", "model-versions/create", {"name": name, "source": "s3://b/m"})["model_version"]["version"] == "2"
    updated = srv.ok("PATCH", "model-versions/update", {"name": name, "version": "2", "description": "new"})
    assert updated["model_version"]["description"] == "new"
    srv.ok("POST", "model-versions/set-tag", {"name": name, "version": "2", "key": "ok", "value": "yes"})
    srv.ok("DELETE", "model-versions/delete-tag", {"name": name, "version": "2", "key": "ok"})
    found = srv.ok("GET", "model-versions/search", filter=f"name = '{name}'")["model_versions"]
    assert [v["version"] for v in found] == ["2", "1"]
    assert srv.ok("DELETE", "model-versions/delete", {"name": name, "version": "2"}) == {}
    srv.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "model-versions/get", name=name, version="2")
    srv.error(400, "INVALID_PARAMETER_VALUE", "GET", "model-versions/get", name=name, version="abc")
    srv.error(400, "INVALID_PARAMETER_VALUE", "POST", "model-versions/create", {"name": name})
    srv.error(404, "RESOURCE_DOES_NOT_EXIST", "POST", "model-versions/create", {"name": "ghost", "source": "s3://b"})


def test_stages_and_latest_versions(srv: Served) -> None:
    name = _model(srv, versions=3)
    moved = srv.ok("POST", "model-versions/transition-stage",
                   {"name": name, "version": "1", "stage": "staging", "archive_existing_versions": False})
    assert moved["model_version"]["current_stage"] == "Staging"
    srv.ok("POST", "model-versions/transition-stage",
           {"name": name, "version": "2", "stage": "Staging", "archive_existing_versions": True})
    latest = srv.ok("POST", "registered-models/get-latest-versions", {"name": name})["model_versions"]
    assert [(v["version"], v["current_stage"]) for v in latest] == [("1", "Archived"), ("2", "Staging"), ("3", "None")]
    staged = srv.ok("GET", "registered-models/get-latest-versions", name=name, stages=["Staging"])
    assert [v["version"] for v in staged["model_versions"]] == ["2"]
    model = srv.ok("GET", "registered-models/get", name=name)["registered_model"]
    assert [v["version"] for v in model["latest_versions"]] == ["1", "2", "3"]
    srv.error(400, "INVALID_PARAMETER_VALUE", "POST", "model-versions/transition-stage",
              {"name": name, "version": "1", "stage": "Bogus"})


def test_aliases(srv: Served) -> None:
    name = _model(srv, versions=2)
    assert srv.ok("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}) == {}
    srv.ok("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "2"})  # moves
    version = srv.ok("GET", "registered-models/alias", name=name, alias="champion")["model_version"]
    assert (version["version"], version["aliases"]) == ("2", ["champion"])
    model = srv.ok("GET", "registered-models/get", name=name)["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    assert srv.ok("DELETE", "registered-models/alias", {"name": name, "alias": "champion"}) == {}
    assert srv.ok("DELETE", "registered-models/alias", {"name": name, "alias": "champion"}) == {}  # idempotent
    srv.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "registered-models/alias", name=name, alias="champion")
    srv.error(404, "RESOURCE_DOES_NOT_EXIST", "POST", "registered-models/alias", {"name": name, "alias": "a", "version": "9"})
    srv.error(400, "INVALID_PARAMETER_VALUE", "POST", "registered-models/alias", {"name": name, "alias": "latest", "version": "1"})


def test_download_uri(srv: Served) -> None:
    exp_id = srv.ok("POST", "experiments/create", {"name": "download-uri"})["experiment_id"]
    run = srv.ok("POST", "runs/create", {"experiment_id": exp_id, "start_time": 1})["run"]["info"]
    name = _model(srv)
    srv.ok("POST", "model-versions/create", {"name": name, "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]})
    srv.ok("POST", "model-versions/create", {"name": name, "source": "s3://bucket/m"})
    got = srv.ok("GET", "model-versions/get-download-uri", name=name, version="1")
    assert got == {"artifact_uri": f"{run['artifact_uri']}/model"}
    assert srv.ok("GET", "model-versions/get-download-uri", name=name, version="2") == {"artifact_uri": "s3://bucket/m"}


def test_ajax_alias_and_openapi(srv: Served) -> None:
    name = _model(srv)
    assert srv.http.get("/ajax-api/2.0/mlflow/registered-models/get", params={"name": name}).status_code == 200
    paths = srv.http.get("/openapi.json").json()["paths"]
    for ep in ENDPOINTS:
        assert ep.method.lower() in paths[f"{API}/{ep.path}"], ep.path
    delete = paths[f"{API}/model-versions/delete"]["delete"]
    assert set(delete["requestBody"]["content"]["application/json"]["schema"]["required"]) == {"name", "version"}


def test_fitscribe_client_registry_over_http(srv: Served) -> None:
    client = fitscribe.Client(srv.url)
    name = f"client-{next(_names)}"
    client.create_registered_model(name, tags={"a": 1})
    version = client.create_model_version(name, f"runs:/{RUN_ID}/model", run_id=RUN_ID)
    client.set_registered_model_alias(name, "champion", version.version)
    assert client.get_model_version_by_alias(name, "champion") == client.get_model_version(name, 1)
    assert client.get_registered_model(name).aliases == {"champion": 1}
    client.close()


# -- the official mlflow client -------------------------------------------------------------------
MLFLOW_SCRIPT = textwrap.dedent('''
    import json, sys
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    model = LogisticRegression().fit(X, y)
    out = {}
    # Requirements given (MLflow would infer them by loading the model in a new python) and cloudpickle,
    # not MLflow's default skops, whose load check imports every scikit-learn module and torch (4-5 s CPU);
    # test_server_mlflow_client logs one in the default format.
    kw = {"pip_requirements": ["scikit-learn"], "serialization_format": "cloudpickle"}
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="m", **kw)
    out["run_id"] = run.info.run_id
    out["registered_version"] = info.registered_model_version
    mlflow.sklearn.log_model(model, name="again", registered_model_name="m", **kw)  # the name exists: version 2
    client = MlflowClient()
    client.set_registered_model_alias("m", "champion", "1")
    out["by_version"] = mlflow.sklearn.load_model("models:/m/1").predict(X).tolist()
    out["by_alias"] = mlflow.pyfunc.load_model("models:/m@champion").predict(X).tolist()
    out["expected"] = model.predict(X).tolist()
    out["alias_version"] = client.get_model_version_by_alias("m", "champion").version
    out["versions"] = sorted(v.version for v in client.search_model_versions("name = 'm'"))
    out["models"] = [m.name for m in client.search_registered_models()]
    out["latest"] = [v.version for v in client.get_latest_versions("m")]
    client.update_registered_model("m", description="from mlflow")
    client.transition_model_version_stage("m", "2", "Staging")
    try:
        client.get_registered_model("ghost")
    except mlflow.exceptions.MlflowException as exc:
        out["missing"] = exc.error_code
    json.dump(out, open(sys.argv[1], "w"))
''')


def test_mlflow_client_registers_and_loads_models(tmp_path: Path) -> None:
    mlflow_python()  # skips (fails in CI) without MLflow's python
    store, artifacts = str(tmp_path / "store"), str(tmp_path / "artifacts")
    script, result = tmp_path / "client.py", tmp_path / "result.json"
    script.write_text(MLFLOW_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_"))}
    with ThreadedServer(create_app(store, artifacts)) as server:
        env.update(MLFLOW_TRACKING_URI=server.url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="60")
        job = run_mlflow([str(script), str(result)], cwd=tmp_path, env=env, timeout=600)
    assert job.returncode == 0, f"MLflow's client failed against the server:\n{job.stdout}\n{job.stderr}"
    seen = json.loads(result.read_text())
    assert seen["by_version"] == seen["by_alias"] == seen["expected"]
    assert (seen["registered_version"], seen["alias_version"], seen["versions"]) == ("1", "1", ["1", "2"])
    assert seen["models"] == ["m"] and seen["latest"] == ["2"] and seen["missing"] == "RESOURCE_DOES_NOT_EXIST"
    registry = fitscribe.Client(store)
    model = registry.get_registered_model("m")
    assert (model.description, model.aliases) == ("from mlflow", {"champion": 1})
    version = registry.get_model_version("m", 1)
    assert version.run_id == seen["run_id"] and version.source.startswith("models:/m-")
    assert registry.get_model_version("m", 2).current_stage == "Staging"
