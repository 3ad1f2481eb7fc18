"""A child forked while another thread of the parent is inside a database call (issue 11).

SQLite holds a connection's mutex for the whole of a call on it; the child's copy of a connection
that another thread was using at the fork stays locked for ever, and the child hung closing it (the
intermittent hang of the fork tests in test_journal.py and test_chaos.py: the parent's metric
journal thread was committing). Here the journal thread is made to sit inside SQLite on purpose,
waiting for a lock another connection holds, while a child is forked.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import fitscribe
from fitscribe._fork import GATE

CHILD_TIMEOUT_S = 20  # the fixed child exits in about a second; the bug hung it for ever
EXPECTED = {"parent": [0, 1], "inherited": list(range(50)), "own": list(range(50))}


def _log_in_child(store: str, run_id: str, inherited: fitscribe.Client) -> None:
    for step in range(50):
        inherited.log_metric(run_id, "inherited", float(step), step=step)
    own = fitscribe.Client(store)
    for step in range(50):
        own.log_metric(run_id, "own", float(step), step=step)


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.rollback()
"""


@contextmanager
def busy_journal(store: Path, hold_s: float) -> Iterator[tuple[fitscribe.Client, str]]:
    """A client whose journal thread is inside a SQLite call when the block starts: waiting for the
    write lock, which another process holds for ``hold_s`` seconds from a moment before."""
    client = fitscribe.Client(str(store))
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "parent", 0.0, step=0)
    assert len(client.get_metric_history(run_id, "parent")) == 1  # the journal thread has written once
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(store / "tracking.db"), str(hold_s)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        client.log_metric(run_id, "parent", 1.0, step=1)
        time.sleep(0.3)  # the journal thread woke within 20 ms and now waits in SQLite's busy handler
        assert client.store._journal.pending_points == 1
        yield client, run_id
    finally:
        locker.kill()
        locker.communicate()
        client.close()


def _fork_child(client: fitscribe.Client, run_id: str) -> multiprocessing.process.BaseProcess:
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads
        child = context.Process(target=_log_in_child, args=(client.tracking_uri, run_id, client))
        child.start()
    return child


def _join(child: multiprocessing.process.BaseProcess) -> int | None:
    child.join(CHILD_TIMEOUT_S)
    if child.exitcode is None:
        child.kill()
        child.join(10)
        return None
    return child.exitcode


def _histories(client: fitscribe.Client, run_id: str) -> dict[str, list[int]]:
    return {key: [m.step for m in client.get_metric_history(run_id, key)] for key in ("parent", "inherited", "own")}


def test_a_fork_waits_for_the_journal_thread_to_leave_sqlite(tmp_path: Path) -> None:
    with busy_journal(tmp_path / "store", hold_s=1.0) as (client, run_id):
        started = time.monotonic()
        child = _fork_child(client, run_id)
        forked_after = time.monotonic() - started
        assert _join(child) == 0, "the forked child hung (or failed)"
        assert 0.2 < forked_after < GATE.wait_s  # the fork waited for the journal thread's transaction
        assert _histories(client, run_id) == EXPECTED


def test_a_fork_that_cannot_wait_leaves_the_busy_connections_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal thread stays inside SQLite longer than a fork waits: the child forks anyway, and
    never closes (or otherwise touches) its copy of that thread's connection; it opens its own."""
    monkeypatch.setattr(GATE, "wait_s", 0.2)
    with busy_journal(tmp_path / "store", hold_s=1.5) as (client, run_id):
        started = time.monotonic()
        child = _fork_child(client, run_id)
        assert time.monotonic() - started < 1.0  # it did not wait for the lock
        assert _join(child) == 0, "the forked child hung (or failed)"
        assert _histories(client, run_id) == EXPECTED
