"""The user's view at the edges (issue 17 item 5): what a script logs, read back at once in the same
process through the fluent API and ``Client``, on every database.

- several threads logging into one run at the same time: every point is there, once;
- two stores in one process (two embedded folders and a PostgreSQL database), the fluent API and
  ``Client`` interleaved: each store holds exactly its own runs and points;
- +inf and -inf as a metric's latest value read back as themselves, beside NaN.
"""

from __future__ import annotations

import contextlib
import math
import threading
from pathlib import Path

import pytest

import fitscribe
from fitscribe.entities import Metric
from fitscribe.errors import NotFoundError


def test_several_threads_logging_into_one_run_all_points_present(tracking_uri: str) -> None:
    """Worker threads log through a shared ``Client`` while the main thread logs to its active run
    with the fluent API (the active run belongs to the thread that started it, as in MLflow)."""
    fitscribe.set_tracking_uri(tracking_uri)
    errors: list[BaseException] = []
    client = fitscribe.Client(tracking_uri)
    with fitscribe.start_run() as run:
        run_id = run.info.run_id
        start = threading.Barrier(7)

        def work(i: int) -> None:
            try:
                start.wait(30)
                for s in range(60):
                    client.log_metric(run_id, "shared", float(i * 1000 + s), timestamp=1000, step=i * 1000 + s)
                client.log_batch(run_id, metrics=[Metric(f"own{i}", float(s), 1000, s) for s in range(60)])
                client.log_param(run_id, f"thread{i}", str(i))
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 7)]
        for thread in threads:
            thread.start()
        start.wait(30)
        for s in range(60):  # the main thread, at the same time
            fitscribe.log_metric("shared", float(s), step=s)
        for thread in threads:
            thread.join(60)
        assert errors == [] and not any(t.is_alive() for t in threads)
    shared = client.get_metric_history(run_id, "shared")
    assert sorted(m.step for m in shared) == sorted(i * 1000 + s for i in range(7) for s in range(60))
    assert all(m.value == float(m.step) for m in shared)
    for i in range(1, 7):
        assert [m.step for m in client.get_metric_history(run_id, f"own{i}")] == list(range(60))
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert {k: v for k, v in got.data.params.items() if k.startswith("thread")} == {f"thread{i}": str(i) for i in range(1, 7)}
    assert got.data.metrics["shared"] == 6059.0  # the highest step's value
    client.close()


@pytest.mark.postgres
def test_two_stores_in_one_process_fluent_and_client_interleaved(tmp_path: Path, postgresql_uri: str) -> None:
    folder_a, folder_b = str(tmp_path / "a"), str(tmp_path / "b")
    fitscribe.set_tracking_uri(folder_a)
    b, pg = fitscribe.Client(folder_b), fitscribe.Client(postgresql_uri)
    run_b = b.create_run("0").info.run_id
    run_pg = pg.create_run("0").info.run_id
    with fitscribe.start_run() as active:
        for step in range(40):
            fitscribe.log_metric("m", float(step), step=step)  # store a (fluent)
            b.log_metric(run_b, "m", 100.0 + step, timestamp=1000, step=step)
            pg.log_metric(run_pg, "m", 200.0 + step, timestamp=1000, step=step)
            if step == 20:
                fitscribe.log_param("where", "a")
                b.log_param(run_b, "where", "b")
                pg.log_param(run_pg, "where", "pg")
                assert fitscribe.get_run(active.info.run_id).data.params == {"where": "a"}
                assert [m.step for m in b.get_metric_history(run_b, "m")] == list(range(21))  # read at once
    b.set_terminated(run_b)
    pg.set_terminated(run_pg)
    fitscribe.set_tracking_uri(folder_b)
    with fitscribe.start_run() as second_b:  # the fluent API now writes to b
        fitscribe.log_metric("m", -1.0)
    expected = {folder_a: ({active.info.run_id}, 0.0, "a"), folder_b: ({run_b, second_b.info.run_id}, 100.0, "b"),
                postgresql_uri: ({run_pg}, 200.0, "pg")}
    own = {folder_a: active.info.run_id, folder_b: run_b, postgresql_uri: run_pg}
    for uri, (run_ids, offset, where) in expected.items():
        client = {folder_a: fitscribe.Client(folder_a), folder_b: b, postgresql_uri: pg}[uri]
        assert {r.info.run_id for r in client.search_runs(["0"])} == run_ids, uri
        history = client.get_metric_history(own[uri], "m")
        assert [(m.step, m.value) for m in history] == [(s, offset + s) for s in range(40)], uri
        run = client.get_run(own[uri])
        assert run.data.params == {"where": where} and run.info.status == "FINISHED", uri
        with pytest.raises(NotFoundError) if uri != folder_b else contextlib.nullcontext():
            client.get_run(second_b.info.run_id)
        client.close()


def test_infinities_as_the_latest_value_read_back_as_themselves(tracking_uri: str) -> None:
    fitscribe.set_tracking_uri(tracking_uri)
    with fitscribe.start_run() as run:
        for key, latest in (("up", math.inf), ("down", -math.inf), ("nan", math.nan)):
            fitscribe.log_metric(key, 1.0, step=0)
            fitscribe.log_metric(key, latest, step=1)
        fitscribe.log_metric("back", -math.inf, step=0)
        fitscribe.log_metric("back", 2.5, step=1)  # an infinity earlier does not stick
        metrics = fitscribe.get_run(run.info.run_id).data.metrics  # read at once, inside the run
        assert metrics["up"] == math.inf and metrics["down"] == -math.inf and math.isnan(metrics["nan"])
    client = fitscribe.Client(tracking_uri)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["up"] == math.inf and metrics["down"] == -math.inf and math.isnan(metrics["nan"])
    assert metrics["back"] == 2.5
    assert [m.value for m in client.get_metric_history(run.info.run_id, "down")] == [1.0, -math.inf]
    (found,) = fitscribe.search_runs(filter_string="metrics.down < 0", output_format="list")
    assert found.data.metrics["down"] == -math.inf
    assert fitscribe.search_runs(filter_string="metrics.up < 0", output_format="list") == []
    client.close()
