"""The server's security layer over real HTTP (uvicorn on 127.0.0.1, port 0, SQLite stores):
authentication (basic and bearer, read-only and read-write), the Host check, CORS, request size
limits, artifact path confinement, secrets kept out of answers and logs, fitscribe's own REST client
with credentials, the official mlflow client (its own virtualenv, in a subprocess) with a token and
with a user and password, the auth file and the secret helpers of ``fitscribe server``.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import fitscribe
from fitscribe import errors
from fitscribe.server import create_app
from fitscribe.server.auth import hash_secret, load_auth_file, new_token, verify_secret
from fitscribe.server.run import ThreadedServer
from fitscribe.server.security import SecurityConfig

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
WRITER_PW, READER_PW = "writer-pass-Xq81", "reader-pass-Lm40"
UI_ORIGIN = "https://ui.example.com"
MB = 1024 * 1024


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP basic auth."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Secured:
    """A server with an auth file, 1 MB JSON and 2 MB upload limits, one allowed CORS origin."""

    url: str
    port: int
    root: Path
    http: httpx.Client
    writer_token: str
    reader_token: str

    @property
    def writer(self) -> dict[str, str]:
        return basic("writer", WRITER_PW)

    @property
    def reader(self) -> dict[str, str]:
        return basic("reader", READER_PW)

    def raw(self, method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Send a request exactly as written (no path normalisation) and return status, headers, body."""
        return raw_request(self.port, method, target, headers, body, chunked)


