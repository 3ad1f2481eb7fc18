"""The tracking server over real HTTP: uvicorn on 127.0.0.1 (port 0) in a thread, a SQLite store.

Every endpoint's happy path and its error statuses and codes (MLflow's table: a missing resource is
404 RESOURCE_DOES_NOT_EXIST, an existing one 400 RESOURCE_ALREADY_EXISTS, a bad value 400
INVALID_PARAMETER_VALUE, never a 5xx for what the caller sent), NaN/inf round trips, paging, the
artifact proxy, the OpenAPI document and ``fitscribe server`` itself.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import fitscribe
from fitscribe import errors
from fitscribe.server import create_app
from fitscribe.server.errors import ERROR_TABLE, error_body
from fitscribe.server.routes import all_endpoints
from fitscribe.server.run import ThreadedServer

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Served:
    url: str
    store: str
    artifacts: str
    http: httpx.Client

    def post(self, endpoint: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"{API}/{endpoint}", json=body if body is not None else {})

    def get(self, endpoint: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{API}/{endpoint}", params=params)

    def ok(self, method: str, endpoint: str, body: Any = None, **params: Any) -> dict[str, Any]:
        response = self.post(endpoint, body) if method == "POST" else self.get(endpoint, **params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def _serve(root: Path, **options: Any) -> Iterator[Served]:
    app = create_app(str(root / "store"), str(root / "artifacts"), **options)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield Served(server.url, str(root / "store"), str(root / "artifacts"), http)


@pytest.fixture(scope="session")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the whole session, with the artifact proxy."""
    yield from _serve(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="session")
