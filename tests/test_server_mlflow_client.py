"""The OFFICIAL mlflow client (3.x, in its own virtualenv) against ``fitscribe server``.

One subprocess of MLflow's python (``.venv-mlflow``, built by ``scripts/mlflow_venv.sh``; or
``FITSCRIBE_MLFLOW_PYTHON``) runs :data:`CLIENT_SCRIPT` against two servers on 127.0.0.1 in turn
(port 0, threads of this process), one backed by SQLite and one by PostgreSQL, with artifact serving
on. The script writes what MLflow saw to a JSON file per server; the tests then read everything back
with ``fitscribe.Client`` on the same store and assert exact equality. Without MLflow's python the
tests are skipped locally, with the reason, and fail in CI (``CI`` set).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from _mlflow_support import mlflow_python, run_mlflow

import fitscribe
from fitscribe.server import create_app
from fitscribe.server.run import ThreadedServer

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000_000  # timestamps of the metric history, so they can be compared exactly

CLIENT_SCRIPT = textwrap.dedent('''
    import json, math, os, sys, tempfile
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    T0 = int(sys.argv[1])

    def code_of(call):
        try:
            call()
        except MlflowException as exc:
            return exc.error_code
        return "no error"

    def scenario(client, result):
        """Everything MLflow does against one server; what it saw goes to the file ``result``."""
        out = {}
        exp_id = mlflow.create_experiment("mlflow-client", tags={"team": "vision"})
        mlflow.set_experiment("mlflow-client")
        with mlflow.start_run(run_name="main") as run:
            run_id = run.info.run_id
            mlflow.log_params({"lr": 0.01, "layers": 3, "optimizer": "adam"})
            mlflow.log_param("note", None)
            for i in range(50):
                client.log_metric(run_id, "loss", 1.0 / (i + 1), timestamp=T0 + i, step=i)
            mlflow.log_metric("nan_metric", float("nan"), step=0, timestamp=T0)
            mlflow.log_metric("inf_metric", float("inf"), step=0, timestamp=T0)
            mlflow.set_tags({"stage": "dev", "owner": "ann"})
            mlflow.set_tag("doomed", "x")
            client.delete_tag(run_id, "doomed")
            folder = tempfile.mkdtemp()
            with open(os.path.join(folder, "hello.txt"), "w") as f:
                f.write("hello from mlflow\\n")
            mlflow.log_artifact(os.path.join(folder, "hello.txt"), artifact_path="notes")
            mlflow.log_dict({"a": 1}, "config/params.json")
            import pandas as pd
            df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
            mlflow.log_input(mlflow.data.from_pandas(df, name="train-df"), context="training")
            from sklearn.linear_model import LogisticRegression
            X = df[["x"]].to_numpy()
            model = LogisticRegression().fit(X, df["y"])
            # MLflow's default format (skops); requirements given, or MLflow would infer them by loading
            # the model again in a new python (10-40 s)
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            out["model_id"] = info.model_id
        out.update(experiment_id=exp_id, run_id=run_id, run_name="main")
        out["history"] = [[m.step, m.timestamp, m.value] for m in client.get_metric_history(run_id, "loss")]
        got = client.get_run(run_id)
        out["mlflow_params"] = got.data.params
        out["mlflow_tags"] = {k: v for k, v in got.data.tags.items()}
        out["mlflow_metrics"] = {k: (None if math.isnan(v) else v) for k, v in got.data.metrics.items()}
        out["status"] = got.info.status
        out["artifact_uri"] = got.info.artifact_uri
        out["root_listing"] = sorted(f.path for f in client.list_artifacts(run_id))
        out["notes_listing"] = sorted(f.path for f in client.list_artifacts(run_id, "notes"))
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes/hello.txt")
        out["downloaded"] = open(local).read()
        out["loaded_runs_uri"] = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(X).tolist()
        out["loaded_models_uri"] = mlflow.sklearn.load_model(f"models:/{info.model_id}").predict(X).tolist()
        out["predicted"] = model.predict(X).tolist()

        # several runs for search_runs with a filter and an order_by
        for name, kind, acc in [("s1", "a", 0.9), ("s2", "b", 0.95), ("s3", "a", 0.7), ("s4", "a", 0.3)]:
            with mlflow.start_run(run_name=name):
                mlflow.log_param("kind", kind)
                mlflow.log_metric("acc", acc)
        found = client.search_runs([exp_id], "metrics.acc > 0.5 and params.kind = 'a'", order_by=["metrics.acc DESC"])
        out["search_names"] = [r.info.run_name for r in found]
        frame = mlflow.search_runs([exp_id], filter_string="params.kind = 'a'", order_by=["metrics.acc ASC"])
        out["search_frame_names"] = frame["tags.mlflow.runName"].tolist()
        page = client.search_runs([exp_id], order_by=["attributes.start_time ASC"], max_results=2)
        out["paged_names"] = [[r.info.run_name for r in page]]
        while page.token:
            page = client.search_runs([exp_id], order_by=["attributes.start_time ASC"], max_results=2, page_token=page.token)
            out["paged_names"].append([r.info.run_name for r in page])
        out["experiments"] = sorted(e.name for e in client.search_experiments(filter_string="name LIKE 'mlflow-%'"))
        client.set_experiment_tag(exp_id, "reviewed", "yes")
        other = client.create_experiment("to-rename")
        client.rename_experiment(other, "renamed")
        client.delete_experiment(other)
        client.restore_experiment(other)
        out["renamed"] = client.get_experiment(other).name

        out["errors"] = {
            "missing_run": code_of(lambda: client.get_run("0" * 32)),
            "duplicate_experiment": code_of(lambda: client.create_experiment("mlflow-client")),
            "changed_param": code_of(lambda: client.log_param(run_id, "lr", "0.5")),
            "bad_key": code_of(lambda: client.log_metric(run_id, "bad$key", 1.0)),
            "missing_experiment": code_of(lambda: client.get_experiment("987654")),
        }
        json.dump(out, open(result, "w"))

    for uri, result in zip(sys.argv[2::2], sys.argv[3::2]):  # one process, each server in turn
        mlflow.set_tracking_uri(uri)
        scenario(MlflowClient(uri), result)
''')


@dataclass
class Session:
    store: str
    client: fitscribe.Client
    artifacts: str
    url: str
    seen: dict[str, Any]


def _selected_backends(request: pytest.FixtureRequest) -> set[str]:
    """The backends of this module's selected tests (``-m "not postgres"`` leaves PostgreSQL out)."""
    kinds = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None and "session" in callspec.params:
            kinds.add(callspec.params["session"])
    return kinds


