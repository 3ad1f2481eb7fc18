"""The REST store (``http://`` tracking URIs) against a real uvicorn server on 127.0.0.1 (port 0).

One server runs for the module; each test mounts a fresh app with its own SQLite store under a path
prefix (``http://127.0.0.1:<port>/s<n>``), so every test starts from an empty store and the prefix
handling is exercised everywhere. The same conformance suites as the database stores run through
it, then: the fluent API end to end (10,000 metrics, an artifact, read back exactly), each error
class raised again on the client, a server killed and restarted during a training loop, refusals
raised by ``flush()``, credentials, and the artifact proxy store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import fitscribe
from fitscribe import errors
from fitscribe.backends import get_artifact_store, get_tracking_store
from fitscribe.backends.base import ModelRegistryStore, TrackingStore
from fitscribe.backends.rest import MlflowArtifactsStore, RestTrackingStore, ServerUnavailableError
from fitscribe.entities import Metric, Param, RunTag
from fitscribe.server import create_app
from fitscribe.server.run import ThreadedServer
from fitscribe.testing.model_registry_suite import ModelRegistryStoreSuite
from fitscribe.testing.tracking_store_suite import TrackingStoreSuite

NO_MIN_MAX = ("MLflow's Run JSON carries only the latest point of each metric: over REST, metric_summaries "
              "have no min/max (test_metric_summaries_over_rest checks the rest)")
NO_PURGE = "MLflow's REST API has no purge: `fitscribe gc` purges with the database URI (test_purge_is_refused)"


class Recorder:
    """An ASGI wrapper keeping the headers of the requests an app receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.headers.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@dataclass
class Hub:
    """One uvicorn server; each test mounts its own app (its own store) under ``/s<n>``."""

    server: ThreadedServer
    app: Starlette
    count: int = 0
    mounted: list[Any] = field(default_factory=list)

    def mount(self, root: Path) -> tuple[str, Recorder]:
        self.count += 1
        child = create_app(str(root / "store"), str(root / "artifacts"))
        recorder = Recorder(child)
        self.app.router.routes.append(Mount(f"/s{self.count}", app=recorder))
        self.mounted.append(child)
        return f"{self.server.url}/s{self.count}", recorder


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    app = Starlette()
    with ThreadedServer(app) as server:
        hub = Hub(server, app)
        yield hub
        for child in hub.mounted:
            child.state.server.close()


@dataclass
class Served:
    url: str
    root: Path
    recorder: Recorder


@pytest.fixture
def served(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    """A fresh store behind the shared server; the REST journal in this test's folder."""
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    url, recorder = hub.mount(tmp_path)
    return Served(url, tmp_path, recorder)


class TestRestStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, served: Served) -> Iterator[TrackingStore]:
        store = get_tracking_store(served.url)
        yield store
        store.close()

    @pytest.mark.skip(reason=NO_MIN_MAX)
    def test_metric_history_and_latest(self, store: TrackingStore) -> None: ...

    @pytest.mark.skip(reason=NO_MIN_MAX)
    def test_nan_and_infinity_round_trip(self, store: TrackingStore) -> None: ...

    @pytest.mark.skip(reason=NO_PURGE)
    def test_purge_run(self, store: TrackingStore) -> None: ...


class TestRestModelRegistry(ModelRegistryStoreSuite):
    @pytest.fixture
    def registry(self, served: Served) -> Iterator[ModelRegistryStore]:
        store = get_tracking_store(served.url)
        yield store.registry  # type: ignore[attr-defined]
        store.close()


# -- what the suites skip, over REST ---------------------------------------------------------------
def test_metric_summaries_over_rest(served: Served) -> None:
    store = RestTrackingStore(served.url)
    run_id = store.create_run("0", "alice", 1000).info.run_id
    for step, value in [(0, 3.0), (2, 1.0), (1, 2.0)]:
        store.log_metric(run_id, Metric("loss", value, 1000 + step, step))
    values = [float("nan"), float("inf"), float("-inf"), 1.5, -0.0, 1e-300, 1.7976931348623157e307]
    store.log_batch(run_id, metrics=[Metric("m", x, 1000, i) for i, x in enumerate(values)])
    assert [(m.step, m.value) for m in store.get_metric_history(run_id, "loss")] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    got = [m.value for m in store.get_metric_history(run_id, "m")]
    assert got[0] != got[0] and got[1:3] == [float("inf"), float("-inf")] and got[3:] == values[3:]
    run = store.get_run(run_id)
    assert run.data.metrics["loss"] == 1.0 and run.data.metrics["m"] == values[-1]
    summary = run.data.metric_summaries["loss"]
    assert (summary.latest, summary.step, summary.timestamp, summary.min, summary.max) == (1.0, 2, 1002, None, None)
    store.close()


