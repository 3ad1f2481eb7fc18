"""Configuration as MLflow reads it (issue 12 item 1): every variable x every entry point.

Each MLflow variable is honoured when its ``FITSCRIBE_`` twin is unset (the ``FITSCRIBE_`` one wins),
and the fluent API, ``Client()``, autolog, the flavors and the CLI (in-process and as a child
process) all resolve the same current tracking URI, including one set with ``set_tracking_uri``.
Real stores: SQLite folders side by side, a fitscribe server on 127.0.0.1 with an auth file, and
one serving HTTPS with a self-signed certificate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import fitscribe
from fitscribe import errors
from fitscribe.cli import main as cli_main

WRITER_PW = "writer-pass-Cq27"
MLFLOW_VARIABLES = [f"MLFLOW_{name}" for name in (
    "TRACKING_URI", "REGISTRY_URI", "EXPERIMENT_NAME", "EXPERIMENT_ID", "RUN_ID", "TRACKING_USERNAME",
    "TRACKING_PASSWORD", "TRACKING_TOKEN", "TRACKING_INSECURE_TLS", "TRACKING_SERVER_CERT_PATH",
    "TRACKING_CLIENT_CERT_PATH")]


@pytest.fixture(autouse=True)
def _no_mlflow_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    fitscribe.autolog(disable=True)


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, str]:
    """Two embedded stores side by side, and the default ``./fitruns`` of the test's folder."""
    return {"A": str(tmp_path / "a"), "B": str(tmp_path / "b"), "default": os.path.abspath("fitruns")}


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return X, (X[:, 0] > 0).astype(int)


# -- entry points: each records one run where the configuration says, and returns its id ----------
def via_fluent() -> str:
    with fitscribe.start_run() as run:
        fitscribe.log_metric("m", 1.0)
    return run.info.run_id


def via_client() -> str:
    client = fitscribe.Client()
    run = client.create_run(client.get_experiment_id("Default", create=True))
    client.log_param(run.info.run_id, "p", "1")
    client.set_terminated(run.info.run_id)
    client.close()
    return run.info.run_id


def via_autolog() -> str:
    from sklearn.linear_model import LogisticRegression

    fitscribe.autolog(log_models=False, log_plots=False)
    LogisticRegression().fit(*_data())
    fitscribe.autolog(disable=True)
    fitscribe.flush()
    run = fitscribe.last_active_run()
    assert run is not None and "C" in run.data.params
    return run.info.run_id


def via_flavor() -> str:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    info = fitscribe.flavors.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
    loaded = fitscribe.flavors.sklearn.load_model(f"runs:/{info.run_id}/model")  # read back the same way
    assert loaded.predict(X).shape == (40,)
    return str(info.run_id)


def _marker_runs(stores: dict[str, str]) -> dict[str, str]:
    """One run per store, written with an explicit URI, for the CLI to find."""
    markers = {}
    for key, uri in stores.items():
        client = fitscribe.Client(uri)
        markers[key] = client.create_run("0", run_name=f"marker-{key}").info.run_id
        client.close()
    return markers


def via_cli(stores: dict[str, str]) -> str:
    markers = _marker_runs(stores)
    lines: list[str] = []
    assert cli_main(["runs", "list", "--json"], out=lines.append) == 0
    seen = [r["info"]["run_id"] for r in json.loads("\n".join(lines))]
    assert len(seen) == 1 and seen[0] in markers.values()
    return str(seen[0])