@pytest.fixture(scope="module")
def _served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Session]]:
    """Serve a fresh SQLite store and a new PostgreSQL database (when their tests are selected and the
    server is there), each with local artifacts; ONE MLflow process, whose imports cost seconds, runs
    the client script against each server in turn. Yields what each saw, by backend."""
    mlflow_python()  # skips (fails in CI) without MLflow's python
    root = tmp_path_factory.mktemp("mlflow-client")
    wanted = _selected_backends(request)
    with contextlib.ExitStack() as stack:
        stores = {"sqlite": str(root / "sqlite-store")} if "sqlite" in wanted else {}
        if "postgresql" in wanted:
            try:
                admin = request.getfixturevalue("_pg_admin")
            except pytest.skip.Exception:  # no server here: the postgresql tests skip in `session`
                admin = None
            if admin is not None:
                stores["postgresql"] = stack.enter_context(_new_pg_database(admin))
        servers = {kind: stack.enter_context(ThreadedServer(create_app(store, str(root / f"{kind}-artifacts"))))
                   for kind, store in stores.items()}
        _run_client_script(root, {kind: server.url for kind, server in servers.items()})
        sessions = {}
        for kind, store in stores.items():
            client = stack.enter_context(contextlib.closing(fitscribe.Client(store)))
            seen = json.loads((root / f"{kind}.json").read_text())
            sessions[kind] = Session(store, client, str(root / f"{kind}-artifacts"), servers[kind].url, seen)
        yield sessions


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def session(request: pytest.FixtureRequest, _served: dict[str, Session]) -> Session:
    """What MLflow's client did against a server on a SQLite file, or on a PostgreSQL database."""
    if request.param == "postgresql":
        request.getfixturevalue("_pg_admin")  # skips locally (fails in CI) without the server
    return _served[request.param]


