"""The metric journal of embedded stores: durable on return, replayed once, never duplicated."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

import fitscribe
from fitscribe.backends.sql.journal import _encode, read_entries
from fitscribe.backends.sql.connection import SaConnection
from fitscribe.backends.sql.statements import statements_for
from fitscribe.backends.sql.writer import Writer
from fitscribe.errors import FitscribeWarning


def _journal_files(store: Path) -> list[Path]:
    folder = store / "journal"
    return sorted(folder.rglob("*.log")) if folder.exists() else []


def _run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)


def test_points_survive_sigkill_and_are_replayed_once(tmp_path: Path) -> None:
    store = tmp_path / "s"
    proc = _run_script(tmp_path, f"""
        import os, signal, fitscribe
        client = fitscribe.Client({str(store)!r})
        run = client.create_run("0")
        print(run.info.run_id, flush=True)
        for i in range(3000):
            client.log_metric(run.info.run_id, "m", float(i), step=i)
        client.log_metric(run.info.run_id, "n", float("nan"), step=0)
        client.log_metric(run.info.run_id, "n", float("-inf"), step=1)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.strip()
    assert _journal_files(store)  # left behind by the killed process
    client = fitscribe.Client(str(store))
    history = client.get_metric_history(run_id, "m")
    assert [p.step for p in history] == list(range(3000))  # all there, none twice
    n = [p.value for p in client.get_metric_history(run_id, "n")]
    assert math.isnan(n[0]) and n[1] == -math.inf
    assert _journal_files(store) == []  # replayed, then removed
    client.close()
    again = fitscribe.Client(str(store))  # a second open replays nothing more
    assert len(again.get_metric_history(run_id, "m")) == 3000
    again.close()


def _insert_points(store: Path, journal_id: str, position: int, run_id: str, values: list[float]) -> None:
    """Record points as already copied from a journal up to ``position`` (as its flush would have)."""
    engine = sa.create_engine(f"sqlite:///{store / 'tracking.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO journals (journal_id, position) VALUES (:j, :p)"), {"j": journal_id, "p": position})
        writer = Writer(SaConnection(conn, statements_for("sqlite")))
        writer.metric_points([(run_id, ["m"] * len(values), values, [1] * len(values), list(range(len(values))))])
    engine.dispose()


