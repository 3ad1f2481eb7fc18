"""The file-journal core: files locked before they are named, orphans, forks, bounded back-pressure."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fitscribe.backends.journal_core import ENV_CREATE_DELAY, TEMP_PREFIX, JournalFile, orphans
from fitscribe.backends.rest.journal import RestJournal
from fitscribe.backends.sql.journal import MetricJournal
from fitscribe.errors import BackendError


def _wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_rest_journal_being_created_cannot_be_adopted(tmp_path: Path) -> None:
    """Between creating its file and locking it (a forced pause), another process's adoption finds
    nothing to take; once the writer is killed, its file is adopted and replayed whole."""
    root = tmp_path / "journals"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal
        from fitscribe.backends.rest.journal import RestJournal
        journal = RestJournal("http://127.0.0.1:9", root={str(root)!r})
        journal.append([{{"_id": "a", "run_id": "r", "metrics": []}}, {{"_id": "b", "run_id": "r", "metrics": []}}])
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    writer = subprocess.Popen([sys.executable, str(script)], env={**os.environ, ENV_CREATE_DELAY: "2"},
                              stderr=subprocess.PIPE, text=True)
    adopter = RestJournal("http://127.0.0.1:9", root=str(root))
    try:
        _wait_for(lambda: Path(adopter.folder).is_dir() and os.listdir(adopter.folder), "the writer's file")
        assert adopter.adopt_orphans() == 0  # the live file is invisible until locked
        assert all(name.startswith(TEMP_PREFIX) for name in os.listdir(adopter.folder))
    finally:
        _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == -9, stderr
    assert adopter.adopt_orphans() == 1
    sent: list[dict[str, object]] = []
    adopter.replay(sent.append, lambda exc: False, lambda body, exc: None)
    assert [body["_id"] for body in sent] == ["a", "b"]
    assert os.listdir(adopter.folder) == []  # replayed, then removed


def test_orphans_are_the_files_nobody_holds_and_stale_temporaries_are_swept(tmp_path: Path) -> None:
    held = JournalFile.create(str(tmp_path), "held.log")
    dead = tmp_path / "dead.log"
    dead.write_bytes(b"x")
    young, old = tmp_path / f"{TEMP_PREFIX}young-x.log", tmp_path / f"{TEMP_PREFIX}old-x.log"
    young.write_bytes(b"")
    old.write_bytes(b"")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "other.txt").write_bytes(b"")
    (tmp_path / "dir.log").mkdir()
    found = list(orphans(str(tmp_path), ".log"))
    try:
        assert [Path(f.path).name for f in found] == ["dead.log"]
        assert list(orphans(str(tmp_path), ".log")) == []  # now this process holds it
    finally:
        for journal in found:
            journal.release(delete=False)
    assert young.exists() and not old.exists()
    held.release(delete=True)
    assert not Path(held.path).exists() and dead.exists()


def test_a_forked_child_forgets_its_parents_rest_journal(tmp_path: Path) -> None:
    journal = RestJournal("http://127.0.0.1:9", root=str(tmp_path))
    journal.append([{"_id": "parent"}])
    parent_file = journal.path
    pid = os.fork()
    if pid == 0:  # the child: its own file, never the parent's
        code = 1
        try:
            if journal.path is None:
                journal.append([{"_id": "child"}])
                code = 0 if journal.path != parent_file else 2
            journal.release()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_file is not None
    assert [json.loads(line)["_id"] for line in Path(parent_file).read_text().splitlines()] == ["parent"]
    child_files = [p for p in Path(journal.folder).iterdir() if str(p) != parent_file and p.suffix == ".jsonl"]
    assert [p.read_text() for p in child_files] == ['{"_id":"child"}\n']
    assert journal.adopt_orphans() == 1  # the child's file, now an orphan; ours is still held
    journal.release()


def _points_table(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.1, check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS points (step INTEGER)")
    return conn


def test_back_pressure_stays_on_after_a_write_error(tmp_path: Path) -> None:
    """The database stays locked past its busy timeout, so every copy fails: the queue stays bounded,
    the caller waits and then gets an error naming the journal; after the release every point that
    was accepted arrives, once."""
    database = tmp_path / "points.db"
    writer = _points_table(database)
    failures = threading.Event()

    def apply(journal_id: str, entries: list, position: int) -> None:  # type: ignore[type-arg]
        try:
            with writer:
                writer.execute("BEGIN IMMEDIATE")
                writer.executemany("INSERT INTO points VALUES (?)", [(s,) for e in entries for s in e[4]])
        except sqlite3.OperationalError:
            failures.set()
            raise

    journal = MetricJournal(str(tmp_path / "journal"), apply)
    journal.max_pending_points, journal.block_timeout = 500, 1.0
    locker = sqlite3.connect(database, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    accepted, error = 0, None
    try:
        for step in range(5000):
            if step == 100:
                _wait_for(failures.is_set, "a failed copy")
            try:
                journal.append("r" * 32, ["m"], [1.0], [1], [step])
            except BackendError as exc:
                error = exc
                break
            accepted += 1
        assert error is not None and journal.path in str(error) and "database is locked" in str(error)
        assert accepted == 500 and journal.pending_points == 500
        with pytest.raises(BackendError, match="keeps them"):  # still full: the next caller waits too
            journal.append("r" * 32, ["m"], [1.0], [1], [accepted])
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    journal.flush()
    journal.close()
    assert [row[0] for row in writer.execute("SELECT step FROM points ORDER BY step")] == list(range(accepted))
    writer.close()
    assert not os.path.exists(journal.path)


def test_a_forked_child_does_not_send_its_parents_queued_writes(tmp_path: Path) -> None:
    """Points queued for an (unreachable) server before a fork are the parent's: the child, closing its
    store, journals none of them; the parent journals them once."""
    from fitscribe.backends.rest.http import HttpSession
    from fitscribe.backends.rest.queue import WriteQueue

    url = "http://127.0.0.1:9"  # nothing listens there
    queue = WriteQueue(HttpSession(url, connect_timeout=0.2), RestJournal(url, root=str(tmp_path)),
                       interval=60.0, outage_budget=0.2)
    for step in range(5):
        queue.put_metric("r" * 32, "m", 1.0, 1, step)  # queued; the sender sleeps until a flush
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            queue.close()
            code = 0 if queue.journal.path is None and not os.path.exists(queue.journal.folder) else 2
        except BaseException as exc:
            os.write(2, repr(exc).encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert queue.close() is not None  # the server is unreachable: the points wait in the journal
    lines = [json.loads(line) for p in Path(queue.journal.folder).glob("*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(m["step"] for body in lines for m in body["metrics"]) == [0, 1, 2, 3, 4]


def _queue_in_child(queue: object) -> None:
    for step in range(5):
        queue.put_metric("c" * 32, "m", 1.0, 1, step)  # type: ignore[attr-defined]


def test_a_multiprocessing_child_sends_or_journals_its_queued_writes_at_its_end(tmp_path: Path) -> None:
    """A multiprocessing child ends with os._exit (no atexit): what it queued for the (unreachable)
    server is still journaled at its end, not lost with its memory."""
    import multiprocessing

    from fitscribe.backends.rest.http import HttpSession
    from fitscribe.backends.rest.queue import WriteQueue

    url = "http://127.0.0.1:9"  # nothing listens there
    queue = WriteQueue(HttpSession(url, connect_timeout=0.2), RestJournal(url, root=str(tmp_path)),
                       interval=60.0, outage_budget=0.2)
    child = multiprocessing.get_context("fork").Process(target=_queue_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    lines = [json.loads(line) for p in Path(queue.journal.folder).glob("*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(m["step"] for body in lines for m in body["metrics"]) == [0, 1, 2, 3, 4]
    assert queue.close() is None  # the parent queued nothing