def test_purge_is_refused(served: Served) -> None:
    store = RestTrackingStore(served.url)
    run_id = store.create_run("0", "alice", 1000).info.run_id
    store.update_run_info(run_id, lifecycle_stage="deleted")
    assert store.deleted_run_ids() == [run_id]
    with pytest.raises(errors.ConfigError, match="fitscribe gc"):
        store.purge_run(run_id)
    with pytest.raises(errors.ConfigError, match="fitscribe gc"):
        store.deleted_run_ids(older_than_ms=0)
    store.close()


# -- the fluent API end to end ---------------------------------------------------------------------
def test_fluent_api_end_to_end(served: Served, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello over http\n")
    fitscribe.set_tracking_uri(served.url)
    fitscribe.set_experiment("fluent")
    started = time.perf_counter()
    with fitscribe.start_run(run_name="fluent-run") as run:
        fitscribe.log_param("lr", 0.01)
        for i in range(10_000):
            fitscribe.log_metric("loss", 1.0 / (i + 1), step=i)
        fitscribe.set_tag("stage", "dev")
        fitscribe.log_artifact(str(notes), "docs")
    elapsed = time.perf_counter() - started
    assert elapsed < 10  # the figure (well under 1 s here) is in the README; this only catches a stall

    client = fitscribe.Client(served.url)
    got = client.get_run(run.info.run_id)
    assert (got.info.run_name, got.info.status) == ("fluent-run", "FINISHED") and got.info.end_time
    assert got.data.params == {"lr": "0.01"} and got.data.tags["stage"] == "dev"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, 1.0 / (i + 1)) for i in range(10_000)]
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["docs"]
    local = client.download_artifacts(run.info.run_id, "docs/notes.txt", str(tmp_path / "down"))
    assert Path(local).read_text() == "hello over http\n"
    exp_id = got.info.experiment_id
    on_disk = served.root / "artifacts" / exp_id / run.info.run_id / "artifacts" / "docs" / "notes.txt"
    assert on_disk.read_text() == "hello over http\n"  # stored by the server, through its proxy
    client.close()


# -- errors come back as the same class ------------------------------------------------------------
_PUBLIC = [getattr(errors, name) for name in errors.__all__
           if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), errors.FitscribeError)]


@pytest.mark.parametrize("cls", _PUBLIC, ids=lambda c: c.__name__)
def test_every_error_class_round_trips(cls: type[errors.FitscribeError]) -> None:
    from fitscribe.backends.rest.http import error_for
    from fitscribe.server.errors import error_body

    body, status = error_body(cls("what went wrong"))
    raised = error_for(status, body, "POST x on http://h")
    assert isinstance(raised, cls)
    if cls is errors.BackendError:  # a store the server cannot reach: worth retrying (503)
        assert isinstance(raised, ServerUnavailableError) and raised.processed is False
    else:
        assert type(raised) is cls and str(raised) == "what went wrong"


def test_errors_over_http_are_the_server_side_classes(served: Served) -> None:
    store = RestTrackingStore(served.url)
    run_id = store.create_run("0", "alice", 1000).info.run_id
    with pytest.raises(errors.RunNotFound, match="0" * 32):
        store.get_run("0" * 32)
    with pytest.raises(errors.ExperimentNotFound, match="'12345'"):
        store.get_experiment("12345")
    with pytest.raises(errors.NotFoundError) as missing_tag:
        store.delete_tag(run_id, "absent")
    assert type(missing_tag.value) is errors.NotFoundError
    store.create_experiment("twice")
    with pytest.raises(errors.AlreadyExistsError, match="'twice' already exists"):
        store.create_experiment("twice")
    with pytest.raises(errors.InvalidValueError, match="metrics.acc"):
        store.search_runs(["0"], "metrics.acc > 'high'")
    with pytest.raises(errors.InvalidStateError, match="Default"):
        store.update_experiment("0", lifecycle_stage="deleted")
    with pytest.raises(errors.ModelNotFound, match="'ghost'"):
        store.get_registered_model("ghost")
    store.create_registered_model("m")
    with pytest.raises(errors.ModelVersionNotFound, match="no version 3"):
        store.get_model_version("m", 3)
    store.close()


