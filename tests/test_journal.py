"""The metric journal of embedded stores: durable on return, replayed once, never duplicated."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

import fitscribe
from fitscribe.backends.sql.journal import _encode, read_entries
from fitscribe.backends.sql.writes import Writer
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
        Writer("sqlite").metric_points(conn, [(run_id, ["m"] * len(values), values, [1] * len(values), list(range(len(values))))])
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
