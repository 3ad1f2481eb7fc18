"""Chaos: logging processes SIGKILLed at random moments, a server killed and restarted, many
writers at once; the calls that had RETURNED are counted against the points stored (issue 11).

Each logging child acknowledges every call once it has returned, through a pipe (what reached the
pipe before a SIGKILL is still read by the parent). The guarantees checked are the README's:

- embedded store: a point is safe once ``log_metric``/``log_batch`` returned (it is in the journal);
- REST store: a point is safe once ``flush()`` returned (sent and answered, or journaled, fsynced).

So every acknowledged point must be stored, exactly once; a call in flight at the kill may or may
not be stored, but never twice. Children are forked from a forkserver that has fitscribe imported,
so 50 kills take seconds, not a minute of interpreter start-ups. The seed is printed on failure.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

import pytest

import fitscribe
from fitscribe.entities import Metric

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("FITSCRIBE_CHAOS_SEED", "0")) or random.SystemRandom().randrange(1, 10**6)
STEPS_PER_CHILD = 100_000  # a child's step range: child i logs steps i*STEPS_PER_CHILD + k


@pytest.fixture(scope="module")
def forkserver() -> Any:
    """A multiprocessing context whose children start from a process with fitscribe imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["fitscribe", "fitscribe.backends.sql.lite", "fitscribe.backends.rest",
                                    "fitscribe.cli", "fitscribe.server.app", "fitscribe.server.run", "uvicorn"])
    return context


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    print(f"chaos seed: FITSCRIBE_CHAOS_SEED={SEED}")
    return random.Random(f"{SEED}-{request.node.name}")


# -- children (run in forked processes) -------------------------------------------------------------
def _embedded_child(uri: str, run_id: str, first: int, acks: Connection) -> None:
    """Log points to ``run_id`` until killed; ack the steps of each call once it has returned."""
    client = fitscribe.Client(uri)
    acks.send("ready")
    step = first
    while step < first + STEPS_PER_CHILD - 10:
        if step % 7 == 0:
            steps = list(range(step, step + 5))
            client.log_batch(run_id, metrics=[Metric("m", float(s), 1000 + s, s) for s in steps])
        else:
            steps = [step]
            client.log_metric(run_id, "m", float(step), timestamp=1000 + step, step=step)
        acks.send(steps)
        step += len(steps)


def _rest_child(url: str, run_id: str, first: int, journal: str, acks: Connection) -> None:
    """Log points to a server until killed; ack them each time ``flush()`` has returned."""
    os.environ["FITSCRIBE_REST_JOURNAL_DIR"] = journal
    warnings.simplefilter("ignore")  # "server unreachable, kept in the journal" is expected here
    client = fitscribe.Client(url)
    acks.send("ready")
    step = first
    while step < first + STEPS_PER_CHILD - 20:
        steps = list(range(step, step + 20))
        for s in steps:
            client.log_metric(run_id, "m", float(s), timestamp=1000 + s, step=s)
        client.flush()
        acks.send(steps)
        step += len(steps)


def _steady_child(uri: str, run_id: str, key: str, count: int) -> None:
    """Log ``count`` points under ``key`` and end normally."""
    client = fitscribe.Client(uri)
    for start in range(0, count, 50):
        if start % 100 == 0:
            for s in range(start, start + 50):
                client.log_metric(run_id, key, float(s), timestamp=1000 + s, step=s)
        else:
            client.log_batch(run_id, metrics=[Metric(key, float(s), 1000 + s, s) for s in range(start, start + 50)])
    client.log_param(run_id, key, str(count))
    client.flush()


def _forked_fluent_child(key: str, count: int) -> None:
    """In a child forked from a process with an active run: log to it with the fluent API."""
    for s in range(count):
        fitscribe.log_metric(key, float(s), step=s)