def test_unknown_endpoint_is_a_backend_error_not_a_missing_resource(served: Served) -> None:
    store = RestTrackingStore(served.url)
    with pytest.raises(errors.BackendError, match="no such endpoint"):
        store._call("GET", "no-such/endpoint")
    store.close()


# -- refusals are raised by flush() ----------------------------------------------------------------
def test_param_conflict_is_raised_by_flush(served: Served) -> None:
    first, second = RestTrackingStore(served.url), RestTrackingStore(served.url)
    run_id = first.create_run("0", "alice", 1000).info.run_id
    first.log_batch(run_id, params=[Param("lr", "0.1")])
    first.flush()
    second.log_batch(run_id, metrics=[Metric("m", 1.0, 1000, 0)], params=[Param("lr", "0.2"), Param("fine", "1")],
                     tags=[RunTag("team", "a")])  # only queued: this store never saw 'lr'
    second.log_metric(run_id, Metric("ok", 2.0, 1000, 0))
    with pytest.raises(errors.InvalidValueError,
                       match=r"^The param 'lr' of run .* is already '0\.1'; it cannot change to '0\.2'.*refused a batch of 1 params"):
        second.flush()
    second.flush()  # reported once
    run = first.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "fine": "1"} and run.data.tags["team"] == "a"  # only 'lr' was lost
    assert run.data.metrics == {"m": 1.0, "ok": 2.0}
    with pytest.raises(errors.InvalidValueError, match=r"'lr' of run .* is already '0\.1'"):
        first.log_batch(run_id, params=[Param("lr", "0.3")])  # known to this store: refused at once
    first.close()
    second.close()


def test_refusal_is_raised_when_the_run_ends(served: Served) -> None:
    first, second = RestTrackingStore(served.url), RestTrackingStore(served.url)
    run_id = first.create_run("0", "alice", 1000).info.run_id
    first.log_batch(run_id, params=[Param("p", "a")])
    first.flush()
    second.log_batch(run_id, params=[Param("p", "b")])
    with pytest.raises(errors.InvalidValueError, match="already 'a'"):
        second.update_run_info(run_id, status=fitscribe.entities.RunStatus.FINISHED, end_time=2000)
    assert first.get_run(run_id).info.status == "FINISHED"  # the run was ended all the same
    first.close()
    second.close()


def test_unreported_refusal_is_a_warning_on_close(served: Served) -> None:
    first, second = RestTrackingStore(served.url), RestTrackingStore(served.url)
    run_id = first.create_run("0", "alice", 1000).info.run_id
    first.log_batch(run_id, params=[Param("p", "a")])
    first.close()
    second.log_batch(run_id, params=[Param("p", "b")])
    with pytest.warns(errors.FitscribeWarning, match="was lost.*already 'a'"):
        second.close()


