"""Two ``fitscribe server`` replicas (real subprocesses on 127.0.0.1) on ONE PostgreSQL database and ONE
S3 artifact store (moto): clients alternate between them, threads write at once (logged models
with their files and tags, registered model versions with aliases and tags, runs with params and
metrics), and each replica then reads everything the other wrote. Nothing may be lost (issue 13)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from _require import require_module

require_module("moto", reason="moto[server] (dev extra) is not installed")

from fitscribe.backends import get_artifact_store, get_tracking_store  # noqa: E402
from fitscribe.entities import Metric, Param  # noqa: E402
from fitscribe.testing.s3_server import FAKE_CREDENTIALS, MotoS3Server  # noqa: E402

pytestmark = pytest.mark.postgres

THREADS, ROUNDS, STEPS = 4, 2, 5


def _start(database: str, destination: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", database,
               "--artifacts-destination", destination, "--port", "0"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _address(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
    assert match, "the server did not print its address"
    return match.group(0)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer /health"
        time.sleep(0.05)


@pytest.fixture
def replicas(postgresql_uri: str, moto_server: MotoS3Server, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The URLs of two servers sharing one PostgreSQL database and one S3 bucket (in the session's moto)."""
    bucket = f"fs-{uuid.uuid4().hex[:12]}"
    moto_server.create_bucket(bucket)
    aws = {**FAKE_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": moto_server.endpoint_url,
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    get_tracking_store(postgresql_uri).close()  # nothing is created yet: the first use makes the schema
    started = [_start(postgresql_uri, f"s3://{bucket}/dest", dict(os.environ)) for _ in range(2)]  # at once
    try:
        urls = [_address(proc) for proc in started]
        for url in urls:
            _wait_healthy(url)
        yield urls
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.communicate(timeout=30)


def _log_model(store: Any, experiment_id: str, run_id: str, name: str, folder: Path) -> str:
    """What MLflow 3's log_model does over REST: create the model, upload its files, finalize it."""
    model = store.create_logged_model(experiment_id, name, source_run_id=run_id, params={"worker": name})
    files = folder / name
    files.mkdir()
    (files / "MLmodel").write_text(f"model_id: {model.model_id}\nflavors: {{}}\n")
    get_artifact_store(model.artifact_location).put(str(files / "MLmodel"))
    return str(store.update_logged_model(model.model_id, status="READY").model_id)


def test_two_replicas_on_one_database_and_one_bucket_lose_nothing(replicas: list[str], tmp_path: Path) -> None:
    stores = [get_tracking_store(url) for url in replicas]
    experiment_id = stores[0].create_experiment("replicas")
    shared = stores[1].create_logged_model(experiment_id, "shared")  # every worker tags it
    stores[0].registry.create_registered_model("churn")
    written: dict[str, Any] = {"models": [], "runs": [], "versions": []}
    errors: list[BaseException] = []
    lock = threading.Lock()
    folder = tmp_path / "models"
    folder.mkdir()

    def work(worker: int) -> None:
        try:
            for i in range(ROUNDS):
                a, b = stores[(worker + i) % 2], stores[(worker + i + 1) % 2]  # alternate replicas per call
                run_id = a.create_run(experiment_id, f"w{worker}", int(time.time() * 1000)).info.run_id
                b.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), 1_000 + s, s) for s in range(STEPS)],
                            params=[Param("worker", str(worker))])
                model_id = _log_model(a, experiment_id, run_id, f"m{worker}-{i}", folder)
                b.update_logged_model(shared.model_id, tags={f"w{worker}-{i}": str(i)})
                version = b.registry.create_model_version("churn", f"models:/{model_id}", run_id=run_id)
                a.registry.set_registered_model_alias("churn", f"w{worker}r{i}", version.version)
                b.registry.set_model_version_tag("churn", version.version, "worker", str(worker))
                with lock:
                    written["runs"].append(run_id)
                    written["models"].append(model_id)
                    written["versions"].append(version.version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    total = THREADS * ROUNDS
    assert sorted(written["versions"]) == list(range(1, total + 1))  # distinct, consecutive, none lost

    for store in stores:  # each replica reads what both wrote
        store.flush()
        found = store.search_logged_models([experiment_id], "status = 'READY'", max_results=1000)
        assert sorted(m.model_id for m in found) == sorted(written["models"])
        assert all(m.params["worker"] == m.name for m in found)
        tags = store.get_logged_model(shared.model_id).tags
        assert tags == {f"w{w}-{i}": str(i) for w in range(THREADS) for i in range(ROUNDS)}
        for model_id in written["models"][:: THREADS]:  # files the other replica uploaded are listed
            location = store.get_logged_model(model_id).artifact_location
            assert [f.path for f in get_artifact_store(location).list()] == ["MLmodel"]
        registered = store.registry.get_registered_model("churn")
        assert sorted(registered.aliases.values()) == list(range(1, total + 1))
        versions = store.registry.search_model_versions("name = 'churn'")
        assert sorted(v.version for v in versions) == list(range(1, total + 1))
        assert all(v.tags.get("worker") for v in versions) and len({v.source for v in versions}) == total
        runs = store.search_runs([experiment_id], max_results=1000)
        assert sorted(r.info.run_id for r in runs) == sorted(written["runs"])
        assert all("worker" in r.data.params and r.data.metrics["loss"] == 1.0 / STEPS for r in runs)
        for run_id in written["runs"][:: THREADS - 1]:
            assert [p.step for p in store.get_metric_history(run_id, "loss")] == list(range(STEPS))
    for store in stores:
        store.close()
