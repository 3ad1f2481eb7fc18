"""MLflow 3 logged models in the SQL store (backends/sql/logged_models.py, revision 0007), on SQLite
(with and without the metric journal), PostgreSQL and MariaDB: create, get, update, tags, params,
delete, and searches compiled to SQL (filters, order_by, page tokens); an upgraded 0006 database."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from fitscribe.backends import get_tracking_store
from fitscribe.backends.base import TrackingStore
from fitscribe.errors import AlreadyExistsError, ExperimentNotFound, InvalidValueError, NotFoundError


def _ids(page: Any) -> list[str]:
    return [m.model_id for m in page]


def test_logged_models_round_trip_and_search_on_each_database(tracking_uri: str) -> None:
    store = get_tracking_store(tracking_uri, artifact_uri="mlflow-artifacts:/")
    exp = store.create_experiment("lm")
    other = store.create_experiment("other")
    run_id = store.create_run(exp, "ann", 1).info.run_id
    a = store.create_logged_model(exp, "alpha", source_run_id=run_id, model_type="sklearn",
                                  tags={"team": "risk"}, params={"C": "1"}, creation_timestamp=1000)
    assert a.artifact_location == f"mlflow-artifacts:/{exp}/models/{a.model_id}/artifacts"
    assert (a.status, a.lifecycle_stage, a.creation_timestamp, a.tags, a.params) == (
        "LOGGED_MODEL_PENDING", "active", 1000, {"team": "risk"}, {"C": "1"})
    kept = store.create_logged_model(exp, "beta", model_id="m-" + "b" * 32, status="READY", creation_timestamp=2000,
                                     last_updated_timestamp=2500, artifact_location="s3://bucket/elsewhere")
    assert (kept.model_id, kept.status, kept.last_updated_timestamp, kept.artifact_location) == (
        "m-" + "b" * 32, "LOGGED_MODEL_READY", 2500, "s3://bucket/elsewhere")  # an importer keeps ids and times
    with pytest.raises(AlreadyExistsError):
        store.create_logged_model(exp, "again", model_id=kept.model_id)
    with pytest.raises(ExperimentNotFound):
        store.create_logged_model("987654", "nowhere")
    store.create_logged_model(other, "alpha", creation_timestamp=3000)
    c = store.create_logged_model(exp, "gamma", tags={"team": "ops"}, creation_timestamp=3000)

    updated = store.update_logged_model(a.model_id, status="LOGGED_MODEL_READY", tags={"stage": "x", "team": "ml"},
                                        params={"D": "2"})
    assert updated.status == "LOGGED_MODEL_READY" and updated.tags == {"team": "ml", "stage": "x"}
    assert updated.params == {"C": "1", "D": "2"} and updated.last_updated_timestamp >= a.creation_timestamp
    store.delete_logged_model_tag(a.model_id, "stage")
    with pytest.raises(NotFoundError, match="stage"):
        store.delete_logged_model_tag(a.model_id, "stage")
    assert store.get_logged_model(a.model_id).tags == {"team": "ml"}

    def search(filter_string: str | None = None, **kw: Any) -> list[str]:
        return _ids(store.search_logged_models([exp], filter_string, **kw))

    assert search() == [c.model_id, kept.model_id, a.model_id]  # newest first
    assert search("name = 'alpha'") == [a.model_id]
    assert search("status = 'READY'") == [kept.model_id, a.model_id]
    assert search("status IN ('PENDING', 'LOGGED_MODEL_UPLOAD_FAILED')") == [c.model_id]
    assert search("status LIKE '%READY'") == [kept.model_id, a.model_id]
    assert search(f"source_run_id = '{run_id}' AND tags.team = 'ml'") == [a.model_id]
    assert search("tags.team IS NULL") == [kept.model_id]
    assert search("tags.team LIKE '%s' OR creation_timestamp >= 2000") == [c.model_id, kept.model_id]
    assert search("model_type IS NOT NULL") == [a.model_id]
    assert search(order_by=[{"field_name": "name", "ascending": False}]) == [c.model_id, kept.model_id, a.model_id]
    assert search(order_by=[{"field_name": "model_type"}])[0] == a.model_id  # missing values last
    first = store.search_logged_models([exp], max_results=2)
    assert _ids(first) == [c.model_id, kept.model_id] and first.token
    rest = store.search_logged_models([exp], max_results=2, page_token=first.token)
    assert _ids(rest) == [a.model_id] and rest.token is None
    assert len(store.search_logged_models([exp, other, "nope"])) == 4
    for bad in ("metrics.x > 1", "params.C = '1'", "status = 'SOMETIMES'"):
        with pytest.raises(InvalidValueError):
            search(bad)
    with pytest.raises(InvalidValueError, match="order"):
        search(order_by=[{"field_name": "tags.team"}])

    store.delete_logged_model(c.model_id)
    assert search() == [kept.model_id, a.model_id]
    with pytest.raises(NotFoundError):
        store.get_logged_model(c.model_id)
    assert store.get_logged_model(c.model_id, allow_deleted=True).lifecycle_stage == "deleted"
    for call in (lambda: store.update_logged_model(c.model_id, tags={"k": "v"}), lambda: store.delete_logged_model(c.model_id),
                 lambda: store.get_logged_model("m-nope")):
        with pytest.raises(NotFoundError):
            call()
    for bad_call in (lambda: store.get_logged_model("bad$id"), lambda: store.create_logged_model(exp, "x" * 501),
                     lambda: store.update_logged_model(a.model_id, tags={"k" * 256: "v"}),
                     lambda: store.update_logged_model(a.model_id, status="SOMETIMES")):
        with pytest.raises(InvalidValueError):
            bad_call()
    store.close()


def test_concurrent_tag_writers_in_two_stores_lose_nothing(tracking_uri: str) -> None:
    """Two stores (as two replicas would be) and threads writing tags and params of one model."""
    stores = [get_tracking_store(tracking_uri) for _ in range(2)]
    model = stores[0].create_logged_model(stores[0].create_experiment("race"), "m")

    def write(worker: int) -> None:
        for i in range(5):
            stores[worker % 2].update_logged_model(model.model_id, tags={f"w{worker}-{i}": "v"},
                                                   params={f"p{worker}-{i}": str(i)})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = stores[1].get_logged_model(model.model_id)
    assert len(got.tags) == 20 and len(got.params) == 20
    for store in stores:
        store.close()


def test_an_upgraded_0006_database_keeps_its_runs_and_takes_logged_models(postgresql_uri: str) -> None:
    from fitscribe.backends.sql import tables
    from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema

    engine = make_engine(parse_database_uri(postgresql_uri))
    upgrade_schema(engine, "0006")
    assert "logged_models" not in sa.inspect(engine).get_table_names()
    assert upgrade_schema(engine) == ("0006", tables.SCHEMA_REVISION) and tables.SCHEMA_REVISION == "0007"
    assert {"logged_models", "logged_model_tags", "logged_model_params"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
    store = get_tracking_store(postgresql_uri)
    exp = store.create_experiment("upgraded")
    model = store.create_logged_model(exp, "after-upgrade", tags={"k": "v"})
    assert store.search_logged_models([exp])[0].tags == {"k": "v"} and model.experiment_id == exp
    store.close()


def test_the_fallback_refuses_clearly() -> None:
    with pytest.raises(InvalidValueError, match="not supported by this store"):
        TrackingStore().search_logged_models(["0"])
