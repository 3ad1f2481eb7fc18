"""Engines for the SQL store: URL normalisation, SQLite tuning, schema creation and upgrades.

A new, empty database is created from ``tables.metadata`` and stamped with the current Alembic
revision (fast: no Alembic import). A database at an older revision is refused with the upgrade
command; ``upgrade_schema`` (``fitscribe db upgrade``) runs the Alembic migrations.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from fitscribe.config import ARTIFACTS_DIRNAME, DB_FILENAME
from fitscribe.errors import BackendError, ConfigError, MissingDependencyError, SchemaVersionError
from fitscribe.uri import file_uri_to_path, redact, scheme_key

from . import tables as t

__all__ = ["DatabaseURL", "parse_database_uri", "make_engine", "ensure_schema", "upgrade_schema"]

_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mysql+pymysql", "pymysql", "mysql"),
}
SQLITE_BUSY_TIMEOUT_MS = 60_000


class DatabaseURL:
    """A tracking URI resolved to a SQLAlchemy URL, plus the embedded folder if there is one."""

    def __init__(self, url: str, folder: str | None) -> None:
        self.url = url
        self.folder = folder

    @property
    def default_artifact_root(self) -> str | None:
        """The ``artifacts`` folder beside an embedded database, else None."""
        return os.path.join(self.folder, ARTIFACTS_DIRNAME) if self.folder else None


def parse_database_uri(uri: str) -> DatabaseURL:
    """Turn a tracking URI into a SQLAlchemy URL.

    A folder path or ``file:`` URI means ``<folder>/tracking.db``; ``postgresql://`` and ``mysql://``
    get the psycopg and PyMySQL drivers unless a ``+driver`` is given.

    Raises:
        ConfigError: The URI is not a database URI.
        MissingDependencyError: The database driver is not installed.
    """
    key = scheme_key(uri)
    if key == "file":
        folder = os.path.abspath(file_uri_to_path(uri))
        if os.path.isfile(folder):
            raise ConfigError(
                f"The tracking URI {uri!r} is a file; give the folder of an embedded store "
                f"(it holds {DB_FILENAME}) or a sqlite:/// URI."
            )
        return DatabaseURL(f"sqlite:///{os.path.join(folder, DB_FILENAME)}", folder)
    if key == "sqlite":
        path = uri.split(":///", 1)[1].split("?", 1)[0] if ":///" in uri else ""
        if not path or path == ":memory:":
            raise ConfigError(
                f"The SQLite URI {uri!r} names no file; in-memory databases are not shared between "
                "connections. Use sqlite:///path/to/tracking.db."
            )
        return DatabaseURL(uri, os.path.dirname(os.path.abspath(path)))
    if key in _DRIVERS:
        default_driver, module, extra = _DRIVERS[key]
        scheme, rest = uri.split(":", 1)
        url = uri if "+" in scheme else default_driver + ":" + rest
        driver_module = module if "+" not in scheme else scheme.split("+", 1)[1]
        _require_driver(driver_module, extra, key)
        return DatabaseURL(url, None)
    raise ConfigError(f"{redact(uri)!r} is not a database URI (sqlite, postgresql, mysql).")


def _require_driver(module: str, extra: str, dialect: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError.for_package(module, extra, f"The {dialect} tracking store")


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
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
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
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _current_revision(conn: sa.Connection) -> str | None:
    inspector = sa.inspect(conn)
    if not inspector.has_table("alembic_version"):
        if inspector.has_table("experiments"):
            return "unknown"
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


def ensure_schema(engine: sa.Engine, uri: str, default_artifact_root: str) -> None:
    """Create the schema in an empty database, or check an existing one's revision.

    Args:
        engine: The store's engine.
        uri: The tracking URI, for messages.
        default_artifact_root: Artifact root of the ``Default`` experiment (id 0) made in a new store.

    Raises:
        SchemaVersionError: The database is at another revision; the message gives the fix.
        BackendError: The database cannot be reached.
    """
    try:
        with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
            with conn.begin():
                revision = _current_revision(conn)
                if revision is None:
                    _create_fresh(conn, default_artifact_root)
                    return
    except sa.exc.OperationalError as exc:
        raise BackendError(f"Cannot open the tracking store {redact(uri)!r}: {exc.orig}") from exc
    if revision != t.SCHEMA_REVISION:
        raise SchemaVersionError(
            f"The tracking database {redact(uri)!r} has schema revision {revision!r}, but this "
            f"fitscribe expects {t.SCHEMA_REVISION!r}. Back it up, then run: "
            f"fitscribe db upgrade {redact(uri)!r}"
        )


def _create_fresh(conn: sa.Connection, artifact_root: str) -> None:
    from fitscribe.uri import join_uri

    t.metadata.create_all(conn)
    version = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))
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


def upgrade_schema(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Run the Alembic migrations up to ``revision``; return (revision before, revision after).

    A database that was never stamped but has fitscribe's tables is refused.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    with engine.begin() as conn:
        before = _current_revision(conn)
        if before == "unknown":
            raise SchemaVersionError(
                "The database has fitscribe-like tables but no alembic_version table; it was not "
                "created by fitscribe, so it is left alone."
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = _current_revision(conn)
    return before, after or ""
