"""Edges of the SQL store's write and search paths that mutation probes found unguarded (issue 17:
W2, N2, S2), on every database: each test reads back what a user would see."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

import fitscribe
from fitscribe.entities import Metric, Param
from fitscribe.errors import InvalidValueError

MAX_DOUBLE = 1.7976931348623157e308


@pytest.fixture(params=["sqlite", "sqlite-direct", "sqlite-sqlalchemy",
                        pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new store on each database: embedded SQLite with and without its metric journal, SQLite
    through SQLAlchemy (a URI with options), PostgreSQL, MariaDB."""
    if request.param == "sqlite-direct":
        monkeypatch.setenv("FITSCRIBE_METRIC_JOURNAL", "0")
    if request.param == "sqlite-sqlalchemy":
        return f"sqlite:///{tmp_path}/sa.db?timeout=30"
    if request.param.startswith("sqlite"):
        return str(tmp_path / "store")
    return str(request.getfixturevalue(f"{request.param}_uri"))


def test_write_once_check_covers_every_key_of_a_large_batch(store_uri: str) -> None:
    """W2: a batch of 600 params re-logged with the 550th changed is refused, and nothing changes."""
    client = fitscribe.Client(store_uri)
    run_id = client.create_run("0").info.run_id
    params = [Param(f"p{i}", str(i)) for i in range(600)]
    client.log_batch(run_id, params=params)
    changed = [*params[:549], Param("p549", "changed"), *params[550:]]
    with pytest.raises(InvalidValueError, match="p549"):
        client.log_batch(run_id, params=changed)
    stored = client.get_run(run_id).data.params
    assert len(stored) == 600 and stored["p549"] == "549"
    # a new batch whose 550th key is new and the rest are repeats is fine
    client.log_batch(run_id, params=[*params[:549], Param("q549", "x")])
    assert client.get_run(run_id).data.params["q549"] == "x"
    client.close()


def test_latest_negative_infinity_reads_back_negative(store_uri: str) -> None:
    """N2: -inf as the latest value reads back as -inf (not +inf), in the run and in a search."""
    client = fitscribe.Client(store_uri)
    run_id = client.create_run("0").info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("m", 1.0, now, 0), Metric("m", -math.inf, now, 1)])
    client.log_metric(run_id, "n", -math.inf, timestamp=now, step=0)
    client.log_metric(run_id, "p", math.inf, timestamp=now, step=0)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["m"] == -math.inf and metrics["n"] == -math.inf and metrics["p"] == math.inf
    assert [r.info.run_id for r in client.search_runs(["0"], "metrics.m < 0")] == [run_id]
    assert client.search_runs(["0"], "metrics.m > 0") == []
    client.close()


def test_search_for_max_double_does_not_match_infinity(store_uri: str) -> None:
    """S2: ``metrics.m = 1.7976931348623157e308`` matches the run that logged that number, not the one
    that logged +inf (stored clamped to the same double); likewise for -inf."""
    client = fitscribe.Client(store_uri)
    finite, infinite, negative = (client.create_run("0").info.run_id for _ in range(3))
    client.log_metric(finite, "m", MAX_DOUBLE)
    client.log_metric(infinite, "m", math.inf)
    client.log_metric(negative, "m", -math.inf)
    client.log_metric(finite, "k", -MAX_DOUBLE)

    def found(filter_string: str) -> list[str]:
        return sorted(r.info.run_id for r in client.search_runs(["0"], filter_string))

    assert found("metrics.m = 1.7976931348623157e308") == [finite]
    assert found("metrics.m = -1.7976931348623157e308") == []
    assert found("metrics.k = -1.7976931348623157e308") == [finite]
    client.close()