def srv_no_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server started without artifact serving."""
    yield from _serve(tmp_path_factory.mktemp("server-no-proxy"), serve_artifacts=False)


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


def _experiment(s: Served, **extra: Any) -> str:
    return str(s.ok("POST", "experiments/create", {"name": f"exp-{uuid.uuid4().hex[:8]}", **extra})["experiment_id"])


def _run(s: Served, exp_id: str | None = None, **extra: Any) -> str:
    body = {"experiment_id": exp_id or _experiment(s), "start_time": 1000, **extra}
    return str(s.ok("POST", "runs/create", body)["run"]["info"]["run_id"])


# -- plain routes -------------------------------------------------------------------------------
def test_health_version_server_info(srv: Served) -> None:
    assert srv.http.get("/health").text == "OK"
    assert srv.http.get("/version").text == fitscribe.__version__
    info = srv.http.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False


def test_openapi_describes_every_endpoint(srv: Served) -> None:
    doc = srv.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for ep in all_endpoints():
        operation = doc["paths"][f"{API}/{ep.path}"][ep.method.lower()]
        required = {f.name for f in ep.fields if f.required and "{" + f.name not in ep.path}
        if ep.method == "GET":
            assert {p["name"] for p in operation.get("parameters", []) if p["required"]} >= required
        elif required:
            assert set(operation["requestBody"]["content"]["application/json"]["schema"]["required"]) == required
    assert {"get", "put", "delete"} <= set(doc["paths"][f"{PROXY}/{{path}}"])
    assert "/health" in doc["paths"]


def test_ajax_alias(srv: Served) -> None:
    exp_id = _experiment(srv)
    answer = srv.http.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id})
    assert answer.json()["experiment"]["experiment_id"] == exp_id


def test_routing_and_body_errors(srv: Served) -> None:
    _error(srv.http.get("/api/2.0/mlflow/nope"), 404, "ENDPOINT_NOT_FOUND")
    _error(srv.http.get(f"{API}/runs/create"), 405, "ENDPOINT_NOT_FOUND")
    bad_json = srv.http.post(f"{API}/runs/create", content=b"{not json", headers={"Content-Type": "application/json"})
    assert "not valid JSON" in _error(bad_json, 400, "INVALID_PARAMETER_VALUE")
    not_object = srv.http.post(f"{API}/runs/create", content=b"[1]", headers={"Content-Type": "application/json"})
    _error(not_object, 400, "INVALID_PARAMETER_VALUE")
    form = srv.http.post(f"{API}/experiments/create", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert "Content-Type" in _error(form, 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("experiments/create", {"name": 5.5}), 400, "INVALID_PARAMETER_VALUE")


# -- experiments --------------------------------------------------------------------------------
def test_experiment_lifecycle(srv: Served) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    exp_id = srv.ok("POST", "experiments/create", {"name": name, "tags": [{"key": "a", "value": "b"}]})["experiment_id"]
    exp = srv.ok("GET", "experiments/get", experiment_id=exp_id)["experiment"]
    assert exp["name"] == name and exp["lifecycle_stage"] == "active" and exp["tags"] == [{"key": "a", "value": "b"}]
    assert exp["artifact_location"] == f"mlflow-artifacts:/{exp_id}"
    assert isinstance(exp["creation_time"], int) and isinstance(exp["last_update_time"], int)
    assert srv.ok("GET", "experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"] == exp_id
    srv.ok("POST", "experiments/update", {"experiment_id": exp_id, "new_name": name + "-x"})
    srv.ok("POST", "experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "k", "value": "v"})
    srv.ok("POST", "experiments/delete-experiment-tag", {"experiment_id": exp_id, "key": "a"})
    exp = srv.ok("GET", "experiments/get", experiment_id=exp_id)["experiment"]
    assert exp["name"] == name + "-x" and exp["tags"] == [{"key": "k", "value": "v"}]
    srv.ok("POST", "experiments/delete", {"experiment_id": exp_id})
    assert srv.ok("GET", "experiments/get", experiment_id=exp_id)["experiment"]["lifecycle_stage"] == "deleted"
    assert "deleted" in _error(srv.post("runs/create", {"experiment_id": exp_id}), 400, "INVALID_PARAMETER_VALUE")
    srv.ok("POST", "experiments/restore", {"experiment_id": exp_id})
    assert srv.ok("GET", "experiments/get", experiment_id=exp_id)["experiment"]["lifecycle_stage"] == "active"


def test_experiment_errors(srv: Served) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    srv.ok("POST", "experiments/create", {"name": name})
    _error(srv.post("experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    assert "'name'" in _error(srv.post("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.get("experiments/get-by-name", experiment_name="never-created"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.get("experiments/get", experiment_id="99999"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("experiments/create", {"name": "x" * 501}), 400, "INVALID_PARAMETER_VALUE")
    other = _experiment(srv)
    _error(srv.post("experiments/update", {"experiment_id": other, "new_name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    _error(srv.post("experiments/delete", {"experiment_id": "424242"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_experiment_search_post_get_and_paging(srv: Served) -> None:
    prefix = f"srch-{uuid.uuid4().hex[:6]}"
    ids = [srv.ok("POST", "experiments/create", {"name": f"{prefix}-{i}"})["experiment_id"] for i in range(5)]
    body = {"filter": f"name LIKE '{prefix}%'", "max_results": 2, "order_by": ["name ASC"]}
    seen, token, pages = [], None, 0
    while True:
        page = srv.ok("POST", "experiments/search", {**body, **({"page_token": token} if token else {})})
        seen += [e["experiment_id"] for e in page["experiments"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ids and pages == 3
    by_get = srv.ok("GET", "experiments/search", filter=f"name = '{prefix}-3'", view_type="ALL")
    assert [e["experiment_id"] for e in by_get["experiments"]] == [ids[3]]
    assert srv.ok("POST", "experiments/search", {"filter": "name = 'no-such-experiment'"}) == {}
    _error(srv.post("experiments/search", {"max_results": 50001}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("experiments/search", {"page_token": "garbage"}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("experiments/search", {"filter": "params.x = '1'"}), 400, "INVALID_PARAMETER_VALUE")


# -- runs -----------------------------------------------------------------------------------------
def test_run_create_get_update_delete_restore(srv: Served) -> None:
    exp_id = _experiment(srv)
    run = srv.ok("POST", "runs/create", {"experiment_id": exp_id, "user_id": "ann", "run_name": "first",
                                          "start_time": 1234, "tags": [{"key": "t", "value": "1"}]})["run"]
    info = run["info"]
    run_id = info["run_id"]
    assert info == {"run_id": run_id, "run_uuid": run_id, "run_name": "first", "experiment_id": exp_id,
                    "user_id": "ann", "status": "RUNNING", "start_time": 1234,
                    "artifact_uri": f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts", "lifecycle_stage": "active"}
    assert {"key": "mlflow.runName", "value": "first"} in run["data"]["tags"]
    assert srv.ok("GET", "runs/get", run_uuid=run_id)["run"]["info"] == info
    updated = srv.ok("POST", "runs/update", {"run_uuid": run_id, "status": "FINISHED", "end_time": 2000})["run_info"]
    assert updated["status"] == "FINISHED" and updated["end_time"] == 2000
    srv.ok("POST", "runs/update", {"run_id": run_id, "status": 4, "run_name": "renamed"})
    got = srv.ok("GET", "runs/get", run_id=run_id)["run"]
    assert got["info"]["status"] == "FAILED" and got["info"]["run_name"] == "renamed"
    assert {"key": "mlflow.runName", "value": "renamed"} in got["data"]["tags"]
    srv.ok("POST", "runs/delete", {"run_id": run_id})
    assert srv.ok("GET", "runs/get", run_id=run_id)["run"]["info"]["lifecycle_stage"] == "deleted"
    assert "deleted" in _error(srv.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}),
                               400, "INVALID_PARAMETER_VALUE")
    srv.ok("POST", "runs/restore", {"run_id": run_id})
    assert srv.ok("GET", "runs/get", run_id=run_id)["run"]["info"]["lifecycle_stage"] == "active"


def test_run_names(srv: Served) -> None:
    exp_id = _experiment(srv)
    generated = srv.ok("POST", "runs/create", {"experiment_id": exp_id})["run"]
    name = generated["info"]["run_name"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", name)
    assert {"key": "mlflow.runName", "value": name} in generated["data"]["tags"]
    from_tag = srv.ok("POST", "runs/create", {"experiment_id": exp_id, "tags": [{"key": "mlflow.runName", "value": "tagged"}]})
    assert from_tag["run"]["info"]["run_name"] == "tagged"
    clash = {"experiment_id": exp_id, "run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]}
    assert "different values" in _error(srv.post("runs/create", clash), 400, "INVALID_PARAMETER_VALUE")
    run_id = generated["info"]["run_id"]
    srv.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "via-tag"})
    assert srv.ok("GET", "runs/get", run_id=run_id)["run"]["info"]["run_name"] == "via-tag"


def test_missing_run_is_404_everywhere(srv: Served) -> None:
    missing = uuid.uuid4().hex
    _error(srv.get("runs/get", run_id=missing), 404, "RESOURCE_DOES_NOT_EXIST")
    for path, body in [("runs/update", {"status": "FINISHED"}), ("runs/delete", {}), ("runs/restore", {}),
                       ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1}),
                       ("runs/log-parameter", {"key": "p", "value": "1"}), ("runs/set-tag", {"key": "t", "value": "1"}),
                       ("runs/delete-tag", {"key": "t"}), ("runs/log-batch", {"params": [{"key": "p", "value": "1"}]}),
                       ("runs/log-inputs", {"datasets": []})]:
        _error(srv.post(path, {"run_id": missing, **body}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.get("artifacts/list", run_id=missing), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.get("metrics/get-history", run_id=missing, metric_key="m"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("runs/create", {"experiment_id": "987654"}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("runs/create", {}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.get("runs/get"), 400, "INVALID_PARAMETER_VALUE")


def test_metrics_nan_inf_round_trip(srv: Served) -> None:
    run_id = _run(srv)
    values = [0.5, "NaN", "Infinity", "-Infinity", 1e308, -0.0, 3]
    for step, value in enumerate(values):
        srv.ok("POST", "runs/log-metric", {"run_id": run_id, "key": "m", "value": value, "timestamp": 10 + step, "step": step})
    history = srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key="m")["metrics"]
    assert [h["value"] for h in history] == [0.5, "NaN", "Infinity", "-Infinity", 1e308, -0.0, 3.0]
    assert [(h["step"], h["timestamp"]) for h in history] == [(i, 10 + i) for i in range(len(values))]
    srv.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "n", "value": "NaN", "timestamp": 1}]})
    latest = {m["key"]: m for m in srv.ok("GET", "runs/get", run_id=run_id)["run"]["data"]["metrics"]}
    assert latest["m"] == {"key": "m", "value": 3.0, "timestamp": 16, "step": 6}
    assert latest["n"]["value"] == "NaN"
    client_view = fitscribe.Client(srv.store).get_metric_history(run_id, "m")
    assert math.isnan(client_view[1].value) and client_view[2].value == math.inf and client_view[3].value == -math.inf


def test_metric_errors(srv: Served) -> None:
    run_id = _run(srv)
    base = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1}
    assert "'timestamp'" in _error(srv.post("runs/log-metric", {**base, "timestamp": None}), 400, "INVALID_PARAMETER_VALUE")
    assert "'value'" in _error(srv.post("runs/log-metric", {**base, "value": "abc"}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-metric", {**base, "value": True}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-metric", {**base, "timestamp": -1}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-metric", {**base, "step": 1.5}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-metric", {**base, "key": "a$b"}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-metric", {**base, "key": "../x"}), 400, "INVALID_PARAMETER_VALUE")
    srv.ok("POST", "runs/log-metric", {**base, "timestamp": "7", "step": "-3"})  # int64 as strings
    assert srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key="m")["metrics"][0]["step"] == -3


def test_params_and_tags(srv: Served) -> None:
    run_id = _run(srv)
    srv.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    srv.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})  # same value: fine
    srv.ok("POST", "runs/log-parameter", {"run_uuid": run_id, "key": "empty"})
    message = _error(srv.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"}),
                     400, "INVALID_PARAMETER_VALUE")
    assert "0.1" in message and "0.2" in message
    srv.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "team", "value": "a"})
    srv.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "team", "value": "b"})
    data = srv.ok("GET", "runs/get", run_id=run_id)["run"]["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.1", "empty": ""}
    assert {"key": "team", "value": "b"} in data["tags"]
    srv.ok("POST", "runs/delete-tag", {"run_id": run_id, "key": "team"})
    _error(srv.post("runs/delete-tag", {"run_id": run_id, "key": "team"}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("runs/set-tag", {"run_id": run_id, "value": "x"}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-parameter", {"run_id": run_id, "key": "big", "value": "x" * 6001}),
           400, "INVALID_PARAMETER_VALUE")


def test_log_batch_and_limits(srv: Served) -> None:
    run_id = _run(srv)
    batch = {"run_id": run_id,
             "metrics": [{"key": "acc", "value": 0.1 * i, "timestamp": 100 + i, "step": i} for i in range(10)],
             "params": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "a", "value": "1"}],
             "tags": [{"key": "t", "value": "1"}, {"key": "t", "value": "2"}]}
    srv.ok("POST", "runs/log-batch", batch)
    run = srv.ok("GET", "runs/get", run_id=run_id)["run"]
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"a": "1", "b": "2"}
    assert {"key": "t", "value": "2"} in run["data"]["tags"]
    assert len(srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key="acc")["metrics"]) == 10
    conflict = {"run_id": run_id, "params": [{"key": "c", "value": "1"}, {"key": "c", "value": "2"}]}
    assert "Duplicate" in _error(srv.post("runs/log-batch", conflict), 400, "INVALID_PARAMETER_VALUE")
    too_many = {"run_id": run_id, "metrics": [{"key": "x", "value": 1, "timestamp": i} for i in range(1001)]}
    _error(srv.post("runs/log-batch", too_many), 400, "INVALID_PARAMETER_VALUE")
    too_many_params = {"run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}
    _error(srv.post("runs/log-batch", too_many_params), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "x", "value": 1}]}), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.post("runs/log-batch", {"run_id": run_id, "metrics": {"key": "x"}}), 400, "INVALID_PARAMETER_VALUE")
    changed = {"run_id": run_id, "params": [{"key": "a", "value": "other"}]}
    _error(srv.post("runs/log-batch", changed), 400, "INVALID_PARAMETER_VALUE")


def test_model_linked_metrics_are_not_duplicated(srv: Served) -> None:
    """MLflow's log_model re-logs a run's metrics with a model_id; the run's history stays as it was."""
    run_id = _run(srv)
    point = {"key": "loss", "value": 0.5, "timestamp": 5, "step": 1}
    srv.ok("POST", "runs/log-metric", {"run_id": run_id, **point})
    srv.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": [{**point, "model_id": "m-1"}]})
    srv.ok("POST", "runs/log-metric", {"run_id": run_id, **point, "model_id": "m-1"})
    assert len(srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key="loss")["metrics"]) == 1


