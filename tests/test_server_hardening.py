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


def test_a_writer_cannot_forge_a_logged_model_record_to_list_server_folders(server: Server) -> None:
    """The records are in the tracking database (revision 0007); the proxy still refuses every path into
    ``.fitscribe`` folders, where older servers kept them (tests/test_logged_models_import.py checks that
    a record planted there is refused when imported)."""
    info = _logged_model(server, "forged")
    model_id = info["model_id"]
    records = server.root / "artifacts" / ".fitscribe"
    forged = {**info, "artifact_uri": "/etc", "tags": {}, "params": {}}
    for target in (f".fitscribe/logged-models/{model_id}.json", f"./.fitscribe/logged-models/{model_id}.json",
                   f"x/../.fitscribe/logged-models/{model_id}.json", f".FITSCRIBE/logged-models/{model_id}.json"):
        put = server.http.put(f"{PROXY}/{target}", content=json.dumps(forged).encode(), headers=server.writer)
        assert put.status_code in (400, 403), (target, put.text)
        assert not records.exists()
    refused = server.http.put(f"{PROXY}/.fitscribe/logged-models/{model_id}.json", content=b"{}", headers=server.writer)
    assert refused.status_code == 403 and ".fitscribe" in body_of(refused)["message"]
    for method in ("GET", "DELETE"):
        answer = server.http.request(method, f"{PROXY}/.fitscribe/logged-models/{model_id}.json", headers=server.writer)
        assert answer.status_code == 403, (method, answer.text)
    listing = server.http.get(PROXY, params={"path": ".fitscribe/logged-models"}, headers=server.writer)
    assert listing.status_code == 403
    root_listing = server.http.get(PROXY, headers=server.writer)
    assert root_listing.status_code == 200 and ".fitscribe" not in root_listing.text
    listed = server.get(f"logged-models/{model_id}/artifacts/directories")
    assert listed.status_code == 200 and listed.json()["root_uri"] == info["artifact_uri"] and not records.exists()


def test_no_experiment_or_run_root_can_point_into_the_servers_records(server: Server) -> None:
    answer = server.post("experiments/create", {"name": "sneaky", "artifact_location": "mlflow-artifacts:/.fitscribe/x"})
    assert answer.status_code == 403 and ".fitscribe" in body_of(answer)["message"]
    run_id = server.run(server.experiment("listing"))
    assert server.get("artifacts/list", {"run_id": run_id, "path": ".fitscribe"}).status_code == 403


# -- items 3, 4, 5: bad input is a 400, never a 5xx -------------------------------------------------------
def _json(server: Server, method: str, path: str, raw: bytes) -> httpx.Response:
    return server.http.request(method, path, content=raw, headers={**server.writer, "Content-Type": "application/json"})


