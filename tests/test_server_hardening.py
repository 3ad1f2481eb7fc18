"""Hardening of the tracking server against a hostile or careless client, over real HTTP (uvicorn on
127.0.0.1, port 0, SQLite stores): server-side records out of the artifact proxy's reach, sealed
model folders, bad input answered 400 (never 5xx), login flood limits, safe downloads, no server
paths in answers, and the small items of issue 16.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from fitscribe.server import create_app
from fitscribe.server.auth import hash_secret, load_auth_file
from fitscribe.server.run import ThreadedServer
from fitscribe.server.security import SecurityConfig

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
WRITER_PW, READER_PW = "writer-pw-7hQ2", "reader-pw-3kZ9"


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP basic auth."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def raw_request(port: int, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request over http.client, sending the target and Host exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        given = dict(headers or {})
        connection.putrequest(method, target, skip_host="Host" in given, skip_accept_encoding=True)
        for name, value in given.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body is not None:
            connection.send(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@dataclass
class Server:
    """A server with an auth file (a writer and a reader) over SQLite and a local artifact folder."""

    url: str
    port: int
    root: Path
    http: httpx.Client

    @property
    def writer(self) -> dict[str, str]:
        return basic("writer", WRITER_PW)

    @property
    def reader(self) -> dict[str, str]:
        return basic("reader", READER_PW)

    def post(self, path: str, body: Any, who: dict[str, str] | None = None) -> httpx.Response:
        """POST JSON to an API endpoint as the writer (or ``who``)."""
        return self.http.post(f"{API}/{path}", json=body, headers=who or self.writer)

    def get(self, path: str, params: Any = None) -> httpx.Response:
        """GET an API endpoint as the writer."""
        return self.http.get(f"{API}/{path}", params=params, headers=self.writer)

    def experiment(self, name: str) -> str:
        """Create an experiment; return its id."""
        answer = self.post("experiments/create", {"name": name})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["experiment_id"])

    def run(self, experiment_id: str) -> str:
        """Create a run; return its id."""
        answer = self.post("runs/create", {"experiment_id": experiment_id})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["run"]["info"]["run_id"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("hardening")
    (root / "auth.yaml").write_text(
        "users:\n"
        f"  writer: {{password_hash: '{hash_secret(WRITER_PW, iterations=1000)}', access: read-write}}\n"
        f"  reader: {{password_hash: '{hash_secret(READER_PW, iterations=1000)}'}}\n"
    )
    security = SecurityConfig(credentials=load_auth_file(str(root / "auth.yaml")))
    app = create_app(str(root / "store"), str(root / "artifacts"), security=security)
    with ThreadedServer(app) as threaded, httpx.Client(base_url=threaded.url, timeout=30) as client:
        yield Server(threaded.url, threaded.port, root, client)


def body_of(response: httpx.Response | bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response if isinstance(response, bytes) else response.content)
    return data


# -- item 1: logged-model records are out of the proxy's reach ------------------------------------------
def _logged_model(server: Server, name: str = "model") -> dict[str, Any]:
    experiment_id = server.experiment(f"records-{name}")
    answer = server.post("logged-models", {"experiment_id": experiment_id, "name": name})
    assert answer.status_code == 200, answer.text
    info: dict[str, Any] = answer.json()["model"]["info"]
    return info


def test_a_writer_cannot_forge_a_logged_model_record_to_list_server_folders(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    info = _logged_model(server, "forged")
    model_id = info["model_id"]
    record_path = server.root / "artifacts" / ".fitscribe" / "logged-models" / f"{model_id}.json"
    original = record_path.read_bytes()
    forged = {**json.loads(original), "artifact_uri": "/etc"}
    for target in (f".fitscribe/logged-models/{model_id}.json", f"./.fitscribe/logged-models/{model_id}.json",
                   f"x/../.fitscribe/logged-models/{model_id}.json", f".FITSCRIBE/logged-models/{model_id}.json"):
        put = server.http.put(f"{PROXY}/{target}", content=json.dumps(forged).encode(), headers=server.writer)
        assert put.status_code in (400, 403), (target, put.text)
        assert record_path.read_bytes() == original
    refused = server.http.put(f"{PROXY}/.fitscribe/logged-models/{model_id}.json", content=b"{}", headers=server.writer)
    assert refused.status_code == 403 and ".fitscribe" in body_of(refused)["message"]
    for method in ("GET", "DELETE"):
        answer = server.http.request(method, f"{PROXY}/.fitscribe/logged-models/{model_id}.json", headers=server.writer)
        assert answer.status_code == 403, (method, answer.text)
    listing = server.http.get(PROXY, params={"path": ".fitscribe/logged-models"}, headers=server.writer)
    assert listing.status_code == 403
    assert record_path.read_bytes() == original
    root_listing = server.http.get(PROXY, headers=server.writer)
    assert root_listing.status_code == 200 and ".fitscribe" not in root_listing.text
    # a record changed by other means (a replica's disk, a restore) is checked before use
    record_path.write_text(json.dumps(forged))
    caplog.set_level(logging.WARNING, logger="fitscribe.server")
    listed = server.get(f"logged-models/{model_id}/artifacts/directories")
    assert listed.status_code in (400, 403) and "passwd" not in listed.text and "/etc" not in listed.text, listed.text
    assert model_id in caplog.text and "/etc" in caplog.text  # the operator sees what was refused
    record_path.write_bytes(original)
    assert server.get(f"logged-models/{model_id}/artifacts/directories").status_code == 200


def test_no_experiment_or_run_root_can_point_into_the_servers_records(server: Server) -> None:
    answer = server.post("experiments/create", {"name": "sneaky", "artifact_location": "mlflow-artifacts:/.fitscribe/x"})
    assert answer.status_code == 403 and ".fitscribe" in body_of(answer)["message"]
    run_id = server.run(server.experiment("listing"))
    assert server.get("artifacts/list", {"run_id": run_id, "path": ".fitscribe"}).status_code == 403
