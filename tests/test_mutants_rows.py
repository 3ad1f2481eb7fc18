"""The SQL store's write path (backends/sql/rows.py, writer.py, statements.py) as a user sees it,
on every database: values at their edges read back, long series, the write-once rule for params,
tags, run updates one field at a time. Written to kill the mutants that survived the older store
tests (issue 17, item 4)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import fitscribe
from fitscribe.entities import Metric, Param, RunStatus, RunTag
from fitscribe.errors import InvalidStateError, InvalidValueError, NotFoundError

MAX_DOUBLE = 1.7976931348623157e308
CHUNK = 16384  # points per stored row (chunks.MAX_POINTS_PER_CHUNK)


@pytest.fixture(params=["sqlite", "sqlite-direct", "sqlite-sqlalchemy",
                        pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new store on each database: embedded SQLite with and without its metric journal, SQLite
    through SQLAlchemy (the statements of statements.py), PostgreSQL, MariaDB."""
    if request.param == "sqlite-direct":
        monkeypatch.setenv("FITSCRIBE_METRIC_JOURNAL", "0")
    if request.param == "sqlite-sqlalchemy":
        return f"sqlite:///{tmp_path}/sa.db?timeout=30"
    if request.param.startswith("sqlite"):
        return str(tmp_path / "store")
    return str(request.getfixturevalue(f"{request.param}_uri"))


def _same(a: float | None, b: float | None) -> bool:
    return a is b or (a is not None and b is not None and (a == b or math.isnan(a) and math.isnan(b)))


# key -> points (value, step, timestamp) in logging order; then latest, min, max as read back
SERIES = {
    "finite": ([(1.5, 0, 1), (-2.0, 1, 1), (3.25, 2, 1)], 3.25, -2.0, 3.25),
    "nan": ([(math.nan, 0, 1)], math.nan, None, None),
    "nan_last": ([(4.0, 0, 1), (math.nan, 1, 1)], math.nan, 4.0, 4.0),
    "pinf": ([(1.0, 0, 1), (math.inf, 1, 1)], math.inf, 1.0, math.inf),
    "ninf": ([(-math.inf, 0, 1), (5.0, 1, 1)], 5.0, -math.inf, 5.0),
    "ninf_last": ([(0.5, 0, 1), (-math.inf, 1, 1)], -math.inf, -math.inf, 0.5),
    "max_double": ([(MAX_DOUBLE, 0, 1)], MAX_DOUBLE, None, None),
    "min_double": ([(-MAX_DOUBLE, 0, 1)], -MAX_DOUBLE, None, None),
    "tiny": ([(5e-324, 0, 1), (0.0, 1, 1)], 0.0, 0.0, 5e-324),
    "steps": ([(1.0, 2, 10), (2.0, 1, 20), (3.0, 2, 5)], 1.0, 1.0, 3.0),  # latest: largest (step, timestamp)
    "ties": ([(7.0, 3, 10), (8.0, 3, 10)], 8.0, 7.0, 8.0),  # the last logged among equals
}


def test_values_at_their_edges_read_back(store_uri: str) -> None:
    client = fitscribe.Client(store_uri)
    for batched in (True, False):  # log_batch, then log_metric
        _values_read_back(client, batched)
    client.close()


def _values_read_back(client: fitscribe.Client, batched: bool) -> None:
    run_id = client.create_run("0").info.run_id
    for key, (points, *_) in SERIES.items():
        metrics = [Metric(key, v, ts, step) for v, step, ts in points]
        if batched:
            client.log_batch(run_id, metrics=metrics)
        else:
            for m in metrics:
                client.log_metric(run_id, m.key, m.value, timestamp=m.timestamp, step=m.step)
    data = client.get_run(run_id).data
    wrong = []
    for key, (points, latest, low, high) in SERIES.items():
        summary = data.metric_summaries[key]
        if not (_same(data.metrics[key], latest) and _same(summary.latest, latest)):
            wrong.append((key, "latest", latest, data.metrics[key], summary.latest))
        if key not in ("max_double", "min_double") and not (_same(summary.min, low) and _same(summary.max, high)):
            wrong.append((key, "min/max", low, high, summary.min, summary.max))
        history = [(m.value, m.step, m.timestamp) for m in client.get_metric_history(run_id, key)]
        expected = sorted(points, key=lambda p: (p[1], p[2]))
        if len(history) != len(expected) or not all(_same(a[0], b[0]) and a[1:] == b[1:] for a, b in zip(history, expected)):
            wrong.append((key, "history", expected, history))
    assert wrong == []
    # the latest is also what a search and an ordering see
    def found(filter_string: str) -> list[str]:
        return [r.info.run_id for r in client.search_runs(["0"], filter_string) if r.info.run_id == run_id]

    assert found("metrics.pinf > 1e308") == [run_id]
    assert found("metrics.ninf_last < -1e308") == [run_id]
    assert found("metrics.max_double = 1.7976931348623157e308") == [run_id]
    assert found("metrics.pinf = 1.7976931348623157e308") == []


