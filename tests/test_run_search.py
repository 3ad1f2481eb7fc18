"""search_runs sorted by one key (run_query.py), count_runs, and the index of revision 0005."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fitscribe.backends import get_tracking_store
from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema
from fitscribe.backends.sql.tables import SCHEMA_REVISION
from fitscribe.entities import Metric, Param, RunTag, ViewType
from fitscribe.errors import InvalidValueError

SEARCH_INDEXES = {"ix_runs_experiment_id_lifecycle_stage"}


def _populate(store: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """30 runs: starts with ties; a metric that is finite, +-inf, NaN or missing; a param and a tag
    that may be missing. Return the experiment id and what each run holds (by run id)."""
    rng = random.Random(5)
    exp_id = store.create_experiment("sorting")
    runs: dict[str, dict[str, Any]] = {}
    for i in range(30):
        history = rng.choice([[], [rng.choice([0.5, 1.0, 2.0])], [3.0, rng.random()], [math.inf], [-math.inf],
                              [1.0, math.nan], [math.nan]])
        param = rng.choice([None, "a", "b", "c"])
        tag = rng.choice([None, "x", "y"])
        start = 1000 + rng.randrange(10)
        run_id = store.create_run(exp_id, "u", start, [RunTag("t", tag)] if tag else [], f"r{i}").info.run_id
        store.log_batch(run_id, [Metric("m", v, 1, step) for step, v in enumerate(history)],
                        [Param("p", param)] if param else [])
        finite = [v for v in history if not math.isnan(v)]
        runs[run_id] = {"start": start, "p": param, "t": tag, "last": history[-1] if history else None,
                        "min": min(finite) if finite else None, "max": max(finite) if finite else None}
    return exp_id, runs


def _expected(runs: dict[str, dict[str, Any]], field: str, ascending: bool) -> list[str]:
    """The documented order: values (NaN and missing last in both directions), then newest, then run id."""
    def value(run_id: str) -> Any:
        v = runs[run_id][field]
        return None if v is None or isinstance(v, float) and math.isnan(v) else v

    having = [r for r in runs if value(r) is not None]
    lacking = [r for r in runs if value(r) is None]
    having.sort(key=lambda r: r)
    having.sort(key=lambda r: runs[r]["start"], reverse=True)
    having.sort(key=value, reverse=not ascending)
    lacking.sort(key=lambda r: r)
    lacking.sort(key=lambda r: runs[r]["start"], reverse=True)
    return having + lacking


def _pages(store: Any, exp_id: str, order: str, size: int, filter_string: str | None = None) -> list[str]:
    ids: list[str] = []
    token = None
    for _ in range(100):  # a paging bug must fail the test, not loop
        page = store.search_runs([exp_id], filter_string, max_results=size, order_by=[order], page_token=token)
        ids += [r.info.run_id for r in page]
        token = page.token
        if token is None:
            return ids
    raise AssertionError(f"still paging after 100 pages of {size}: {order}")


ORDERS = {"metrics.m": "last", "min(metrics.m)": "min", "max(metrics.m)": "max", "params.p": "p", "tags.t": "t"}


def test_sorting_by_one_key_on_every_database(tracking_uri: str) -> None:
    """Every page size gives the same order: values first, runs lacking the key (or NaN) after them
    newest first, whichever the direction; ties broken by start time, then run id."""
    store = get_tracking_store(tracking_uri)
    exp_id, runs = _populate(store)
    for field, name in ORDERS.items():
        for ascending in (True, False):
            order = f"{field} {'ASC' if ascending else 'DESC'}"
            expected = _expected(runs, name, ascending)
            for size in (1, 4, 7, 30, 100):
                assert _pages(store, exp_id, order, size) == expected, (order, size)
    for ascending in (True, False):  # start time (and the default order, newest first): ties by run id
        expected = sorted(runs, key=lambda r: (runs[r]["start"] * (1 if ascending else -1), r))
        for size in (1, 7, 100):
            assert _pages(store, exp_id, f"attributes.start_time {'ASC' if ascending else 'DESC'}", size) == expected
            if not ascending:
                assert [r.info.run_id for r in store.search_runs([exp_id], max_results=size)] == expected[:size]
    store.close()


def test_sorting_with_a_filter_on_the_same_and_other_keys(tracking_uri: str) -> None:
    store = get_tracking_store(tracking_uri)
    exp_id, runs = _populate(store)
    cases = [
        ("metrics.m > 0.7", lambda r: r["last"] is not None and not math.isnan(r["last"]) and r["last"] > 0.7),
        ("params.p = 'a' OR metrics.m IS NULL", lambda r: r["p"] == "a" or r["last"] is None),
        ("tags.t IS NULL AND params.p IS NOT NULL", lambda r: r["t"] is None and r["p"] is not None),
    ]
    for filter_string, matches in cases:
        chosen = {run_id: info for run_id, info in runs.items() if matches(info)}
        assert chosen, filter_string
        for field, name in ORDERS.items():
            order = f"{field} DESC"
            assert _pages(store, exp_id, order, 3, filter_string) == _expected(chosen, name, False), (filter_string, order)
    store.close()


def test_count_runs(tracking_uri: str) -> None:
    """count_runs counts what search_runs lists: per view, per filter, over several experiments."""
    store = get_tracking_store(tracking_uri)
    exp_id, runs = _populate(store)
    other = store.create_experiment("other")
    store.create_run(other, "u", 1, [], "elsewhere")
    deleted = next(iter(runs))
    store.update_run_info(deleted, lifecycle_stage="deleted")
    assert store.count_runs([exp_id]) == 29
    assert store.count_runs([exp_id], run_view_type=ViewType.DELETED_ONLY) == 1
    assert store.count_runs([exp_id], run_view_type=ViewType.ALL) == 30
    assert store.count_runs([exp_id, other]) == 30
    assert store.count_runs([store.create_experiment("empty")]) == 0
    for filter_string in ("params.p = 'a'", "metrics.m IS NULL", "max(metrics.m) > 1 OR tags.t = 'x'"):
        listed = store.search_runs([exp_id, other], filter_string, max_results=100)
        assert store.count_runs([exp_id, other], filter_string) == len(listed) > 0
    with pytest.raises(InvalidValueError, match="metrics.m >"):
        store.count_runs([exp_id], "metrics.m > 'high'")
    store.close()


def _indexes(engine: sa.Engine) -> set[str]:
    inspector = sa.inspect(engine)
    return {i["name"] for table in ("runs", "latest_metrics") for i in inspector.get_indexes(table)}


def _migrate(engine: sa.Engine, direction: str, revision: str) -> None:
    import os

    from alembic import command
    from alembic.config import Config

    import fitscribe.backends.sql.engine as engine_module

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(engine_module.__file__), "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_revision_0005_adds_and_removes_the_count_index(database: str, request: pytest.FixtureRequest,
                                                          tmp_path: Path) -> None:
    """Upgrading a 0004 database with runs adds the index (searches still right); downgrading removes it."""
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}" if database == "sqlite" else request.getfixturevalue("postgresql_uri")
    engine = make_engine(parse_database_uri(uri))
    _migrate(engine, "upgrade", "0004")
    assert not SEARCH_INDEXES & _indexes(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO experiments VALUES (7, 'e', 'file:///a', 'active', 1, 1)"))
        for i, value in enumerate([0.5, 2.0]):
            conn.execute(sa.text(f"INSERT INTO runs VALUES ('r{i}', 7, 'n{i}', 'u', 'FINISHED', {i}, NULL, "
                                 "'active', NULL, 'file:///a')"))
            conn.execute(sa.text(f"INSERT INTO latest_metrics VALUES ('r{i}', 'm', {value}, 0, 1, 0, {value}, {value})"))
    assert upgrade_schema(engine) == ("0004", SCHEMA_REVISION)  # through 0005 to the newest
    assert SEARCH_INDEXES <= _indexes(engine)
    engine.dispose()
    store = get_tracking_store(uri)
    assert [r.info.run_id for r in store.search_runs(["7"], order_by=["max(metrics.m) DESC"])] == ["r1", "r0"]
    assert store.count_runs(["7"]) == 2
    store.close()
    engine = make_engine(parse_database_uri(uri))
    _migrate(engine, "downgrade", "0004")
    assert not SEARCH_INDEXES & _indexes(engine)
    engine.dispose()
