"""A conformance suite every ``TrackingStore`` must pass.

Subclass it in a test module and provide a ``store`` fixture returning a fresh, empty store::

    class TestMyStore(TrackingStoreSuite):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(...)
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from fitscribe._time import now_ms
from fitscribe.backends.base import TrackingStore
from fitscribe.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from fitscribe.errors import (
    AlreadyExistsError,
    ExperimentNotFound,
    InvalidStateError,
    InvalidValueError,
    NotFoundError,
    RunNotFound,
)

__all__ = ["TrackingStoreSuite"]


class TrackingStoreSuite:
    """Behaviour shared by all tracking stores; needs a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> TrackingStore:  # pragma: no cover - overridden
        raise NotImplementedError("Provide a `store` fixture returning a fresh TrackingStore.")

    def _run(self, store: TrackingStore, exp_id: str = "0", **kwargs: Any) -> str:
        return store.create_run(exp_id, "alice", now_ms(), **kwargs).info.run_id

    # -- experiments ---------------------------------------------------------------------------
    def test_default_experiment_exists(self, store: TrackingStore) -> None:
        exp = store.get_experiment("0")
        assert exp.name == "Default" and exp.lifecycle_stage == "active"

    def test_create_and_get_experiment(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("exp-ü 1", tags={"team": "vision"})
        exp = store.get_experiment(exp_id)
        assert (exp.name, exp.tags) == ("exp-ü 1", {"team": "vision"})
        assert exp.artifact_location.endswith(exp_id)
        assert exp.creation_time and exp.creation_time <= now_ms()
        assert store.get_experiment_by_name("exp-ü 1") == exp
        assert store.get_experiment_by_name("nope") is None

    def test_experiment_names_are_unique_and_case_sensitive(self, store: TrackingStore) -> None:
        store.create_experiment("Same")
        with pytest.raises(AlreadyExistsError, match="'Same' already exists"):
            store.create_experiment("Same")
        store.create_experiment("same")  # differs in case: allowed on every database

    @pytest.mark.parametrize("name", ["", "   ", "x" * 501, None])
    def test_invalid_experiment_names(self, store: TrackingStore, name: Any) -> None:
        with pytest.raises(InvalidValueError, match="experiment name"):
            store.create_experiment(name)

    def test_missing_experiment(self, store: TrackingStore) -> None:
        with pytest.raises(ExperimentNotFound, match="'12345'"):
            store.get_experiment("12345")
        with pytest.raises(ExperimentNotFound, match="integers"):
            store.get_experiment("abc")

    def test_delete_restore_rename_experiment(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("to-delete")
        run_id = self._run(store, exp_id)
        store.update_experiment(exp_id, lifecycle_stage="deleted")
        assert store.get_experiment(exp_id).lifecycle_stage == "deleted"
        assert store.get_run(run_id).info.lifecycle_stage == "deleted"
        with pytest.raises(InvalidStateError, match="deleted"):
            store.create_run(exp_id, "alice", now_ms())
        with pytest.raises(AlreadyExistsError, match="deleted"):
            store.create_experiment("to-delete")
        store.update_experiment(exp_id, lifecycle_stage="active", new_name="restored")
        assert store.get_experiment(exp_id).name == "restored"
        assert store.get_run(run_id).info.lifecycle_stage == "active"

    def test_default_experiment_cannot_be_deleted(self, store: TrackingStore) -> None:
        with pytest.raises(InvalidStateError, match="Default"):
            store.update_experiment("0", lifecycle_stage="deleted")

    def test_search_experiments(self, store: TrackingStore) -> None:
        ids = [store.create_experiment(f"search-{i}", tags={"i": str(i)}) for i in range(5)]
        store.update_experiment(ids[0], lifecycle_stage="deleted")
        active = store.search_experiments(ViewType.ACTIVE_ONLY)
        assert {e.name for e in active} == {"Default", "search-1", "search-2", "search-3", "search-4"}
        deleted = store.search_experiments(ViewType.DELETED_ONLY)
        assert [e.name for e in deleted] == ["search-0"]
        assert len(store.search_experiments(ViewType.ALL)) == 6
        like = store.search_experiments(filter_string="name LIKE 'search-%' AND tags.i != '2'")
        assert {e.name for e in like} == {"search-1", "search-3", "search-4"}
        page1 = store.search_experiments(ViewType.ALL, max_results=4, order_by=["name ASC"])
        page2 = store.search_experiments(ViewType.ALL, max_results=4, order_by=["name ASC"], page_token=page1.token)
        assert [e.name for e in page1 + page2] == ["Default"] + [f"search-{i}" for i in range(5)]
        assert page2.token is None

    # -- runs ----------------------------------------------------------------------------------
    def test_create_and_get_run(self, store: TrackingStore) -> None:
        start = now_ms()
        run = store.create_run("0", "alice", start, [RunTag("mlflow.runName", "r1")], "r1")
        got = store.get_run(run.info.run_id)
        assert len(got.info.run_id) == 32 and got.info.run_uuid == got.info.run_id
        assert (got.info.run_name, got.info.user_id, got.info.status) == ("r1", "alice", RunStatus.RUNNING)
        assert got.info.status == "RUNNING"
        assert (got.info.start_time, got.info.end_time) == (start, None)
        assert got.info.artifact_uri.endswith(f"{run.info.run_id}/artifacts")
        assert got.data.tags == {"mlflow.runName": "r1"}

    def test_missing_run(self, store: TrackingStore) -> None:
        with pytest.raises(RunNotFound, match="0123456789abcdef0123456789abcdef"):
            store.get_run("0123456789abcdef0123456789abcdef")
        with pytest.raises(RunNotFound):
            store.log_batch("0123456789abcdef0123456789abcdef", metrics=[Metric("a", 1.0, now_ms(), 0)])
        with pytest.raises(InvalidValueError, match="run id"):
            store.get_run("../../etc/passwd")

    def test_update_run_info(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        end = now_ms()
        info = store.update_run_info(run_id, status=RunStatus.FINISHED, end_time=end, run_name="renamed")
        assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, end, "renamed")
        assert store.get_run(run_id).data.tags["mlflow.runName"] == "renamed"

    def test_delete_and_restore_run(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.update_run_info(run_id, lifecycle_stage="deleted")
        assert store.get_run(run_id).info.lifecycle_stage == "deleted"
        with pytest.raises(InvalidStateError, match="deleted"):
            store.log_batch(run_id, params=[Param("a", "1")])
        assert run_id in store.deleted_run_ids()
        store.update_run_info(run_id, lifecycle_stage="active")
        store.log_batch(run_id, params=[Param("a", "1")])

    def test_purge_run(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, [Metric("m", 1.0, now_ms(), 0)], [Param("p", "1")], [RunTag("t", "1")])
        with pytest.raises(InvalidStateError, match="not deleted"):
            store.purge_run(run_id)
        store.update_run_info(run_id, lifecycle_stage="deleted")
        store.purge_run(run_id)
        with pytest.raises(RunNotFound):
            store.get_run(run_id)
        assert run_id not in store.deleted_run_ids()

    # -- params, tags, metrics -----------------------------------------------------------------
    def test_params_are_write_once(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, params=[Param("lr", "0.1"), Param("layers", "3")])
        store.log_batch(run_id, params=[Param("lr", "0.1")])  # same value again is fine
        with pytest.raises(InvalidValueError, match=r"'lr'.*'0\.1'.*'0\.2'"):
            store.log_batch(run_id, params=[Param("lr", "0.2"), Param("other", "x")])
        assert store.get_run(run_id).data.params == {"lr": "0.1", "layers": "3"}  # batch was atomic

    def test_param_keys_are_case_sensitive(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, params=[Param("LR", "1"), Param("lr", "2")])
        assert store.get_run(run_id).data.params == {"LR": "1", "lr": "2"}

    def test_tags_are_mutable_and_deletable(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, tags=[RunTag("stage", "dev")])
        store.log_batch(run_id, tags=[RunTag("stage", "prod")])
        assert store.get_run(run_id).data.tags["stage"] == "prod"
        store.delete_tag(run_id, "stage")
        assert "stage" not in store.get_run(run_id).data.tags
        with pytest.raises(NotFoundError, match="stage"):
            store.delete_tag(run_id, "stage")

    @pytest.mark.parametrize(
        "bad, pattern",
        [
            (Param("", "x"), "non-empty"),
            (Param("a" * 251, "x"), "limit is 250"),
            (Param("bad*key", "x"), "not allowed"),
            (Param("../up", "x"), "normalised"),
            (Param("a//b", "x"), "normalised"),
            (Param("ok", "v" * 6001), "limit is 6000"),
        ],
    )
    def test_invalid_params(self, store: TrackingStore, bad: Param, pattern: str) -> None:
        run_id = self._run(store)
        with pytest.raises(InvalidValueError, match=pattern):
            store.log_batch(run_id, params=[bad])

    def test_long_values_at_the_limits(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        key = "k" * 250
        store.log_batch(run_id, params=[Param(key, "v" * 6000)], tags=[RunTag(key, "t" * 8000)])
        data = store.get_run(run_id).data
        assert data.params[key] == "v" * 6000 and data.tags[key] == "t" * 8000
        with pytest.raises(InvalidValueError, match="limit is 8000"):
            store.log_batch(run_id, tags=[RunTag("x", "t" * 8001)])

    def test_unicode_keys_and_values(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, [Metric("точность", 0.5, now_ms(), 0)], [Param("模型", "树 🌲")])
        data = store.get_run(run_id).data
        assert data.metrics == {"точность": 0.5} and data.params == {"模型": "树 🌲"}

    def test_metric_history_and_latest(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        for step, value in [(0, 3.0), (2, 1.0), (1, 2.0)]:
            store.log_metric(run_id, Metric("loss", value, 1000 + step, step))
        history = store.get_metric_history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.0), (2, 1.0)]
        run = store.get_run(run_id)
        assert run.data.metrics == {"loss": 1.0}  # latest = largest step, not last logged
        summary = run.data.metric_summaries["loss"]
        assert (summary.min, summary.max, summary.step) == (1.0, 3.0, 2)

    def test_nan_and_infinity_round_trip(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        values = [math.nan, math.inf, -math.inf, 1.5, -0.0, 1e-300, 1.7976931348623157e307]
        store.log_batch(run_id, metrics=[Metric("m", v, 1000, i) for i, v in enumerate(values)])
        got = [m.value for m in store.get_metric_history(run_id, "m")]
        assert math.isnan(got[0]) and got[1] == math.inf and got[2] == -math.inf
        assert got[3:] == values[3:]
        summary = store.get_run(run_id).data.metric_summaries["m"]
        assert (summary.min, summary.max) == (-math.inf, math.inf)
        store.log_metric(run_id, Metric("nan_last", math.nan, 5, 10))
        assert math.isnan(store.get_run(run_id).data.metrics["nan_last"])

    def test_metric_history_paging(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, metrics=[Metric("x", float(i), 1000, i) for i in range(25)])
        page = store.get_metric_history(run_id, "x", max_results=10)
        seen = list(page)
        while page.token:
            page = store.get_metric_history(run_id, "x", max_results=10, page_token=page.token)
            seen.extend(page)
        assert [m.step for m in seen] == list(range(25))

    @pytest.mark.parametrize("value", ["0.5", None, [1], complex(1, 1)])
    def test_non_numeric_metrics_are_refused(self, store: TrackingStore, value: Any) -> None:
        run_id = self._run(store)
        with pytest.raises(InvalidValueError, match="metrics are numbers"):
            store.log_metric(run_id, Metric("m", value, now_ms(), 0))

    def test_log_batch_is_atomic(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        with pytest.raises(InvalidValueError):
            store.log_batch(run_id, metrics=[Metric("good", 1.0, now_ms(), 0)], params=[Param("bad key!", "1")])
        run = store.get_run(run_id)
        assert run.data.metrics == {} and store.get_metric_history(run_id, "good") == []

    def test_large_batch(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        metrics = [Metric(f"m{i % 10}", float(i), 1000 + i, i // 10) for i in range(1000)]
        store.log_batch(run_id, metrics=metrics, params=[Param(f"p{i}", str(i)) for i in range(100)])
        run = store.get_run(run_id)
        assert len(run.data.params) == 100 and run.data.metrics["m9"] == 999.0
        assert len(store.get_metric_history(run_id, "m3")) == 100

    def test_inputs(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        dataset = Dataset("iris", "abc123", "local", "/data/iris.csv", '{"cols": 4}')
        item = DatasetInput(dataset, (InputTag("mlflow.data.context", "training"),))
        store.log_inputs(run_id, [item])
        store.log_inputs(run_id, [item])  # recorded once
        inputs = store.get_run(run_id).inputs.dataset_inputs
        assert len(inputs) == 1 and inputs[0].dataset == dataset
        assert inputs[0].tags == (InputTag("mlflow.data.context", "training"),)

    # -- search --------------------------------------------------------------------------------
    def _populate(self, store: TrackingStore) -> tuple[str, dict[str, str]]:
        exp_id = store.create_experiment("search")
        ids = {}
        for name, acc, model, start in [("a", 0.9, "rf", 1), ("b", 0.7, "gbm", 2), ("c", math.nan, "rf", 3)]:
            run = store.create_run(exp_id, "bob", 1000 + start, [RunTag("mlflow.runName", name)], name)
            store.log_batch(run.info.run_id, [Metric("acc", acc, 1, 0)], [Param("model", model)],
                            [RunTag("group", name.upper())])
            ids[name] = run.info.run_id
        return exp_id, ids

    def test_search_runs_filters(self, store: TrackingStore) -> None:
        exp_id, ids = self._populate(store)

        def names(filter_string: str, order: list[str] | None = None) -> list[str | None]:
            return [r.info.run_name for r in store.search_runs([exp_id], filter_string, order_by=order)]

        assert names("") == ["c", "b", "a"]  # newest first by default
        assert names("metrics.acc > 0.8") == ["a"]
        assert names("params.model = 'rf'", ["attributes.start_time"]) == ["a", "c"]
        assert sorted(names("params.model = 'rf' OR metrics.acc < 0.8")) == ["a", "b", "c"]
        assert names("tags.group LIKE 'A%'") == ["a"]
        assert names("tags.group LIKE 'a%'") == []
        assert names("tags.group ILIKE 'a%'") == ["a"]
        assert sorted(names("params.model IN ('gbm', 'xgb')")) == ["b"]
        assert names("metrics.acc > 0 AND (params.model = 'gbm' OR tags.group = 'A')", ["metrics.acc DESC"]) == ["a", "b"]
        assert names("", ["metrics.acc DESC"]) == ["a", "b", "c"]
        assert names("", ["metrics.acc ASC"]) == ["b", "a", "c"]

    def test_search_runs_pagination_and_views(self, store: TrackingStore) -> None:
        exp_id, ids = self._populate(store)
        store.update_run_info(ids["b"], lifecycle_stage="deleted")
        assert {r.info.run_name for r in store.search_runs([exp_id])} == {"a", "c"}
        deleted = store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
        assert [r.info.run_name for r in deleted] == ["b"]
        first = store.search_runs([exp_id], run_view_type=ViewType.ALL, max_results=2)
        second = store.search_runs([exp_id], run_view_type=ViewType.ALL, max_results=2, page_token=first.token)
        assert len(first) == 2 and len(second) == 1 and second.token is None
        assert {r.info.run_id for r in first + second} == set(ids.values())

    def test_search_runs_across_experiments(self, store: TrackingStore) -> None:
        exp_id, ids = self._populate(store)
        other = self._run(store, "0")
        found = store.search_runs([exp_id, "0"], "params.model = 'rf'")
        assert {r.info.run_id for r in found} == {ids["a"], ids["c"]}
        assert len(store.search_runs([exp_id, "0"])) == 4 and other

    def test_search_runs_special_metric_values(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("special")
        ids = {}
        for start, (name, values) in enumerate(
            {"nan": [1.0, math.nan], "pinf": [math.inf], "ninf": [-math.inf], "fin": [5.0, 2.0, 3.0]}.items()
        ):
            run_id = store.create_run(exp_id, "bob", 1000 + start, [], name).info.run_id
            store.log_batch(run_id, [Metric("m", value, 1, step) for step, value in enumerate(values)])
            ids[name] = run_id

        def names(filter_string: str, order: list[str] | None = None) -> list[str | None]:
            return [r.info.run_name for r in store.search_runs([exp_id], filter_string, order_by=order)]

        assert sorted(names("metrics.m > 2")) == ["fin", "pinf"]
        assert names("metrics.m < -1e300") == ["ninf"]
        assert sorted(names("metrics.m != 3")) == ["nan", "ninf", "pinf"]  # NaN differs from every number
        assert names("metrics.m = 3") == ["fin"]
        assert names("min(metrics.m) <= 2 AND max(metrics.m) >= 5") == ["fin"]
        assert names("max(metrics.m) > 1e308") == ["pinf"]
        assert names("", ["metrics.m DESC"]) == ["pinf", "fin", "ninf", "nan"]  # NaN last both ways
        assert names("", ["metrics.m ASC"]) == ["ninf", "fin", "pinf", "nan"]
        assert names("", ["min(metrics.m) ASC"])[:2] == ["ninf", "nan"]  # nan run's min is 1.0
        run = store.get_run(ids["nan"])
        assert math.isnan(run.data.metrics["m"])

    def test_search_runs_missing_keys_and_null_tests(self, store: TrackingStore) -> None:
        exp_id, ids = self._populate(store)
        bare = store.create_run(exp_id, "carol", 5000, [], "bare").info.run_id

        def names(filter_string: str, order: list[str] | None = None) -> list[str | None]:
            return [r.info.run_name for r in store.search_runs([exp_id], filter_string, order_by=order)]

        assert sorted(names("params.model != 'rf'")) == ["b"]  # a run without the param never matches !=
        assert names("params.model IS NULL") == ["bare"]
        assert sorted(names("tags.group IS NOT NULL")) == ["a", "b", "c"]
        assert names("metrics.acc IS NULL") == ["bare"]
        assert names("", ["params.model DESC"])[-1] == "bare"  # missing values sort last both ways
        assert names("", ["params.model ASC"])[-1] == "bare"
        assert names("", ["tags.group ASC"]) == ["a", "b", "c", "bare"]
        assert names(f"run_id IN ('{ids['a']}', '{bare}')", ["attributes.start_time"]) == ["a", "bare"]
        assert names(f"attributes.run_id NOT IN ('{ids['a']}')", ["run_name"]) == ["b", "bare", "c"]
        assert names("user_id = 'carol'") == ["bare"]
        assert names("attributes.`Run name` LIKE 'b%'", ["start_time"]) == ["b", "bare"]
        assert names("run_name ILIKE 'B%' AND start_time < 5000") == ["b"]
        assert names("end_time IS NULL AND status = 'RUNNING'", ["start_time DESC"]) == ["bare", "c", "b", "a"]

    def test_search_runs_with_quoted_keys_and_values(self, store: TrackingStore) -> None:
        run_id = self._run(store)
        store.log_batch(run_id, [Metric("val-loss", 0.5, 1, 0)], [Param("model type", "O'Brien")],
                        [RunTag("mlflow.source.type", "LOCAL")])
        assert [r.info.run_id for r in store.search_runs(["0"], "metrics.`val-loss` < 1")] == [run_id]
        assert len(store.search_runs(["0"], 'params."model type" = "O\'Brien"')) == 1
        assert len(store.search_runs(["0"], "tags.mlflow.source.type = 'LOCAL'")) == 1
        assert len(store.search_runs(["0"], "params.`model type` = 'x' OR metrics.`val-loss` > 1")) == 0
        # a value that looks like SQL is just a value
        assert len(store.search_runs(["0"], '''params.x = "1' OR '1'='1"''')) == 0

    def test_search_runs_datasets(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("ds")
        run_id = self._run(store, exp_id)
        other = self._run(store, exp_id)
        dataset = Dataset("train", "abc123", "local", "file:///d.csv")
        store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "training"),))])
        found = store.search_runs([exp_id], "datasets.name = 'train' AND datasets.context = 'training'")
        assert [r.info.run_id for r in found] == [run_id]
        assert [r.info.run_id for r in store.search_runs([exp_id], "datasets.digest IN ('zzz', 'abc123')")] == [run_id]
        assert other and not store.search_runs([exp_id], "datasets.context = 'eval'")

    def test_search_runs_pages_are_stable_under_sorting(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("pages")
        for i in range(23):
            run_id = store.create_run(exp_id, "u", 1000 + i % 3, [], f"r{i}").info.run_id
            store.log_batch(run_id, [Metric("score", float(i % 4), 1, 0)])
        seen: list[str] = []
        token = None
        while True:
            page = store.search_runs([exp_id], max_results=5, order_by=["metrics.score DESC"], page_token=token)
            seen += [r.info.run_id for r in page]
            token = page.token
            if token is None:
                break
        assert len(seen) == len(set(seen)) == 23
        everything = store.search_runs([exp_id], max_results=100, order_by=["metrics.score DESC"])
        assert [r.info.run_id for r in everything] == seen
        scores = [r.data.metrics["score"] for r in everything]
        assert scores == sorted(scores, reverse=True)

    def test_search_runs_pages_reach_runs_lacking_the_sort_key(self, store: TrackingStore) -> None:
        exp_id = store.create_experiment("lacking")
        # (name, start, last loss, other losses, param): ties on loss; NaN and missing values come last
        rows = [("a", 1, 0.5, [9.0], "x"), ("b", 2, 0.5, [], None), ("c", 3, math.nan, [0.1], "y"),
                ("d", 4, None, [], "x"), ("e", 5, 0.2, [], None), ("f", 6, None, [], None), ("g", 7, 0.9, [], "z")]
        for name, start, last, earlier, param in rows:
            run_id = store.create_run(exp_id, "u", 1000 + start, [], name).info.run_id
            points = [Metric("loss", v, 1, step) for step, v in enumerate([*earlier, *([] if last is None else [last])])]
            store.log_batch(run_id, points, [Param("p", param)] if param else [])

        def pages(order: str, size: int, filter_string: str | None = None) -> list[str | None]:
            names: list[str | None] = []
            token = None
            for _ in range(20):  # a paging bug must fail, not loop
                page = store.search_runs([exp_id], filter_string, max_results=size, order_by=[order], page_token=token)
                names += [r.info.run_name for r in page]
                token = page.token
                if token is None:
                    return names
            raise AssertionError(f"still paging after 20 pages: {order}")

        expected = {
            "metrics.loss DESC": ["g", "b", "a", "e", "f", "d", "c"],  # lacking: newest first
            "metrics.loss ASC": ["e", "b", "a", "g", "f", "d", "c"],
            "max(metrics.loss) DESC": ["a", "g", "b", "e", "f", "d"],  # c's max is 0.1 (NaN skipped)
            "min(metrics.loss) ASC": ["c", "e", "b", "a", "g", "f", "d"],
            "params.p DESC": ["g", "c", "d", "a", "f", "e", "b"],
        }
        expected["max(metrics.loss) DESC"].insert(4, "c")
        for order, names in expected.items():
            for size in (1, 2, 3, 7, 50):
                assert pages(order, size) == names, (order, size)
        assert pages("metrics.loss DESC", 2, "metrics.loss < 0.6") == ["b", "a", "e"]
        assert pages("metrics.loss ASC", 2, "params.p = 'x' OR metrics.loss IS NULL") == ["a", "f", "d"]

    def test_search_experiments_grammar(self, store: TrackingStore) -> None:
        a = store.create_experiment("alpha", tags={"team": "vision"})
        b = store.create_experiment("beta", tags={"team": "nlp"})
        store.create_experiment("gamma")

        def names(filter_string: str) -> list[str]:
            return sorted(e.name for e in store.search_experiments(filter_string=filter_string))

        assert names("tags.team = 'vision' OR name = 'gamma'") == ["alpha", "gamma"]
        assert names("tags.team IS NULL") == ["Default", "gamma"]
        assert names(f"experiment_id IN ('{a}', '{b}')") == ["alpha", "beta"]
        assert names("name ILIKE 'A%'") == ["alpha"]
        with pytest.raises(InvalidValueError, match="metrics"):
            store.search_experiments(filter_string="metrics.acc > 1")

    def test_search_runs_bad_filter(self, store: TrackingStore) -> None:
        with pytest.raises(InvalidValueError, match="metrics.acc >"):
            store.search_runs(["0"], "metrics.acc > 'high'")
        with pytest.raises(InvalidValueError, match="max_results"):
            store.search_runs(["0"], max_results=0)
        with pytest.raises(InvalidValueError):
            store.search_runs(["0"], page_token="not-a-token")

    # -- optional capabilities -------------------------------------------------------------------
    def test_record_logged_model_appends_to_the_history_tag(self, store: TrackingStore) -> None:
        import json

        from fitscribe.backends.base import as_tracking_store

        store = as_tracking_store(store)  # a store without its own record_logged_model gets the fallback
        record = store.record_logged_model
        run_id = self._run(store)
        for path in ("model", "model2"):
            record(run_id, {"artifact_path": path, "flavors": {"python_function": {}},
                            "utc_time_created": "2026-11-23 00:00:00.000000", "run_id": run_id})
        store.flush()
        history = json.loads(store.get_run(run_id).data.tags["mlflow.log-model.history"])
        assert [entry["artifact_path"] for entry in history] == ["model", "model2"]
        with pytest.raises(InvalidValueError):
            record(run_id, {"artifact_path": "model3"})  # no flavors, time or run id
        with pytest.raises(RunNotFound):
            record("f" * 32, {"artifact_path": "m", "flavors": {}, "utc_time_created": "x", "run_id": "f" * 32})
