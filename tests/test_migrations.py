"""Alembic migrations: they build the same schema as tables.py, and old databases are handled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

import fitscribe
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
    with pytest.raises(SchemaVersionError, match=r"'0001'.*'0002'.*fitscribe db upgrade"):
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
