"""Connections of the SQL store across threads and forks (issue 11, items 8 and 4): a thread's SQLite
connection is closed when the thread ends, and a forked child never uses its parent's connections."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

import fitscribe
from fitscribe.entities import Metric


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _in_threads(count: int, work: Callable[[int], None], at_once: int = 8) -> None:
    """Run ``work(i)`` for i < count, each in its own short-lived thread, ``at_once`` at a time;
    re-raise the first error."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    for start in range(0, count, at_once):
        threads = [threading.Thread(target=guarded, args=(i,)) for i in range(start, min(start + at_once, count))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]


pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc/self/fd")


@pytest.mark.parametrize("journal", ["on", "off"])
def test_a_thousand_short_lived_logging_threads_leave_no_open_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal: str
) -> None:
    if journal == "off":
        monkeypatch.setenv("FITSCRIBE_METRIC_JOURNAL", "0")
    client = fitscribe.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id

    def log(i: int) -> None:
        client.log_param(run_id, f"p{i}", str(i))
        client.log_batch(run_id, metrics=[Metric("m", float(i), 0, i)])

    _in_threads(16, log)  # warm up: the journal, its thread and the main thread's connections
    client.flush()
    before = _open_fds()
    _in_threads(1000, lambda i: log(16 + i))
    client.flush()
    after = _open_fds()
    # SQLite defers closing a file while another connection of the process holds a lock on it, and
    # reuses such files: a few may stay open (at most about the threads running at once)
    assert after - before <= 12, (before, after)
    assert len(client.get_run(run_id).data.params) == 1016
    assert len(client.get_metric_history(run_id, "m")) == 1016
    client.close()


@pytest.fixture
def autolog_sklearn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    fitscribe.autolog(log_models=False, log_plots=False, log_datasets=False, log_training_metrics=False, silent=True)
    yield
    fitscribe.autolog(disable=True)


def test_a_hundred_autologged_fits_in_threads_leave_no_open_files(autolog_sklearn: None) -> None:
    from sklearn.datasets import make_classification
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=30, n_features=4, random_state=0)

    def fit(_: int) -> None:
        DecisionTreeClassifier(max_depth=2).fit(X, y)

    _in_threads(3, fit, at_once=1)
    fitscribe.flush()
    before = _open_fds()
    _in_threads(100, fit, at_once=4)
    fitscribe.flush()
    after = _open_fds()
    assert after - before <= 12, (before, after)
    assert len(fitscribe.search_runs(output_format="list")) == 103


def _child_logs(uri: str, run_id: str, queue: "multiprocessing.Queue[str]") -> None:
    try:
        client = fitscribe.Client(uri)
        client.log_param(run_id, "child", "yes")
        client.log_metric(run_id, "child_m", 1.0, step=0)
        seen = client.get_run(run_id).data
        assert seen.params == {"parent": "yes", "child": "yes"}, seen.params
        client.close()
        queue.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(exc).__name__}: {exc}")


def test_a_forked_child_uses_connections_of_its_own(tracking_uri: str) -> None:
    """The parent holds open connections (one in a thread that stays alive) when it forks; the child
    logs and reads through new ones and closes them, and the parent goes on using its own."""
    client = fitscribe.Client(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "parent", "yes")
    ready, done = threading.Event(), threading.Event()

    def hold() -> None:  # a second parent connection, alive across the fork
        client.get_run(run_id)
        ready.set()
        done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(30)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_child_logs, args=(tracking_uri, run_id, queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(60)
    done.set()
    holder.join(30)
    assert results == ["ok", "ok"]
    assert [child.exitcode for child in children] == [0, 0]
    client.log_param(run_id, "after", "yes")  # the parent's connections still work
    data = client.get_run(run_id).data
    assert data.params == {"parent": "yes", "child": "yes", "after": "yes"}
    assert len(client.get_metric_history(run_id, "child_m")) == 2
    client.close()