# -- parent side --------------------------------------------------------------------------------------
class Child:
    """A logging child process and the steps it acknowledged."""

    def __init__(self, context: Any, target: Any, *args: Any) -> None:
        self.reader, writer = context.Pipe(duplex=False)
        self.process = context.Process(target=target, args=(*args, writer), daemon=True)
        self.process.start()
        writer.close()
        self.acked: list[int] = []
        self.ready = False

    def read(self, calls: int, deadline: float) -> None:
        """Wait for ``calls`` more acknowledged calls (fewer if the child ends)."""
        while calls > 0:
            assert time.monotonic() < deadline, f"child stalled after {len(self.acked)} acked points (seed {SEED})"
            if not self.reader.poll(0.05):
                continue
            try:
                message = self.reader.recv()
            except EOFError:
                return
            if message == "ready":
                self.ready = True
            else:
                self.acked.extend(message)
                calls -= 1

    def kill(self) -> None:
        """SIGKILL the child, then collect every acknowledgement it wrote before dying."""
        if self.process.pid is not None and self.process.exitcode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(30)
        while True:
            try:
                message = self.reader.recv()
            except EOFError:
                break
            if message == "ready":
                self.ready = True
            else:
                self.acked.extend(message)
        self.reader.close()


def _check(history: list[Metric], acked: list[int], what: str) -> None:
    steps = [m.step for m in history]
    twice = [s for s, n in Counter(steps).items() if n > 1]
    assert not twice, f"{what}: {len(twice)} steps stored twice, e.g. {twice[:5]} (seed {SEED})"
    lost = sorted(set(acked) - set(steps))
    assert not lost, f"{what}: {len(lost)} of {len(acked)} returned points lost, e.g. {lost[:5]} (seed {SEED})"
    assert all(m.value == float(m.step) for m in history), f"{what}: a value does not match its step"


def test_embedded_store_sigkilled_50_times_loses_nothing_returned_and_stores_nothing_twice(
    tmp_path: Path, forkserver: Any, rng: random.Random
) -> None:
    uri = str(tmp_path / "store")
    creator = fitscribe.Client(uri)
    run_id = creator.create_run("0").info.run_id
    creator.close()
    acked: list[int] = []
    deadline = time.monotonic() + 120
    for i in range(50):
        child = Child(forkserver, _embedded_child, uri, run_id, i * STEPS_PER_CHILD)
        if rng.random() < 0.2:  # while it opens the store (and replays the last one's journal)
            child.reader.poll(rng.uniform(0, 0.05))
        else:
            child.read(1, deadline)  # "ready"... then some calls
            child.read(rng.randrange(0, 400), deadline)
        child.kill()
        assert child.process.exitcode == -signal.SIGKILL, f"child {i} ended before the kill: {child.process.exitcode}"
        acked.extend(child.acked)
    client = fitscribe.Client(uri)  # a new process-level store: replays what the last child left
    history = client.get_metric_history(run_id, "m")
    client.close()
    print(f"{len(acked)} points acknowledged, {len(history)} stored")
    assert len(acked) > 1000  # the children did log: the test is not vacuous
    _check(history, acked, "embedded store")


def _serve(argv: list[str]) -> None:
    """Run ``fitscribe server ...`` (what ``python -m fitscribe server ...`` runs) in this process."""
    from fitscribe.cli import main

    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process ends by SIGKILL
    main(argv)


