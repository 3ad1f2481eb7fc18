"""Reads see everything the process logged, whichever store logged it (issue 11).

An embedded (SQLite) store appends metric points to a per-store journal that a background thread
copies into the database. Two stores of one database in one process (the fluent API's and a
``Client``'s, two ``Client`` objects, or the several stores a ``Client`` shared by threads built
when their first calls raced) each have their own journal; a read through one must see the points
still queued in the other's. Before the fix a read flushed only its own store's journal, so the
points arrived a few milliseconds too late for it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import fitscribe
from fitscribe.entities import Metric


def test_client_reads_points_the_fluent_api_just_logged(tmp_path: Path) -> None:
    """Inside an active run, a second ``Client`` reads at once what ``fitscribe.log_metric`` logged."""
    uri = str(tmp_path / "store")
    fitscribe.set_tracking_uri(uri)
    reader = fitscribe.Client(uri)
    try:
        with fitscribe.start_run() as run:
            run_id = run.info.run_id
            assert reader.get_metric_history(run_id, "m") == []  # warm: no first-use import delays the read below
            reader.search_runs([run.info.experiment_id])
            for step in range(5):
                fitscribe.log_metric("m", float(step), step=step)
            assert [m.step for m in reader.get_metric_history(run_id, "m")] == [0, 1, 2, 3, 4]
            assert reader.get_run(run_id).data.metrics == {"m": 4.0}
            found = reader.search_runs([run.info.experiment_id], "metrics.m = 4")
            assert [r.info.run_id for r in found] == [run_id]
    finally:
        reader.close()


def test_two_clients_of_one_database_each_read_what_the_other_logged(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    a, b = fitscribe.Client(uri), fitscribe.Client(uri)
    try:
        run_id = a.create_run("0").info.run_id
        for round_ in range(3):  # both journals live and busy, reads through each in turn
            a.log_batch(run_id, metrics=[Metric("a", float(s), 1000, round_ * 10 + s) for s in range(10)])
            b.log_metric(run_id, "b", float(round_), timestamp=1000, step=round_)
            assert len(b.get_metric_history(run_id, "a")) == 10 * (round_ + 1)
            assert len(a.get_metric_history(run_id, "b")) == round_ + 1
    finally:
        a.close()
        b.close()


def test_threads_first_calls_on_a_shared_client_lose_no_point_to_a_read(tmp_path: Path) -> None:
    """Threads whose very first calls race on one new ``Client``; the read right after sees every point
    (the race used to leave some first points in the journal of a store the Client had replaced)."""
    uri = str(tmp_path / "store")
    run_id = fitscribe.Client(uri).create_run("0").info.run_id
    for round_ in range(5):
        client = fitscribe.Client(uri)
        start = threading.Barrier(8)

        def work(i: int, client: fitscribe.Client = client, start: threading.Barrier = start) -> None:
            start.wait(30)
            client.log_metric(run_id, "first", float(i), timestamp=1000, step=i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        try:
            assert len(client.get_metric_history(run_id, "first")) == 8 * (round_ + 1)
        finally:
            client.close()


def test_a_deferred_autolog_step_failing_in_strict_mode_still_ends_the_run(tmp_path: Path) -> None:
    """A background step that raises (strict mode, as in a forked worker that inherited a module
    half-imported by the parent's finisher) used to skip the run's end: the run stayed RUNNING."""
    import pytest

    from fitscribe.autolog._config import Integration
    from fitscribe.autolog._session import TrainingCall, call_patched
    from fitscribe.errors import FitscribeWarning

    class Tiny(Integration):
        name = "tiny"

    integration = Tiny()
    integration.enabled = True

    def broken_step() -> None:
        raise RuntimeError("a deferred step failed")

    def after(call: TrainingCall, result: object) -> None:
        call.defer("plots", broken_step)

    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    with pytest.warns(FitscribeWarning, match="a deferred step failed"):
        assert call_patched(integration, lambda: 42, object(), (), {}, after=after) == 42
        run = fitscribe.last_active_run()  # waits for the background finisher
    assert run is not None and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "tiny"


def test_a_forked_child_imports_afresh_what_the_finisher_was_importing_at_the_fork(tmp_path: Path) -> None:
    """The parent's finisher thread is inside an import (as its plots import matplotlib and PIL) when
    the process forks; the child, which has no such thread, imports the same module whole. Before,
    the child waited forever on the dead thread's module lock (or got the half-initialized module)."""
    import os
    import subprocess
    import sys
    import textwrap

    (tmp_path / "slow_to_import.py").write_text(textwrap.dedent("""
        import os, sys
        if os.getpid() == sys.parent_pid:  # in the parent: hold the import open until the fork is done
            sys.import_started.set()
            sys.forked.wait(30)
        core = 1
    """))
    script = textwrap.dedent("""
        import importlib, os, sys, threading
        from fitscribe.autolog._session import DEFERRED
        sys.parent_pid, sys.import_started, sys.forked = os.getpid(), threading.Event(), threading.Event()
        DEFERRED.submit(lambda: importlib.import_module("slow_to_import"))
        assert sys.import_started.wait(30)
        pid = os.fork()
        if pid == 0:
            import slow_to_import
            os._exit(0 if slow_to_import.core == 1 else 3)
        sys.forked.set()
        _, status = os.waitpid(pid, 0)
        DEFERRED.wait(30)
        import slow_to_import
        print("child exit", os.waitstatus_to_exitcode(status), "parent", slow_to_import.core)
    """)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              timeout=20, env={**os.environ, "PYTHONPATH": path})
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the forked child hung importing the module: {exc.stderr!r}") from None
    assert done.stdout.strip() == "child exit 0 parent 1", done.stdout + done.stderr[-2000:]
