"""Offline machines (issue 14 item 4), as a user meets them: a script pointed at a tracking server
that is down logs into a local store (``FITSCRIBE_OFFLINE=auto``, one warning naming the push
command); later a real ``fitscribe server`` is started and ``fitscribe push`` sends the runs, read
back through ``Client`` on the server field by field (ids, times, params, tags, metric histories,
artifact bytes, the model). Pushing again sends nothing; a push killed midway completes when re-run;
SQLite and PostgreSQL destinations; a read-only identity is refused; malformed bundles get a 400.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import fitscribe
import fitscribe.pyfunc
from fitscribe import Client
from fitscribe.server.app import create_app
from fitscribe.server.run import ThreadedServer

IMPORT = "/api/2.0/fitscribe/import"
MANY = 24

SCRIPT = r'''
import subprocess
import sys

import fitscribe
import fitscribe.pyfunc


class Doubler(fitscribe.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]


fitscribe.set_experiment("offline-exp")
with fitscribe.start_run(run_name="trained offline") as run:
    fitscribe.log_params({"lr": "0.1", "depth": "3"})
    for step in range(40):
        fitscribe.log_metric("loss", 1.0 / (step + 1), step=step)
    fitscribe.log_metric("acc", float("nan"), step=0)
    fitscribe.log_metric("acc", 0.75, step=1)
    fitscribe.set_tags({"team": "vision", "site": "hospital-7"})
    fitscribe.log_text("written offline \u00e9", "notes/readme.txt")
    fitscribe.pyfunc.log_model(name="model", python_model=Doubler(), registered_model_name="doubler")
# a child process inherits the choice: same local store, no second probe or warning
subprocess.run([sys.executable, "-c", "import fitscribe; fitscribe.set_experiment('many')"], check=True)
fitscribe.set_experiment("many")
for i in range(%d):
    with fitscribe.start_run(run_name=f"r{i}"):
        fitscribe.log_param("i", str(i))
        fitscribe.log_metric("m", float(i), step=i)
print(run.info.run_id)
''' % MANY


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITSCRIBE_", "MLFLOW_"))}
    return {**env, "FITSCRIBE_STRICT": "1", **extra}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Run the script against a server that is down; return (the local store folder, the run id)."""
    work = tmp_path_factory.mktemp("offline")
    folder = str(work / "fitruns")
    down = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=work, capture_output=True, text=True, timeout=120,
                          env=_env(FITSCRIBE_OFFLINE="auto", FITSCRIBE_TRACKING_URI=down,
                                   FITSCRIBE_OFFLINE_DIR=folder, FITSCRIBE_OFFLINE_TIMEOUT="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("OfflineWarning") == 1, done.stderr  # said once, with the command to run
    assert f"fitscribe push {folder} {down}" in done.stderr
    return folder, done.stdout.split()[-1]


class _CliServer:
    """A real ``fitscribe server`` process on a free port."""

    def __init__(self, store_uri: str, artifacts: Path) -> None:
        command = [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", store_uri,
                   "--artifacts-destination", str(artifacts), "--port", "0"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env=_env())
        assert self.process.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+", self.process.stdout.readline())
        assert found, "the server announced no URL"
        self.url = found.group(0)
        for _ in range(500):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        raise AssertionError("the server did not answer /health")

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)


def _push(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fitscribe", "push", *args], capture_output=True, text=True,
                          timeout=120, env=_env(**env))


