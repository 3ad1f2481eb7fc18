"""The REST store against a real ``fitscribe server`` process that dies: nothing lost, nothing twice.

The server runs as a subprocess (``python -m fitscribe server``) on a SQLite file or a PostgreSQL
database; it is SIGKILLed in the middle of a training loop and started again on the same port. Also:
a server down for the whole run (training is not held up, the run is ended in the journal, a later
process replays it), a lost answer (a TCP proxy drops one log-batch response after the server
committed it: the retry carries the same request id and is not stored twice), and damaged journals.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import fitscribe
from fitscribe import errors
from fitscribe.backends.rest import RestTrackingStore
from fitscribe.backends.rest.queue import REQUEST_ID_HEADER
from fitscribe.entities import Metric, RunStatus

STEPS = 2000


class ServerProcess:
    """``python -m fitscribe server`` in a subprocess; restartable on the port it first got."""

    def __init__(self, store_uri: str, artifacts: Path) -> None:
        self.store_uri = store_uri
        self.artifacts = artifacts
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URL."""
        command = [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", self.store_uri,
                   "--artifacts-destination", str(self.artifacts), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the announcement, once the socket is bound
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, f"no URL announced: {line!r} {self.process.stderr.read() if self.process.stderr else ''}"
        self.port = int(found.group(1))
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health"
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown hook runs) and reap it."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.communicate(timeout=30)
            self.process = None


@pytest.fixture
def journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "journal"
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(folder))
    return folder


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path, journal_dir: Path) -> Iterator[ServerProcess]:
    """A server subprocess on a SQLite file, or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    else:
        uri = str(request.getfixturevalue("postgresql_uri"))
    proc = ServerProcess(uri, tmp_path / "artifacts")
    yield proc
    proc.kill()


def _journal_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_server_killed_and_restarted_mid_run_loses_nothing(server: ServerProcess, journal_dir: Path) -> None:
    """SIGKILL at step 700, restarted on the same port while training goes on; waited for (it answers
    /health) at step 1400, then training goes on: every point once, params, tags, FINISHED."""
    client = fitscribe.Client(server.start())
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", 0.01)
    restarted = threading.Thread(target=server.start)
    for step in range(STEPS):
        if step == 700:
            server.kill()  # points in flight; steps 700-1399 are logged while it is down or booting
            restarted.start()
        if step == 1400:
            restarted.join()  # back: the rest is logged to the restarted server
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=1000 + step, step=step)
        client.log_metric(run_id, "acc", step / STEPS, timestamp=1000 + step, step=step)
        if step % 250 == 0:
            client.set_tag(run_id, "epoch", str(step // 250))
            client.log_param(run_id, f"p{step}", step)
    client.set_terminated(run_id, "FINISHED")
    client.flush()
    for key, expected in (("loss", [1.0 / (s + 1) for s in range(STEPS)]), ("acc", [s / STEPS for s in range(STEPS)])):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == list(range(STEPS)), key  # every step exactly once
        assert [m.value for m in history] == expected
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.FINISHED and run.info.end_time
    assert run.data.params == {"lr": "0.01", **{f"p{s}": str(s) for s in range(0, STEPS, 250)}}
    assert run.data.tags["epoch"] == str((STEPS - 1) // 250)
    client.close()
    assert not _journal_files(journal_dir)  # all replayed, files removed


def test_server_down_all_along_ends_the_run_in_the_journal_for_a_later_process(tmp_path: Path, journal_dir: Path) -> None:
    """Training with the server gone: not held up, no exception, run ended; the exit warning names
    the journal and `fitscribe sync`, which fails while the server is down and, once it is back, sends
    it all in order from another process (the run ends FINISHED)."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'tracking.db'}", tmp_path / "artifacts")
    url = server.start()
    store = RestTrackingStore(url)
    run_id = store.create_run("0", "alice", 1000).info.run_id
    store.close()
    server.kill()
    script = f"""
import time, fitscribe
client = fitscribe.Client({url!r})
started = time.monotonic()
for step in range(1000):
    client.log_metric({run_id!r}, "m", float(step), timestamp=1000, step=step)
client.log_param({run_id!r}, "batch", 32)
client.set_terminated({run_id!r}, "FINISHED")
client.flush()
print("elapsed", time.monotonic() - started)
"""
    env = {**os.environ, "FITSCRIBE_REST_JOURNAL_DIR": str(journal_dir), "PYTHONWARNINGS": "always"}
    child = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    elapsed = float(child.stdout.split()[-1])
    assert elapsed < 15, f"training was held up {elapsed:.1f} s by a dead server"  # generous: ~3-4 s expected
    assert "wait in the journal" in child.stderr and "fitscribe sync" in child.stderr
    files = [p for p in _journal_files(journal_dir) if p.suffix == ".jsonl"]
    assert len(files) == 1 and str(files[0]) in child.stderr  # the warning names the file
    assert b"runs/update" in files[0].read_bytes()

    sync = [sys.executable, "-m", "fitscribe", "sync", "--tracking-uri", url]
    still_down = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=120)
    assert still_down.returncode == 1 and "unreachable" in still_down.stderr  # said, and kept
    assert files[0].exists()

    server.start()
    try:
        synced = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=120)  # a later process
        assert synced.returncode == 0 and re.search(r"Sent \d+\.\d kB .* nothing waits", synced.stdout), synced
        later = RestTrackingStore(url)
        assert [m.step for m in later.get_metric_history(run_id, "m")] == list(range(1000))
        run = later.get_run(run_id)
        assert run.info.status == RunStatus.FINISHED and run.data.params == {"batch": "32"}
        later.close()
        assert not _journal_files(journal_dir)
    finally:
        server.kill()


