"""Alembic migrations: they build the same schema as tables.py, and old databases are handled."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

import fitscribe
import fitscribe.backends
from fitscribe.backends.sql import tables
from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema
from fitscribe.errors import SchemaVersionError

DATA = Path(__file__).parent / "data"


def _schema(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    result: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        columns = [(c["name"], str(c["type"]).split(" ")[0], c["nullable"]) for c in inspector.get_columns(table)]
        indexes = sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table))
        pk = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        fks = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
             tuple(sorted((k, str(v).upper()) for k, v in f.get("options", {}).items() if k in ("ondelete", "onupdate"))))
            for f in inspector.get_foreign_keys(table)
        )
        result[table] = (columns, indexes, pk, fks)
    return result


def test_migrations_match_tables(tracking_uri: str) -> None:
    """A database built by Alembic equals one built from tables.py (what new stores use), on the
    same server, compared by reflection: columns, types, nullability, indexes, keys."""
    engine = make_engine(parse_database_uri(tracking_uri))
    before, after = upgrade_schema(engine)
    assert (before, after) == (None, tables.SCHEMA_REVISION)
    migrated = _schema(engine)
    assert set(migrated) == set(tables.metadata.tables)
    with engine.begin() as conn:
        tables.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        tables.metadata.create_all(conn)
    assert migrated == _schema(engine)
    engine.dispose()


def test_schema_0001_database_is_refused_until_upgraded(tmp_path: Path) -> None:
    """A store written at schema revision 0001 (committed file, never regenerated) is refused with the
    upgrade command; after ``fitscribe db upgrade`` its runs are intact and the model registry works."""
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(DATA / "schema_0001.db", folder / "tracking.db")
    with pytest.raises(SchemaVersionError, match=rf"'0001'.*'{tables.SCHEMA_REVISION}'.*fitscribe db upgrade"):
        fitscribe.Client(str(folder)).search_runs("0")
    engine = make_engine(parse_database_uri(str(folder)))
    assert upgrade_schema(engine) == ("0001", tables.SCHEMA_REVISION)
    engine.dispose()
    client = fitscribe.Client(str(folder))
    (run,) = client.search_runs("0")
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 0.25}
    client.log_metric(run.info.run_id, "loss", 0.125, step=2)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.5, 0.25, 0.125]
    client.create_registered_model("old-model")
    version = client.create_model_version("old-model", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert client.get_latest_versions("old-model") == [version] and version.version == 1
    client.close()


def test_schema_0002_metrics_move_into_chunks(tmp_path: Path) -> None:
    """A store written at revision 0002 (committed file, one row per point) keeps every point through
    the upgrade to chunks: order by step, timestamp and logging order, NaN and +-inf exact,
    latest values, params and registered models."""
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(DATA / "schema_0002.db", folder / "tracking.db")
    with pytest.raises(SchemaVersionError, match=rf"'0002'.*'{tables.SCHEMA_REVISION}'.*fitscribe db upgrade"):
        fitscribe.Client(str(folder)).search_runs("1")
    engine = make_engine(parse_database_uri(str(folder)))
    assert upgrade_schema(engine) == ("0002", tables.SCHEMA_REVISION)
    engine.dispose()
    client = fitscribe.Client(str(folder))
    run = client.search_runs("1", filter_string="attributes.run_name = 'old-run'")[0]
    run_id = run.info.run_id
    assert run.data.params == {"lr": "0.1"} and run.data.metrics["loss"] == 0.125
    loss = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.timestamp, m.value) for m in loss] == [
        (0, 1000, 0.5), (1, 1001, 0.25), (1, 1003, 0.2), (1, 1005, 0.3), (2, 1002, 0.125)]
    odd = [m.value for m in client.get_metric_history(run_id, "odd")]
    assert math.isnan(odd[0]) and odd[1:3] == [math.inf, -math.inf] and odd[3:] == [0.0, 1e-300]
    assert [m.value for m in client.get_metric_history(run_id, "long")] == [float(i) for i in range(2500)]
    assert [m.value for m in client.get_metric_history(run_id, "tie")] == [1.0, 2.0]  # logging order
    summary = client.get_run(run_id).data.metric_summaries["odd"]
    assert (summary.min, summary.max) == (-math.inf, math.inf)
    assert len(client.search_runs("1", filter_string="metrics.loss = 9")) == 1
    assert client.get_registered_model("old-model").name == "old-model"
    client.close()


def test_metric_rows_are_migrated_on_every_database(tracking_uri: str) -> None:
    """Revision 0003 copies the 0002 rows into chunks on SQLite, PostgreSQL and MariaDB, and the
    downgrade expands them back."""
    engine = make_engine(parse_database_uri(tracking_uri))
    upgrade_schema(engine, "0002")
    run_id = "f" * 32
    metrics = sa.table("metrics", *(sa.column(name) for name in ("run_uuid", "key", "value", "special", "timestamp", "step")))
    rows = [(2, 0.5, 0, 20), (1, None, 1, 10), (1, 1.7976931348623157e308, 2, 11), (3, -1.7976931348623157e308, 3, 30)]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
                             "creation_time, last_update_time) VALUES (7, 'e', '', 'active', 0, 0)"))
        conn.execute(sa.text("INSERT INTO runs (run_uuid, experiment_id, user_id, status, start_time, lifecycle_stage, "
                             "artifact_uri) VALUES (:r, 7, '', 'RUNNING', 0, 'active', '')"), {"r": run_id})
        conn.execute(metrics.insert(), [{"run_uuid": run_id, "key": "m", "value": value, "special": special,
                                         "timestamp": timestamp, "step": step} for step, value, special, timestamp in rows])
    assert upgrade_schema(engine) == ("0002", tables.SCHEMA_REVISION)
    store = fitscribe.backends.get_tracking_store(tracking_uri)
    got = [(m.step, m.timestamp, m.value) for m in store.get_metric_history(run_id, "m")]
    assert got[0][:2] == (1, 10) and math.isnan(got[0][2])
    assert got[1:] == [(1, 11, math.inf), (2, 20, 0.5), (3, 30, -math.inf)]
    store.close()
    _downgrade(engine, "0002")
    with engine.connect() as conn:
        back = conn.execute(sa.select(metrics.c.step, metrics.c.special, metrics.c.timestamp)).all()
    assert sorted(tuple(r) for r in back) == sorted((st, sp, ts) for st, _, sp, ts in rows)
    engine.dispose()


def _downgrade(engine: sa.Engine, revision: str) -> None:
    import os

    from alembic import command
    from alembic.config import Config

    import fitscribe.backends.sql.engine as engine_module

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(engine_module.__file__), "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_newer_or_unknown_revision_is_refused(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "s"))
    client.create_run("0")
    client.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's' / 'tracking.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=rf"'9999'.*'{tables.SCHEMA_REVISION}'.*fitscribe db upgrade"):
        fitscribe.Client(str(tmp_path / "s")).get_experiment("0")


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "s"))
    client.create_run("0")
    engine = make_engine(parse_database_uri(str(tmp_path / "s")))
    assert upgrade_schema(engine) == (tables.SCHEMA_REVISION, tables.SCHEMA_REVISION)
    engine.dispose()
