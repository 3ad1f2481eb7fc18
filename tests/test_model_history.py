"""The run tag ``mlflow.log-model.history``: appended atomically by every store.

The one trimming rule (model_history.append_entry); ``record_logged_model`` on SQLite (the raw
sqlite3 path and SQLAlchemy's, chosen by URL options), PostgreSQL and MariaDB; four processes
appending into one run at once losing nothing; MLflow's legacy ``runs/log-model`` endpoint over
real HTTP; the REST store sending it; and ``log_model`` recording its models through all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from fitscribe import Client
from fitscribe.backends import get_tracking_store
from fitscribe.backends.model_history import (
    HISTORY_TAG,
    append_entry,
    check_entry,
    record_logged_model,
)
from fitscribe.entities import Run, RunTag
from fitscribe.errors import InvalidStateError, InvalidValueError, RunNotFound
from fitscribe.server import create_app
from fitscribe.server.run import ThreadedServer
from fitscribe.validation import MAX_TAG_VALUE_LENGTH

API = "/api/2.0/mlflow"


def _entry(run_id: str, path: str, pad: int = 0) -> dict[str, Any]:
    return {"run_id": run_id, "artifact_path": path, "utc_time_created": "2026-01-01 00:00:00.000000",
            "flavors": {"python_function": {"loader_module": "x" * pad}}}


def _history(run: Run) -> list[dict[str, Any]]:
    return json.loads(run.data.tags[HISTORY_TAG])  # type: ignore[no-any-return]


# -- the one rule ---------------------------------------------------------------------------------
def test_append_to_nothing_and_to_a_list() -> None:
    first = append_entry(None, _entry("r", "a"))
    assert json.loads(first) == [_entry("r", "a")]
    assert json.loads(append_entry(first, _entry("r", "b"))) == [_entry("r", "a"), _entry("r", "b")]
    assert append_entry(first, _entry("r", "b")) == json.dumps([_entry("r", "a"), _entry("r", "b")])


def test_trimming_keeps_the_newest_entries_that_fit() -> None:
    value = None
    for i in range(40):
        value = append_entry(value, _entry("r", f"m{i}", pad=300))
        assert len(value) <= MAX_TAG_VALUE_LENGTH
    assert value == json.dumps(json.loads(value))  # the kept entries as json.dumps writes them
    kept = [e["artifact_path"] for e in json.loads(value)]
    assert kept[-1] == "m39" and kept == [f"m{i}" for i in range(40 - len(kept), 40)]
    one_more = len(json.dumps([_entry("r", "m0", pad=300)] + json.loads(value)))
    assert one_more > MAX_TAG_VALUE_LENGTH  # the oldest dropped ones did not fit


def test_trimming_at_the_exact_limit() -> None:
    base = len(json.dumps([_entry("r", "a"), _entry("r", "b", pad=0)]))
    pad = MAX_TAG_VALUE_LENGTH - base
    both = append_entry(append_entry(None, _entry("r", "a")), _entry("r", "b", pad=pad))
    assert len(both) == MAX_TAG_VALUE_LENGTH and len(json.loads(both)) == 2
    over = append_entry(append_entry(None, _entry("r", "a")), _entry("r", "b", pad=pad + 1))
    assert [e["artifact_path"] for e in json.loads(over)] == ["b"]


def test_an_entry_too_long_alone_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="mlflow.log-model.history"):
        append_entry(None, _entry("r", "big", pad=MAX_TAG_VALUE_LENGTH))


def test_a_value_that_is_not_a_json_list_starts_afresh() -> None:
    for broken in ("not json", '{"a": 1}', "", "[]"):
        assert json.loads(append_entry(broken, _entry("r", "a"))) == [_entry("r", "a")]


@pytest.mark.parametrize("bad, message", [
    ([1], "JSON object"),
    ({"run_id": "r", "flavors": {}, "utc_time_created": "t"}, "'artifact_path'"),
    ({"artifact_path": "m", "flavors": {}}, "'utc_time_created', 'run_id'"),
    ({**_entry("r", "m"), "flavors": "sklearn"}, "'flavors' must be an object"),
])
def test_invalid_entries(bad: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        check_entry(bad)


def test_an_entry_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="cannot be written as JSON"):
        append_entry(None, {**_entry("r", "m"), "metadata": {"x": object()}})
    with pytest.raises(InvalidValueError, match="cannot be written as JSON"):
        append_entry(None, {**_entry("r", "m"), "metadata": {"x": float("nan")}})


# -- the SQL store on every database ------------------------------------------------------------
def _check_store(uri: str) -> None:
    store = get_tracking_store(uri)
    try:
        run_id = store.create_run("0", "u", 1).info.run_id
        store.log_batch(run_id, tags=[RunTag("other", "kept")])
        store.record_logged_model(run_id, _entry(run_id, "a"))  # type: ignore[attr-defined]
        store.record_logged_model(run_id, _entry(run_id, "b"))  # type: ignore[attr-defined]
        run = store.get_run(run_id)
        assert _history(run) == [_entry(run_id, "a"), _entry(run_id, "b")]
        assert run.data.tags["other"] == "kept"

        with pytest.raises(InvalidValueError, match="'artifact_path'"):
            store.record_logged_model(run_id, {"run_id": run_id})  # type: ignore[attr-defined]
        with pytest.raises(RunNotFound):
            store.record_logged_model("f" * 32, _entry("f" * 32, "a"))  # type: ignore[attr-defined]
        store.update_run_info(run_id, lifecycle_stage="deleted")
        with pytest.raises(InvalidStateError, match="deleted"):
            store.record_logged_model(run_id, _entry(run_id, "c"))  # type: ignore[attr-defined]
        store.update_run_info(run_id, lifecycle_stage="active")
        assert [e["artifact_path"] for e in _history(store.get_run(run_id))] == ["a", "b"]

        for i in range(30):  # past the tag's limit: the newest stay
            store.record_logged_model(run_id, _entry(run_id, f"m{i}", pad=300))  # type: ignore[attr-defined]
        stored = store.get_run(run_id).data.tags[HISTORY_TAG]
        assert len(stored) <= MAX_TAG_VALUE_LENGTH
        paths = [e["artifact_path"] for e in json.loads(stored)]
        assert paths[-1] == "m29" and "a" not in paths and len(paths) < 30
    finally:
        store.close()


def test_record_logged_model_on_each_database(tracking_uri: str) -> None:
    _check_store(tracking_uri)


def test_record_logged_model_through_sqlalchemy_on_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/t.db?timeout=30"
    store = get_tracking_store(uri)
    store.get_experiment("0")  # opens the database
    assert store._lite is None and store._engine is not None  # type: ignore[attr-defined]  # SQLAlchemy's path
    store.close()
    _check_store(uri)


class PluginStore:
    """A store from a plugin that has no ``record_logged_model``: reads and writes the tag."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_run(self, run_id: str) -> Run:
        """Return the run."""
        return self.inner.get_run(run_id)  # type: ignore[no-any-return]

    def log_batch(self, run_id: str, tags: list[RunTag]) -> None:
        """Set tags."""
        self.inner.log_batch(run_id, tags=tags)