def test_log_inputs_round_trip(srv: Served) -> None:
    run_id = _run(srv)
    dataset = {"name": "train", "digest": "abc123", "source_type": "code", "source": '{"x": 1}',
               "schema": '{"cols": []}', "profile": '{"num_rows": 3}'}
    item = {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}
    srv.ok("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [item]})
    assert srv.ok("GET", "runs/get", run_id=run_id)["run"]["inputs"] == {"dataset_inputs": [item]}
    _error(srv.post("runs/log-inputs", {"run_id": run_id, "datasets": [{"tags": []}]}), 400, "INVALID_PARAMETER_VALUE")
    broken = {"run_id": run_id, "datasets": [{"dataset": {**dataset, "digest": None}}]}
    _error(srv.post("runs/log-inputs", broken), 400, "INVALID_PARAMETER_VALUE")


def test_run_search_filter_order_and_paging(srv: Served) -> None:
    exp_id = _experiment(srv)
    names = {}
    for i, (kind, acc) in enumerate([("a", 0.9), ("b", 0.8), ("a", 0.7), ("a", 0.2), ("a", float("nan"))]):
        run_id = _run(srv, exp_id, run_name=f"r{i}", start_time=1000 + i)
        srv.ok("POST", "runs/log-batch", {"run_id": run_id, "params": [{"key": "kind", "value": kind}],
                                          "metrics": [{"key": "acc", "value": "NaN" if math.isnan(acc) else acc, "timestamp": 1}]})
        names[run_id] = f"r{i}"
    body = {"experiment_ids": [exp_id], "filter": "metrics.acc > 0.5 and params.kind = 'a'", "order_by": ["metrics.acc DESC"]}
    found = srv.ok("POST", "runs/search", body)["runs"]
    assert [r["info"]["run_name"] for r in found] == ["r0", "r2"]
    pages, token = [], None
    while True:
        page = srv.ok("POST", "runs/search", {"experiment_ids": [exp_id], "max_results": 2, "order_by": ["attributes.start_time ASC"],
                                              **({"page_token": token} if token else {})})
        pages.append([r["info"]["run_name"] for r in page["runs"]])
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert srv.ok("POST", "runs/search", {"experiment_ids": []}) == {}
    assert srv.ok("POST", "runs/search", {"experiment_ids": [exp_id], "filter": "params.kind = 'zzz'"}) == {}
    for bad in [{"filter": "metrics.acc >"}, {"max_results": 0}, {"max_results": 50001}, {"page_token": "!!"},
                {"order_by": ["metrics.acc SIDEWAYS"]}, {"run_view_type": "SOMETIMES"}]:
        _error(srv.post("runs/search", {"experiment_ids": [exp_id], **bad}), 400, "INVALID_PARAMETER_VALUE")


def test_metric_history_paging(srv: Served) -> None:
    run_id = _run(srv)
    metrics = [{"key": "loss", "value": i / 10, "timestamp": 100 + i, "step": i} for i in range(25)]
    srv.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    collected, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 10, **({"page_token": token} if token else {})}
        page = srv.ok("GET", "metrics/get-history", **params)
        collected += page["metrics"]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == 3 and collected == metrics
    assert srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key="never") == {}
    _error(srv.get("metrics/get-history", run_id=run_id, metric_key="loss", max_results=0), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.get("metrics/get-history", run_id=run_id), 400, "INVALID_PARAMETER_VALUE")