def via_cli_child(stores: dict[str, str]) -> str:
    """The CLI in a child process: it inherits the environment, including what set_tracking_uri wrote."""
    markers = _marker_runs(stores)
    result = subprocess.run([sys.executable, "-m", "fitscribe", "runs", "list", "--json"], capture_output=True,
                            text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    seen = [r["info"]["run_id"] for r in json.loads(result.stdout)]
    assert len(seen) == 1 and seen[0] in markers.values()
    return str(seen[0])


ENTRY_POINTS: dict[str, Callable[..., str]] = {
    "fluent": via_fluent, "client": via_client, "autolog": via_autolog, "flavor": via_flavor,
    "cli": via_cli, "cli_child": via_cli_child,
}


def _record(entry: str, stores: dict[str, str]) -> str:
    fn = ENTRY_POINTS[entry]
    return fn(stores) if entry in ("cli", "cli_child") else fn()


def _experiment_names(uri: str) -> list[str]:
    client = fitscribe.Client(uri)
    try:
        return [e.name for e in client.search_experiments()]
    finally:
        client.close()


def _store_of(run_id: str, stores: dict[str, str]) -> str:
    """The one store holding the run."""
    holders = []
    for key, uri in stores.items():
        client = fitscribe.Client(uri)
        try:
            client.get_run(run_id)
            holders.append(key)
        except errors.RunNotFound:
            pass
        finally:
            client.close()
    assert len(holders) == 1, holders
    return holders[0]


# -- the tracking URI ---------------------------------------------------------------------------------
TRACKING_CASES = {
    # case: (environment {variable: store}, store given to set_tracking_uri, expected store)
    "MLFLOW_TRACKING_URI": ({"MLFLOW_TRACKING_URI": "A"}, None, "A"),
    "FITSCRIBE_wins_over_MLFLOW": ({"MLFLOW_TRACKING_URI": "A", "FITSCRIBE_TRACKING_URI": "B"}, None, "B"),
    "set_tracking_uri_wins": ({"MLFLOW_TRACKING_URI": "B", "FITSCRIBE_TRACKING_URI": "B"}, "A", "A"),
    "nothing_set": ({}, None, "default"),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("case", list(TRACKING_CASES))
def test_tracking_uri(case: str, entry: str, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    env, set_to, expected = TRACKING_CASES[case]
    for name, key in env.items():
        monkeypatch.setenv(name, stores[key])
    if set_to is not None:
        fitscribe.set_tracking_uri(stores[set_to])
    assert fitscribe.get_tracking_uri() == stores[expected] == fitscribe.Client().tracking_uri
    run_id = _record(entry, stores)
    assert _store_of(run_id, stores) == expected


def test_set_tracking_uri_is_exported_and_reset_restores(stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["B"])
    fitscribe.set_tracking_uri(Path(stores["A"]))
    assert os.environ["MLFLOW_TRACKING_URI"] == os.environ["FITSCRIBE_TRACKING_URI"] == stores["A"]
    assert fitscribe.is_tracking_uri_set()
    fitscribe.fluent.reset()
    assert os.environ["MLFLOW_TRACKING_URI"] == stores["B"] and "FITSCRIBE_TRACKING_URI" not in os.environ
    assert fitscribe.get_tracking_uri() == stores["B"]
    fitscribe.set_tracking_uri(None)  # back to the environment, for children too
    assert "MLFLOW_TRACKING_URI" not in os.environ and not fitscribe.is_tracking_uri_set()


def test_client_sees_set_tracking_uri_after_logging(stores: dict[str, str]) -> None:
    """The issue's report: log to a store set with set_tracking_uri, then Client().get_run(id)."""
    fitscribe.set_tracking_uri(stores["A"])
    run_id = via_fluent()
    assert fitscribe.Client().get_run(run_id).data.metrics == {"m": 1.0}
    fitscribe.set_tracking_uri(stores["B"])
    with pytest.raises(errors.RunNotFound):
        fitscribe.Client().get_run(run_id)


# -- experiment name and id ----------------------------------------------------------------------------
EXPERIMENT_CASES = {
    # case: (environment, set_experiment name or None, expected experiment name)
    "MLFLOW_EXPERIMENT_NAME": ({"MLFLOW_EXPERIMENT_NAME": "from-mlflow"}, None, "from-mlflow"),
    "MLFLOW_EXPERIMENT_ID": ({"MLFLOW_EXPERIMENT_ID": "<by-id>"}, None, "by-id"),
    "FITSCRIBE_NAME_wins": ({"MLFLOW_EXPERIMENT_NAME": "from-mlflow", "FITSCRIBE_EXPERIMENT_NAME": "ours"}, None, "ours"),
    "FITSCRIBE_ID": ({"FITSCRIBE_EXPERIMENT_ID": "<by-id>"}, None, "by-id"),
    "name_and_id_agree": ({"MLFLOW_EXPERIMENT_NAME": "by-id", "MLFLOW_EXPERIMENT_ID": "<by-id>"}, None, "by-id"),
    "set_experiment_wins": ({"MLFLOW_EXPERIMENT_NAME": "from-mlflow"}, "chosen", "chosen"),
}


@pytest.mark.parametrize(("case", "entry"), [
    *[(case, entry) for case in EXPERIMENT_CASES for entry in ("fluent", "autolog", "flavor")],
    *[(case, "cli") for case in EXPERIMENT_CASES if EXPERIMENT_CASES[case][1] is None],  # no set_experiment in a CLI
])
def test_experiment(case: str, entry: str, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    env, chosen, expected = EXPERIMENT_CASES[case]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["A"])
    client = fitscribe.Client(stores["A"])
    by_id = client.create_experiment("by-id")
    other = client.create_experiment("other")
    for name, value in env.items():
        monkeypatch.setenv(name, by_id if value == "<by-id>" else value)
    if chosen:
        fitscribe.set_experiment(chosen)
    if entry == "cli":  # `runs list` without --experiment lists the experiment the environment names
        wanted = client.create_run(client.get_experiment_id(expected, create=True)).info.run_id
        client.create_run(other)
        client.create_run("0")
        lines: list[str] = []
        assert cli_main(["runs", "list", "--json"], out=lines.append) == 0
        assert [r["info"]["run_id"] for r in json.loads("\n".join(lines))] == [wanted]
        return
    run_id = _record(entry, stores)
    assert client.get_experiment(client.get_run(run_id).info.experiment_id).name == expected


def test_experiment_variables_that_disagree_or_name_nothing(stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["A"])
    other = fitscribe.create_experiment("other")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "Default")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", other)
    with pytest.raises(errors.InvalidValueError, match=f"MLFLOW_EXPERIMENT_ID='{other}' does not match"):
        fitscribe.start_run()
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "999")
    with pytest.raises(errors.ExperimentNotFound, match="MLFLOW_EXPERIMENT_ID='999' names no experiment"):
        fitscribe.start_run()
    assert fitscribe.active_run() is None


# -- run id ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["MLFLOW_RUN_ID", "FITSCRIBE_RUN_ID"])
@pytest.mark.parametrize("entry", ["fluent", "autolog", "flavor"])
def test_run_id_is_resumed_once_then_removed(variable: str, entry: str, stores: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["A"])
    client = fitscribe.Client(stores["A"])
    parent = client.create_run("0", run_name="launched-by-a-scheduler")
    client.set_terminated(parent.info.run_id, "KILLED")
    monkeypatch.setenv(variable, parent.info.run_id)
    if variable == "FITSCRIBE_RUN_ID":  # ours wins; both are consumed
        monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    assert _record(entry, stores) == parent.info.run_id
    assert "MLFLOW_RUN_ID" not in os.environ and "FITSCRIBE_RUN_ID" not in os.environ
    got = client.get_run(parent.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "launched-by-a-scheduler"
    assert via_fluent() != parent.info.run_id  # the next run is a new one


def test_run_id_of_a_missing_or_deleted_run_is_refused(stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["A"])
    monkeypatch.setenv("MLFLOW_RUN_ID", "f" * 32)
    with pytest.raises(errors.RunNotFound):
        fitscribe.start_run()
    run_id = via_fluent()
    fitscribe.delete_run(run_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    with pytest.raises(errors.InvalidStateError, match="deleted"):
        fitscribe.start_run()


# -- registry URI ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["MLFLOW_REGISTRY_URI", "FITSCRIBE_REGISTRY_URI", "set_registry_uri", "unset"])
@pytest.mark.parametrize("entry", ["client", "flavor"])
def test_registry_uri(how: str, entry: str, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["A"])
    if how == "set_registry_uri":
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", stores["A"])
        fitscribe.set_registry_uri(stores["B"])
    elif how != "unset":
        monkeypatch.setenv(how, stores["B"])
    expected, other = ("A", "B") if how == "unset" else ("B", "A")
    assert fitscribe.get_registry_uri() == stores[expected] == fitscribe.Client().registry_uri
    if entry == "client":
        fitscribe.Client().create_registered_model("churn")
    else:
        fitscribe.flavors.sklearn.log_model(LogisticRegression().fit(*_data()), name="model",
                                            registered_model_name="churn")
    assert fitscribe.Client(stores[expected], registry_uri=stores[expected]).get_registered_model("churn").name == "churn"
    with pytest.raises(errors.NotFoundError):
        fitscribe.Client(stores[other], registry_uri=stores[other]).get_registered_model("churn")


# -- a server with credentials ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from fitscribe.server import create_app
    from fitscribe.server.auth import hash_secret, load_auth_file, new_token
    from fitscribe.server.run import ThreadedServer
    from fitscribe.server.security import SecurityConfig

    root = tmp_path_factory.mktemp("secured")
    token, token_hash = new_token()
    (root / "auth.yaml").write_text(
        "users:\n"
        f"  writer: {{password_hash: '{hash_secret(WRITER_PW, iterations=1000)}', access: read-write}}\n"
        "tokens:\n"
        f"  ci: {{token_hash: '{token_hash}', access: read-write}}\n"
    )
    security = SecurityConfig(credentials=load_auth_file(str(root / "auth.yaml")))
    with ThreadedServer(create_app(str(root / "store"), str(root / "artifacts"), security=security)) as server:
        yield {"url": server.url, "token": token}


AUTH_CASES = {
    "MLFLOW_TRACKING_USERNAME": {"MLFLOW_TRACKING_USERNAME": "writer", "MLFLOW_TRACKING_PASSWORD": WRITER_PW},
    "MLFLOW_TRACKING_TOKEN": {"MLFLOW_TRACKING_TOKEN": "<token>"},
    "FITSCRIBE_TOKEN_wins": {"FITSCRIBE_TRACKING_TOKEN": "<token>", "MLFLOW_TRACKING_TOKEN": "wrong"},
    "FITSCRIBE_USERNAME_wins": {"FITSCRIBE_TRACKING_USERNAME": "writer", "FITSCRIBE_TRACKING_PASSWORD": WRITER_PW,
                                "MLFLOW_TRACKING_USERNAME": "writer", "MLFLOW_TRACKING_PASSWORD": "wrong"},
}


@pytest.mark.parametrize("entry", ["fluent", "client", "autolog", "flavor", "cli"])
@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_server_credentials(case: str, entry: str, secured: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path) -> None:
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secured["url"])
    for name, value in AUTH_CASES[case].items():
        monkeypatch.setenv(name, secured["token"] if value == "<token>" else value)
    if entry == "cli":
        run_id = via_client()
        lines: list[str] = []
        assert cli_main(["runs", "describe", run_id, "--json"], out=lines.append) == 0
        assert json.loads("\n".join(lines))["data"]["params"] == {"p": "1"}
        return
    run_id = _record(entry, {})
    client = fitscribe.Client(secured["url"])
    assert client.get_run(run_id).info.status == "FINISHED"
    client.close()


@pytest.mark.parametrize("entry", ["fluent", "client"])
def test_mlflow_credentials_file(entry: str, secured: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    """MLflow's ~/.mlflow/credentials ([mlflow] mlflow_tracking_username/password) when no variable is set."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secured["url"])
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        f"[mlflow]\nmlflow_tracking_username = writer\nmlflow_tracking_password = {WRITER_PW}\n")
    run_id = _record(entry, {})
    assert _experiment_names(secured["url"])[0] == "Default"
    client = fitscribe.Client(secured["url"])
    assert client.get_run(run_id).info.status == "FINISHED"
    client.close()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "writer")  # the variables win over the file
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(errors.ConfigError, match="MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"):
        _experiment_names(secured["url"])


def test_server_without_credentials_is_a_clear_error(secured: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.mlflow/credentials either
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secured["url"])
    with pytest.raises(errors.ConfigError, match="requires credentials.*MLFLOW_TRACKING_TOKEN"):
        fitscribe.start_run()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong")
    with pytest.raises(errors.ConfigError, match="credentials from MLFLOW_TRACKING_TOKEN"):
        _experiment_names(secured["url"])


# -- TLS -----------------------------------------------------------------------------------------------
class _TlsServer:
    """A fitscribe server over HTTPS on 127.0.0.1 (a self-signed certificate made by openssl)."""

    def __init__(self, app: Any, cert: str, key: str) -> None:
        import uvicorn

        app.state.security.allow_bind_host("127.0.0.1")
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                lifespan="on", ws="none", ssl_certfile=cert, ssl_keyfile=key)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the HTTPS server did not start"
            time.sleep(0.01)
        return f"https://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from fitscribe.server import create_app

    root = tmp_path_factory.mktemp("tls")
    cert, key = str(root / "cert.pem"), str(root / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    with _TlsServer(create_app(str(root / "store"), str(root / "artifacts")), cert, key) as url:
        yield {"url": url, "cert": cert}


@pytest.mark.parametrize("how", ["MLFLOW_TRACKING_SERVER_CERT_PATH", "FITSCRIBE_TRACKING_SERVER_CERT_PATH",
                                 "MLFLOW_TRACKING_INSECURE_TLS", "FITSCRIBE_TRACKING_INSECURE_TLS", "none"])
@pytest.mark.parametrize("entry", ["fluent", "client"])
def test_tls_options_reach_the_http_client(how: str, entry: str, https: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", https["url"])
    if how.endswith("CERT_PATH"):
        monkeypatch.setenv(how, https["cert"])
    elif how.endswith("INSECURE_TLS"):
        monkeypatch.setenv(how, "true")
    if how == "none":  # a self-signed certificate is refused by default
        with pytest.raises(errors.BackendError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            _experiment_names(https["url"])
        return
    run_id = _record(entry, {})
    client = fitscribe.Client(https["url"])
    assert client.get_run(run_id).info.status == "FINISHED"
    client.close()


def test_insecure_tls_with_a_ca_bundle_is_a_clear_error(https: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", https["cert"])
    with pytest.raises(errors.ConfigError, match="MLFLOW_TRACKING_INSECURE_TLS=true and "
                                                 "MLFLOW_TRACKING_SERVER_CERT_PATH are both set"):
        _experiment_names(https["url"])
    monkeypatch.setenv("FITSCRIBE_TRACKING_INSECURE_TLS", "false")  # ours wins: verify with the bundle
    assert _experiment_names(https["url"]) == ["Default"]


def test_client_certificate_is_loaded(https: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fitscribe.backends.rest.http import tls_context

    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", https["cert"])
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(tmp_path / "missing.pem"))
    with pytest.raises(errors.ConfigError, match="MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        tls_context(https["url"])
    both = tmp_path / "client.pem"
    key = Path(https["cert"]).with_name("key.pem")
    both.write_text(Path(https["cert"]).read_text() + key.read_text())
    monkeypatch.setenv("FITSCRIBE_TRACKING_CLIENT_CERT_PATH", str(both))
    assert tls_context(https["url"]).cert_store_stats()["x509_ca"] == 1
    assert _experiment_names(https["url"]) == ["Default"]
