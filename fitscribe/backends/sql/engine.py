"""SQLAlchemy engines for the SQL store: SQLite tuning, schema creation and upgrades.

A new, empty database is created from ``tables.metadata`` and stamped with the current Alembic
revision (fast: no Alembic import). A database at an older revision is refused with the upgrade
command; ``upgrade_schema`` (``fitscribe db upgrade``) runs the Alembic migrations. Embedded SQLite
stores are normally created by lite.py from ``sqlite_sql.py``, which :func:`write_sqlite_sql`
generates from the same tables. Tracking URIs are parsed in database_url.py (re-exported here).
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from fitscribe.errors import BackendError
from fitscribe.uri import redact

from . import tables as t
from .database_url import DatabaseURL, _require_driver, parse_database_uri  # noqa: F401  (re-exported)
from .lite import BUSY_TIMEOUT_MS, apply_pragmas, schema_version_error

__all__ = ["DatabaseURL", "parse_database_uri", "make_engine", "ensure_schema", "upgrade_schema"]



def make_engine(db: DatabaseURL) -> sa.Engine:
    """Create the engine; for SQLite, enable WAL, a busy timeout and case-sensitive LIKE.

    Raises:
        BackendError: The embedded folder cannot be created.
    """
    if db.folder and db.url.startswith("sqlite"):
        try:
            os.makedirs(db.folder, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the store folder {db.folder!r}: {exc}") from exc
    kwargs: dict[str, Any] = {}
    if db.url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_recycle=3600)
    engine = sa.create_engine(db.url, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (IMMEDIATE for writes)
        apply_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _current_revision(conn: sa.Connection, uri: str) -> str | None:
    """Return the database's Alembic revision, or None for an empty database.

    Raises:
        ForeignStoreError: The database has tables but not fitscribe's stamp (foreign.py).
    """
    from .foreign import check_tables

    names = sa.inspect(conn).get_table_names()
    revision = None
    if "alembic_version" in names:
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        revision = row[0] if row else None
    check_tables(names, revision, uri)
    return revision if names else None


def _check_sqlite_file(engine: sa.Engine, uri: str) -> None:
    """Refuse a SQLite file that is not fitscribe's before the engine's first connection changes it."""
    from .foreign import check_sqlite_file

    if engine.dialect.name == "sqlite" and engine.url.database and engine.url.database != ":memory:":
        check_sqlite_file(engine.url.database, uri)


def ensure_schema(engine: sa.Engine, uri: str, default_artifact_root: str) -> None:
    """Create the schema in an empty database, or check an existing one's revision.

    Args:
        engine: The store's engine.
        uri: The tracking URI, for messages.
        default_artifact_root: Artifact root of the ``Default`` experiment (id 0) made in a new store.

    Raises:
        ForeignStoreError: The database is not fitscribe's (an MLflow database...); it is left unchanged.
        SchemaVersionError: The database is at another revision; the message gives the fix.
        BackendError: The database cannot be reached.
    """
    _check_sqlite_file(engine, uri)
    try:
        with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
            with conn.begin():
                revision = _current_revision(conn, uri)
                if revision is None:
                    _create_fresh(conn, default_artifact_root)
                    return
    except sa.exc.OperationalError as exc:
        raise BackendError(f"Cannot open the tracking store {redact(uri)!r}: {exc.orig}") from exc
    if revision != t.SCHEMA_REVISION:
        raise schema_version_error(uri, revision, t.SCHEMA_REVISION)


def _create_fresh(conn: sa.Connection, artifact_root: str) -> None:
    from fitscribe.uri import join_uri

    t.metadata.create_all(conn)
    version = _version_table()
    version.create(conn)
    conn.execute(version.insert().values(version_num=t.SCHEMA_REVISION))
    now = int(time.time() * 1000)
    result = conn.execute(
        t.experiments.insert().values(
            name="Default",
            artifact_location=join_uri(artifact_root, "0"),
            lifecycle_stage="active",
            creation_time=now,
            last_update_time=now,
        )
    )
    new_id = result.inserted_primary_key[0]
    if new_id != 0:
        conn.execute(t.experiments.update().where(t.experiments.c.experiment_id == new_id).values(experiment_id=0))


def _version_table() -> sa.Table:
    """The ``alembic_version`` table as a new database gets it."""
    return sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))


def upgrade_schema(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Run the Alembic migrations up to ``revision``; return (revision before, revision after).

    Raises:
        ForeignStoreError: The database is not fitscribe's (tables without fitscribe's revision
            stamp: an MLflow database...); it is left unchanged.
    """
    from alembic import command
    from alembic.config import Config

    uri = engine.url.render_as_string(hide_password=True)
    _check_sqlite_file(engine, uri)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    with engine.begin() as conn:
        before = _current_revision(conn, uri)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = _current_revision(conn, uri)
    return before, after or ""


# -- prebuilt SQL for the raw SQLite path (lite.py) ----------------------------------------------------
_SQLITE_SQL_HEADER = '''"""Prebuilt SQL for embedded SQLite stores (lite.py), generated from tables.py and writes.py.

Do not edit: after changing the schema or the write statements, regenerate it with
``python -c "from fitscribe.backends.sql.engine import write_sqlite_sql; write_sqlite_sql()"``
(tests/test_store_lite.py fails until the file matches).
"""

'''


def sqlite_sql_source() -> str:
    """Return the source of ``sqlite_sql.py``: the schema as SQLite DDL and the hot write statements."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from .writes import Writer, _positional_sql

    dialect = sqlite.dialect()
    ddl: list[str] = []
    for table in [*t.metadata.sorted_tables, _version_table()]:
        ddl.append(str(CreateTable(table).compile(dialect=dialect)))
        ddl += [str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=lambda i: i.name)]
    writer = Writer("sqlite")
    statements = {
        "LATEST_UPSERT": writer._sqlite_latest,
        "TAG_UPSERT": _positional_sql(writer._tag_upsert, ("run_uuid", "key", "value")),
        "PARAM_INSERT": _positional_sql(writer._param_insert, ("run_uuid", "key", "value")),
        "JOURNAL_UPSERT": _positional_sql(writer._journal_upsert, ("journal_id", "position")),
        "EXPERIMENT_TAG_UPSERT": _positional_sql(writer._exp_tag_upsert, ("experiment_id", "key", "value")),
    }
    lines = [_SQLITE_SQL_HEADER, f"REVISION = {t.SCHEMA_REVISION!r}",
             '"""The Alembic revision the schema below corresponds to."""', "", "SCHEMA = ("]
    for statement in ddl:
        body = "\n".join(line.rstrip() for line in statement.strip().replace("\t", "    ").splitlines())
        lines.append(f'    """{body}""",')
    lines += [")", '"""The statements that create a new database, in order."""', ""]
    for name, sql in statements.items():
        lines.append(f"{name} = {sql.strip()!r}")
    return "\n".join(lines) + "\n"


def write_sqlite_sql() -> None:
    """Regenerate ``sqlite_sql.py`` beside this module (see :func:`sqlite_sql_source`)."""
    path = os.path.join(os.path.dirname(__file__), "sqlite_sql.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(sqlite_sql_source())