def test_replay_starts_at_the_recorded_position_and_ignores_a_torn_record(tmp_path: Path) -> None:
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    records = [_encode(run_id, ["m"], [float(i)], [1], [i]) for i in range(4)]
    two_keys = _encode(run_id, ["m", "k"], [4.0, math.nan], [1, 2], [4, 0])
    journal = store / "journal"
    journal.mkdir(exist_ok=True)
    good = b"".join(records) + two_keys
    (journal / "999999-dead.log").write_bytes(good + records[0][:20])  # a torn record at the end
    applied = len(records[0]) + len(records[1])  # the first two reached the database before the crash
    _insert_points(store, "999999-dead", applied, run_id, [0.0, 1.0])
    entries, end = read_entries(str(journal / "999999-dead.log"), applied)
    assert end == len(good) and entries[:2] == [(run_id, ["m"], [2.0], [1], [2]), (run_id, ["m"], [3.0], [1], [3])]
    assert entries[2][1] == ["m", "k"] and math.isnan(entries[2][2][1])
    client = fitscribe.Client(str(store))
    assert [p.value for p in client.get_metric_history(run_id, "m")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert math.isnan(client.get_run(run_id).data.metrics["k"]) and client.get_run(run_id).data.metrics["m"] == 4.0
    assert not (journal / "999999-dead.log").exists()
    client.close()


def test_a_damaged_record_ends_the_replay(tmp_path: Path) -> None:
    run_id = "a" * 32
    first, second = _encode(run_id, ["m"], [1.0], [1], [0]), bytearray(_encode(run_id, ["m"], [2.0], [1], [1]))
    second[-1] ^= 0xFF  # the value's last byte: the CRC no longer matches
    path = tmp_path / "j.log"
    path.write_bytes(first + bytes(second) + first)
    entries, end = read_entries(str(path), 0)
    assert entries == [(run_id, ["m"], [1.0], [1], [0])] and end == len(first)


def test_a_journal_of_the_earlier_json_format_is_replayed(tmp_path: Path) -> None:
    """Journals left by a killed process of an earlier version hold one JSON line per append."""
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    lines = [json.dumps([run_id, [["m", float(i), 1, i]]]) + "\n" for i in range(4)]
    lines.append(json.dumps([run_id, [["m", 4, 1, 4], ["n", math.inf, 1, 0]]]) + "\n")
    journal = store / "journal"
    journal.mkdir(exist_ok=True)
    (journal / "999999-dead.log").write_text("".join(lines) + '["torn')
    applied = len(lines[0]) + len(lines[1])
    _insert_points(store, "999999-dead", applied, run_id, [0.0, 1.0])
    entries, end = read_entries(str(journal / "999999-dead.log"), applied)
    assert entries[:2] == [(run_id, ["m"], [2.0], [1], [2]), (run_id, ["m"], [3.0], [1], [3])]
    assert end == len("".join(lines))
    client = fitscribe.Client(str(store))
    assert [p.value for p in client.get_metric_history(run_id, "m")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert client.get_run(run_id).data.metrics == {"m": 4.0, "n": math.inf}
    assert not (journal / "999999-dead.log").exists()
    client.close()


def test_clean_exit_leaves_no_journal_and_other_processes_see_everything(tmp_path: Path) -> None:
    store = tmp_path / "s"
    proc = _run_script(tmp_path, f"""
        import fitscribe
        client = fitscribe.Client({str(store)!r})
        run = client.create_run("0")
        print(run.info.run_id, flush=True)
        for i in range(1000):
            client.log_metric(run.info.run_id, "m", float(i), step=i)
    """)  # no close(): the exit handler flushes
    assert proc.returncode == 0, proc.stderr
    assert _journal_files(store) == []
    client = fitscribe.Client(str(store))
    assert len(client.get_metric_history(proc.stdout.strip(), "m")) == 1000
    client.close()


def test_a_live_writer_is_visible_to_another_process_without_closing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.5)
    client.flush()
    proc = _run_script(tmp_path, f"""
        import fitscribe
        print(fitscribe.Client({str(store)!r}).get_run({run_id!r}).data.metrics)
    """)
    assert proc.stdout.strip() == "{'m': 1.5}", proc.stderr
    assert len(_journal_files(store)) == 1  # ours, still locked and in use
    client.close()


def test_points_for_a_purged_run_are_dropped_with_a_warning(tmp_path: Path) -> None:
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    keep = client.create_run("0").info.run_id
    gone = client.create_run("0").info.run_id
    client.log_metric(gone, "m", 1.0)
    client.flush()
    client.delete_run(gone)
    other = fitscribe.Client(str(store))  # another store object purges it (as another process would)
    other.purge_run(gone)
    other.close()
    client.store._active_runs.clear()
    client.log_metric(keep, "m", 2.0)
    store_obj = client.store
    journal = store_obj._journal_for_write()
    journal.append(gone, ["m"], [3.0], [1], [0])  # a point in flight when the run vanished
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.flush()
    assert any(issubclass(w.category, FitscribeWarning) and gone in str(w.message) for w in caught)
    assert client.get_run(keep).data.metrics == {"m": 2.0}
    client.close()


def test_logging_to_a_deleted_run_is_refused(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "s"))
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    with pytest.raises(fitscribe.errors.InvalidStateError, match="deleted"):
        client.log_metric(run_id, "m", 1.0)
    with pytest.raises(fitscribe.errors.RunNotFound):
        client.log_metric("f" * 32, "m", 1.0)
    client.close()


def test_forked_child_writes_its_own_journal(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "s"))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "parent", 1.0)
    client.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            client.log_metric(run_id, "child", 2.0)
            client.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.get_run(run_id).data.metrics == {"parent": 1.0, "child": 2.0}
    client.close()


def test_journal_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_METRIC_JOURNAL", "0")
    client = fitscribe.Client(str(tmp_path / "s"))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)
    assert _journal_files(tmp_path / "s") == []
    assert client.get_run(run_id).data.metrics == {"m": 1.0}
    client.close()