def raw_request(port: int, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One request over http.client (which sends the target and Host exactly as given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        given = dict(headers or {})
        connection.putrequest(method, target, skip_host="Host" in given, skip_accept_encoding=True)
        for name, value in given.items():
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body is not None:
            pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
            for piece in pieces:
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def write_auth_file(path: Path, writer_token_hash: str, reader_token_hash: str) -> None:
    """Write the auth file of the module's server (fast PBKDF2: 1000 iterations)."""
    path.write_text(
        "users:\n"
        f"  writer: {{password_hash: '{hash_secret(WRITER_PW, iterations=1000)}', access: read-write}}\n"
        f"  reader: {{password_hash: '{hash_secret(READER_PW, iterations=1000)}'}}\n"
        "tokens:\n"
        f"  ci: {{token_hash: '{writer_token_hash}', access: read-write}}\n"
        f"  dashboard: {{token_hash: '{reader_token_hash}', access: read-only}}\n"
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secured")
    writer_token, writer_hash = new_token()
    reader_token = "dashboard-token-9c1"
    write_auth_file(root / "auth.yaml", writer_hash, hash_secret(reader_token, iterations=1000))
    (root / "secret.txt").write_text("outside the artifact destination")
    security = SecurityConfig(credentials=load_auth_file(str(root / "auth.yaml")), cors_allowed_origins=(UI_ORIGIN,),
                              max_request_bytes=1 * MB, max_upload_bytes=2 * MB,
                              failed_logins=0)  # many wrong logins from one address here; the limit: test_server_hardening
    app = create_app(str(root / "store"), str(root / "artifacts"), security=security)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Secured(server.url, server.port, root, client, writer_token, reader_token)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A server with the default security (no auth file)."""
    root = tmp_path_factory.mktemp("plain")
    with ThreadedServer(create_app(str(root / "store"), str(root / "artifacts"))) as server:
        yield server.url, server.port


def body_of(response: httpx.Response | bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response if isinstance(response, bytes) else response.content)
    return data


# -- authentication ----------------------------------------------------------------------------------
def test_health_is_open_and_the_rest_needs_credentials(secured: Secured) -> None:
    assert secured.http.get("/health").text == "OK"
    for path in (f"{API}/experiments/get?experiment_id=0", "/version", "/", f"{PROXY}?path=0"):
        response = secured.http.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith('Basic realm="fitscribe"')
        assert body_of(response)["error_code"] == "UNAUTHENTICATED"
        assert "MLFLOW_TRACKING_TOKEN" in body_of(response)["message"]


@pytest.mark.parametrize("header", [
    basic("writer", "wrong-password"), basic("nobody", WRITER_PW), basic("writer", ""), bearer("not-a-token"),
    {"Authorization": "Basic %%%not-base64"}, {"Authorization": "Digest whatever"}, {"Authorization": "Bearer"},
], ids=["wrong-password", "unknown-user", "empty-password", "unknown-token", "bad-base64", "other-scheme", "empty"])
def test_wrong_credentials_are_refused(secured: Secured, header: dict[str, str]) -> None:
    response = secured.http.post(f"{API}/experiments/create", json={"name": "never"}, headers=header)
    assert response.status_code == 401 and body_of(response)["error_code"] == "UNAUTHENTICATED"
    found = secured.http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "never"},
                             headers=secured.writer)
    assert found.status_code == 404


@pytest.mark.parametrize("who", ["reader", "dashboard-token", "writer", "ci-token"])
def test_every_identity_may_read_including_searches_sent_with_post(secured: Secured, who: str) -> None:
    headers = {"reader": secured.reader, "writer": secured.writer, "dashboard-token": bearer(secured.reader_token),
               "ci-token": bearer(secured.writer_token)}[who]
    assert secured.http.get(f"{API}/experiments/get", params={"experiment_id": "0"}, headers=headers).status_code == 200
    for endpoint, body in [("runs/search", {"experiment_ids": ["0"]}), ("experiments/search", {}),
                           ("logged-models/search", {"experiment_ids": ["0"]}),
                           ("registered-models/get-latest-versions", {"name": "absent"})]:
        response = secured.http.post(f"{API}/{endpoint}", json=body, headers=headers)
        assert response.status_code in (200, 404), (endpoint, response.text)  # 404: no such registered model
        assert response.status_code == 200 or body_of(response)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_read_only_identities_cannot_write(secured: Secured) -> None:
    for headers in (secured.reader, bearer(secured.reader_token)):
        refused = [
            secured.http.post(f"{API}/experiments/create", json={"name": "by-reader"}, headers=headers),
            secured.http.post(f"{API}/runs/log-batch", json={"run_id": "0" * 32}, headers=headers),
            secured.http.put(f"{PROXY}/0/r/artifacts/x.txt", content=b"x", headers=headers),
            secured.http.delete(f"{PROXY}/0", headers=headers),
            secured.http.patch(f"{API}/logged-models/m-{'0' * 32}", json={"status": "READY"}, headers=headers),
            secured.http.post("/ui/api/not-an-endpoint", json={}, headers=headers),  # unknown non-GET: a write
        ]
        for response in refused:
            assert response.status_code == 403, (response.request.url, response.text)
            assert body_of(response)["error_code"] == "PERMISSION_DENIED"
            assert "read-only" in body_of(response)["message"] and "--auth-file" in body_of(response)["message"]
    assert not (secured.root / "artifacts" / "0" / "r").exists()
    missing = secured.http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "by-reader"},
                               headers=secured.writer)
    assert missing.status_code == 404


def test_read_write_identities_can_write(secured: Secured) -> None:
    for name, headers in [("by-writer", secured.writer), ("by-token", bearer(secured.writer_token))]:
        created = secured.http.post(f"{API}/experiments/create", json={"name": name}, headers=headers)
        assert created.status_code == 200, created.text
        put = secured.http.put(f"{PROXY}/{name}/file.txt", content=b"data", headers=headers)
        assert put.status_code == 200 and (secured.root / "artifacts" / name / "file.txt").read_bytes() == b"data"
        got = secured.http.get(f"{PROXY}/{name}/file.txt", headers=secured.reader)
        assert got.status_code == 200 and got.content == b"data"
    unknown = secured.http.post("/ui/api/not-an-endpoint", json={}, headers=secured.writer)
    assert unknown.status_code == 404 and body_of(unknown)["error_code"] == "ENDPOINT_NOT_FOUND"


def test_secrets_never_appear_in_answers_or_logs(secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad_password, bad_token = "S3cret-Guess-771", "tok-Guess-552"
    answers = [
        secured.http.get(f"{API}/runs/get", params={"run_id": "0" * 32}, headers=basic("writer", bad_password)),
        secured.http.get(f"{API}/runs/get", params={"run_id": "0" * 32}, headers=bearer(bad_token)),
        secured.http.get(f"{API}/runs/get", params={"run_id": "0" * 32}, headers=secured.writer),
        secured.http.post(f"{API}/experiments/create", json={"name": "x"}, headers=secured.reader),
    ]
    assert [a.status_code for a in answers] == [401, 401, 404, 403]
    assert caplog.text.count("wrong credentials") == 2  # the refusals were logged...
    secrets = [bad_password, bad_token, WRITER_PW, READER_PW, secured.writer_token,
               base64.b64encode(f"writer:{bad_password}".encode()).decode(), secured.writer["Authorization"]]
    for secret in secrets:  # ...without any secret, in logs or answers
        assert secret not in caplog.text
        assert all(secret not in a.text and secret not in str(a.headers) for a in answers)


# -- Host header ---------------------------------------------------------------------------------------
def test_unknown_host_names_are_refused(plain: tuple[str, int]) -> None:
    _, port = plain
    for host in ("evil.example.com", f"evil.example.com:{port}", "localhost.evil.com", "127.0.0.1.nip.io"):
        status, _, body = raw_request(port, "GET", f"{API}/experiments/get?experiment_id=0", {"Host": host})
        assert status == 403, host
        assert body_of(body)["error_code"] == "PERMISSION_DENIED" and "--allowed-hosts" in body_of(body)["message"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"LOCALHOST:{port}", f"[::1]:{port}"):
        status, _, _ = raw_request(port, "GET", f"{API}/experiments/get?experiment_id=0", {"Host": host})
        assert status == 200, host
    status, _, body = raw_request(port, "GET", "/health", {"Host": "evil.example.com"})
    assert (status, body) == (200, b"OK")  # load balancers' probes


def test_allowed_host_patterns_and_the_bound_address(tmp_path: Path) -> None:
    security = SecurityConfig(allowed_hosts=("*.example.com", "tracker.internal:8443"))
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"), security=security)
    with ThreadedServer(app, host="127.0.0.2") as server:  # the bound address is allowed by ThreadedServer
        def status(host: str) -> int:
            return raw_request_to(server.host, server.port, "GET", f"{API}/experiments/get?experiment_id=0", {"Host": host})

        assert status("ml.example.com") == 200 and status("ML.Example.COM:5000") == 200
        assert status("tracker.internal:8443") == 200 and status(f"127.0.0.2:{server.port}") == 200
        assert status("a.b.example.com") == 403  # one label per '*'
        assert status("example.com") == 403 and status("ml.example.com.evil.net") == 403
        assert status("tracker.internal:8444") == 403 and status("localhost") == 403
    assert SecurityConfig().bound_to("0.0.0.0").allowed_hosts == SecurityConfig().allowed_hosts
    assert SecurityConfig().bound_to("10.1.2.3").allowed_hosts[-1] == "10.1.2.3"
    assert SecurityConfig().bound_to("fe80::1").allowed_hosts[-1] == "[fe80::1]"
    assert SecurityConfig(allowed_hosts=("*",)).bound_to("10.1.2.3").allowed_hosts == ("*",)


def raw_request_to(host: str, port: int, method: str, target: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# -- CORS ------------------------------------------------------------------------------------------------
def test_preflight_is_answered_for_allowed_origins_only(secured: Secured) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = secured.http.options(f"{API}/experiments/create", headers={"Origin": UI_ORIGIN, **ask})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = secured.http.options(f"{API}/experiments/create", headers={"Origin": "https://evil.example", **ask})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert "--cors-allowed-origins" in body_of(refused)["message"]


def test_cross_origin_writes_are_refused_unless_allowed(secured: Secured) -> None:
    evil = {"Origin": "https://evil.example", **secured.writer}
    response = secured.http.post(f"{API}/experiments/create", json={"name": "cors-evil"}, headers=evil)
    assert response.status_code == 403 and "Cross-origin" in body_of(response)["message"]
    for origin in ("null", f"http://127.0.0.1:{secured.port + 1}", f"http://localhost:{secured.port}"):
        response = secured.http.post(f"{API}/experiments/create", json={"name": "cors-evil"},
                                     headers={"Origin": origin, **secured.writer})
        assert response.status_code == 403, origin
    read = secured.http.get(f"{API}/experiments/get", params={"experiment_id": "0"}, headers=evil)
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers  # the browser hides it
    allowed = secured.http.post(f"{API}/experiments/create", json={"name": "cors-ui"},
                                headers={"Origin": UI_ORIGIN, **secured.writer})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    same = secured.http.post(f"{API}/experiments/create", json={"name": "cors-same"},
                             headers={"Origin": secured.url, **secured.writer})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    names = {e["name"] for e in secured.http.post(f"{API}/experiments/search", json={},
                                                  headers=secured.reader).json()["experiments"]}
    assert {"cors-ui", "cors-same"} <= names and "cors-evil" not in names


def test_cross_origin_posts_are_refused_without_auth_too(plain: tuple[str, int]) -> None:
    url, _ = plain
    response = httpx.post(f"{url}{API}/experiments/create", json={"name": "x"}, headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 403 and body_of(response)["error_code"] == "PERMISSION_DENIED"


# -- size limits ------------------------------------------------------------------------------------------
def test_a_declared_size_over_the_limit_is_refused_before_reading(secured: Secured) -> None:
    headers = {**secured.writer, "Content-Type": "application/json", "Content-Length": str(10**12)}
    status, _, body = secured.raw("POST", f"{API}/runs/log-batch", headers)  # headers only: nothing read
    assert status == 413 and body_of(body)["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "--max-request-mb" in body_of(body)["message"]
    status, _, body = secured.raw("PUT", f"{PROXY}/big/file.bin", {**secured.writer, "Content-Length": str(10**12)})
    assert status == 413 and "--max-upload-mb" in body_of(body)["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_limit_get_413(secured: Secured, chunked: bool) -> None:
    big_json = json.dumps({"run_id": "0" * 32, "tags": [{"key": "k", "value": "v" * (MB + 10)}]}).encode()
    status, _, body = secured.raw("POST", f"{API}/runs/log-batch", {**secured.writer, "Content-Type": "application/json"},
                                  big_json, chunked)
    assert status == 413 and "--max-request-mb" in body_of(body)["message"]
    upload = b"u" * (2 * MB + 1)
    status, _, body = secured.raw("PUT", f"{PROXY}/limit/too-big.bin", secured.writer, upload, chunked)
    assert status == 413 and "--max-upload-mb" in body_of(body)["message"]
    assert not (secured.root / "artifacts" / "limit" / "too-big.bin").exists()
    fits = b"f" * (MB + MB // 2)  # over the JSON limit, within the upload limit
    status, _, body = secured.raw("PUT", f"{PROXY}/limit/fits.bin", secured.writer, fits, chunked)
    assert status == 200, body
    assert (secured.root / "artifacts" / "limit" / "fits.bin").read_bytes() == fits


# -- artifact paths stay inside their root -----------------------------------------------------------------
TRAVERSALS = ["../secret.txt", "a/../../secret.txt", "%2e%2e/secret.txt", "%2E%2E%2Fsecret.txt", "..%2fsecret.txt",
              "a/%2e%2e/%2e%2e/secret.txt", "%2fetc%2fpasswd", "/etc/passwd", "..%5csecret.txt", "a%00b"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_proxy_refuses_paths_leaving_the_destination(secured: Secured, path: str) -> None:
    for method, body in (("GET", None), ("PUT", b"overwritten"), ("DELETE", None)):
        status, _, answer = secured.raw(method, f"{PROXY}/{path}", secured.writer, body)
        assert status in (400, 404), (method, path, status, answer)
        assert b"outside the artifact destination" not in answer
    status, _, answer = secured.raw("GET", f"{PROXY}?path={path}", secured.writer)
    assert status == 400, (path, answer)
    assert (secured.root / "secret.txt").read_text() == "outside the artifact destination"


@pytest.mark.parametrize("path", ["..", "../..", "%2e%2e", "..%2f..", "/", "/etc", "../other/artifacts", "a/../../x",
                                  "../../../../secret.txt"])
def test_run_artifact_listing_stays_in_the_run(secured: Secured, path: str) -> None:
    exp = secured.http.post(f"{API}/experiments/create", json={"name": f"listing-{path}"}, headers=secured.writer).json()
    run = secured.http.post(f"{API}/runs/create", json={"experiment_id": exp["experiment_id"]},
                            headers=secured.writer).json()["run"]["info"]
    status, _, answer = secured.raw("GET", f"{API}/artifacts/list?run_id={run['run_id']}&path={path}", secured.writer)
    assert status == 400 and body_of(answer)["error_code"] == "INVALID_PARAMETER_VALUE", answer


def test_ui_artifact_pages_stay_in_the_run(secured: Secured) -> None:
    exp = secured.http.post(f"{API}/experiments/create", json={"name": "ui-traversal"}, headers=secured.writer).json()
    run = secured.http.post(f"{API}/runs/create", json={"experiment_id": exp["experiment_id"]},
                            headers=secured.writer).json()["run"]["info"]
    deep = ["../../../../secret.txt", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt", "..%2f..%2f..%2f..%2fsecret.txt"]
    for path in TRAVERSALS + deep:  # the deep ones would reach secret.txt from the run's artifact folder
        for page in ("download", "artifacts"):
            status, _, answer = secured.raw("GET", f"/runs/{run['run_id']}/{page}/{path}", secured.reader)
            assert status == 400, (page, path, status)
            assert b"outside the artifact destination" not in answer


def test_double_encoded_dots_are_a_plain_name(secured: Secured) -> None:
    status, _, _ = secured.raw("GET", f"{PROXY}/%252e%252e/secret.txt", secured.writer)
    assert status == 404  # the name '%2e%2e' inside the destination, which does not exist


# -- fitscribe's own client --------------------------------------------------------------------------------
@pytest.fixture()
def client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    return monkeypatch


@pytest.mark.parametrize("how", ["FITSCRIBE_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN", "FITSCRIBE_TRACKING_USERNAME",
                                 "MLFLOW_TRACKING_USERNAME"])
def test_fitscribe_client_logs_with_credentials(secured: Secured, client_env: pytest.MonkeyPatch, how: str) -> None:
    if how.endswith("TOKEN"):
        client_env.setenv(how, secured.writer_token)
    else:
        client_env.setenv(how, "writer")
        client_env.setenv(how.replace("USERNAME", "PASSWORD"), WRITER_PW)
    client = fitscribe.Client(tracking_uri=secured.url)
    try:
        exp = client.create_experiment(f"client-{how}")
        run = client.create_run(exp)
        client.log_param(run.info.run_id, "lr", "0.1")
        for step in range(5):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
        client.flush()
        got = client.get_run(run.info.run_id)
        assert got.data.params == {"lr": "0.1"} and got.data.metrics["loss"] == 0.2
    finally:
        client.close()


def test_fitscribe_client_refusals_are_clear(secured: Secured, client_env: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="fitscribe.server")
    client = fitscribe.Client(tracking_uri=secured.url)
    with pytest.raises(errors.ConfigError, match="none were set.*FITSCRIBE_TRACKING_TOKEN.*FITSCRIBE_TRACKING_USERNAME"):
        client.get_experiment("0")
    assert caplog.text.count("missing credentials") == 1  # not retried
    client.close()
    client_env.setenv("MLFLOW_TRACKING_TOKEN", "wrong-token-Zz9")
    client = fitscribe.Client(tracking_uri=secured.url)
    with pytest.raises(errors.ConfigError, match="did not accept the credentials from MLFLOW_TRACKING_TOKEN") as refused:
        client.get_experiment("0")
    assert "wrong-token-Zz9" not in str(refused.value)
    client.close()
    client_env.setenv("FITSCRIBE_TRACKING_USERNAME", "reader")
    client_env.setenv("FITSCRIBE_TRACKING_PASSWORD", READER_PW)
    client = fitscribe.Client(tracking_uri=secured.url)
    try:
        assert client.get_experiment("0").name == "Default"
        with pytest.raises(errors.ConfigError, match="HTTP 403.*read-only") as denied:
            client.create_experiment("by-fitscribe-reader")
        assert READER_PW not in str(denied.value) and "FITSCRIBE_TRACKING_USERNAME" in str(denied.value)
        run_id = secured.http.post(f"{API}/runs/create", json={"experiment_id": "0"},
                                   headers=secured.writer).json()["run"]["info"]["run_id"]
        client.log_metric(run_id, "loss", 0.5)  # queued: the refusal comes with flush, and is not journaled
        with pytest.raises(errors.ConfigError, match="HTTP 403.*read-only"):
            client.flush()
    finally:
        client.close()
    assert not [p for p in (tmp_path / "journal").rglob("*") if p.is_file()]


# -- the auth file and the secret helpers --------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("users: [alice]\n", "'users' must map names"),
    ("users:\n  alice: {password_hash: hunter2}\n", "alice.password_hash is unusable.*plain secrets.*--hash-secret"),
    ("users:\n  alice: {password_hash: 'sha256$abc'}\n", "64 hex digits"),
    ("users:\n  alice: {password_hash: 'pbkdf2_sha256$x$y$z'}\n", "pbkdf2_sha256"),
    ("users:\n  alice: {password: x}\n", "alice must be a mapping with 'password_hash'"),
    ("tokens:\n  ci: {token_hash: 'sha256$" + "a" * 64 + "', access: admin}\n", "ci.access is 'admin'.*read-write"),
    ("users:\n  'a:b': {password_hash: 'sha256$" + "a" * 64 + "'}\n", "may not contain ':'"),
    ("admins: {}\n", "'users' and/or 'tokens'"),
    ("users: {}\n", "no users and no tokens"),
    ("users: {alice: [\n", "not valid YAML at line"),
])
def test_bad_auth_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    with pytest.raises(errors.ConfigError, match=message) as raised:
        load_auth_file(str(path))
    assert str(path) in str(raised.value) and "hunter2" not in str(raised.value)


@pytest.mark.parametrize("option, value, message", [
    ("--allowed-hosts", "http://tracker.example", "--allowed-hosts: 'http://tracker.example' is not a valid pattern"),
    ("--allowed-hosts", "a b", "not a valid pattern"),
    ("--cors-allowed-origins", "ui.example.com", "--cors-allowed-origins: 'ui.example.com' is not a valid pattern"),
    ("--cors-allowed-origins", "https://ui.example.com/app", "not a valid pattern"),
    ("--max-request-mb", "-1", "--max-request-mb must be 0 \\(no limit\\) or more, not -1"),
    ("--max-upload-mb", "-5", "--max-upload-mb must be 0"),
])
def test_bad_security_options_fail_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str,
                                               value: str, message: str) -> None:
    from fitscribe.cli import main

    assert main(["server", "--backend-store-uri", str(tmp_path / "s"), f"{option}={value}"]) == 1
    assert re.search(message, capsys.readouterr().err)


def test_missing_auth_file_fails_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.cli import main

    assert main(["server", "--backend-store-uri", str(tmp_path / "s"), "--auth-file", str(tmp_path / "none.yaml")]) == 1
    assert "Cannot read the auth file" in capsys.readouterr().err


def test_cli_server_with_security_options(tmp_path: Path) -> None:
    import time

    from tests.test_server import _start_cli_server, _wait_ok

    token, token_hash = new_token()
    write_auth_file(tmp_path / "auth.yaml", token_hash, hash_secret("unused-token", iterations=1000))
    proc, url, _ = _start_cli_server(tmp_path, "--workers", "2", "--auth-file", str(tmp_path / "auth.yaml"),
                                     "--allowed-hosts", "tracker.example,localhost", "--max-request-mb", "0.01")
    try:
        assert proc.stdout is not None
        summary = proc.stdout.readline()
        assert "auth on (2 users, 2 tokens)" in summary and "tracker.example" in summary and "127.0.0.1" in summary
        assert _wait_ok(f"{url}/health", time.monotonic() + 30).text == "OK"
        port = int(url.rsplit(":", 1)[1])
        assert httpx.get(f"{url}{API}/experiments/get", params={"experiment_id": "0"}).status_code == 401
        for i in range(4):  # each worker has the same auth file and rules
            created = httpx.post(f"{url}{API}/experiments/create", json={"name": f"cli-{i}"}, headers=bearer(token))
            assert created.status_code == 200, created.text
        status, _, _ = raw_request(port, "GET", f"{API}/experiments/get?experiment_id=0",
                                   {"Host": "tracker.example:80", **bearer(token)})
        assert status == 200
        status, _, _ = raw_request(port, "GET", f"{API}/experiments/get?experiment_id=0",
                                   {"Host": "other.example", **bearer(token)})
        assert status == 403
        too_big = httpx.post(f"{url}{API}/experiments/create", json={"name": "x" * 20000}, headers=bearer(token))
        assert too_big.status_code == 413 and "--max-request-mb" in too_big.json()["message"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert token not in summary + out + err and token_hash not in summary + out + err


def test_secret_helpers_print_usable_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from fitscribe.cli import main

    lines: list[str] = []
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["server", "--hash-secret"], out=lines.append) == 0
    assert lines[-1].startswith("pbkdf2_sha256$600000$") and verify_secret("correct horse", lines[-1])
    assert not verify_secret("correct horse ", lines[-1])
    assert main(["server", "--new-token"], out=lines.append) == 0
    token, token_hash = lines[-2].rsplit(" ", 1)[1], lines[-1].rsplit(" ", 1)[1]
    assert verify_secret(token, token_hash) and not verify_secret(token[:-1], token_hash)


# -- the official mlflow client ------------------------------------------------------------------------------
MLFLOW_SCRIPT = textwrap.dedent('''
    import json, os, sys, tempfile
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    scenarios, out = json.load(open(sys.argv[1])), {}
    for name, env in scenarios.items():
        for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)
        os.environ.update(env)
        client = MlflowClient()
        try:
            exp = client.create_experiment("mlflow-" + name)
            run_id = client.create_run(exp).info.run_id
            client.log_param(run_id, "lr", "0.1")
            client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (i + 1), 0, i) for i in range(3)])
            folder = tempfile.mkdtemp()
            with open(os.path.join(folder, "notes.txt"), "w") as f:
                f.write("logged with " + name)
            client.log_artifact(run_id, os.path.join(folder, "notes.txt"))
            client.set_terminated(run_id)
            out[name] = {"run_id": run_id, "listed": [f.path for f in client.list_artifacts(run_id)]}
        except MlflowException as exc:
            out[name] = {"error": exc.error_code, "message": str(exc)}
    json.dump(out, open(sys.argv[2], "w"))
''')


def test_mlflow_client_with_token_and_with_basic_auth(secured: Secured, tmp_path: Path) -> None:
    from _mlflow_support import run_mlflow

    scenarios = {
        "token": {"MLFLOW_TRACKING_TOKEN": secured.writer_token},
        "basic": {"MLFLOW_TRACKING_USERNAME": "writer", "MLFLOW_TRACKING_PASSWORD": WRITER_PW},
        "nothing": {},
        "wrong": {"MLFLOW_TRACKING_USERNAME": "writer", "MLFLOW_TRACKING_PASSWORD": "wrong-Pw-5"},
        "reader": {"MLFLOW_TRACKING_TOKEN": secured.reader_token},
    }
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    (tmp_path / "client.py").write_text(MLFLOW_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_"))}
    env.update(MLFLOW_TRACKING_URI=secured.url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="60")
    job = run_mlflow([str(tmp_path / "client.py"), str(tmp_path / "scenarios.json"), str(tmp_path / "out.json")],
                     cwd=tmp_path, env=env, timeout=300)
    assert job.returncode == 0, f"MLflow's client failed:\n{job.stdout}\n{job.stderr}"
    seen = json.loads((tmp_path / "out.json").read_text())
    reader = fitscribe.Client(str(secured.root / "store"))
    for name in ("token", "basic"):
        assert seen[name]["listed"] == ["notes.txt"], seen[name]
        run = reader.get_run(seen[name]["run_id"])
        assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 1.0 / 3} and run.info.status == "FINISHED"
        assert (Path(secured.root, "artifacts", run.info.experiment_id, run.info.run_id, "artifacts", "notes.txt")
                .read_text() == f"logged with {name}")
    assert seen["nothing"]["error"] == seen["wrong"]["error"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in seen["nothing"]["message"] and "wrong-Pw-5" not in seen["wrong"]["message"]
    assert seen["reader"]["error"] == "PERMISSION_DENIED" and "read-only" in seen["reader"]["message"]
    reader.close()