def _all_runs(client: Client) -> list[Any]:
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, max_results=1000))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_same_runs(local: Client, server: Client, tmp: Path) -> None:
    """Every run of the local store is on the server with equal fields, histories and artifacts."""
    mine = {r.info.run_id: r for r in _all_runs(local)}
    theirs = {r.info.run_id: r for r in _all_runs(server)}
    assert set(theirs) == set(mine) and len(mine) == MANY + 1
    for run_id, run in mine.items():
        other = theirs[run_id]
        for field in ("run_name", "user_id", "status", "start_time", "end_time", "lifecycle_stage"):
            assert getattr(other.info, field) == getattr(run.info, field), field
        assert server.get_experiment(other.info.experiment_id).name == local.get_experiment(run.info.experiment_id).name
        assert other.data.params == run.data.params and other.data.tags == run.data.tags
        assert set(other.data.metrics) == set(run.data.metrics)
        for key in run.data.metrics:
            ours = [(m.step, m.timestamp, repr(m.value)) for m in local.get_metric_history(run_id, key)]
            assert [(m.step, m.timestamp, repr(m.value)) for m in server.get_metric_history(run_id, key)] == ours
    run_id = next(r for r, run in mine.items() if run.info.run_name == "trained offline")
    sent = _files(Path(local.download_artifacts(run_id, "", str(tmp / "local"))))
    got = _files(Path(server.download_artifacts(run_id, "", str(tmp / "server"))))
    assert got == sent and "notes/readme.txt" in got and "model/MLmodel" in got


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_offline_runs_pushed_to_a_server_arrive_whole_once(offline: tuple[str, str], database: str,
                                                           request: pytest.FixtureRequest, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.cli_import import main

    folder, run_id = offline
    if database == "sqlite":  # the real `fitscribe server` command
        server: Any = _CliServer(str(tmp_path / "server-store"), tmp_path / "server-artifacts")
    else:  # the same app in a thread, over a PostgreSQL database
        app = create_app(request.getfixturevalue("postgresql_uri"), str(tmp_path / "server-artifacts"), ui=False)
        server = ThreadedServer(app)
        server.start()
    client, local = Client(server.url), Client(folder)
    try:
        client.create_experiment("the server's own")  # takes an id: an offline experiment's id is mapped
        first = _push(folder, server.url)
        assert first.returncode == 0, first.stderr[-3000:]
        assert f"Sent {MANY + 1} of {MANY + 1} run(s)" in first.stdout
        assert "DIFFERS" not in first.stdout and "run digests" in first.stdout
        mapped = 0
        for exp in local.search_experiments():
            there = client.get_experiment_by_name(exp.name)
            assert there is not None
            if there.experiment_id != exp.experiment_id:  # its id was taken: mapped, and said so
                mapped += 1
                assert f"Experiment {exp.experiment_id} ({exp.name!r}) is experiment {there.experiment_id} " in first.stdout
        assert mapped >= 1
        _assert_same_runs(local, client, tmp_path)
        version = client.get_registered_model("doubler").latest_versions[0]
        assert (version.version, version.run_id) == (1, run_id)
        fitscribe.set_tracking_uri(server.url)
        assert fitscribe.pyfunc.load_model("models:/doubler/1").predict([1, 2]) == [2, 4]
        assert main(["push", folder, server.url]) == 0  # again: nothing is sent, nothing duplicated
        assert "Nothing new" in capsys.readouterr().out
        assert len(_all_runs(client)) == MANY + 1
        assert len(client.get_metric_history(run_id, "loss")) == 40
    finally:
        client.close()
        local.close()
        server.stop()


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[str]:
    app = create_app(str(tmp_path / "threaded-store"), str(tmp_path / "threaded-artifacts"), ui=False)
    with ThreadedServer(app) as server:
        yield server.url


def test_a_push_killed_midway_completes_when_run_again(offline: tuple[str, str], app_server: str,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.cli_import import main

    folder, _ = offline
    killed = _push(folder, app_server, FITSCRIBE_TEST_PUSH_KILL_AFTER="1")  # SIGKILLs itself after one request
    assert killed.returncode == -9, killed.stderr[-2000:]
    client, local = Client(app_server), Client(folder)
    assert 0 < len(_all_runs(client)) < MANY + 1  # one bundle of runs arrived, the rest did not
    assert main(["push", folder, app_server, "--dry-run"]) == 0
    assert re.search(rf"Would send [1-9]\d* of {MANY + 1} run", capsys.readouterr().out)
    assert main(["push", folder, app_server]) == 0
    assert "DIFFERS" not in capsys.readouterr().out
    _assert_same_runs(local, client, tmp_path)
    client.close()
    local.close()


def test_a_read_only_identity_is_refused_and_a_writer_may_push(offline: tuple[str, str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.cli_import import main
    from fitscribe.server.auth import Credentials, new_token
    from fitscribe.server.security import SecurityConfig

    folder, run_id = offline
    writer, writer_hash = new_token()
    viewer, viewer_hash = new_token()
    security = SecurityConfig(Credentials({}, {"writer": (writer_hash, True), "viewer": (viewer_hash, False)}))
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"), security=security, ui=False)
    with ThreadedServer(app) as server:
        monkeypatch.setenv("FITSCRIBE_TRACKING_TOKEN", viewer)
        assert main(["push", folder, server.url, "--runs", run_id]) == 1
        assert "read-only" in capsys.readouterr().err
        bundle = httpx.post(server.url + IMPORT, content=b"x", headers={"Authorization": f"Bearer {viewer}",
                                                                         "Content-Type": "application/x-tar"})
        assert bundle.status_code == 403
        monkeypatch.setenv("FITSCRIBE_TRACKING_TOKEN", writer)
        assert main(["push", folder, server.url, "--runs", run_id]) == 0, capsys.readouterr().err
        client = Client(server.url)
        assert client.get_run(run_id).data.params == {"lr": "0.1", "depth": "3"}
        client.close()


def _tar(files: dict[str, bytes], link: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return out.getvalue()


def test_bad_bundles_get_a_400_and_write_nothing(offline: tuple[str, str], app_server: str, tmp_path: Path) -> None:
    from fitscribe.cli_import import main

    folder, run_id = offline
    bundle = tmp_path / "one.tar"
    assert main(["export", "--tracking-uri", folder, "--runs", run_id, "-o", str(bundle)]) == 0
    with tarfile.open(bundle) as tar:
        good = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    runs_jsonl = next(name for name in good if name.endswith("runs.jsonl"))
    bad_status = {**good, runs_jsonl: good[runs_jsonl].replace(b'"FINISHED"', b'"WAT"')}
    bad_json = {**good, runs_jsonl: b"{not json\n"}
    bad_time = {**good, runs_jsonl: re.sub(rb'"start_time":\d+', b'"start_time":"soon"', good[runs_jsonl])}
    cases = {"garbage": b"not a tar at all", "empty": b"", "no manifest": _tar({"runs.jsonl": b"{}\n"}),
             "a symlink": _tar(good, "artifacts/x"), "a bad status": _tar(bad_status),
             "bad JSON": _tar(bad_json), "a text time": _tar(bad_time), "gzip": b"\x1f\x8b\x08\x00" + b"0" * 64}
    for case, body in cases.items():
        answer = httpx.post(app_server + IMPORT, content=body, headers={"Content-Type": "application/x-tar"})
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", case
        assert "/tmp" not in answer.text and "fitscribe-import" not in answer.text, (case, answer.text)  # no server path
    wrong_type = httpx.post(app_server + IMPORT, content=bundle.read_bytes(), headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 400
    compare = httpx.post(app_server + IMPORT + "/compare", json={"run_ids": "not a list"})
    assert compare.status_code == 400
    client = Client(app_server)
    assert _all_runs(client) == []  # nothing was written
    # the bundle, carried by hand: `fitscribe import bundle PATH --to http://server`; as if exported from
    # another server, its run's artifact URI reads like this server's own (mlflow-artifacts:/1/<run>/...)
    served = tmp_path / "from-another-server.tar"
    uri = re.search(rb'"artifact_uri":"([^"]*)"', good[runs_jsonl])
    assert uri is not None
    served.write_bytes(_tar({**good, runs_jsonl: good[runs_jsonl].replace(
        uri.group(1), f"mlflow-artifacts:/1/{run_id}/artifacts".encode())}))
    assert main(["import", "bundle", str(served), "--to", app_server]) == 0
    assert client.get_run(run_id).data.tags["site"] == "hospital-7"
    readme = client.download_artifacts(run_id, "notes/readme.txt", str(tmp_path / "readme"))
    assert Path(readme).read_text() == "written offline \u00e9"
    assert main(["import", "bundle", str(served), "--to", app_server]) == 0  # again: nothing new
    assert main(["push", str(bundle), app_server]) == 0  # a bundle is a push source too: nothing new either
    assert len(_all_runs(client)) == 1
    client.close()


def test_a_bundle_over_the_upload_limit_gets_a_413_naming_the_flag(tmp_path: Path) -> None:
    from fitscribe.server.security import SecurityConfig

    app = create_app(str(tmp_path / "store"), ui=False, security=SecurityConfig(max_upload_bytes=4096))
    with ThreadedServer(app) as server:
        answer = httpx.post(server.url + IMPORT, content=b"0" * 8192, headers={"Content-Type": "application/x-tar"})
        assert answer.status_code == 413 and "--max-upload-mb" in answer.json()["message"]


def test_offline_auto_is_decided_once_and_only_when_the_server_is_down(app_server: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fitscribe.backends.rest import RestTrackingStore
    from fitscribe.offline import OfflineWarning

    monkeypatch.setenv("FITSCRIBE_OFFLINE", "auto")
    monkeypatch.setenv("FITSCRIBE_OFFLINE_DIR", str(tmp_path / "local"))
    up = Client(app_server)
    assert isinstance(up.store, RestTrackingStore)  # the server answers: nothing changes
    port = _closed_port()
    down = f"http://127.0.0.1:{port}"
    clients = [up, Client(down), Client(down)]
    with pytest.warns(OfflineWarning, match="fitscribe push"):
        first = clients[1].store
    second = clients[2].store  # decided once per process: no second probe, no second warning
    assert not isinstance(first, RestTrackingStore) and type(second) is type(first)
    clients[1].create_experiment("written locally")
    assert (tmp_path / "local" / "tracking.db").is_file() and clients[2].get_experiment_by_name("written locally")
    back = create_app(str(tmp_path / "came-back"), ui=False)
    with ThreadedServer(back, port=port):  # the server comes back: this process stays local until it ends
        clients.append(Client(down))
        assert not isinstance(clients[-1].store, RestTrackingStore)
    monkeypatch.setenv("FITSCRIBE_OFFLINE", "")
    fitscribe.fluent.reset()
    clients.append(Client(down))
    assert isinstance(clients[-1].store, RestTrackingStore)  # unset: today's behaviour
    for client in clients:
        client.close()