def test_ending_a_run_while_the_server_is_down_is_journaled_after_its_points(tmp_path: Path, journal_dir: Path) -> None:
    """end_run with the server gone returns (a warning, no exception); the update is sent after the
    points once the server is back, so the run is FINISHED with all of them."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'tracking.db'}", tmp_path / "artifacts")
    fitscribe.set_tracking_uri(server.start())
    try:
        with pytest.warns(errors.FitscribeWarning, match="unreachable.*wait in the journal"):
            with fitscribe.start_run() as run:
                run_id = run.info.run_id
                fitscribe.log_metric("x", 0.0, step=0)
                fitscribe.flush()
                server.kill()
                for step in range(1, 300):
                    fitscribe.log_metric("x", float(step), step=step)
        client = fitscribe.fluent.get_client()
        assert isinstance(client.store, RestTrackingStore) and client.store.pending()
        server.start()
        fitscribe.flush()
        assert not client.store.pending()
        assert [m.step for m in client.get_metric_history(run_id, "x")] == list(range(300))
        assert client.get_run(run_id).info.status == RunStatus.FINISHED
    finally:
        server.kill()


class DropOneAnswer:
    """A TCP proxy on 127.0.0.1 that forwards everything, except that it swallows the answer to the
    first log-batch request (after the server sent it, so the batch is committed) and hangs up."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.batches = 0
        self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            drop = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, drop), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, drop), daemon=True).start()

    def _requests(self, source: socket.socket, target: socket.socket, drop: threading.Event) -> None:
        while data := _recv(source):
            if b"runs/log-batch" in data:
                with self._lock:
                    self.batches += 1
                    if self.dropped == 0:
                        self.dropped = 1
                        drop.set()
            target.sendall(data)
        _close(source, target)

    def _answers(self, source: socket.socket, target: socket.socket, drop: threading.Event) -> None:
        while data := _recv(source):
            if drop.is_set():  # the answer to the batch: swallow it and hang up on the client
                break
            target.sendall(data)
        _close(source, target)

    def close(self) -> None:
        """Stop accepting connections."""
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def test_a_batch_whose_answer_was_lost_is_not_stored_twice(tmp_path: Path, journal_dir: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'tracking.db'}", tmp_path / "artifacts")
    server.start()
    proxy = DropOneAnswer(server.port)
    try:
        store = RestTrackingStore(f"http://127.0.0.1:{proxy.port}")
        run_id = store.create_run("0", "alice", 1000).info.run_id
        store.log_batch(run_id, [Metric("m", float(s), 1000, s) for s in range(500)])
        store.flush()
        assert proxy.dropped == 1 and proxy.batches >= 2  # the batch went twice; the first answer was lost
        assert [m.step for m in store.get_metric_history(run_id, "m")] == list(range(500))  # stored once
        store.close()
    finally:
        proxy.close()
        server.kill()