# -- one journal per database (issue 11 item 5) ---------------------------------------------------
def _sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def test_a_crashed_journal_of_a_db_is_not_replayed_into_b_db_in_the_same_folder(tmp_path: Path) -> None:
    """a.db and b.db share a folder: opening b.db leaves a.db's crashed journal alone; a.db gets all 50."""
    folder = tmp_path / "dbs"
    folder.mkdir()
    a_uri, b_uri = _sqlite_uri(folder / "a.db"), _sqlite_uri(folder / "b.db")
    proc = _run_script(tmp_path, f"""
        import os, signal, fitscribe
        client = fitscribe.Client({a_uri!r})
        run = client.create_run("0")
        print(run.info.run_id, flush=True)
        for i in range(50):
            client.log_metric(run.info.run_id, "m", float(i), step=i)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.strip()
    b = fitscribe.Client(b_uri)  # opening b.db replays the orphans it finds (warnings are errors here)
    b_run = b.create_run("0").info.run_id
    b.log_metric(b_run, "b", 1.0)
    assert b.get_run(b_run).data.metrics == {"b": 1.0}
    b.close()
    a = fitscribe.Client(a_uri)
    assert [p.step for p in a.get_metric_history(run_id, "m")] == list(range(50))
    a.close()
    assert _journal_files(folder) == []


def test_a_journal_of_the_earlier_shared_layout_is_kept_for_the_database_it_belongs_to(tmp_path: Path) -> None:
    """Earlier versions wrote every database's journals into <folder>/journal/: b.db keeps a.db's
    file (with a warning naming it) instead of dropping its points; a.db replays it."""
    folder = tmp_path / "dbs"
    folder.mkdir()
    a = fitscribe.Client(_sqlite_uri(folder / "a.db"))
    run_id = a.create_run("0").info.run_id
    a.close()
    legacy = folder / "journal" / "4242-0123456789ab.log"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_bytes(b"".join(_encode(run_id, ["m"], [float(i)], [1], [i]) for i in range(50)))
    b = fitscribe.Client(_sqlite_uri(folder / "b.db"))
    with pytest.warns(FitscribeWarning, match=r"runs this database does not have.*kept"):
        b.create_run("0")
    b.close()
    assert legacy.exists()
    a = fitscribe.Client(_sqlite_uri(folder / "a.db"))
    assert [p.step for p in a.get_metric_history(run_id, "m")] == list(range(50))
    a.close()
    assert not legacy.exists()


# -- created and locked atomically (issue 11 item 6) ----------------------------------------------
def test_a_journal_being_created_cannot_be_taken_by_another_process(tmp_path: Path) -> None:
    """A forced pause between creating the file and locking it: another process opening the store
    in that pause (and replaying orphans) must not take the live file; nothing is lost."""
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, fitscribe
        client = fitscribe.Client({str(store)!r})
        for i in range(50):
            client.log_metric({run_id!r}, "m", float(i), step=i)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    env = {**os.environ, "FITSCRIBE_TEST_JOURNAL_CREATE_DELAY_S": "3"}
    writer = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(p.is_file() for p in (store / "journal").rglob("*")):  # the file exists, not yet locked
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never created its journal"
            time.sleep(0.01)
        other = fitscribe.Client(str(store))  # this process replays whatever it can lock
        other.create_run("0")
        other.close()
    finally:
        _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == -9, stderr
    client = fitscribe.Client(str(store))
    assert [p.step for p in client.get_metric_history(run_id, "m")] == list(range(50))
    client.close()


# -- back-pressure stays on (issue 11 item 7) -------------------------------------------------------
def test_a_locked_database_bounds_the_queue_and_the_caller_gets_an_error_naming_the_journal(tmp_path: Path) -> None:
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", -1.0, step=0)
    client.flush()
    journal = client.store._journal_for_write()
    journal.max_pending_points, journal.block_timeout = 2000, 1.0
    locker = sqlite3.connect(store / "tracking.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    logged, error = 0, None
    try:
        for i in range(1, 20_001):
            try:
                client.log_metric(run_id, "m", float(i), step=i)
            except fitscribe.errors.BackendError as exc:
                error = exc
                break
            logged += 1
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert error is not None and journal.path in str(error) and "keeps them" in str(error)
    assert logged == 2000 and journal.pending_points == 2000  # nothing drained meanwhile: this was the most
    client.flush()
    assert [p.step for p in client.get_metric_history(run_id, "m")] == list(range(logged + 1))
    client.log_metric(run_id, "m", 0.5, step=logged + 1)  # logging works again
    client.close()
    assert _journal_files(store) == []


# -- forks (issue 11 item 4, the journal's part) --------------------------------------------------
def test_a_forked_child_does_not_hold_its_parents_journal(tmp_path: Path) -> None:
    """The child logs through its own journal; the parent, killed later, leaves an orphan that is
    replayed while the child still lives; nothing is stored twice."""
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    script = tmp_path / "forker.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, fitscribe
        client = fitscribe.Client({str(store)!r})
        client.log_metric({run_id!r}, "parent", 0.0, step=0)
        client.flush()
        ready_r, ready_w = os.pipe()
        if os.fork() == 0:  # the child
            for i in range(10):
                client.log_metric({run_id!r}, "child", float(i), step=i)
            client.flush()
            os.write(ready_w, b"x")
            sys.stdin.read()  # lives on until the test closes stdin
            client.close()
            os._exit(0)
        os.read(ready_r, 1)
        for i in range(1, 51):
            client.log_metric({run_id!r}, "parent", float(i), step=i)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE)
    try:
        assert parent.wait(timeout=60) == -9
        reader = fitscribe.Client(str(store))  # the child still lives: the parent's journal is an orphan
        assert [p.step for p in reader.get_metric_history(run_id, "parent")] == list(range(51))
        assert [p.step for p in reader.get_metric_history(run_id, "child")] == list(range(10))
        reader.close()
    finally:
        assert parent.stdin is not None
        parent.stdin.close()  # the child ends
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60
    while _journal_files(store):  # the child's own journal goes when it closes
        assert time.monotonic() < deadline, _journal_files(store)
        time.sleep(0.02)
    again = fitscribe.Client(str(store))
    assert len(again.get_metric_history(run_id, "parent")) == 51
    assert len(again.get_metric_history(run_id, "child")) == 10
    again.close()


# -- probe J3 (issue 17): close() keeps a journal whose points did not reach the database -----------
def test_close_keeps_a_journal_whose_points_never_reached_the_database(tmp_path: Path) -> None:
    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.close()
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, fitscribe
        client = fitscribe.Client({str(store)!r})
        journal = client.store._journal_for_write()
        journal.flush_timeout = 0.5
        print("open", flush=True)
        sys.stdin.readline()  # the database is locked now
        for i in range(100):
            client.log_metric({run_id!r}, "m", float(i), step=i)
        journal.close()  # warns: the points wait in the journal
        os._exit(0)  # its thread still waits in SQLite's busy handler: end here, as a crash at exit would
    """))
    writer = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    locker = sqlite3.connect(store / "tracking.db", isolation_level=None)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        locker.execute("BEGIN IMMEDIATE")  # the database stays unavailable until the writer has exited
        _, stderr = writer.communicate("go\n", timeout=60)
    finally:
        writer.kill()
        writer.communicate()
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
    assert writer.returncode == 0, stderr
    assert "kept in" in stderr  # the warning names the journal
    assert len(_journal_files(store)) == 1
    client = fitscribe.Client(str(store))
    assert [p.step for p in client.get_metric_history(run_id, "m")] == list(range(100))
    client.close()
    assert _journal_files(store) == []