# -- credentials ------------------------------------------------------------------------------------
def test_credentials_are_sent_and_never_shown(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    def authorization(store: RestTrackingStore) -> str:
        served.recorder.headers.clear()
        store.get_experiment("0")
        store.close()
        return served.recorder.headers[-1].get("authorization", "")

    assert authorization(RestTrackingStore(served.url)) == ""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-token")
    assert authorization(RestTrackingStore(served.url)) == "Bearer mlflow-token"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw1")
    assert authorization(RestTrackingStore(served.url)) == "Basic " + base64.b64encode(b"ann:pw1").decode()
    monkeypatch.setenv("FITSCRIBE_TRACKING_TOKEN", "fs-token")
    assert authorization(RestTrackingStore(served.url)) == "Bearer fs-token"
    with_password = served.url.replace("http://", "http://bob:s3cret@")
    store = RestTrackingStore(with_password)
    assert authorization(store) == "Basic " + base64.b64encode(b"bob:s3cret").decode()
    assert "s3cret" not in repr(store) and "s3cret" not in repr(store._session)
    with pytest.raises(errors.RunNotFound) as missing:
        store.get_run("0" * 32)
    assert "s3cret" not in str(missing.value)
    store.close()


def test_constructors_do_no_io_and_import_no_httpx() -> None:
    code = ("import sys, fitscribe; c = fitscribe.Client('http://127.0.0.1:9/x'); c.store; "
            "from fitscribe.backends import get_artifact_store; "
            "get_artifact_store('mlflow-artifacts:/1/a/artifacts', tracking_uri='http://127.0.0.1:9'); "
            "print('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


# -- a server that dies and comes back -------------------------------------------------------------
class Restartable:
    """A server on a fixed store and port, which a test can stop and start again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.server: ThreadedServer | None = None

    def start(self) -> str:
        self.server = ThreadedServer(create_app(str(self.root / "store"), str(self.root / "artifacts")), port=self.port)
        url = self.server.start()
        self.port = self.server.port
        return url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restartable]:
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    server = Restartable(tmp_path)
    yield server
    server.stop()


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_killed_server_blocks_nothing_and_loses_nothing(restartable: Restartable, tmp_path: Path) -> None:
    client = fitscribe.Client(restartable.start())
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", 0.1)
    blocked = 0.0
    journal = tmp_path / "journal"
    for step in range(6000):
        if step == 1000:
            restartable.stop()  # killed mid-run, with points in flight
        if step == 3000:  # the client has spent its 3 s retry budget: what it holds goes to the journal
            _wait_for(lambda: any(p.suffix == ".jsonl" for p in journal.rglob("*")))
        started = time.perf_counter()
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=1000 + step, step=step)
        if step % 1000 == 999:
            client.set_tag(run_id, "epoch", str(step // 1000))
        blocked += time.perf_counter() - started
    assert blocked < 1.0, f"log calls were blocked {blocked:.2f} s in total"
    with pytest.warns(errors.FitscribeWarning, match="unreachable.*wait in the journal"):
        client.flush()  # still down: reported (not raised into training), kept
    late = fitscribe.Client(client.tracking_uri)  # a new store cannot check the run: it takes it on trust
    started = time.perf_counter()
    for step in range(6000, 6100):
        late.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=1000 + step, step=step)
    assert time.perf_counter() - started < 4.0  # one check of the run (3 s of retries), then nothing
    restartable.start()  # the same store, the same port
    client.flush()
    late.flush()
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(6100)]  # none lost, none twice
    run = client.get_run(run_id)
    assert run.data.tags["epoch"] == "5" and run.data.params == {"lr": "0.1"}
    assert not [p for p in journal.rglob("*") if p.is_file()]  # replayed, then removed
    client.close()
    late.close()


def test_unsent_writes_are_journaled_at_exit_and_replayed_by_the_next_store(restartable: Restartable,
                                                                          tmp_path: Path) -> None:
    url = restartable.start()
    creator = RestTrackingStore(url)
    run_id = creator.create_run("0", "alice", 1000).info.run_id
    creator.close()
    go = tmp_path / "go"
    script = f"""
import os, time, fitscribe
client = fitscribe.Client({url!r})
for step in range(100):
    client.log_metric({run_id!r}, "m", float(step), timestamp=1000, step=step)
client.flush()
open({str(tmp_path / 'ready')!r}, "w").close()
while not os.path.exists({str(go)!r}):
    time.sleep(0.01)
for step in range(100, 500):
    client.log_metric({run_id!r}, "m", float(step), timestamp=1000, step=step)
# no flush, no close: the exit hook sends or journals
"""
    env = {**os.environ, "FITSCRIBE_REST_JOURNAL_DIR": str(tmp_path / "journal")}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (tmp_path / "ready").exists(), 30)
    restartable.stop()
    go.touch()
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert "wait in the journal" in stderr and "FitscribeWarning" in stderr  # reported at exit
    restartable.start()
    store = RestTrackingStore(url)  # the next store of this server adopts the orphaned journal
    store.flush()
    assert [m.step for m in store.get_metric_history(run_id, "m")] == list(range(500))
    store.close()


def test_dead_server_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once closed
    store = RestTrackingStore(f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ServerUnavailableError, match="no answer from the server"):
        store.create_run("0", "alice", 1000)
    assert time.perf_counter() - started < 5  # retried for about 3 s, then reported
    store.close()


class FailsOnPoison:
    """An ASGI wrapper answering 500 to log-batch requests that mention a metric named "poison"."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("runs/log-batch"):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b'"poison"' in body:
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"boom"})
            return

        async def replay() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def test_a_batch_the_server_keeps_failing_on_is_reported_not_retried_forever(hub: Hub, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
    url, recorder = hub.mount(tmp_path)
    recorder.app = FailsOnPoison(recorder.app)
    store = RestTrackingStore(url)
    store._queue.outage_budget, store._queue.probe_interval = 0.2, 0.05  # the 3 s and 1 s, shortened
    run_id = store.create_run("0", "alice", 1000).info.run_id
    store.log_metric(run_id, Metric("poison", 1.0, 1000, 0))
    with pytest.warns(errors.FitscribeWarning, match="HTTP 500"):
        store.flush()  # retried, then journaled: it could be an outage
    _wait_for(lambda: store._queue.journal.pending_bytes() == 0)  # the third failure drops it
    with pytest.raises(ServerUnavailableError, match="HTTP 500.*refused a batch of 1 metrics"):
        store.flush()
    store.log_metric(run_id, Metric("fine", 2.0, 1000, 0))
    store.flush()  # later batches are not held up
    assert store.get_run(run_id).data.metrics == {"fine": 2.0}
    store.close()


# -- artifacts through the proxy ---------------------------------------------------------------------
def test_artifacts_stream_through_the_proxy(served: Served, tmp_path: Path) -> None:
    client = fitscribe.Client(served.url)
    run = client.create_run("0")
    run_id = run.info.run_id
    assert run.info.artifact_uri == f"{served.url}/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts"
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40_000)  # 10 MB, streamed in chunks
    client.log_artifacts(run_id, str(folder), "tree")
    client.log_text(run_id, "üñï\n", "notes/hello.txt")
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [("notes", True), ("tree", True)]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "tree/sub")] == [("tree/sub/b.bin", 10_240_000)]
    assert client.list_artifacts(run_id, "notes/hello.txt") == [] and client.list_artifacts(run_id, "nope") == []
    down = Path(client.download_artifacts(run_id, "tree", str(tmp_path / "down")))
    assert (down / "sub" / "b.bin").read_bytes() == (folder / "sub" / "b.bin").read_bytes()
    whole = Path(client.download_artifacts(run_id, "", str(tmp_path / "all")))
    assert (whole / "notes" / "hello.txt").read_text(encoding="utf-8") == "üñï\n"
    with pytest.raises(errors.NotFoundError):
        client.download_artifacts(run_id, "tree/missing.txt", str(tmp_path / "x"))
    store = get_artifact_store(run.info.artifact_uri)
    assert isinstance(store, MlflowArtifactsStore)
    assert b"".join(store.open("tree/a.txt")) == b"a"
    store.delete("tree/sub")
    assert [f.path for f in client.list_artifacts(run_id, "tree")] == ["tree/a.txt"]
    client.close()


def test_mlflow_artifacts_uris_find_their_server(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = fitscribe.Client(served.url)
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, "x", "f.txt")
    bare = f"mlflow-artifacts:/0/{run_id}/artifacts"
    with pytest.raises(errors.ConfigError, match="FITSCRIBE_TRACKING_URI"):
        get_artifact_store(bare)
    assert [f.path for f in get_artifact_store(bare, tracking_uri=served.url).list()] == ["f.txt"]
    monkeypatch.setenv("FITSCRIBE_TRACKING_URI", served.url)
    assert [f.path for f in get_artifact_store(bare).list()] == ["f.txt"]
    exp_id = client.create_experiment("located", artifact_location=f"{served.url}/api/2.0/mlflow-artifacts/artifacts/x")
    assert client.store.get_experiment(exp_id).artifact_location.endswith("/api/2.0/mlflow-artifacts/artifacts/x")
    stored = fitscribe.Client(str(served.root / "store")).get_experiment(exp_id)
    assert stored.artifact_location == "mlflow-artifacts:/x"  # the server keeps the portable form
    client.close()