def test_concurrent_log_batches(srv: Served) -> None:
    run_id = _run(srv)

    def log(worker: int) -> None:
        with httpx.Client(base_url=srv.url) as http:
            for batch in range(5):
                metrics = [{"key": f"w{worker}", "value": float(i), "timestamp": batch * 100 + i, "step": batch * 100 + i}
                           for i in range(100)]
                assert http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}).status_code == 200

    threads = [threading.Thread(target=log, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in range(4):
        assert len(srv.ok("GET", "metrics/get-history", run_id=run_id, metric_key=f"w{worker}")["metrics"]) == 500


# -- artifacts ------------------------------------------------------------------------------------
def test_artifact_proxy_upload_list_download_delete(srv: Served) -> None:
    exp_id = _experiment(srv)
    run_id = _run(srv, exp_id)
    root = f"{exp_id}/{run_id}/artifacts"
    payload = os.urandom(3 * 1024 * 1024 + 17)  # several chunks each way
    for path, content in [("notes.txt", b"hello"), ("sub/dir/model.bin", payload), ("sub/a b.json", b"{}")]:
        answer = srv.http.put(f"{PROXY}/{root}/{path}", content=content)
        assert answer.status_code == 200 and answer.json() == {}
    on_disk = Path(srv.artifacts, exp_id, run_id, "artifacts", "sub", "dir", "model.bin")
    assert on_disk.read_bytes() == payload
    listing = srv.http.get(PROXY, params={"path": root}).json()["files"]
    assert sorted(listing, key=lambda f: f["path"]) == [
        {"path": "notes.txt", "is_dir": False, "file_size": 5}, {"path": "sub", "is_dir": True}]
    assert {f["path"] for f in srv.http.get(PROXY, params={"path": f"{root}/sub"}).json()["files"]} == {"dir", "a b.json"}
    assert srv.http.get(PROXY, params={"path": f"{root}/notes.txt"}).json() == {}  # a file lists as nothing
    assert srv.http.get(PROXY, params={"path": f"{root}/missing"}).json() == {}
    download = srv.http.get(f"{PROXY}/{root}/sub/dir/model.bin")
    assert download.status_code == 200 and download.content == payload
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == 'attachment; filename="model.bin"'
    text = srv.http.get(f"{PROXY}/{root}/notes.txt")
    assert text.text == "hello" and text.headers["content-type"].startswith("text/plain")
    srv.http.put(f"{PROXY}/{root}/notes.txt", content=b"replaced")
    assert srv.http.get(f"{PROXY}/{root}/notes.txt").content == b"replaced"
    tracking = srv.ok("GET", "artifacts/list", run_id=run_id, path="sub")
    assert tracking["root_uri"] == f"mlflow-artifacts:/{root}"
    assert sorted(f["path"] for f in tracking["files"]) == ["sub/a b.json", "sub/dir"]
    assert srv.http.delete(f"{PROXY}/{root}/sub").json() == {}
    assert not on_disk.exists()
    _error(srv.http.get(f"{PROXY}/{root}/sub/dir/model.bin"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert srv.http.delete(f"{PROXY}/{root}/sub").status_code == 200  # deleting twice is fine


def test_artifact_proxy_refuses_escaping_paths(srv: Served, tmp_path: Path) -> None:
    secret = Path(srv.artifacts).parent / "secret.txt"
    secret.write_text("secret")
    for raw in ["%2E%2E/secret.txt", "1/%2E%2E/%2E%2E/secret.txt", "a%5Cb.txt", "a%23b.txt", "%2Fetc%2Fpasswd"]:
        for method in ("GET", "PUT", "DELETE"):
            answer = srv.http.request(method, f"{PROXY}/{raw}", content=b"x" if method == "PUT" else None)
            _error(answer, 400, "INVALID_PARAMETER_VALUE")
    _error(srv.http.get(PROXY, params={"path": "../"}), 400, "INVALID_PARAMETER_VALUE")
    run_id = _run(srv)
    _error(srv.get("artifacts/list", run_id=run_id, path="../.."), 400, "INVALID_PARAMETER_VALUE")
    assert secret.read_text() == "secret"
    exp_dir = _experiment(srv)
    srv.http.put(f"{PROXY}/{exp_dir}/folder/file.txt", content=b"x")
    _error(srv.http.get(f"{PROXY}/{exp_dir}/folder"), 400, "INVALID_PARAMETER_VALUE")  # a folder is not a file
    _error(srv.http.put(f"{PROXY}/{exp_dir}/folder", content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.http.put(f"{PROXY}/{exp_dir}/folder/file.txt/under", content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.http.delete(f"{PROXY}/"), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.http.post(f"/api/2.0/mlflow-artifacts/mpu/create/{exp_dir}/big.bin", json={}), 501, "NOT_IMPLEMENTED")


def test_without_artifact_serving(srv_no_proxy: Served) -> None:
    exp_id = _experiment(srv_no_proxy)
    location = srv_no_proxy.ok("GET", "experiments/get", experiment_id=exp_id)["experiment"]["artifact_location"]
    assert location == os.path.join(srv_no_proxy.artifacts, exp_id)
    _error(srv_no_proxy.http.put(f"{PROXY}/{exp_id}/x.txt", content=b"x"), 404, "ENDPOINT_NOT_FOUND")
    run_id = _run(srv_no_proxy, exp_id)
    fitscribe.Client(srv_no_proxy.store).log_text(run_id, "direct", "notes/a.txt")  # clients write directly
    files = srv_no_proxy.ok("GET", "artifacts/list", run_id=run_id, path="notes")["files"]
    assert files == [{"path": "notes/a.txt", "is_dir": False, "file_size": 6}]
    assert "/api/2.0/mlflow-artifacts/artifacts/{path}" not in srv_no_proxy.http.get("/openapi.json").json()["paths"]


# -- logged models --------------------------------------------------------------------------------
def test_logged_models(srv: Served) -> None:
    exp_id = _experiment(srv)
    run_id = _run(srv, exp_id)
    created = srv.ok("POST", "logged-models", {"experiment_id": exp_id, "name": "model", "source_run_id": run_id,
                                               "params": [{"key": "alpha", "value": "1"}],
                                               "tags": [{"key": "mlflow.user", "value": "ann"}]})["model"]
    info = created["info"]
    model_id = info["model_id"]
    assert re.fullmatch(r"m-[0-9a-f]{32}", model_id) and info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts"
    assert created["data"]["params"] == [{"key": "alpha", "value": "1"}]
    srv.ok("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    patched = srv.http.patch(f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    assert patched.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert srv.http.patch(f"{API}/logged-models/{model_id}/tags", json={"tags": [{"key": "k", "value": "v"}]}).json() == {}
    srv.ok("POST", f"logged-models/{model_id}/params", {"model_id": model_id, "params": [{"key": "beta", "value": "2"}]})
    got = srv.ok("GET", f"logged-models/{model_id}")["model"]
    assert {"key": "k", "value": "v"} in got["info"]["tags"] and len(got["data"]["params"]) == 2
    assert srv.http.delete(f"{API}/logged-models/{model_id}/tags/k").json() == {}
    _error(srv.http.delete(f"{API}/logged-models/{model_id}/tags/k"), 404, "RESOURCE_DOES_NOT_EXIST")
    search = {"experiment_ids": [exp_id], "filter": "name = 'model'"}
    assert [m["info"]["model_id"] for m in srv.ok("POST", "logged-models/search", search)["models"]] == [model_id]
    assert srv.ok("POST", "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'sub'"}) == {}
    ready = {"experiment_ids": [exp_id], "filter": f"source_run_id = '{run_id}' AND status = 'READY'"}
    assert len(srv.ok("POST", "logged-models/search", ready)["models"]) == 1
    srv.http.put(f"{PROXY}/{exp_id}/models/{model_id}/artifacts/MLmodel", content=b"flavors: {}")
    listed = srv.ok("GET", f"logged-models/{model_id}/artifacts/directories")["files"]
    assert listed == [{"path": "MLmodel", "is_dir": False, "file_size": 11}]
    assert srv.http.delete(f"{API}/logged-models/{model_id}").json() == {}
    _error(srv.get(f"logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert srv.ok("GET", f"logged-models/{model_id}", allow_deleted="true")["model"]["info"]["model_id"] == model_id
    _error(srv.get("logged-models/m-nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.get("logged-models/bad$id"), 400, "INVALID_PARAMETER_VALUE")
    _error(srv.get("logged-models/..%2Fsecret"), 404, "ENDPOINT_NOT_FOUND")  # no model id has a slash
    _error(srv.post("logged-models", {"experiment_id": "999999"}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("runs/outputs", {"run_id": run_id, "models": [{"model_id": "m-nope", "step": 0}]}), 404,
           "RESOURCE_DOES_NOT_EXIST")
    _error(srv.post("logged-models/search", {"experiment_ids": [exp_id], "filter": "metrics.x > 1"}), 400,
           "INVALID_PARAMETER_VALUE")


# -- the error table ------------------------------------------------------------------------------
def test_error_table_never_answers_user_errors_with_5xx() -> None:
    user_errors = [errors.InvalidValueError("x"), errors.ConfigError("x"), errors.RunNotFound("x"),
                   errors.ExperimentNotFound("x"), errors.AlreadyExistsError("x"), errors.InvalidStateError("x"),
                   errors.NotFoundError("x"), errors.ModelNotFound("x"), errors.RegistryNotSupportedError("x")]
    for exc in user_errors:
        body, status = error_body(exc)
        assert 400 <= status < 500 and body["message"] == "x" and body["fitscribe_error"] == type(exc).__name__
    assert error_body(errors.RunNotFound("x"))[0]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert error_body(errors.AlreadyExistsError("x"))[1] == 400
    assert error_body(errors.BackendError("db down"))[1] == 503  # worth retrying
    body, status = error_body(KeyError("internal detail"))
    assert status == 500 and body["error_code"] == "INTERNAL_ERROR" and "internal detail" not in body["message"]
    assert all(issubclass(cls, BaseException) for cls in ERROR_TABLE)


# -- the command ----------------------------------------------------------------------------------
def _start_cli_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, float]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", str(tmp_path / "store"),
               "--artifacts-destination", str(tmp_path / "dest"), "--port", "0", *extra]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    return proc, match.group(0), started


def _wait_ok(url: str, deadline: float) -> httpx.Response:
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_server(tmp_path: Path, workers: str) -> None:
    proc, url, started = _start_cli_server(tmp_path, "--workers", workers)
    try:
        assert _wait_ok(f"{url}/health", time.monotonic() + 30).text == "OK"
        health_s = time.perf_counter() - started
        for i in range(4):  # each worker answers
            created = httpx.post(f"{url}{API}/experiments/create", json={"name": f"cli-{i}"}, timeout=30)
            assert created.status_code == 200, created.text
        listed = httpx.post(f"{url}{API}/experiments/search", json={}, timeout=30).json()["experiments"]
        assert {e["name"] for e in listed} >= {f"cli-{i}" for i in range(4)}
        assert listed[0]["artifact_location"].startswith("mlflow-artifacts:/")
        assert httpx.put(f"{url}{PROXY}/1/x.txt", content=b"x").status_code == 200
        assert (tmp_path / "dest" / "1" / "x.txt").read_bytes() == b"x"
        with httpx.Client(base_url=url) as http:  # keep-alive: 40 answers take ~40 ms, not 40 delayed ACKs
            began = time.perf_counter()
            for _ in range(40):
                assert http.get("/health").status_code == 200
            assert time.perf_counter() - began < 1.0, "small answers are delayed: TCP_NODELAY is off"
        print(f"workers={workers}: /health answered {health_s:.2f} s after launch")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode in (0, -15)


def test_cli_server_refuses_zero_workers() -> None:
    result = subprocess.run([sys.executable, "-m", "fitscribe", "server", "--workers", "0"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "--workers must be at least 1" in result.stderr


SERVER_MODULES = ["fitscribe.server", "fitscribe.server.app", "fitscribe.server.errors", "fitscribe.server.params",
                  "fitscribe.server.serialization", "fitscribe.server.state", "fitscribe.server.logged_models",
                  "fitscribe.server.openapi", "fitscribe.server.run", "fitscribe.server.routes",
                  "fitscribe.server.routes.experiments", "fitscribe.server.routes.runs", "fitscribe.server.routes.metrics",
                  "fitscribe.server.routes.artifacts", "fitscribe.server.routes.logged_models"]


@pytest.mark.parametrize("module_name", SERVER_MODULES)
def test_server_modules_are_documented(module_name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    assert inspect.getdoc(module)
    undocumented = [name for name in module.__all__ if not inspect.getdoc(getattr(module, name))
                    and (inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name)))]
    assert undocumented == []


def test_importing_fitscribe_and_cli_loads_no_server_package() -> None:
    probe = "import sys, fitscribe, fitscribe.cli; print(sorted(m for m in ('starlette', 'uvicorn', 'httpx', 'anyio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []
