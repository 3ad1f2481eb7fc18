"""The embedded store's metric journal (backends/journal_core.py, backends/sql/journal.py) as a user
sees it: several stores of one database in a process, a flush with nothing to copy, logging after
close. Written to kill the mutants that survived the older journal tests (issue 17, item 4)."""

from __future__ import annotations

import time
from pathlib import Path

import fitscribe
from fitscribe.backends import get_tracking_store
from fitscribe.entities import Metric
from fitscribe.errors import BackendError


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
