"""Shared fixtures: a clean environment for every test, and fresh databases on real servers.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) must be running.
Locally, a test needing an unreachable server is skipped with the reason; in CI (``CI`` set to
any non-empty value) it fails instead, so the store suite is never silently skipped there
(tests/_require.py: the same rule for optional packages, the browser and the MLflow venv).
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Iterator

import pytest
from _require import require_module, unavailable

PG_ADMIN_URL = os.environ.get("FITSCRIBE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("FITSCRIBE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


KEPT_VARIABLES = frozenset({
    "FITSCRIBE_MLFLOW_PYTHON",  # where the MLflow venv is (tests/_mlflow_support.py)
    "FITSCRIBE_SCREENSHOTS",  # where the UI tests save screenshots (tests/_ui_support.py)
    "FITSCRIBE_TEST_PG",  # the database servers' admin URLs (read above, at import)
    "FITSCRIBE_TEST_MYSQL",
})
"""Variables the suite reads on purpose from the caller's environment; every other FITSCRIBE_* and
MLFLOW_* variable is cleared for each test, so a developer's own settings never leak in."""


@pytest.fixture(autouse=True)
def _clean_fitscribe_state(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clear FITSCRIBE_* and MLFLOW_* variables (but KEPT_VARIABLES), run in a private working
    folder, and reset the fluent session."""
    for name in list(os.environ):
        if name.startswith(("FITSCRIBE_", "MLFLOW_")) and name not in KEPT_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("FITSCRIBE_STRICT", "1")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    import fitscribe.fluent

    fitscribe.fluent.reset()
    yield
    fitscribe.fluent.reset()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    """moto's S3 server (``fitscribe.testing.s3_server.MotoS3Server``, a child process on loopback),
    started by the first test that needs it and shared by the session's S3 tests, each with buckets
    of its own: one start (seconds, moto's imports) instead of one per module."""
    require_module("boto3", reason="the s3 extra (boto3) is not installed")
    require_module("moto", reason="moto[server] (dev extra) is not installed")
    from fitscribe.testing.s3_server import MotoS3Server

    with MotoS3Server() as server:
        yield server


def _server_unavailable(kind: str, exc: Exception) -> None:
    unavailable(f"{kind} server not reachable: {exc}",
                ci_hint="CI must run the store suite on every database; start the server")


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[object]:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means the server is not usable
        _server_unavailable("PostgreSQL", exc)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _mysql_admin() -> Iterator[object]:
    import sqlalchemy as sa

    engine = sa.create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means the server is not usable
        _server_unavailable("MariaDB/MySQL", exc)
    yield engine
    engine.dispose()


@pytest.fixture
def postgresql_uri(_pg_admin: object) -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    import sqlalchemy as sa

    name = f"fs_test_{uuid.uuid4().hex[:12]}"
    engine: sa.Engine = _pg_admin  # type: ignore[assignment]
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def mysql_uri(_mysql_admin: object) -> Iterator[str]:
    """A fresh, empty MariaDB database; dropped afterwards."""
    import sqlalchemy as sa

    name = f"fs_test_{uuid.uuid4().hex[:12]}"
    engine: sa.Engine = _mysql_admin  # type: ignore[assignment]
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield f"mysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(
    params=[
        "sqlite",
        "sqlite-direct",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def tracking_uri(request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tracking URI for a new store on each database: SQLite file (with its metric journal, and
    without: every point committed straight to the database), PostgreSQL, MariaDB."""
    if request.param.startswith("sqlite"):
        if request.param == "sqlite-direct":
            monkeypatch.setenv("FITSCRIBE_METRIC_JOURNAL", "0")
        return str(tmp_path / "store")  # type: ignore[operator]
    return str(request.getfixturevalue(f"{request.param}_uri"))