def _a_series_longer_than_one_chunk(client: fitscribe.Client) -> None:
    """A series split over several stored rows reads back whole and in order, with its min and max,
    its latest point, and a step range that straddles the rows."""
    run_id = client.create_run("0").info.run_id
    n = CHUNK + 300
    values = [float(i % 1000) - (5000.0 if i == CHUNK + 7 else 0.0) for i in range(n)]
    client.log_batch(run_id, metrics=[Metric("long", v, 100 + i, i) for i, v in enumerate(values)])
    client.log_batch(run_id, metrics=[Metric("long", 12345.0, 1, n + 5)])  # a later batch: another row
    history = client.get_metric_history(run_id, "long")
    assert [m.step for m in history] == [*range(n), n + 5]
    assert [m.value for m in history] == [*values, 12345.0]
    assert history[CHUNK].timestamp == 100 + CHUNK
    summary = client.get_run(run_id).data.metric_summaries["long"]
    assert min(values) == (CHUNK + 7) % 1000 - 5000.0  # in the second stored row
    assert (summary.latest, summary.step, summary.min, summary.max) == (12345.0, n + 5, min(values), 12345.0)
    arrays = client.store.metric_arrays([run_id], "long", min_step=CHUNK - 2, max_step=CHUNK + 2)[run_id]
    steps = [int(s) for s in arrays.steps if CHUNK - 2 <= s <= CHUNK + 2]
    assert steps == [CHUNK - 2, CHUNK - 1, CHUNK, CHUNK + 1, CHUNK + 2]


def _step_ranges_open_on_one_side(client: fitscribe.Client) -> None:
    """A range with only a lower or only an upper bound reaches the extreme steps (negative, 2**63 - 1)."""
    run_id = client.create_run("0").info.run_id
    edges = [-(2**63), -1000, 0, 500, 2**63 - 1]
    for step in edges:  # one stored row per point
        client.log_batch(run_id, metrics=[Metric("m", float(step % 7), 1, step)])
    arrays = client.store.metric_arrays

    def steps(**bounds: int) -> list[int]:
        found = arrays([run_id], "m", **bounds)[run_id]
        low, high = bounds.get("min_step", -(2**63)), bounds.get("max_step", 2**63 - 1)
        return [int(s) for s in found.steps if low <= s <= high]

    assert steps(max_step=0) == [-(2**63), -1000, 0]
    assert steps(min_step=200) == [500, 2**63 - 1]
    assert steps(min_step=-5000, max_step=600) == [-1000, 0, 500]
    assert steps() == edges


def _history_pages(client: fitscribe.Client) -> None:
    """Pages of a history hold exactly their points; a page token without max_results reads to the end."""
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("m", float(i), 1, i) for i in range(7)])
    history = client.store.get_metric_history
    pages: list[list[int]] = []
    token = None
    for _ in range(10):
        page = history(run_id, "m", max_results=3, page_token=token)
        pages.append([m.step for m in page])
        token = page.token
        if not token:
            break
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]
    rest = history(run_id, "m", page_token=history(run_id, "m", max_results=2).token)
    assert ([m.step for m in rest], rest.token, {m.key for m in rest}) == ([2, 3, 4, 5, 6], None, {"m"})
    whole = history(run_id, "m", max_results=7)
    assert (len(whole), whole.token) == (7, None)


