"""The embedded store's metric journal (backends/journal_core.py, backends/sql/journal.py) as a user
sees it: several stores of one database in a process, a flush with nothing to copy, logging after
close. Written to kill the mutants that survived the older journal tests (issue 17, item 4)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import fitscribe
from fitscribe.backends import get_tracking_store
from fitscribe.entities import Metric
from fitscribe.errors import BackendError, FitscribeWarning


def test_a_read_sees_the_points_queued_in_every_store_of_the_database(tmp_path: Path) -> None:
    folder = str(tmp_path / "store")
    clients = [fitscribe.Client(folder) for _ in range(3)]
    run_id = clients[0].create_run("0").info.run_id
    for i, client in enumerate(clients):  # each store has its own journal; none is flushed
        client.log_metric(run_id, f"m{i}", float(i), step=0)
    for reader in (clients[0], clients[2], fitscribe.Client(folder)):
        assert reader.get_run(run_id).data.metrics == {"m0": 0.0, "m1": 1.0, "m2": 2.0}
    clients[1].close()  # a closed store's journal is forgotten; the others still count
    clients[0].log_metric(run_id, "m0", 5.0, step=1)
    clients[2].log_metric(run_id, "m2", 7.0, step=1)
    assert fitscribe.Client(folder).get_run(run_id).data.metrics == {"m0": 5.0, "m1": 1.0, "m2": 7.0}
    for client in clients:
        client.close()


def test_flush_returns_at_once_when_everything_is_in(tmp_path: Path) -> None:
    store = get_tracking_store(str(tmp_path / "store"))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    store.log_metric(run_id, Metric("m", 1.0, 1, 0))
    store.flush()
    started = time.monotonic()
    for _ in range(3):
        store.flush()
    assert time.monotonic() - started < 1.0
    assert store.get_run(run_id).data.metrics == {"m": 1.0}
    store.close()
    store.close()  # twice is harmless


def test_logging_after_close_is_refused_or_reopens(tmp_path: Path) -> None:
    """A closed store either refuses new points with a clear error or takes them through a new
    journal; it never drops them silently."""
    store = get_tracking_store(str(tmp_path / "store"))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    store.log_metric(run_id, Metric("m", 1.0, 1, 0))
    store.close()
    try:
        store.log_metric(run_id, Metric("m", 2.0, 1, 1))
    except BackendError as exc:
        assert str(exc) == "The metric journal is closed; the store was closed while logging."
        expected = 1.0
    else:
        store.flush()
        expected = 2.0
    assert fitscribe.Client(str(tmp_path / "store")).get_run(run_id).data.metrics == {"m": expected}


def _a_run_with_a_journal(tmp_path: Path) -> tuple[Path, fitscribe.Client, str, Any]:
    """A store folder, its client, a run with one stored point, and the store's metric journal."""
    store = tmp_path / "store"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 0.0, step=0)
    client.flush()
    return store, client, run_id, client.store._journal_for_write()


def _journals_table_away(store: Path, away: bool) -> None:
    """Rename the database's journal bookkeeping table away (every copy from a journal then fails
    at once: the points stay queued, the copying thread keeps retrying) or back."""
    names = ("journals", "journals_away") if away else ("journals_away", "journals")
    with sqlite3.connect(store / "tracking.db", isolation_level=None) as conn:
        conn.execute(f"ALTER TABLE {names[0]} RENAME TO {names[1]}")
    conn.close()


def test_a_forked_child_reads_while_its_parent_still_holds_points_the_database_refused(tmp_path: Path) -> None:
    """The parent's queued points are the parent's to copy: the child's reads neither wait for them
    nor fail because of them."""
    store = tmp_path / "store"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0, step=0)
    client.flush()
    _journals_table_away(store, True)
    client.log_metric(run_id, "m", 2.0, step=1)  # queued: the database refuses every copy now
    pid = os.fork()
    if pid == 0:  # the child
        code = 3
        try:
            code = 0 if client.get_run(run_id).data.metrics == {"m": 1.0} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    _journals_table_away(store, False)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.get_run(run_id).data.metrics == {"m": 2.0}  # the parent's point arrives
    client.close()