def test_server_applies_a_request_id_once_and_requests_without_one_as_sent(tracking_uri: str, tmp_path: Path) -> None:
    """On SQLite, PostgreSQL and MariaDB: the same X-Fitscribe-Request-Id twice stores one point;
    the mlflow client's requests (no header) are applied each time; a malformed id is a 400."""
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    with ThreadedServer(create_app(tracking_uri, str(tmp_path / "artifacts"))) as served:
        api = f"{served.url}/api/2.0/mlflow"
        run_id = httpx.post(f"{api}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        body = {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}
        request_id = uuid.uuid4().hex
        for _ in range(2):
            answer = httpx.post(f"{api}/runs/log-batch", json=body, headers={REQUEST_ID_HEADER: request_id})
            assert answer.status_code == 200 and answer.json() == {}
        once = httpx.get(f"{api}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}).json()
        assert len(once["metrics"]) == 1
        other = {**body, "metrics": [{"key": "n", "value": 1.0, "timestamp": 1, "step": 0}]}
        for _ in range(2):
            assert httpx.post(f"{api}/runs/log-batch", json=other).status_code == 200
        twice = httpx.get(f"{api}/metrics/get-history", params={"run_id": run_id, "metric_key": "n"}).json()
        assert len(twice["metrics"]) == 2
        bad = httpx.post(f"{api}/runs/log-batch", json=body, headers={REQUEST_ID_HEADER: "no spaces allowed"})
        assert bad.status_code == 400 and "request id" in bad.json()["message"]


def test_damaged_journal_records_are_reported_and_skipped(tmp_path: Path, journal_dir: Path) -> None:
    """An orphaned journal with a good record, a line that is not JSON and a torn last line: the good
    one is replayed, the damage is reported with the file's name, and the file is removed."""
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    with ThreadedServer(create_app(f"sqlite:///{tmp_path / 'tracking.db'}", str(tmp_path / "artifacts"))) as served:
        store = RestTrackingStore(served.url)
        run_id = store.create_run("0", "alice", 1000).info.run_id
        folder = Path(store._queue.journal.folder)
        folder.mkdir(parents=True)
        good = {"_id": uuid.uuid4().hex, "run_id": run_id,
                "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}
        orphan = folder / "12345-deadbeef.jsonl"  # no process holds its lock: an orphan
        orphan.write_bytes(json.dumps(good).encode() + b"\n" + b"\x00garbage\n" + b'{"run_id": "' )
        with pytest.raises(errors.BackendError, match=r"damaged record.*12345-deadbeef\.jsonl.*unfinished last record"):
            store.flush()
        assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0]
        assert not orphan.exists()
        store.close()


def test_sync_needs_a_tracking_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.cli import main

    assert main(["sync", "--tracking-uri", str(tmp_path / "store")]) == 1
    assert "is not a tracking server" in capsys.readouterr().err


def test_request_ids_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    """About one insert in PRUNE_ONE_IN (by a hash of its id) deletes ids past the retention."""
    import zlib

    import sqlalchemy as sa

    from fitscribe.backends.sql import request_ids, tables

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ids.db'}")
    tables.metadata.create_all(engine, tables=[tables.request_ids])
    now = int(time.time() * 1000)
    pruning = next(f"id-{n:08d}" for n in range(100_000) if zlib.crc32(f"id-{n:08d}".encode()) % request_ids.PRUNE_ONE_IN == 0)
    quiet = next(f"id-{n:08d}" for n in range(100_000) if zlib.crc32(f"id-{n:08d}".encode()) % request_ids.PRUNE_ONE_IN)
    with engine.begin() as conn:
        conn.execute(tables.request_ids.insert(), [{"request_id": "old-00001", "created_time": now - request_ids.RETENTION_MS - 1},
                                                   {"request_id": "new-00001", "created_time": now - 1000}])
        request_ids.record(conn, quiet)
        assert request_ids.applied(conn, "old-00001")  # not this one's turn to prune
        request_ids.record(conn, pruning)
        assert not request_ids.applied(conn, "old-00001")
        assert all(request_ids.applied(conn, i) for i in ("new-00001", quiet, pruning))
    engine.dispose()


def test_a_run_left_open_at_exit_with_the_server_down_is_ended_in_the_journal(tmp_path: Path, journal_dir: Path) -> None:
    """The exit hooks journal the points and the run's end (after them, even though the store's own
    hook has closed it by then); a later store replays both in order."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'tracking.db'}", tmp_path / "artifacts")
    url = server.start()
    ready, go = tmp_path / "ready", tmp_path / "go"
    script = f"""
import os, time, fitscribe
fitscribe.set_tracking_uri({url!r})
print(fitscribe.start_run().info.run_id, flush=True)
fitscribe.log_metric("a", 0.0, step=0)
fitscribe.flush()
open({str(ready)!r}, "w").close()
while not os.path.exists({str(go)!r}):
    time.sleep(0.01)
for step in range(1, 100):
    fitscribe.log_metric("a", float(step), step=step)
# the script ends with its run open
"""
    env = {**os.environ, "FITSCRIBE_REST_JOURNAL_DIR": str(journal_dir)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.01)
    server.kill()
    go.touch()
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and "fitscribe sync" in err, err
    names = sorted(p.name for p in _journal_files(journal_dir) if p.suffix == ".jsonl")
    assert b"runs/update" in (next(journal_dir.rglob(names[-1]))).read_bytes()  # the end comes last
    server.start()
    try:
        store = RestTrackingStore(url)
        store.sync()
        run_id = out.split()[0]
        assert [m.step for m in store.get_metric_history(run_id, "a")] == list(range(100))
        assert store.get_run(run_id).info.status == RunStatus.FINISHED
        store.close()
    finally:
        server.kill()


def test_schema_0003_store_upgrades_to_request_ids(tmp_path: Path) -> None:
    """A store at revision 0003 (committed file: schema_0002.db migrated once, never regenerated) is
    refused until upgraded (0004 adds request ids); then its history is intact and log_batch applies
    a request id once."""
    import shutil

    from fitscribe.backends.sql import tables
    from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema
    from fitscribe.backends.sql.store import SqlTrackingStore

    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "schema_0003.db", folder / "tracking.db")
    with pytest.raises(errors.SchemaVersionError, match=rf"'0003'.*'{tables.SCHEMA_REVISION}'.*fitscribe db upgrade"):
        fitscribe.Client(str(folder)).search_runs("1")
    engine = make_engine(parse_database_uri(str(folder)))
    assert upgrade_schema(engine) == ("0003", tables.SCHEMA_REVISION)
    engine.dispose()
    store = SqlTrackingStore(str(folder))
    run_id = store.search_runs(["1"], "attributes.run_name = 'old-run'")[0].info.run_id
    assert [m.value for m in store.get_metric_history(run_id, "long")] == [float(i) for i in range(2500)]
    request_id = uuid.uuid4().hex
    for _ in range(2):
        store.log_batch(run_id, [Metric("new", 1.0, 1000, 0)], request_id=request_id)
    assert len(store.get_metric_history(run_id, "new")) == 1
    store.close()