@contextlib.contextmanager
def _new_pg_database(admin: Any) -> Iterator[str]:
    """A new, empty PostgreSQL database's URI; dropped afterwards."""
    import sqlalchemy as sa

    name = f"fs_mlflow_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run_client_script(root: Path, urls: dict[str, str]) -> None:
    """Run :data:`CLIENT_SCRIPT` once against every server of ``urls``; each result goes to ``<kind>.json``."""
    script = root / "client.py"
    script.write_text(CLIENT_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
               MLFLOW_HTTP_REQUEST_TIMEOUT="60")
    pairs = [arg for kind, url in urls.items() for arg in (url, str(root / f"{kind}.json"))]
    job = run_mlflow([str(script), str(T0), *pairs], cwd=root, env=env, timeout=600)
    assert job.returncode == 0, f"MLflow's client failed against the server:\n{job.stdout}\n{job.stderr}"


def test_fitscribe_reads_back_the_experiment(session: Session) -> None:
    client = session.client
    exp = client.get_experiment(session.seen["experiment_id"])
    assert exp.name == "mlflow-client"
    assert exp.tags == {"team": "vision", "reviewed": "yes"}
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    assert session.seen["experiments"] == ["mlflow-client"]
    assert session.seen["renamed"] == "renamed"


def test_fitscribe_reads_back_the_run(session: Session) -> None:
    seen = session.seen
    run = session.client.get_run(seen["run_id"])
    assert run.info.run_name == "main" and run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.artifact_uri == seen["artifact_uri"] == f"mlflow-artifacts:/{seen['experiment_id']}/{seen['run_id']}/artifacts"
    assert run.data.params == {"lr": "0.01", "layers": "3", "optimizer": "adam", "note": "None"} == seen["mlflow_params"]
    assert {"stage": "dev", "owner": "ann"}.items() <= run.data.tags.items()
    assert "doomed" not in run.data.tags and run.data.tags["mlflow.runName"] == "main"
    assert run.data.tags == seen["mlflow_tags"]
    assert math.isnan(run.data.metrics["nan_metric"]) and run.data.metrics["inf_metric"] == math.inf
    assert run.data.metrics["loss"] == seen["mlflow_metrics"]["loss"] == 1.0 / 50
    assert seen["mlflow_metrics"]["inf_metric"] == math.inf and seen["mlflow_metrics"]["nan_metric"] is None
    dataset = run.inputs.dataset_inputs[0]
    assert dataset.dataset.name == "train-df" and {(t.key, t.value) for t in dataset.tags} == {("mlflow.data.context", "training")}


def test_metric_history_is_exact(session: Session) -> None:
    history = session.client.get_metric_history(session.seen["run_id"], "loss")
    expected = [[i, T0 + i, 1.0 / (i + 1)] for i in range(50)]
    assert [[m.step, m.timestamp, m.value] for m in history] == expected
    assert session.seen["history"] == expected  # also what MLflow's client reads (no duplicate from log_model)


def test_artifacts_went_through_the_proxy(session: Session) -> None:
    seen = session.seen
    run_dir = Path(session.artifacts, seen["experiment_id"], seen["run_id"], "artifacts")
    assert (run_dir / "notes" / "hello.txt").read_text() == "hello from mlflow\n"
    assert json.loads((run_dir / "config" / "params.json").read_text()) == {"a": 1}
    assert seen["root_listing"] == ["config", "notes"]
    assert seen["notes_listing"] == ["notes/hello.txt"]
    assert seen["downloaded"] == "hello from mlflow\n"


def test_log_model_and_load_it_back(session: Session) -> None:
    seen = session.seen
    model_dir = Path(session.artifacts, seen["experiment_id"], "models", seen["model_id"], "artifacts")
    assert (model_dir / "MLmodel").is_file()
    assert seen["loaded_runs_uri"] == seen["loaded_models_uri"] == seen["predicted"]


def test_search_runs_with_filter_and_order_by(session: Session) -> None:
    assert session.seen["search_names"] == ["s1", "s3"]
    assert session.seen["search_frame_names"] == ["s4", "s3", "s1"]
    assert session.seen["paged_names"] == [["main", "s1"], ["s2", "s3"], ["s4"]]


def test_error_codes_seen_by_the_mlflow_client(session: Session) -> None:
    assert session.seen["errors"] == {
        "missing_run": "RESOURCE_DOES_NOT_EXIST",
        "duplicate_experiment": "RESOURCE_ALREADY_EXISTS",
        "changed_param": "INVALID_PARAMETER_VALUE",
        "bad_key": "INVALID_PARAMETER_VALUE",
        "missing_experiment": "RESOURCE_DOES_NOT_EXIST",
    }