def test_a_caller_waiting_for_room_logs_once_the_database_takes_points_again(tmp_path: Path) -> None:
    store, client, run_id, journal = _a_run_with_a_journal(tmp_path)
    journal.max_pending_points = 50
    locker = sqlite3.connect(store / "tracking.db", isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the database: nothing drains
    try:
        for step in range(1, 51):
            client.log_metric(run_id, "m", float(step), step=step)
        assert journal.pending_points == 50  # full: the next caller waits
        release = threading.Timer(0.3, locker.execute, ("ROLLBACK",))
        release.start()
        client.log_metric(run_id, "m", 51.0, step=51)  # waits until the database takes the queue
        release.join()
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
    client.flush()
    assert [p.step for p in client.get_metric_history(run_id, "m")] == list(range(52))
    client.close()


def _journal_files(store: Path) -> list[Path]:
    return sorted((store / "journal").rglob("*.log"))


def _wait_until_replayed(store: Path, run_id: str) -> None:
    """Open the store until the kept journal is gone: its thread's last copy ends on its own, then
    an open replays (or deletes) the released file."""
    deadline = time.monotonic() + 30
    while _journal_files(store) and time.monotonic() < deadline:
        time.sleep(0.05)
        reader = fitscribe.Client(str(store))
        reader.get_run(run_id)
        reader.close()
    assert _journal_files(store) == []


def test_a_journal_that_close_gave_up_on_is_let_go_when_its_last_copy_ends(tmp_path: Path) -> None:
    """close() waits a bounded time; the copy still running then finishes on its own, and the file
    is released (not held until the process ends), so the next open cleans it up."""
    store, client, run_id, journal = _a_run_with_a_journal(tmp_path)
    journal.flush_timeout = 0.3
    locker = sqlite3.connect(store / "tracking.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        for step in range(1, 11):
            client.log_metric(run_id, "m", float(step), step=step)
        with pytest.warns(FitscribeWarning, match="kept in"):
            journal.close()  # gives up waiting; its thread still waits for the database
        assert len(_journal_files(store)) == 1
        assert os.stat(journal.path).st_mode & 0o111 == 0  # a data file: nobody may execute it
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    _wait_until_replayed(store, run_id)
    assert [p.step for p in fitscribe.Client(str(store)).get_metric_history(run_id, "m")] == list(range(11))
    client.close()


def test_a_full_queue_refuses_with_the_whole_story_and_a_closed_journal_refuses_its_waiters(tmp_path: Path) -> None:
    store, client, run_id, journal = _a_run_with_a_journal(tmp_path)
    journal.max_pending_points, journal.block_timeout, journal.flush_timeout = 20, 0.2, 0.3
    locker = sqlite3.connect(store / "tracking.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the database: nothing drains
    try:
        for step in range(1, 21):
            client.log_metric(run_id, "m", float(step), step=step)
        with pytest.raises(BackendError) as full:
            client.log_metric(run_id, "m", 21.0, step=21)
        assert str(full.value) == (
            f"The database has taken no metric points for 0 s (it is busy or locked), and 20 points wait in the "
            f"metric journal {journal.path}, which keeps them: they are copied once the database answers, or "
            "replayed when the store is opened again. The points of this call were not logged.")
        journal.block_timeout = 60.0
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                client.log_metric(run_id, "m", 22.0, step=22)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        with pytest.warns(FitscribeWarning, match="kept in"):
            journal.close()  # the waiter, waiting for room or not yet arrived, is refused
        thread.join(30)
        assert not thread.is_alive()
        assert [str(e) for e in errors] == ["The metric journal is closed; the store was closed while logging."]
        with pytest.raises(BackendError) as late:  # a caller arriving after the close, the queue still full
            client.log_metric(run_id, "m", 23.0, step=23)
        assert str(late.value) == "The metric journal is closed; the store was closed while logging."
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    _wait_until_replayed(store, run_id)  # before closing the store its thread may still be using
    client.close()
    client = fitscribe.Client(str(store))  # the 20 accepted points arrived, the refused ones not
    assert [p.step for p in client.get_metric_history(run_id, "m")] == list(range(21))
    client.close()


def test_every_orphaned_rest_journal_is_adopted_past_another_ones_position_file(tmp_path: Path) -> None:
    """Two processes died with unsent REST journals; the first had recorded a position (its
    ``.pos`` file sorts between the two journals). A new store adopts and sends both."""
    from fitscribe.backends.rest.journal import RestJournal

    folder = Path(RestJournal("http://127.0.0.1:9", root=str(tmp_path)).folder)
    folder.mkdir(parents=True)
    (folder / "0001-11-a.jsonl").write_text('{"run_id": "a", "metrics": []}\n{"run_id": "a2", "metrics": []}\n')
    (folder / "0001-11-a.jsonl.pos").write_text("31")
    (folder / "0002-12-b.jsonl").write_text('{"run_id": "b", "metrics": []}\n')
    journal = RestJournal("http://127.0.0.1:9", root=str(tmp_path))
    assert journal.adopt_orphans() == 2
    sent: list[str] = []
    journal.replay(lambda body: sent.append(body["run_id"]), lambda exc: False, lambda body, exc: None)
    assert sent == ["a2", "b"] and sorted(os.listdir(folder)) == []


def test_replaying_an_orphaned_journal_leaves_the_process_s_own_files_alone(tmp_path: Path) -> None:
    """An orphan's descriptor is released twice on the way (deleted, then the finally): the second
    release must not close some other descriptor of the process (here: its stdout)."""
    import subprocess
    import sys

    store = tmp_path / "store"
    killed = subprocess.run([sys.executable, "-c", f"""if True:
        import os, signal, fitscribe
        client = fitscribe.Client({str(store)!r})
        run_id = client.create_run("0").info.run_id
        print(run_id, flush=True)
        client.log_metric(run_id, "m", 1.0, step=0)
        os.kill(os.getpid(), signal.SIGKILL)"""], capture_output=True, text=True, timeout=120)
    run_id = killed.stdout.strip()
    assert killed.returncode == -9 and len(_journal_files(store)) == 1, killed.stderr
    reader = subprocess.run([sys.executable, "-c", f"""if True:
        import fitscribe
        metrics = fitscribe.Client({str(store)!r}).get_run({run_id!r}).data.metrics
        print(metrics, flush=True)"""], capture_output=True, text=True, timeout=120)
    assert (reader.returncode, reader.stdout) == (0, "{'m': 1.0}\n"), reader.stderr
    assert _journal_files(store) == []


def test_a_journal_ending_in_zeros_is_replayed_up_to_them(tmp_path: Path) -> None:
    """After a power loss a file system may leave a file's last block zero-filled."""
    from fitscribe.backends.sql.journal import _encode

    store = tmp_path / "store"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    folder = store / "journal" / "tracking.db"
    folder.mkdir(parents=True, exist_ok=True)
    records = b"".join(_encode(run_id, ["m"], [float(i)], [1], [i]) for i in range(3))
    (folder / "999999-dead.log").write_bytes(records + bytes(64))
    client = fitscribe.Client(str(store))
    assert [p.step for p in client.get_metric_history(run_id, "m")] == [0, 1, 2]
    assert _journal_files(store) == []
    client.close()


def test_a_read_waits_only_for_its_own_database_s_journals(tmp_path: Path) -> None:
    """Another database of the process is locked with points waiting: reading this one neither
    waits for them nor fails because of them."""
    here, there = fitscribe.Client(str(tmp_path / "here")), fitscribe.Client(str(tmp_path / "there"))
    run_here, run_there = here.create_run("0").info.run_id, there.create_run("0").info.run_id
    there.log_metric(run_there, "m", 0.0, step=0)
    there.flush()
    there.store._journal_for_write().flush_timeout = 0.2
    locker = sqlite3.connect(tmp_path / "there" / "tracking.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the other database's points cannot be copied now
    try:
        there.log_metric(run_there, "m", 1.0, step=1)
        here.log_metric(run_here, "m", 2.0, step=0)
        assert here.get_run(run_here).data.metrics == {"m": 2.0}
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert there.get_run(run_there).data.metrics == {"m": 1.0}
    here.close()
    there.close()