def _log_from_child(store: str, run_id: str, key: str, inherited: fitscribe.Client | None) -> None:
    client = inherited or fitscribe.Client(store)
    for step in range(100):
        client.log_metric(run_id, key, float(step), step=step)


def test_multiprocessing_fork_children_points_are_read_right_after_join(tmp_path: Path) -> None:
    """multiprocessing ends a child with os._exit (no atexit): its journal is still flushed at exit,
    so the parent reads every point right after join(), and no child journal is left behind.

    The parent's journal thread may be committing at a fork: the fork waits for it (fitscribe/_fork.py;
    before, such a child hung for ever closing its copy of that thread's connection, test_fork_safety.py).
    """
    import multiprocessing

    store = tmp_path / "s"
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "parent", 0.0)  # the parent's journal and thread exist before the fork
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_log_from_child, args=(str(store), run_id, f"c{i}", client if i else None))
                for i in range(3)]  # the parent's client (as autolog's session), or a new one
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    hung = [child.pid for child in children if child.exitcode is None]
    for child in children:
        if child.exitcode is None:
            child.kill()
            child.join(10)
    assert not hung, f"forked children {hung} did not exit within 60 s"
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert [len(client.get_metric_history(run_id, f"c{i}")) for i in range(3)] == [100, 100, 100]
    assert _journal_files(store) == [Path(client.store._journal.path)]  # only the parent's own
    client.close()
