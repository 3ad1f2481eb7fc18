"""`fitscribe import mlflow http://...`: a real `mlflow server` (from .venv-mlflow, SQLite backend, the
artifact proxy on) filled by the real MLflow client with the script of test_import_mlflow.py, then
imported through its REST API into SQLite and PostgreSQL stores and compared field by field with
what MLflow itself reads back (metric histories point by point, artifact bytes, the registry,
logged models); a second import adds nothing. One server for the module.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from _mlflow_support import mlflow_python
from test_import_mlflow import _check_experiments, _check_logged_models, _check_runs, _mlflow

from fitscribe import Client
from fitscribe.cli_import import import_mlflow, main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling interval while the server starts
    pytest.fail(f"mlflow server did not answer /health in 90 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """A running `mlflow server` filled by MLflow's client; yields (URL, artifact folder, MLflow's dump)."""
    python = mlflow_python()
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "true"}
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(python), "mlflow"), "server", "--backend-store-uri",
             f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", str(tmp / "mlartifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:  # MLflow's client imports while the server starts, then waits for it
            dump = _mlflow(tmp, url, "create")
        except AssertionError:
            _wait_until_up(url, server, log)  # says why the server is not there, if it is not
            raise
        yield url, tmp / "mlartifacts", dump
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def _check_artifact_bytes(client: Client, dump: dict[str, Any], artifacts: Path) -> int:
    """Every file the server holds for a run is in the destination with the same bytes; return the count."""
    checked = 0
    for run in dump["runs"]:
        folder = artifacts / run["artifact_uri"].removeprefix("mlflow-artifacts:/")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            continue
        copy = Path(client.download_artifacts(run["id"], ""))
        for path in files:
            rel = path.relative_to(folder)
            assert hashlib.sha256((copy / rel).read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
            checked += 1
    return checked


@pytest.mark.parametrize("dest_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_tracking_server_is_imported_field_by_field(mlflow_server: tuple[str, Path, dict[str, Any]],
                                                      dest_kind: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    url, artifacts, dump = mlflow_server
    dest = str(tmp_path / "store") if dest_kind == "sqlite" else request.getfixturevalue("postgresql_uri")
    report, checked = import_mlflow(url, dest)
    assert checked.ok, checked.table()
    assert (report.runs_added, report.models_added, report.versions_added) == (3, 2, 3)
    assert report.points_added == sum(len(p) for r in dump["runs"] for p in r["metrics"].values())
    client = Client(dest)
    try:
        _check_experiments(client, dump)
        _check_runs(client, dump, local_artifacts=False)
        assert _check_artifact_bytes(client, dump, artifacts) == 6  # files/a.txt and files/sub/b.bin of 3 runs
        _check_logged_models(client, dump, lambda model_id: artifacts / next(
            m for m in dump["logged_models"] if m["id"] == model_id)["artifact_uri"].removeprefix("mlflow-artifacts:/"))
        registry = client.store.registry
        model = registry.get_registered_model("m1")
        assert (model.description, model.tags, model.aliases) == ("first", {"owner": "me"}, {"champion": 1})
        v1 = registry.get_model_version("m1", 1)
        assert (v1.current_stage, v1.description, v1.tags) == ("Production", "v1 desc", {"t": "1"})
        assert sorted(v.version for v in registry.search_model_versions("name='m1'")) == [1, 2]
    finally:
        client.close()

    lines: list[str] = []  # a second import adds nothing
    assert main(["import", "mlflow", url, "--to", dest], out=lines.append) == 0, lines
    assert "Nothing new" in "\n".join(lines)