class Server:
    """``fitscribe server`` on a SQLite file in a child process; SIGKILLed and restarted on its port.

    The process is forked from the forkserver (fitscribe and its server preloaded), so a restart takes
    a fraction of a second instead of an interpreter start-up: 20 restarts stay cheap.
    """

    def __init__(self, tmp_path: Path, context: Any) -> None:
        self.db = tmp_path / "server.db"
        self.artifacts = tmp_path / "artifacts"
        self.context = context
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import httpx

        argv = ["server", "--backend-store-uri", f"sqlite:///{self.db}", "--artifacts-destination",
                str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = self.context.Process(target=_serve, args=(argv,), daemon=True)
        self.process.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.exitcode is None, f"the server exited with {self.process.exitcode}"
            assert time.monotonic() < deadline, "the server did not answer /health"
            time.sleep(0.02)  # polling /health, bounded by the deadline

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()  # SIGKILL: no shutdown hook runs
            self.process.join(30)
            self.process = None


@pytest.fixture
def server(tmp_path: Path, forkserver: Any) -> Iterator[Server]:
    proc = Server(tmp_path, forkserver)
    proc.start()
    yield proc
    proc.kill()


def test_server_killed_and_restarted_20_times_under_sigkilled_clients(
    tmp_path: Path, server: Server, forkserver: Any, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "rest-journal"
    monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(journal))
    creator = fitscribe.Client(server.url)
    run_id = creator.create_run("0").info.run_id
    creator.close()
    acked: list[int] = []
    deadline = time.monotonic() + 300
    for i in range(20):
        child = Child(forkserver, _rest_child, server.url, run_id, i * STEPS_PER_CHILD, str(journal))
        child.read(1 + rng.randrange(0, 4), deadline)  # ready, then up to 3 flushed chunks
        server.kill()  # at a random moment of the child's logging
        restart = threading.Thread(target=server.start)
        restart.start()
        if i % 5 == 0:  # sometimes the server stays down until a flush gives up retrying and journals
            child.read(1, deadline)
        restart.join()
        child.read(rng.randrange(0, 3), deadline)
        child.kill()
        acked.extend(child.acked)
    subprocess.run([sys.executable, "-m", "fitscribe", "sync", "--tracking-uri", server.url], check=True,
                   env={**os.environ, "FITSCRIBE_REST_JOURNAL_DIR": str(journal)}, capture_output=True, timeout=120)
    server.kill()  # every answer given: read the database itself
    reader = fitscribe.Client(f"sqlite:///{server.db}")
    history = reader.get_metric_history(run_id, "m")
    reader.close()
    print(f"{len(acked)} points acknowledged, {len(history)} stored")
    assert len(acked) >= 20 * 20
    _check(history, acked, "REST store")


def test_eight_processes_write_one_store_at_once(tmp_path: Path, forkserver: Any) -> None:
    uri = str(tmp_path / "store")
    creator = fitscribe.Client(uri)
    run_id = creator.create_run("0").info.run_id
    creator.close()
    children = [forkserver.Process(target=_steady_child, args=(uri, run_id, f"p{i}", 1500)) for i in range(8)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [c.exitcode for c in children] == [0] * 8
    client = fitscribe.Client(uri)
    run = client.get_run(run_id)
    assert run.data.params == {f"p{i}": "1500" for i in range(8)}
    for i in range(8):
        history = client.get_metric_history(run_id, f"p{i}")
        assert [m.step for m in history] == list(range(1500)), f"p{i}"
    client.close()


def test_forked_children_log_to_the_parents_run_and_exit(tmp_path: Path) -> None:
    """Forked children log to the parent's run through its fluent state while the parent logs too.

    The parent's journal thread is busy at the forks: each fork waits for it to leave SQLite
    (fitscribe/_fork.py; before, a child forked mid-commit hung for ever, test_fork_safety.py).
    """
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    context = multiprocessing.get_context("fork")
    with fitscribe.start_run() as run:
        fitscribe.log_metric("parent", 0.0, step=0)  # the store, its journal and its thread are in use
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads
            children = [context.Process(target=_forked_fluent_child, args=(f"child{i}", 300)) for i in range(4)]
            for child in children:
                child.start()
        for s in range(1, 300):
            fitscribe.log_metric("parent", float(s), step=s)
        for child in children:
            child.join(60)
        hung = [c.pid for c in children if c.exitcode is None]
        for child in children:
            if child.exitcode is None:
                child.kill()
                child.join(10)
        assert not hung, f"forked children {hung} did not exit within 60 s"
        assert [c.exitcode for c in children] == [0] * 4
    client = fitscribe.Client(str(tmp_path / "store"))
    for key in ["parent", *(f"child{i}" for i in range(4))]:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(300)), key
    client.close()


def test_threads_that_come_and_go_log_every_point_once(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id
    fitscribe.set_tracking_uri(client.tracking_uri)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for s in range(20):
                client.log_metric(run_id, "m", float(i * 20 + s), timestamp=1000, step=i * 20 + s)
            client.log_param(run_id, f"t{i}", str(i))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    for wave in range(25):  # 200 threads, 8 alive at a time, each gone before the next wave
        threads = [threading.Thread(target=work, args=(wave * 8 + j,)) for j in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    history = client.get_metric_history(run_id, "m")
    assert sorted(m.step for m in history) == list(range(200 * 20))
    assert len(client.get_run(run_id).data.params) == 200
    client.close()
