"""Opening data that is not fitscribe's changes nothing (issue 11 item 11): an MLflow ``mlflow.db`` and
``mlruns`` folder made by the real MLflow, another application's SQLite file, a file that is not a
database, and MLflow tables on PostgreSQL and MariaDB are refused with what they are and what to do,
before anything is written: the files stay byte for byte the same, with no -wal/-shm beside them."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

import fitscribe
from fitscribe.cli import main
from fitscribe.errors import ForeignStoreError

from _mlflow_support import mlflow_python

_SHIMMED = ("sqlalchemy", "alembic", "mako", "markupsafe", "greenlet")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), and every folder (-> "dir")."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def mlflow_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``mlflow.db`` and ``mlruns/`` written by the real MLflow (a run, a param, a metric
    each). The MLflow venv is mlflow-skinny: its SQL store borrows SQLAlchemy and Alembic from ours."""
    import sqlalchemy

    python = mlflow_python()
    root = tmp_path_factory.mktemp("mlflow")
    shim = root / "shim"
    shim.mkdir()
    site = Path(sqlalchemy.__file__).parent.parent
    for name in _SHIMMED:
        if (site / name).exists():
            (shim / name).symlink_to(site / name)
    script = textwrap.dedent(f"""
        import mlflow
        for uri in ("sqlite:///{root}/mlflow.db", "file://{root}/mlruns"):
            mlflow.set_tracking_uri(uri)
            with mlflow.start_run():
                mlflow.log_param("alpha", 0.5)
                mlflow.log_metric("rmse", 0.25)
    """)
    env = {**os.environ, "PYTHONPATH": str(shim), "MLFLOW_ALLOW_FILE_STORE": "true"}
    done = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(shim)
    return root


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target


@pytest.mark.parametrize("options", ["", "?timeout=30"])
def test_an_mlflow_database_is_refused_and_left_unchanged(mlflow_made: Path, tmp_path: Path, options: str) -> None:
    """Through the embedded path (plain sqlite3) and through SQLAlchemy (a URI with options)."""
    db = _copy(mlflow_made / "mlflow.db", tmp_path)
    before = _snapshot(tmp_path)
    client = fitscribe.Client(f"sqlite:///{db}{options}")
    for call in (lambda: client.search_experiments(), lambda: client.create_run("0"), lambda: client.get_experiment("0")):
        with pytest.raises(ForeignStoreError, match="MLflow tracking database") as caught:
            call()
        assert "left unchanged" in str(caught.value) and "fitscribe import mlflow" in str(caught.value)
    client.close()
    assert _snapshot(tmp_path) == before  # same bytes, no -wal, -shm or journal beside it
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # never switched to WAL
    conn.close()


def test_db_upgrade_refuses_an_mlflow_database_cleanly(mlflow_made: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = _copy(mlflow_made / "mlflow.db", tmp_path)
    before = _snapshot(tmp_path)
    assert main(["db", "upgrade", f"sqlite:///{db}"], out=lambda _: None) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "MLflow tracking database" in err and "fitscribe import mlflow" in err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before


def test_an_mlflow_mlruns_folder_is_refused_and_left_unchanged(mlflow_made: Path, tmp_path: Path) -> None:
    mlruns = _copy(mlflow_made / "mlruns", tmp_path)
    before = _snapshot(tmp_path)
    for uri in (str(mlruns), mlruns.as_uri()):
        client = fitscribe.Client(uri)
        with pytest.raises(ForeignStoreError, match=r"MLflow file store \(mlruns\)") as caught:
            client.search_experiments()
        assert "fitscribe import mlflow" in str(caught.value)
        client.close()
    assert _snapshot(tmp_path) == before
    assert not (mlruns / "tracking.db").exists()
    with pytest.raises(ForeignStoreError, match="mlruns"):  # the fluent API too
        fitscribe.set_tracking_uri(str(mlruns))
        try:
            fitscribe.search_experiments()
        finally:
            fitscribe.set_tracking_uri(None)
    assert _snapshot(tmp_path) == before


def test_another_applications_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ann')")
    conn.commit()
    conn.close()
    (tmp_path / "notes.db").write_bytes(b"not a database at all\n" * 10)
    before = _snapshot(tmp_path)
    for uri, match in ((f"sqlite:///{db}", r"not created by fitscribe: it has tables \(customers\)"),
                       (f"sqlite:///{db}?timeout=5", "not created by fitscribe"),
                       (f"sqlite:///{tmp_path / 'notes.db'}", "is not a SQLite database")):
        client = fitscribe.Client(uri)
        with pytest.raises(ForeignStoreError, match=match):
            client.create_run("0")
        client.close()
    assert _snapshot(tmp_path) == before


def test_an_empty_file_or_folder_becomes_a_new_store(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    (tmp_path / "folder").mkdir()
    for uri in (f"sqlite:///{tmp_path / 'empty.db'}", str(tmp_path / "folder")):
        client = fitscribe.Client(uri)
        assert client.get_experiment("0").name == "Default"
        client.close()


def _mlflow_like_tables(url: str) -> None:
    """MLflow's tables as MLflow's migrations leave them (the columns that matter here) and its stamp."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('1b5f0d9ad7c1')"))
        conn.execute(sa.text("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256))"))
        conn.execute(sa.text("CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, experiment_id INTEGER)"))
        conn.execute(sa.text("CREATE TABLE metrics (run_uuid VARCHAR(32), `key` VARCHAR(250), value FLOAT)"
                             if url.startswith("mysql") else
                             "CREATE TABLE metrics (run_uuid VARCHAR(32), key VARCHAR(250), value FLOAT)"))
    engine.dispose()


def _tables(url: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    names = sorted(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


@pytest.mark.parametrize("database", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                      pytest.param("mysql", marks=pytest.mark.mysql)])
def test_mlflow_tables_on_a_database_server_are_refused(request: pytest.FixtureRequest, database: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fitscribe.backends.sql.database_url import parse_database_uri

    uri = str(request.getfixturevalue(f"{database}_uri"))
    url = parse_database_uri(uri).url
    _mlflow_like_tables(url)
    before = _tables(url)
    client = fitscribe.Client(uri)
    with pytest.raises(ForeignStoreError, match="MLflow tracking database.*1b5f0d9ad7c1"):
        client.create_run("0")
    client.close()
    assert main(["db", "upgrade", uri], out=lambda _: None) == 1
    err = capsys.readouterr().err
    assert "MLflow tracking database" in err and "Traceback" not in err
    assert _tables(url) == before
