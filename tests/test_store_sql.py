"""The tracking store and model registry conformance suites on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from fitscribe.backends import get_tracking_store
from fitscribe.backends.base import ModelRegistryStore, TrackingStore
from fitscribe.testing.model_registry_suite import ModelRegistryStoreSuite
from fitscribe.testing.tracking_store_suite import TrackingStoreSuite


class TestSqlStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, tracking_uri: str) -> TrackingStore:
        store = get_tracking_store(tracking_uri)
        yield store
        store.close()


class TestSqlModelRegistry(ModelRegistryStoreSuite):
    @pytest.fixture
    def registry(self, tracking_uri: str) -> ModelRegistryStore:
        store = get_tracking_store(tracking_uri)
        yield store.registry  # type: ignore[attr-defined]
        store.close()


# -- metric history chunks (fitscribe/backends/sql/chunks.py) and fast Metric building ------------
def test_metrics_built_from_columns_equal_constructed_ones() -> None:
    import dataclasses
    import math
    import pickle

    from fitscribe.entities import Metric

    built = Metric._from_columns("loss", [0.5, math.nan, -math.inf], [10, 11, 12], [0, 1, 2])
    made = [Metric("loss", 0.5, 10, 0), Metric("loss", math.nan, 11, 1), Metric("loss", -math.inf, 12, 2)]
    assert built == made and [repr(m) for m in built] == [repr(m) for m in made]
    assert [hash(m) for m in built] == [hash(m) for m in made] and type(built[0]) is Metric
    assert dataclasses.asdict(built[0]) == {"key": "loss", "value": 0.5, "timestamp": 10, "step": 0}
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].value = 1.0  # type: ignore[misc]


def test_group_batches_keeps_logging_order_per_series() -> None:
    from fitscribe.backends.sql.chunks import group_batches

    periodic = ("r", ["a", "b", "a", "b"], [1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], [0, 0, 1, 1])
    scattered = ("r", ["b", "c", "c", "a"], [5.0, 6.0, 7.0, 8.0], [2, 2, 3, 2], [2, 0, 1, 2])
    other_run = ("s", ["a"], [9.0], [0], [0])
    grouped = group_batches([periodic, scattered, other_run])
    assert grouped == {
        ("r", "a"): [[1.0, 3.0, 8.0], [0, 1, 2], [0, 1, 2]],
        ("r", "b"): [[2.0, 4.0, 5.0], [0, 1, 2], [0, 1, 2]],
        ("r", "c"): [[6.0, 7.0], [2, 3], [0, 1]],
        ("s", "a"): [[9.0], [0], [0]],
    }


def test_order_and_latest_of_a_series() -> None:
    import math

    from fitscribe.backends.sql.chunks import latest_of, order_points

    values, timestamps, steps = [1.0, 2.0, math.nan, 4.0, 5.0], [5, 3, 9, 3, 1], [1, 1, 0, 1, 2]
    assert order_points(values, timestamps, steps)[0][1:] == [2.0, 4.0, 1.0, 5.0]
    assert latest_of(values, timestamps, steps) == (5.0, 1, 2, 1.0, 5.0)
    assert latest_of([3.0, 7.0], [1, 1], [4, 4])[:3] == (7.0, 1, 4)  # ties: the last logged wins
    assert latest_of([math.nan], [1], [0])[3:] == (None, None)


def test_a_long_series_in_one_write_is_split_into_chunks(tmp_path: Any) -> None:
    import sqlalchemy as sa

    from fitscribe.backends.sql.chunks import MAX_POINTS_PER_CHUNK
    from fitscribe.entities import Metric

    store = get_tracking_store(str(tmp_path / "s"))
    run_id = store.create_run("0", "me", 0).info.run_id
    count = MAX_POINTS_PER_CHUNK * 2 + 5
    store.log_batch(run_id, metrics=[Metric("x", float(i), 1, count - i) for i in range(count)])
    history = store.get_metric_history(run_id, "x")
    assert [m.step for m in history] == list(range(1, count + 1)) and history[0].value == count - 1
    with store.engine.connect() as conn:
        sizes = conn.execute(sa.text("SELECT points FROM metric_chunks ORDER BY id")).scalars().all()
    assert sizes == [MAX_POINTS_PER_CHUNK, MAX_POINTS_PER_CHUNK, 5]
    page = store.get_metric_history(run_id, "x", max_results=3, page_token=None)
    assert [m.step for m in page] == [1, 2, 3] and page.token
    store.close()


@pytest.mark.parametrize("experiment_id", [str(2**31), "-" + str(2**31 + 1), "1" + "0" * 39])
def test_an_id_beyond_the_column_is_no_experiment_on_every_database(tracking_uri: str, experiment_id: str) -> None:
    """PostgreSQL's 32-bit column raised a DataError (a 500 from the server) for ids past 2**31."""
    from fitscribe.entities import ViewType
    from fitscribe.errors import ExperimentNotFound

    store = get_tracking_store(tracking_uri)
    with pytest.raises(ExperimentNotFound):
        store.get_experiment(experiment_id)
    try:  # no such experiment: no runs, or refused like get_experiment (never a database error)
        assert list(store.search_runs([experiment_id], None, ViewType.ALL, 10, None, None)) == []
    except ExperimentNotFound:
        pass
    with pytest.raises(ExperimentNotFound):
        store.create_run(experiment_id, user_id="u", start_time=1, tags=[], run_name="r")
    store.close()


def test_purge_experiment_needs_it_deleted_and_empty_then_frees_its_name(tracking_uri: str) -> None:
    from fitscribe.errors import ExperimentNotFound, InvalidStateError
    from fitscribe.entities import LifecycleStage

    store = get_tracking_store(tracking_uri)
    exp_id = store.create_experiment("to-purge", None, {})
    run = store.create_run(exp_id, user_id="u", start_time=1, tags=[], run_name="r")
    with pytest.raises(InvalidStateError):
        store.purge_experiment(exp_id)  # not deleted
    store.update_experiment(exp_id, lifecycle_stage=LifecycleStage.DELETED.value)
    with pytest.raises(InvalidStateError):
        store.purge_experiment(exp_id)  # a run left
    store.update_run_info(run.info.run_id, lifecycle_stage=LifecycleStage.DELETED.value)
    store.purge_run(run.info.run_id)
    store.purge_experiment(exp_id)
    with pytest.raises(ExperimentNotFound):
        store.get_experiment(exp_id)
    again = store.create_experiment("to-purge", None, {})  # the name is free again
    assert store.get_experiment(again).name == "to-purge"
    store.close()
