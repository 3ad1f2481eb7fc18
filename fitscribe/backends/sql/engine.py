"""SQLAlchemy engines for the SQL store: SQLite tuning, schema creation and upgrades.

A new database is created from ``tables.metadata`` and stamped with the current Alembic revision
(no Alembic import); ``upgrade_schema`` (``fitscribe db upgrade``) runs the migrations. Embedded
stores are created by lite.py from ``sqlite_sql.py``, which :func:`write_sqlite_sql` generates.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import event

from fitscribe.errors import BackendError
from fitscribe.uri import redact

from . import tables as t
from .connection import SaConnection
from .database_url import DatabaseURL, _require_driver, parse_database_uri  # noqa: F401  (re-exported)
from .lite import BUSY_TIMEOUT_MS, apply_pragmas
from .statements import statements_for
from .writer import Writer

__all__ = ["DatabaseURL", "parse_database_uri", "make_engine", "ensure_schema", "upgrade_schema"]


def make_engine(db: DatabaseURL) -> sa.Engine:
    """Create the engine; for SQLite, enable WAL, a busy timeout and case-sensitive LIKE.

    Raises:
        BackendError: The embedded folder cannot be created.
    """
    if not db.url.startswith("sqlite"):
        return sa.create_engine(db.url, pool_pre_ping=True, pool_recycle=3600)
    if db.folder:
        try:
            os.makedirs(db.folder, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the store folder {db.folder!r}: {exc}") from exc
    engine = sa.create_engine(db.url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (IMMEDIATE for writes)
        apply_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _writer(conn: sa.Connection) -> Writer:
    """The one writer (writer.py) on a SQLAlchemy connection."""
    return Writer(SaConnection(conn, statements_for(conn.dialect.name)))


def _check_sqlite_file(engine: sa.Engine, uri: str) -> None:
    """Refuse a SQLite file that is not fitscribe's before the engine's first connection changes it."""
    from fitscribe.backends.foreign import check_sqlite_file

    if engine.dialect.name == "sqlite" and engine.url.database and engine.url.database != ":memory:":
        check_sqlite_file(engine.url.database, uri)


def ensure_schema(engine: sa.Engine, uri: str, default_artifact_root: str) -> None:
    """Create the schema in an empty database (the ``Default`` experiment's artifacts under
    ``default_artifact_root``), or check an existing one's revision; ``uri`` is for messages.

    Raises:
        ForeignStoreError: The database is not fitscribe's (an MLflow database...); it is left unchanged.
        SchemaVersionError: The database is at another revision; the message gives the fix.
        BackendError: The database cannot be reached.
    """
    _check_sqlite_file(engine, uri)
    try:
        with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
            with _schema_lock(conn), conn.begin():
                if conn.dialect.name == "postgresql":  # held until the commit
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                _writer(conn).open_schema(uri, t.SCHEMA_REVISION, default_artifact_root)
    except sa.exc.OperationalError as exc:
        raise BackendError(f"Cannot open the tracking store {redact(uri)!r}: {exc.orig}") from exc


_SCHEMA_LOCK_KEY = 0x6669747363726962  # "fitscrib": PostgreSQL's advisory lock for the first open


@contextlib.contextmanager
def _schema_lock(conn: sa.Connection) -> Iterator[None]:
    """Let one process at a time open the schema, so servers started at once on an empty database
    do not both create the tables. SQLite's IMMEDIATE transaction and PostgreSQL's advisory lock
    (taken by the caller) serialise it; MySQL/MariaDB's DDL commits at once, so a named session lock
    is held around the whole transaction instead."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    conn.exec_driver_sql("SELECT GET_LOCK('fitscribe_schema', 60)")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("SELECT RELEASE_LOCK('fitscribe_schema')")
        conn.commit()


def upgrade_schema(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Run the Alembic migrations up to ``revision``; return (revision before, revision after).

    Raises:
        ForeignStoreError: The database is not fitscribe's (an MLflow database...); it is left unchanged.
    """
    from alembic import command
    from alembic.config import Config

    uri = engine.url.render_as_string(hide_password=True)
    _check_sqlite_file(engine, uri)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    with engine.begin() as conn:
        before = _writer(conn).revision(uri)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = _writer(conn).revision(uri)
    return before, after or ""


# -- prebuilt SQL for the raw SQLite path (lite.py) ----------------------------------------------------
_SQLITE_SQL_HEADER = '''"""Prebuilt SQL for SQLite (connection.py), generated from tables.py and statements.py.

Do not edit: after changing the schema or the write statements, regenerate it with
``python -c "from fitscribe.backends.sql.engine import write_sqlite_sql; write_sqlite_sql()"``
(tests/test_store_lite.py fails until the file matches).
"""

'''


def sqlite_sql_source() -> str:
    """Return the source of ``sqlite_sql.py``: the schema as SQLite DDL and the hot write statements."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from .statements import VERSION_TABLE, statements_for

    dialect = sqlite.dialect()
    ddl: list[str] = []
    for table in [*t.metadata.sorted_tables, VERSION_TABLE]:
        ddl.append(str(CreateTable(table).compile(dialect=dialect)))
        ddl += [str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=lambda i: i.name)]
    lines = [_SQLITE_SQL_HEADER, f"REVISION = {t.SCHEMA_REVISION!r}",
             '"""The Alembic revision the schema below corresponds to."""', "", "SCHEMA = ("]
    lines += [f"    {' '.join(statement.split())!r}," for statement in ddl]
    lines += [")", '"""The statements that create a new database, in order."""', "", "SQL = {"]
    for name, (construct, params) in statements_for("sqlite").named.items():  # ? in the parameters' order
        result = construct.compile(dialect=dialect, column_keys=list(params) if isinstance(construct, sa.Insert) else None)
        assert tuple(result.positiontup or ()) == params, (name, result.positiontup, params)
        lines.append(f"    {name!r}: {' '.join(str(result).split())!r},")
    lines += ["}", '"""Each named statement of statements.py, with ``?`` placeholders in its parameters\' order."""']
    return "\n".join(lines) + "\n"


def write_sqlite_sql() -> None:
    """Regenerate ``sqlite_sql.py`` beside this module (see :func:`sqlite_sql_source`)."""
    path = os.path.join(os.path.dirname(__file__), "sqlite_sql.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(sqlite_sql_source())