def _bad_request(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 400, answer.text
    message = body_of(answer)["message"]
    assert all(word in message for word in words), message


def test_a_logged_model_named_with_a_lone_surrogate_is_refused_and_search_keeps_working(server: Server) -> None:
    experiment_id = server.experiment("surrogate-models")
    before = sorted((server.root / "artifacts").rglob("*.json"))
    answer = _json(server, "POST", f"{API}/logged-models",
                   b'{"experiment_id": "%s", "name": "bad\\ud800name"}' % experiment_id.encode())
    _bad_request(answer, "surrogate")
    assert sorted((server.root / "artifacts").rglob("*.json")) == before  # nothing saved
    good = server.post("logged-models", {"experiment_id": experiment_id, "name": "emoji-\U0001f600"})
    assert good.status_code == 200, good.text
    found = server.post("logged-models/search", {"experiment_ids": [experiment_id]})
    assert found.status_code == 200 and [m["info"]["name"] for m in found.json()["models"]] == ["emoji-\U0001f600"]


def test_filters_with_too_many_terms_or_too_deep_nesting_are_a_400_naming_the_limit(server: Server) -> None:
    experiment_id = server.experiment("filters")
    run_id = server.run(experiment_id)
    assert server.post("runs/log-parameter", {"run_id": run_id, "key": "p0", "value": "1"}).status_code == 200
    many = " AND ".join(f"params.p{i % 3} = '1'" for i in range(1000))
    _bad_request(server.post("runs/search", {"experiment_ids": [experiment_id], "filter": many}), "200")
    allowed = " AND ".join(["params.p0 = '1'"] * 200)
    found = server.post("runs/search", {"experiment_ids": [experiment_id], "filter": allowed})
    assert found.status_code == 200 and [r["info"]["run_id"] for r in found.json()["runs"]] == [run_id]
    deep = "(" * 330 + "name = 'x'" + ")" * 330
    deep_run = "(" * 330 + "params.p0 = '1'" + ")" * 330
    answers = [
        server.post("runs/search", {"experiment_ids": [experiment_id], "filter": deep_run}),
        server.post("experiments/search", {"filter": deep}),
        server.get("registered-models/search", {"filter": deep}),
        server.get("model-versions/search", {"filter": deep}),
        server.post("logged-models/search", {"experiment_ids": [experiment_id], "filter": deep}),
        server.post("logged-models/search", {"experiment_ids": [experiment_id], "filter": " AND ".join(["name = 'x'"] * 1000)}),
        server.http.get("/ui/api/runs", params={"experiment_ids": experiment_id, "filter": deep_run}, headers=server.writer),
    ]
    for answer in answers:
        _bad_request(answer, "filter")
    nested = "(" * 20 + "params.p0 = '1'" + ")" * 20
    assert server.post("runs/search", {"experiment_ids": [experiment_id], "filter": nested}).status_code == 200


def test_malformed_values_are_a_400_not_a_500(server: Server) -> None:
    experiment_id = server.experiment("malformed")
    run_id = server.run(experiment_id).encode()
    big_id = "1" + "0" * 39
    deep_body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path, raw in [
        ("experiments/create", deep_body),
        ("experiments/create", b'{"name": "a\\ud800"}'),
        ("runs/create", b'{"experiment_id": "%s", "run_name": "\\udfff"}' % experiment_id.encode()),
        ("runs/log-parameter", b'{"run_id": "%s", "key": "k", "value": "\\ud800"}' % run_id),
        ("runs/log-inputs", b'{"run_id": "%s", "datasets": [{"dataset": {"name": "\\ud800", "digest": "d", '
                            b'"source_type": "local", "source": "s"}}]}' % run_id),
        ("runs/log-metric", b'{"run_id": "%s", "key": "m", "value": 1%s, "timestamp": 1}' % (run_id, b"0" * 400)),
        ("runs/log-batch", b'{"run_id": "%s", "metrics": [{"key": "m", "value": 1%s, "timestamp": 1}]}' % (run_id, b"0" * 400)),
        ("experiments/search", '{"view_type": "\u00b2"}'.encode()),
        ("runs/search", '{"experiment_ids": ["1"], "run_view_type": "\u00b2"}'.encode()),
        ("runs/update", '{"run_id": "%s", "status": "\u00b2"}'.encode() % run_id),
    ]:
        answer = _json(server, "POST", f"{API}/{path}", raw)
        assert answer.status_code == 400, (path, raw[:80], answer.text)
    for path, raw in [("runs/create", b'{"experiment_id": "%s"}' % big_id.encode()),
                      ("runs/search", b'{"experiment_ids": ["%s"]}' % big_id.encode())]:
        answer = _json(server, "POST", f"{API}/{path}", raw)  # an id no experiment can have: not found
        assert answer.status_code in (400, 404) and "error_code" in answer.json(), (path, answer.text)
    answer = server.get("experiments/get", {"experiment_id": big_id})
    assert answer.status_code in (400, 404) and "error_code" in answer.json(), answer.text
    for path, params in [("model-versions/get", {"name": "m", "version": "\u00b2"}),
                         ("registered-models/search", {"max_results": "\u00b2"})]:
        answer = server.get(path, params)
        assert answer.status_code == 400, (path, answer.text)
    for path, params in [("/ui/api/runs", {"experiment_ids": big_id}),
                         ("/ui/api/runs", {"experiment_ids": experiment_id, "max_results": "\u00b2"})]:
        answer = server.http.get(path, params=params, headers=server.writer)
        assert answer.status_code in (400, 404), (path, answer.text)
    patch = server.http.patch(f"{API}/logged-models/m-0", json={"status": "\u00b2"}, headers=server.writer)
    assert patch.status_code in (400, 404), patch.text
    data = server.get("runs/get", {"run_id": run_id.decode()}).json()["run"]["data"]
    assert "params" not in data and "metrics" not in data  # nothing stored


# -- item 9: the smaller items ------------------------------------------------------------------------------
def test_a_host_with_userinfo_is_refused(server: Server) -> None:
    for host in (f"localhost:{server.port}@evil.com", "localhost@evil.com", f"localhost:{server.port}/x",
                 "localhost:80:80", "local host"):
        status, _, body = raw_request(server.port, "GET", f"{API}/experiments/get?experiment_id=0",
                                      {"Host": host, **server.writer})
        assert status == 403 and "Host" in body_of(body)["message"], host
    status, _, _ = raw_request(server.port, "GET", f"{API}/experiments/get?experiment_id=0",
                               {"Host": f"localhost:{server.port}", **server.writer})
    assert status == 200


def test_small_protocol_items(server: Server) -> None:
    experiment_id = server.experiment("small-items")
    missing = server.get("metrics/get-history", {"run_id": "0" * 32, "metric_key": "m"})
    assert missing.status_code == 404 and body_of(missing)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    run_id = server.run(experiment_id)
    assert server.get("metrics/get-history", {"run_id": run_id, "metric_key": "m"}).json() == {}
    for path, body in [("runs/log-parameter", {"run_id": run_id, "key": "a", "value": None}),
                       ("runs/log-batch", {"run_id": run_id, "params": [{"key": "b", "value": None}]})]:
        _bad_request(server.post(path, body), "null")
    assert "params" not in server.get("runs/get", {"run_id": run_id}).json()["run"]["data"]
    assert server.post("runs/log-parameter", {"run_id": run_id, "key": "c", "value": ""}).status_code == 200
    for path, body in [("experiments/create", {"name": "nul\x00name"}),
                       ("runs/create", {"experiment_id": experiment_id, "run_name": "nul\x00name"}),
                       ("runs/update", {"run_id": run_id, "run_name": "nul\x00name"}),
                       ("experiments/update", {"experiment_id": experiment_id, "new_name": "nul\x00name"})]:
        _bad_request(server.post(path, body), "NUL")
    assert server.post("runs/delete", {"run_id": run_id}).status_code == 200
    revived = server.post("runs/update", {"run_id": run_id, "status": "RUNNING"})
    _bad_request(revived, "deleted")
    run = server.get("runs/get", {"run_id": run_id}).json()["run"]["info"]
    assert run["lifecycle_stage"] == "deleted"
    assert server.post("runs/update", {"run_id": run_id, "status": "KILLED"}).status_code == 200  # ending is fine


def test_the_python_api_refuses_nul_in_names_too(tmp_path: Path) -> None:
    from fitscribe import Client, errors

    client = Client(tracking_uri=str(tmp_path / "store"))
    with pytest.raises(errors.InvalidValueError, match="NUL"):
        client.create_experiment("a\x00b")
    experiment_id = client.create_experiment("ok")
    with pytest.raises(errors.InvalidValueError, match="NUL"):
        client.create_run(experiment_id, run_name="a\x00b")
    assert [r.info.run_name for r in client.search_runs([experiment_id])] == []


# -- items 7, 8 and probe T1: safe downloads, no server paths in answers, the root compared by folder --------
def _artifact_folder(server: Server, experiment: str) -> tuple[str, Path]:
    """A run whose artifact folder holds ``ok.txt``, uploaded through the proxy; its local folder."""
    run_id = server.run(server.experiment(experiment))
    info = server.get("runs/get", {"run_id": run_id}).json()["run"]["info"]
    relative = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put = server.http.put(f"{PROXY}/{relative}/ok.txt", content=b"fine", headers=server.writer)
    assert put.status_code == 200, put.text
    return run_id, server.root / "artifacts" / relative


def test_proxy_downloads_of_html_and_svg_are_sandboxed(server: Server) -> None:
    for name, media in (("report.html", "text/html"), ("plot.svg", "image/svg+xml"), ("data.bin", "application/octet-stream")):
        body = b"<html><script>alert(document.domain)</script></html>"
        assert server.http.put(f"{PROXY}/csp/{name}", content=body, headers=server.writer).status_code == 200
        got = server.http.get(f"{PROXY}/csp/{name}", headers=server.reader)
        assert got.status_code == 200 and got.content == body
        assert got.headers["content-security-policy"] == "sandbox", name
        assert got.headers["x-content-type-options"] == "nosniff" and got.headers["content-type"].startswith(media)


def test_error_answers_never_show_server_paths(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fitscribe.server")
    run_id, folder = _artifact_folder(server, "paths")
    outside = server.root / "outside-secret.txt"
    outside.write_text("secret")
    (folder / "escape.txt").symlink_to(outside)
    (folder / "plots").symlink_to(server.root, target_is_directory=True)
    relative = folder.relative_to(server.root / "artifacts").as_posix()
    answers = [
        server.http.get(f"{PROXY}/{relative}/escape.txt", headers=server.writer),
        server.http.put(f"{PROXY}/{relative}/ok.txt/below.txt", content=b"x", headers=server.writer),
        server.http.put(f"{PROXY}/{relative}", content=b"x", headers=server.writer),
        server.get("artifacts/list", {"run_id": run_id, "path": "plots"}),
        server.http.get(f"/runs/{run_id}/artifacts/escape.txt", headers=server.writer),  # the UI
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        assert str(server.root) not in answer.text and "outside-secret" not in answer.text, answer.text
        assert "secret" not in answer.text
    assert str(server.root) in caplog.text  # the operator still sees them
    listed = server.get("artifacts/list", {"run_id": run_id}).json()
    assert [f["path"] for f in listed["files"]] == ["ok.txt"]  # the escaping link stays hidden


def test_a_symlink_into_a_sibling_folder_sharing_the_roots_name_prefix_is_refused(server: Server) -> None:
    _, folder = _artifact_folder(server, "sibling")
    private = server.root / "artifacts-private"  # "artifacts" is a string prefix of it, not a parent folder
    private.mkdir(exist_ok=True)
    (private / "key.txt").write_text("private key")
    (folder / "sneaky.txt").symlink_to(private / "key.txt")
    relative = folder.relative_to(server.root / "artifacts").as_posix()
    answer = server.http.get(f"{PROXY}/{relative}/sneaky.txt", headers=server.writer)
    assert answer.status_code == 400 and "private key" not in answer.text, answer.text
    assert server.http.get(f"{PROXY}/{relative}/ok.txt", headers=server.writer).content == b"fine"


# -- probe A3: an allowed CORS origin is matched whole, not as a prefix ---------------------------------------
def test_an_allowed_origin_does_not_allow_longer_names_it_prefixes(tmp_path: Path) -> None:
    security = SecurityConfig(cors_allowed_origins=("https://good.example", "http://localhost:*"))
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"), security=security)
    with ThreadedServer(app) as threaded, httpx.Client(base_url=threaded.url, timeout=30) as client:
        def create(origin: str) -> httpx.Response:
            return client.post(f"{API}/experiments/create", json={"name": origin}, headers={"Origin": origin})

        def preflight(origin: str) -> httpx.Response:
            return client.options(f"{API}/experiments/create",
                                  headers={"Origin": origin, "Access-Control-Request-Method": "POST"})

        allowed = create("https://good.example")
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://good.example"
        assert preflight("https://good.example").status_code == 204
        for origin in ("https://good.example.evil.com", "https://good.examplex", "https://good.example:8443",
                       "http://localhost:3000.evil.com", "https://good.example@evil.com"):
            refused = create(origin)
            assert refused.status_code == 403, origin
            assert "access-control-allow-origin" not in refused.headers
            answer = preflight(origin)
            assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers, origin
        assert create("http://localhost:3000").status_code == 200


# -- item 6: a flood of wrong passwords is limited per client address -------------------------------------------
def _client_from(url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (any 127.x.y.z reaches the loopback server)."""
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def _timed_login(url: str, address: str, user: str) -> tuple[int, float]:
    """Log in once with fresh (never cached) right credentials from ``address``: status and seconds."""
    import time

    with _client_from(url, address) as client:
        started = time.perf_counter()
        status = client.get(f"{API}/experiments/get?experiment_id=0", headers=basic(user, f"{user}-password")).status_code
        return status, time.perf_counter() - started


def test_failed_logins_are_limited_per_address_and_a_fresh_login_stays_fast(tmp_path: Path) -> None:
    import threading
    import time

    users = ("alice", "bob", "carol")  # PBKDF2 at 60,000 iterations: a check costs tens of ms, as in production
    (tmp_path / "auth.yaml").write_text("users:\n" + "".join(
        f"  {name}: {{password_hash: '{hash_secret(f'{name}-password', iterations=60_000)}', access: read-write}}\n"
        for name in users))
    security = SecurityConfig(credentials=load_auth_file(str(tmp_path / "auth.yaml")))
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"), security=security)
    target = f"{API}/experiments/get?experiment_id=0"
    with ThreadedServer(app) as threaded:
        with _client_from(threaded.url, "127.0.0.9") as one:  # one address: 5 failures, then 429 without hashing
            statuses: list[int] = []
            while 429 not in statuses and len(statuses) < 12:  # 5 in a row, then one every 2 s
                statuses.append(one.get(target, headers=basic("alice", f"guess-{len(statuses)}")).status_code)
            assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses
            refused = one.get(target, headers=basic("alice", "alice-password"))  # even the right password waits
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 2
            assert body_of(refused)["error_code"] == "RESOURCE_EXHAUSTED"
        idle = _timed_login(threaded.url, "127.0.0.10", "carol")
        stop, limited = threading.Event(), set()

        def attack(address: str) -> None:
            with _client_from(threaded.url, address) as client:
                while not stop.is_set():
                    if client.get(target, headers=basic("alice", f"wrong-{address}")).status_code == 429:
                        limited.add(address)

        attackers = [threading.Thread(target=attack, args=(f"127.0.1.{i}",)) for i in range(1, 21)]
        for thread in attackers:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(limited) < len(attackers) and time.monotonic() < deadline:
                stop.wait(0.05)
            assert len(limited) == len(attackers)  # every flooding address is held back
            flooded = _timed_login(threaded.url, "127.0.0.11", "bob")
        finally:
            stop.set()
            for thread in attackers:
                thread.join()
    assert idle[0] == flooded[0] == 200
    print(f"fresh login: {idle[1]:.3f} s idle, {flooded[1]:.3f} s while 20 addresses flood wrong passwords")
    assert flooded[1] < max(1.0, 5 * idle[1])  # unlimited, the flood queued it behind ~20 checks (2.9 s at 600,000)


# -- item 2 (server part): a sealed model folder cannot be changed through the proxy -----------------------------
def test_the_proxy_refuses_to_replace_or_delete_files_of_a_sealed_model(server: Server,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LinearRegression

    import fitscribe
    from fitscribe.flavors import sklearn as sk_flavor

    monkeypatch.setenv("FITSCRIBE_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "writer")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", WRITER_PW)
    fitscribe.set_experiment("sealed")
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with fitscribe.start_run() as run:
        info = sk_flavor.log_model(model, "model")  # uploaded through the proxy, MLmodel included
    root = server.get("runs/get", {"run_id": run.info.run_id}).json()["run"]["info"]["artifact_uri"]
    folder = f"{root.removeprefix('mlflow-artifacts:/')}/model"
    names = [f["path"] for f in server.http.get(PROXY, params={"path": folder}, headers=server.writer).json()["files"]]
    assert "MLmodel" in names and len(names) > 2
    for name in names:
        original = server.http.get(f"{PROXY}/{folder}/{name}", headers=server.writer).content
        swapped = server.http.put(f"{PROXY}/{folder}/{name}", content=b"import os; os.system('evil')", headers=server.writer)
        assert swapped.status_code == 409 and body_of(swapped)["error_code"] == "RESOURCE_CONFLICT", (name, swapped.text)
        again = server.http.put(f"{PROXY}/{folder}/{name}", content=original, headers=server.writer)
        assert again.status_code == 200  # a retried upload of the same bytes is fine
        assert server.http.delete(f"{PROXY}/{folder}/{name}", headers=server.writer).status_code == 409
    for path in (folder, root.removeprefix("mlflow-artifacts:/")):  # the model folder, the run's folder above it
        assert server.http.delete(f"{PROXY}/{path}", headers=server.writer).status_code == 409
    added = server.http.put(f"{PROXY}/{folder}/extra.txt", content=b"new", headers=server.writer)
    assert added.status_code == 409  # nor can files be added
    assert sk_flavor.load_model(info.model_uri).predict([[3.0]])[0] == pytest.approx(6.0)
    other = server.http.put(f"{PROXY}/unsealed/model.pkl", content=b"1", headers=server.writer)
    assert other.status_code == 200
    assert server.http.put(f"{PROXY}/unsealed/model.pkl", content=b"2", headers=server.writer).status_code == 200
    assert server.http.delete(f"{PROXY}/unsealed", headers=server.writer).status_code == 200


# -- item 9: a symlink leading outside a run's artifacts is skipped by a whole-run download -----------------------
def test_download_of_a_whole_run_skips_a_symlink_leading_outside_with_a_warning(tmp_path: Path) -> None:
    from fitscribe import Client, errors
    from fitscribe.uri import file_uri_to_path

    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "secret-folder").mkdir()
    (tmp_path / "secret-folder" / "key.txt").write_text("key")
    (tmp_path / "a.txt").write_text("a")
    client = Client(tracking_uri=str(tmp_path / "store"))
    run_id = client.create_run(client.create_experiment("links")).info.run_id
    client.log_artifact(run_id, str(tmp_path / "a.txt"), "data")
    folder = Path(file_uri_to_path(client.get_run(run_id).info.artifact_uri))
    (folder / "data" / "link.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "folder-link").symlink_to(tmp_path / "secret-folder")
    assert [f.path for f in client.list_artifacts(run_id)] == ["data"]
    assert [f.path for f in client.list_artifacts(run_id, "data")] == ["data/a.txt"]
    with pytest.warns(errors.FitscribeWarning, match="symlink leading outside the artifact root") as caught:
        out = Path(client.download_artifacts(run_id, "", str(tmp_path / "download")))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["data", "data/a.txt"]
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["data/link.txt", "folder-link"]  # one per link
    assert all(w.filename == __file__ for w in caught)  # pointing at the user's call
    with pytest.raises(errors.InvalidValueError, match="outside"):
        client.download_artifacts(run_id, "data/link.txt", str(tmp_path / "one"))  # asked for by name: refused