def test_stores_without_the_capability_read_and_write_the_tag(tmp_path: Path) -> None:
    inner = get_tracking_store(str(tmp_path / "store"))
    store = PluginStore(inner)
    run_id = inner.create_run("0", "u", 1).info.run_id
    record_logged_model(store, run_id, _entry(run_id, "a"))
    record_logged_model(store, run_id, _entry(run_id, "b", pad=MAX_TAG_VALUE_LENGTH - 250))
    assert [e["artifact_path"] for e in _history(inner.get_run(run_id))] == ["b"]  # the same trimming
    inner.update_run_info(run_id, lifecycle_stage="deleted")
    with pytest.raises(InvalidStateError):
        record_logged_model(store, run_id, _entry(run_id, "c"))
    inner.close()


# -- four processes appending into one run --------------------------------------------------------
_WORKER = textwrap.dedent("""
    import sys
    from fitscribe.backends import get_tracking_store
    uri, run_id, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = get_tracking_store(uri)
    store.get_run(run_id)  # connected before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        store.record_logged_model(run_id, {"run_id": run_id, "artifact_path": f"w{worker}-{i:02d}",
                                           "utc_time_created": "t", "flavors": {}})
    store.close()
""")


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                                      pytest.param("mysql", marks=pytest.mark.mysql)])
def test_concurrent_appends_from_four_processes_lose_nothing(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = str(tmp_path / "store") if database == "sqlite" else str(request.getfixturevalue(f"{database}_uri"))
    store = get_tracking_store(uri)
    run_id = store.create_run("0", "u", 1).info.run_id
    workers, count = 4, 15
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, uri, run_id, str(w), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for w in range(workers)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # all start together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    paths = [e["artifact_path"] for e in _history(store.get_run(run_id))]
    store.close()
    assert sorted(paths) == sorted(f"w{w}-{i:02d}" for w in range(workers) for i in range(count))
    for w in range(workers):  # each process's entries in its own order
        assert [p for p in paths if p.startswith(f"w{w}-")] == [f"w{w}-{i:02d}" for i in range(count)]


# -- the endpoint and the REST store ------------------------------------------------------------
class PathRecorder:
    """An ASGI wrapper keeping the paths of the requests an app receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, PathRecorder]]:
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"))
    recorder = PathRecorder(app)
    with ThreadedServer(recorder) as server:
        yield server.url, recorder
    app.state.server.close()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code, response.text
    return str(response.json()["message"])


def test_log_model_endpoint(served: tuple[str, PathRecorder]) -> None:
    url, _ = served
    with httpx.Client(base_url=url + API, timeout=30) as http:
        run = http.post("/runs/create", json={"experiment_id": "0", "start_time": 1}).json()["run"]
        run_id = run["info"]["run_id"]
        for path in ("a", "b"):
            answer = http.post("/runs/log-model", json={"run_id": run_id, "model_json": json.dumps(_entry(run_id, path))})
            assert answer.status_code == 200 and answer.json() == {}, answer.text
        tags = {t["key"]: t["value"] for t in http.get("/runs/get", params={"run_id": run_id}).json()["run"]["data"]["tags"]}
        assert json.loads(tags[HISTORY_TAG]) == [_entry(run_id, "a"), _entry(run_id, "b")]

        def post(body: dict[str, Any]) -> httpx.Response:
            return http.post("/runs/log-model", json=body)

        assert "model_json is not valid JSON" in _error(post({"run_id": run_id, "model_json": "{nope"}), 400,
                                                        "INVALID_PARAMETER_VALUE")
        assert "JSON object" in _error(post({"run_id": run_id, "model_json": "[1]"}), 400, "INVALID_PARAMETER_VALUE")
        missing = json.dumps({"artifact_path": "m", "flavors": {}})
        assert "'utc_time_created', 'run_id'" in _error(post({"run_id": run_id, "model_json": missing}), 400,
                                                        "INVALID_PARAMETER_VALUE")
        assert "'model_json'" in _error(post({"run_id": run_id}), 400, "INVALID_PARAMETER_VALUE")
        assert "'run_id'" in _error(post({"model_json": json.dumps(_entry(run_id, "c"))}), 400, "INVALID_PARAMETER_VALUE")
        _error(post({"run_id": "f" * 32, "model_json": json.dumps(_entry("f" * 32, "c"))}), 404,
               "RESOURCE_DOES_NOT_EXIST")
        assert http.post("/runs/delete", json={"run_id": run_id}).status_code == 200
        assert "deleted" in _error(post({"run_id": run_id, "model_json": json.dumps(_entry(run_id, "c"))}), 400,
                                   "INVALID_PARAMETER_VALUE")
        doc = httpx.get(url + "/openapi.json").json()
        assert "run_id" in json.dumps(doc["paths"][f"{API}/runs/log-model"])


def test_rest_store_appends_on_the_server_after_its_queued_writes(served: tuple[str, PathRecorder]) -> None:
    url, recorder = served
    client = Client(url)
    run_id = client.create_run("0").info.run_id
    client.set_tag(run_id, "before", "queued")  # still in the write queue
    client.store.record_logged_model(run_id, _entry(run_id, "a"))  # type: ignore[attr-defined]
    client.store.record_logged_model(run_id, _entry(run_id, "b"))  # type: ignore[attr-defined]
    logged = [i for i, p in enumerate(recorder.paths) if p.endswith("/runs/log-model")]
    batches = [i for i, p in enumerate(recorder.paths) if p.endswith("/runs/log-batch")]
    assert len(logged) == 2 and batches and batches[0] < logged[0]  # the tag was sent first
    run = client.get_run(run_id)
    assert _history(run) == [_entry(run_id, "a"), _entry(run_id, "b")] and run.data.tags["before"] == "queued"
    with pytest.raises(InvalidValueError, match="'artifact_path'"):
        client.store.record_logged_model(run_id, {"run_id": run_id})  # type: ignore[attr-defined]
    with pytest.raises(RunNotFound):
        client.store.record_logged_model("f" * 32, _entry("f" * 32, "a"))  # type: ignore[attr-defined]
    client.close()


def test_log_model_records_the_same_history_embedded_and_over_rest(
    served: tuple[str, PathRecorder], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    import fitscribe
    from fitscribe.flavors import sklearn as sk

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    histories = []
    for uri in (str(tmp_path / "embedded"), served[0]):
        fitscribe.set_tracking_uri(uri)
        with fitscribe.start_run() as run:
            infos = [sk.log_model(model, "first"), sk.log_model(model, "second")]
        history = _history(fitscribe.get_run(run.info.run_id))
        assert [h["artifact_path"] for h in history] == ["first", "second"]
        assert [h["model_uuid"] for h in history] == [i.model_uuid for i in infos]
        assert all(h["run_id"] == run.info.run_id and h["flavors"] == i.flavors for h, i in zip(history, infos))
        histories.append([sorted(h) for h in history])
    assert histories[0] == histories[1] == [["artifact_path", "fitscribe_digest", "flavors", "model_uuid", "run_id", "utc_time_created"]] * 2
    assert any(p.endswith("/runs/log-model") for p in served[1].paths)


_MLFLOW_SCRIPT = textwrap.dedent("""
    import json, sys
    from mlflow import MlflowClient
    from mlflow.models import Model
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    for name in ("first", "second"):  # what MLflow 2.x's log_model sends: POST runs/log-model
        model = Model(artifact_path=name, run_id=run_id, flavors={"python_function": {"loader_module": "x"}})
        client._tracking_client.store.record_logged_model(run_id, model)
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    print(json.dumps({"run_id": run_id, "paths": [h["artifact_path"] for h in history]}))
""")


def test_mlflow_clients_record_logged_models(served: tuple[str, PathRecorder], tmp_path: Path) -> None:
    from _mlflow_support import run_mlflow

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_"))}
    env.update(MLFLOW_TRACKING_URI=served[0], MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    job = run_mlflow(["-c", _MLFLOW_SCRIPT], cwd=tmp_path, env=env, timeout=300)
    assert job.returncode == 0, job.stderr
    answer = json.loads(job.stdout.strip().splitlines()[-1])
    assert answer["paths"] == ["first", "second"]
    assert sum(p.endswith("/runs/log-model") for p in served[1].paths) == 2