def _params_are_write_once(client: fitscribe.Client) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, params=[Param("a", "1"), Param("a", "1"), Param("b", "2")])  # a repeat is fine
    with pytest.raises(InvalidValueError, match=r"'a'.*'1'.*'3'"):
        client.log_batch(run_id, params=[Param("a", "1"), Param("a", "3")])  # twice in one batch
    with pytest.raises(InvalidValueError, match=r"'b'.*'2'.*'9'"):
        client.log_batch(run_id, params=[Param("c", "new"), Param("b", "9")])  # all or nothing
    client.log_param(run_id, "a", "1")  # the same value again is fine
    with pytest.raises(InvalidValueError, match="write-once"):
        client.log_param(run_id, "a", "2")
    with pytest.raises(InvalidValueError, match=f"'b' of run {run_id} is already '2'"):
        client.log_batch(run_id, params=[Param("b", "9")])
    assert client.get_run(run_id).data.params == {"a": "1", "b": "2"}
    many = [Param(f"p{i}", str(i)) for i in range(600)]  # a batch checked in parts of 500 keys
    client.log_batch(run_id, params=many)
    with pytest.raises(InvalidValueError, match="'p10'"):
        client.log_batch(run_id, params=[*many[:10], Param("p10", "changed"), *many[11:]])
    assert client.get_run(run_id).data.params["p10"] == "10"


def _tags_last_value_wins(client: fitscribe.Client) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, tags=[RunTag("t", "1"), RunTag("t", "2"), RunTag("u", "x")])
    client.set_tag(run_id, "u", "y")
    tags = client.get_run(run_id).data.tags
    assert (tags["t"], tags["u"]) == ("2", "y")
    client.delete_tag(run_id, "t")
    assert "t" not in client.get_run(run_id).data.tags


def _run_updates_change_only_what_they_name(client: fitscribe.Client) -> None:
    store = client.store
    run = client.create_run("0", run_name="first", start_time=1000)
    run_id = run.info.run_id
    info = store.update_run_info(run_id, run_name="second")
    assert (info.run_name, info.status, info.end_time, info.start_time) == ("second", RunStatus.RUNNING, None, 1000)
    info = store.update_run_info(run_id, status=RunStatus.FAILED)
    assert (info.run_name, info.status, info.end_time) == ("second", RunStatus.FAILED, None)
    info = store.update_run_info(run_id, end_time=5000)
    assert (info.run_name, info.status, info.end_time) == ("second", RunStatus.FAILED, 5000)
    info = store.update_run_info(run_id, status=RunStatus.FINISHED, end_time=6000, run_name="third")
    assert (info.run_name, info.status, info.end_time) == ("third", RunStatus.FINISHED, 6000)
    assert info.experiment_id == "0" and info.artifact_uri == run.info.artifact_uri
    read = client.get_run(run_id).info
    assert (read.run_name, read.status, read.end_time, read.lifecycle_stage) == ("third", RunStatus.FINISHED, 6000, "active")
    info = store.update_run_info(run_id, lifecycle_stage="deleted")
    assert info.lifecycle_stage == "deleted" and info.run_name == "third"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(NotFoundError):
        store.update_run_info("0" * 32, run_name="x")


def _experiments_and_start_times(client: fitscribe.Client) -> None:
    exp_id = client.create_experiment("e", tags={"k": "v"})
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.lifecycle_stage, exp.tags["k"]) == ("e", "active", "v")
    assert isinstance(exp.creation_time, int) and exp.last_update_time == exp.creation_time > 0
    assert exp.artifact_location.rstrip("/").endswith(exp_id)
    assert client.get_experiment_by_name("e").experiment_id == exp_id
    assert client.get_experiment("0").name == "Default"
    client.set_experiment_tag(exp_id, "k", "w")
    assert client.get_experiment(exp_id).tags["k"] == "w"
    ids = [client.create_run(exp_id, start_time=1000 + i).info.run_id for i in range(3)]
    found = client.store.run_start_times([*ids, "f" * 32])
    assert found == {ids[0]: 1000, ids[1]: 1001, ids[2]: 1002}
    run = client.create_run(exp_id).info  # its artifacts go under its experiment's location
    assert run.artifact_uri.startswith(exp.artifact_location) and run.artifact_uri.endswith(f"{run.run_id}/artifacts")
    client.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match=r"The experiment 'e' \(id \d+\) is deleted"):
        client.create_run(exp_id)


def test_the_write_rules_read_back(store_uri: str) -> None:
    """One store per database for the checks above (a fresh server database costs ~1 s)."""
    client = fitscribe.Client(store_uri)
    try:
        _a_series_longer_than_one_chunk(client)
        _step_ranges_open_on_one_side(client)
        _history_pages(client)
        _params_are_write_once(client)
        _tags_last_value_wins(client)
        _run_updates_change_only_what_they_name(client)
        _experiments_and_start_times(client)
    finally:
        client.close()
