"""`fitscribe import mlflow`: real MLflow stores (a SQLite database and an mlruns folder, made by the
real MLflow in .venv-mlflow) imported into fitscribe stores, compared field by field with what
MLflow itself reads back; re-import adds nothing; new source data is added incrementally; an import
killed by SIGKILL midway completes when re-run; SQLite and PostgreSQL destinations.

The MLflow venv (scripts/mlflow_venv.sh) holds SQLAlchemy, Alembic and the database drivers MLflow's
SQL stores need; for an older one lacking them, benchmarks/import_mlflow.py's ``mlflow_env`` links
this venv's copies in. Each source also brings an MLflow 3 logged model (with files) registered as a
version, and the verification's point hashes are checked to see a changed value.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _mlflow_support import REPO, mlflow_python

sys.path.insert(0, str(REPO / "benchmarks"))
from import_mlflow import make_source, mlflow_env  # noqa: E402

from fitscribe import Client  # noqa: E402
from fitscribe.cli_import import import_mlflow, main  # noqa: E402

MAX_DOUBLE = 1.7976931348623157e308

# Logged with the real MLflow; then everything MLflow reads back is dumped as JSON (NaN/inf as text).
MLFLOW_SCRIPT = r'''
import json, math, os, sys
import mlflow
from mlflow import MlflowClient

uri, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if uri.startswith("http"):  # a server started with this script: wait for it (up to 90 s)
    import time, urllib.request
    for _ in range(900):
        try:
            urllib.request.urlopen(uri + "/health", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
mlflow.set_tracking_uri(uri)
c = MlflowClient(uri)
if mode == "create":
    c.create_experiment("alpha", tags={"team": "vision"})
    gone = c.create_experiment("beta")
    c.delete_experiment(gone)
    mlflow.set_experiment("alpha")
    ids = []
    for i in range(3):
        with mlflow.start_run(run_name=f"r{i}") as r:
            ids.append(r.info.run_id)
            mlflow.log_params({"lr": str(0.1 * (i + 1)), "depth": i})
            mlflow.set_tag("kind", "test")
            for s in range(5):
                mlflow.log_metric("loss", 1.0 / (s + 1), step=s)
            mlflow.log_metric("odd", float("nan"), step=0)
            mlflow.log_metric("odd", float("inf"), step=1)
            mlflow.log_metric("odd", float("-inf"), step=2)
            mlflow.log_metric("odd", -0.0, step=2, timestamp=5)
            os.makedirs("art/sub", exist_ok=True)
            with open("art/a.txt", "w") as f:
                f.write(f"hello {i}")
            with open("art/sub/b.bin", "wb") as f:
                f.write(bytes(range(256)) * (i + 1))
            mlflow.log_artifacts("art", "files")
            if i == 0:
                import pandas as pd
                mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="tiny"), context="training")
    c.set_terminated(ids[1], status="FAILED")
    c.delete_run(ids[2])
    c.create_registered_model("m1", tags={"owner": "me"}, description="first")
    c.create_model_version("m1", f"runs:/{ids[0]}/files", run_id=ids[0], description="v1 desc", tags={"t": "1"})
    c.create_model_version("m1", f"runs:/{ids[1]}/files", run_id=ids[1])
    c.create_model_version("m1", f"runs:/{ids[1]}/files", run_id=ids[1])
    c.delete_model_version("m1", "3")
    c.transition_model_version_stage("m1", "1", "Production")
    c.set_registered_model_alias("m1", "champion", "1")
    from mlflow.entities import LoggedModelStatus
    lm = c.create_logged_model(c.get_experiment_by_name("alpha").experiment_id, name="lm", source_run_id=ids[0],
                               params={"alpha": "0.5"}, tags={"stage": "dev"}, model_type="toy")
    os.makedirs("lmfiles/sub", exist_ok=True)
    with open("lmfiles/MLmodel", "w") as f:
        f.write("flavors: {}\n")
    with open("lmfiles/sub/w.bin", "wb") as f:
        f.write(bytes(range(200)))
    c.log_model_artifacts(lm.model_id, "lmfiles")
    c.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
    c.set_logged_model_tags(lm.model_id, {"late": "yes"})
    c.create_registered_model("m2")
    c.create_model_version("m2", f"models:/{lm.model_id}", run_id=ids[0], model_id=lm.model_id)
else:  # "more": new points, a changed tag, a new run
    first = sorted(c.search_runs([c.get_experiment_by_name("alpha").experiment_id], run_view_type=3),
                   key=lambda r: r.info.run_name)[0]
    for s in range(5, 8):
        c.log_metric(first.info.run_id, "loss", 1.0 / (s + 1), step=s)
    c.set_tag(first.info.run_id, "kind", "changed")
    mlflow.set_experiment("alpha")
    with mlflow.start_run(run_name="r3"):
        mlflow.log_metric("loss", 0.5, step=0)


def num(x):
    return x if math.isfinite(x) else repr(x)


dump = {"experiments": [], "runs": [], "logged_models": []}
for e in c.search_experiments(view_type=3):
    dump["experiments"].append({"id": e.experiment_id, "name": e.name, "stage": e.lifecycle_stage,
                                "tags": {k: v for k, v in e.tags.items()}, "created": e.creation_time})
    for r in c.search_runs([e.experiment_id], run_view_type=3):
        i = r.info
        run = {"id": i.run_id, "exp": e.name, "name": i.run_name, "status": i.status, "start": i.start_time,
               "end": i.end_time, "stage": i.lifecycle_stage, "user": i.user_id, "params": r.data.params,
               "tags": r.data.tags, "artifact_uri": i.artifact_uri, "metrics": {},
               "inputs": [[d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source, d.dataset.schema,
                           d.dataset.profile, {t.key: t.value for t in d.tags}] for d in r.inputs.dataset_inputs]}
        for key in r.data.metrics:
            run["metrics"][key] = sorted([s.step, s.timestamp, num(s.value)] for s in c.get_metric_history(i.run_id, key))
        dump["runs"].append(run)
    for m in c.search_logged_models([e.experiment_id]):
        dump["logged_models"].append({"id": m.model_id, "exp": e.name, "name": m.name, "status": str(m.status),
                                      "run": m.source_run_id, "type": m.model_type, "tags": m.tags,
                                      "params": m.params, "created": m.creation_timestamp,
                                      "artifact_uri": m.artifact_location})
with open(out, "w") as f:
    json.dump(dump, f)
'''


def _mlflow(tmp: Path, uri: str, mode: str) -> dict[str, Any]:
    python = mlflow_python()
    out = tmp / f"dump-{mode}.json"
    env = {**mlflow_env(python, str(tmp)), "MLFLOW_ALLOW_FILE_STORE": "true"}
    script = tmp / "make.py"
    script.write_text(MLFLOW_SCRIPT)
    done = subprocess.run([python, str(script), uri, str(out), mode], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """An MLflow SQLite store made by the real MLflow, and MLflow's own dump of it."""
    tmp = tmp_path_factory.mktemp("mlflow-sql")
    dump = _mlflow(tmp, f"sqlite:///{tmp / 'mlflow.db'}", "create")
    return tmp / "mlflow.db", dump


@pytest.fixture(scope="module")
def mlflow_mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """An mlruns folder made by the real MLflow (file store, registry included), and its dump."""
    tmp = tmp_path_factory.mktemp("mlflow-files")
    dump = _mlflow(tmp, (tmp / "mlruns").as_uri(), "create")
    return tmp / "mlruns", dump


def _expected_value(v: Any) -> float:
    value = float(v)  # 'nan', 'inf', '-inf' come as text
    return math.copysign(math.inf, value) if abs(value) >= MAX_DOUBLE else value  # MLflow SQL gives inf as DBL_MAX


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _check_runs(client: Client, dump: dict[str, Any], local_artifacts: bool = True) -> None:
    """Every run MLflow reads back is in the destination with the same fields, history and artifacts
    (the artifacts when the source's are in a local folder)."""
    assert len(dump["runs"]) >= 3
    for expected in dump["runs"]:
        run = client.get_run(expected["id"])
        info = run.info
        assert (info.run_name, str(info.status), info.start_time, info.end_time, str(info.lifecycle_stage),
                info.user_id) == (expected["name"], expected["status"], expected["start"], expected["end"],
                                  expected["stage"], expected["user"])
        assert client.get_experiment(info.experiment_id).name == expected["exp"]
        assert run.data.params == expected["params"]
        assert run.data.tags == expected["tags"]
        for key, points in expected["metrics"].items():
            got = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(expected["id"], key))
            assert [(s, t) for s, t, _ in got] == [(s, t) for s, t, _ in points], key
            for (_, _, value), (_, _, want) in zip(got, points):
                assert _same_float(value, _expected_value(want)), (key, value, want)
        inputs = [[d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source, d.dataset.schema,
                   d.dataset.profile, {t.key: t.value for t in d.tags}] for d in run.inputs.dataset_inputs]
        assert inputs == expected["inputs"]
        if local_artifacts:
            _check_artifacts(client, expected)


def _check_logged_models(client: Client, dump: dict[str, Any], folder_of: Any = None) -> None:
    """Every logged model MLflow reads back is in the destination with the same id, fields, tags, params
    and files (``folder_of(model_id)``: the source's folder of its files, default its artifact URI)."""
    from fitscribe.backends import get_artifact_store
    from fitscribe.uri import file_uri_to_path

    assert len(dump["logged_models"]) == 1
    for m in dump["logged_models"]:
        got = client.store.get_logged_model(m["id"])
        assert (got.name, got.status, got.source_run_id, got.model_type, got.tags, got.params, got.creation_timestamp,
                client.get_experiment(got.experiment_id).name) == (
            m["name"], "LOGGED_MODEL_" + m["status"], m["run"], m["type"], m["tags"], m["params"], m["created"], m["exp"])
        source = Path(folder_of(m["id"]) if folder_of else file_uri_to_path(m["artifact_uri"]))
        copy = Path(get_artifact_store(got.artifact_location).local_path(""))
        assert copy != source and str(copy).startswith(str(Path(client.store.artifact_root.removeprefix("file://"))))
        files = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
        assert files == ["MLmodel", "sub/w.bin"]
        for rel in files:
            assert (copy / rel).read_bytes() == (source / rel).read_bytes(), rel


def _check_artifacts(client: Client, expected: dict[str, Any]) -> None:
    source = expected["artifact_uri"].removeprefix("file://")
    if not (Path(source) / "files").exists():  # the run logged no artifact
        return
    copy = Path(client.download_artifacts(expected["id"], "files"))
    for rel in ("a.txt", "sub/b.bin"):
        want = hashlib.sha256((Path(source) / "files" / rel).read_bytes()).hexdigest()
        assert hashlib.sha256((copy / rel).read_bytes()).hexdigest() == want, rel
    assert not client.get_run(expected["id"]).info.artifact_uri.startswith(expected["artifact_uri"])


def _check_experiments(client: Client, dump: dict[str, Any]) -> None:
    for e in dump["experiments"]:
        got = client.get_experiment_by_name(e["name"])
        assert got is not None, e["name"]
        assert (got.lifecycle_stage, got.tags) == (e["stage"], e["tags"])
        if e["name"] != "Default":  # the destination's own Default experiment is merged into, not replaced
            assert got.creation_time == e["created"]


def _check_registry(client: Client) -> None:
    registry = client.store.registry
    model = registry.get_registered_model("m1")
    assert (model.description, model.tags, model.aliases) == ("first", {"owner": "me"}, {"champion": 1})
    v1 = registry.get_model_version("m1", 1)
    assert (v1.current_stage, v1.description, v1.tags) == ("Production", "v1 desc", {"t": "1"})
    assert v1.source.startswith("runs:/") and v1.run_id
    assert registry.get_model_version_by_alias("m1", "champion").version == 1
    assert registry.get_model_version("m1", 2).current_stage == "None"


def _fingerprint(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.mark.parametrize("dest_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                                       pytest.param("mysql", marks=pytest.mark.mysql)])
def test_sqlite_source_is_imported_field_by_field(mlflow_sqlite: tuple[Path, dict[str, Any]], dest_kind: str,
                                                  tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db, dump = mlflow_sqlite
    before = _fingerprint(db)
    dest = str(tmp_path / "store") if dest_kind == "sqlite" else request.getfixturevalue(f"{dest_kind}_uri")
    report, checked = import_mlflow(f"sqlite:///{db}", dest)
    assert checked.ok, checked.table()
    assert (report.runs_added, report.models_added, report.versions_added, report.logged_models_added) == (3, 2, 3, 1)
    assert report.points_added == sum(len(p) for r in dump["runs"] for p in r["metrics"].values())
    client = Client(dest)
    try:
        _check_experiments(client, dump)
        _check_runs(client, dump)
        _check_registry(client)
        _check_logged_models(client, dump)
        # experiment ids 1 and 2 were free: kept (0 is the Default experiment on both sides)
        assert report.mapped_ids == {}
        # a new version after the import gets the number after MLflow's deleted version 3
        assert client.store.registry.create_model_version("m1", "runs:/x/y").version == 4
    finally:
        client.close()
    assert _fingerprint(db) == before  # the source is never written


@pytest.mark.parametrize("kind", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                  pytest.param("mysql", marks=pytest.mark.mysql)])
def test_server_database_source_is_imported_field_by_field(kind: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest) -> None:
    uri = request.getfixturevalue(f"{kind}_uri")  # MLflow creates its schema there, then logs
    driver = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}[kind]
    dump = _mlflow(tmp_path, uri.replace(f"{kind}://", f"{driver}://"), "create")
    report, checked = import_mlflow(uri, str(tmp_path / "store"))
    assert checked.ok, checked.table()
    assert (report.runs_added, report.logged_models_added) == (3, 1)
    client = Client(str(tmp_path / "store"))
    try:
        _check_experiments(client, dump)
        _check_runs(client, dump)
        _check_registry(client)
        _check_logged_models(client, dump)
    finally:
        client.close()


def test_mlruns_source_is_imported_field_by_field(mlflow_mlruns: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, dump = mlflow_mlruns
    report, checked = import_mlflow(str(folder), str(tmp_path / "store"))
    assert checked.ok, checked.table()
    # the file store's 18-digit experiment ids do not fit: mapped, and the mapping is reported
    assert len(report.mapped_ids) == 2
    client = Client(str(tmp_path / "store"))
    try:
        _check_experiments(client, dump)
        _check_runs(client, dump)
        _check_registry(client)
        _check_logged_models(client, dump)
        assert client.store.registry.create_model_version("m1", "runs:/x/y").version == 4
    finally:
        client.close()


def test_reimport_adds_nothing_then_only_what_is_new(mlflow_sqlite: tuple[Path, dict[str, Any]],
                                                     tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(mlflow_sqlite[0].read_bytes())
    dest = str(tmp_path / "store")
    import_mlflow(f"sqlite:///{db}", dest)
    lines: list[str] = []
    assert main(["import", "mlflow", f"sqlite:///{db}", "--to", dest], out=lines.append) == 0
    assert "Nothing new" in "\n".join(lines)

    dump = _mlflow(tmp_path, f"sqlite:///{db}", "more")  # 3 new points, a changed tag, a new run
    lines.clear()
    assert main(["import", "mlflow", f"sqlite:///{db}", "--to", dest, "--dry-run"], out=lines.append) == 0
    assert "Would add: 0 experiment(s), 1 run(s)" in lines[0] and "4 metric point(s)" in lines[0]
    report, checked = import_mlflow(f"sqlite:///{db}", dest)
    assert (report.runs_added, report.points_added, report.tags_written) == (1, 4, 5), report
    assert checked.ok, checked.table()
    client = Client(dest)
    try:
        _check_runs(client, dump)  # no duplicate point anywhere: histories equal MLflow's exactly
    finally:
        client.close()


def test_dry_run_writes_nothing(mlflow_sqlite: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    dest = str(tmp_path / "store")
    report, checked = import_mlflow(f"sqlite:///{mlflow_sqlite[0]}", dest, dry_run=True)
    assert checked is None and report.runs_added == 3 and report.points_added > 0
    client = Client(dest)
    try:
        assert [e.name for e in client.search_experiments()] == ["Default"]
    finally:
        client.close()


def test_an_import_killed_midway_completes_when_run_again(tmp_path: Path) -> None:
    source = tmp_path / "mlflow.db"
    make_source(str(source), runs=150, metrics=2, steps=200, mlflow_python=mlflow_python())
    dest = tmp_path / "store"
    child = subprocess.Popen([sys.executable, "-m", "fitscribe.cli_import", "import", "mlflow",
                              f"sqlite:///{source}", "--to", str(dest)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    imported = 0
    while imported == 0 and child.poll() is None and time.monotonic() < deadline:
        if (dest / "tracking.db").exists():
            db = sqlite3.connect(f"file:{dest / 'tracking.db'}?mode=ro", uri=True, timeout=0.05)
            try:
                imported = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is being created
            finally:
                db.close()
        time.sleep(0.01)  # polling interval
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 0 < imported < 150, f"not killed midway: {imported} runs imported"

    report, checked = import_mlflow(f"sqlite:///{source}", str(dest))
    assert checked.ok, checked.table()
    assert report.runs_added == 150 - imported
    client = Client(str(dest))
    try:
        runs = client.search_runs([client.get_experiment_by_name("bench").experiment_id], max_results=1000)
        assert len(runs) == 150
        history = client.get_metric_history(runs[0].info.run_id, "m1")
        assert [m.step for m in history] == list(range(200))  # no duplicates
    finally:
        client.close()


def test_bad_sources_are_refused_clearly(tmp_path: Path) -> None:
    lines: list[str] = []
    assert main(["import", "mlflow", str(tmp_path / "nothing-here"), "--to", str(tmp_path / "s")], out=lines.append) == 1
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    from fitscribe.errors import ConfigError

    with pytest.raises(ConfigError, match="not an MLflow tracking database"):
        import_mlflow(f"sqlite:///{plain}", str(tmp_path / "s"))
    from fitscribe.errors import BackendError

    started = time.monotonic()  # a server that is not there: said at once, with its address
    with pytest.raises(BackendError, match=r"127\.0\.0\.1:1.*no answer"):
        import_mlflow("http://127.0.0.1:1", str(tmp_path / "s"))
    assert time.monotonic() - started < 5


def test_keep_artifact_location_points_runs_at_the_source(mlflow_mlruns: tuple[Path, dict[str, Any]],
                                                          tmp_path: Path) -> None:
    folder, dump = mlflow_mlruns
    report, checked = import_mlflow(str(folder), str(tmp_path / "store"), keep_artifact_location=True)
    assert checked.ok and report.artifact_files == 0
    assert not (tmp_path / "store" / "artifacts").exists() or not any((tmp_path / "store" / "artifacts").rglob("*.bin"))
    client = Client(str(tmp_path / "store"))
    try:
        for expected in dump["runs"]:
            assert client.get_run(expected["id"]).info.artifact_uri == expected["artifact_uri"]
        first = next(r for r in dump["runs"] if r["name"] == "r0")
        copy = Path(client.download_artifacts(first["id"], "files/a.txt", str(tmp_path / "dl")))
        assert copy.read_text() == "hello 0"
    finally:
        client.close()


def test_a_terminal_gets_a_progress_bar_and_a_pipe_does_not(mlflow_mlruns: tuple[Path, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    import_mlflow(str(mlflow_mlruns[0]), str(tmp_path / "a"), progress=terminal)
    import_mlflow(str(mlflow_mlruns[0]), str(tmp_path / "b"), progress=pipe)
    assert "metric points: 100%" in terminal.getvalue() and "runs 3/3" in terminal.getvalue()
    assert pipe.getvalue() == ""


def _snapshot(uri: str, scratch: Path) -> dict[str, Any]:
    """Everything a store holds, through Client, comparable across stores (metric values as bits)."""
    import struct

    client = Client(uri)
    try:
        snap: dict[str, Any] = {"experiments": {}, "runs": {}, "models": {}}
        for exp in client.search_experiments(view_type=3):
            snap["experiments"][exp.name] = (exp.lifecycle_stage, exp.tags)
            for run in client.search_runs([exp.experiment_id], run_view_type=3, max_results=1000):
                i = run.info
                histories = {key: [(m.step, m.timestamp, struct.pack("<d", m.value).hex())
                                   for m in client.get_metric_history(i.run_id, key)] for key in run.data.metrics}
                files = {}
                if client.list_artifacts(i.run_id):
                    local = Path(client.download_artifacts(i.run_id, "", str(scratch / i.run_id)))
                    files = {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}
                snap["runs"][i.run_id] = (exp.name, i.run_name, str(i.status), i.start_time, i.end_time,
                                          str(i.lifecycle_stage), i.user_id, run.data.params, run.data.tags,
                                          histories, [(d.dataset, d.tags) for d in run.inputs.dataset_inputs], files)
        registry = client.store.registry
        for model in registry.search_registered_models():
            versions = [(v.version, v.current_stage, v.description, v.run_id, v.tags, v.status)
                        for v in registry.search_model_versions(f"name='{model.name}'")]
            snap["models"][model.name] = (model.description, model.tags, model.aliases, sorted(versions))
        snap["logged_models"] = _logged_models(client)
        return snap
    finally:
        client.close()


def _logged_models(client: Client) -> dict[str, Any]:
    """Every logged model (all fields but where its files are) with its files' bytes."""
    from fitscribe.backends import get_artifact_store

    found = {}
    ids = [e.experiment_id for e in client.search_experiments(view_type=3)]
    for model in client.store.search_logged_models(ids):
        root = Path(get_artifact_store(model.artifact_location).local_path(""))
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        fields = {k: v for k, v in vars(model).items() if k not in ("artifact_location", "experiment_id")}
        found[model.model_id] = {**fields, "experiment": client.get_experiment(model.experiment_id).name,
                                 "files": files}
    return found


@pytest.mark.parametrize("dest_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_bundle_round_trip_is_exact(mlflow_sqlite: tuple[Path, dict[str, Any]], dest_kind: str, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    first = str(tmp_path / "first")
    import_mlflow(f"sqlite:///{mlflow_sqlite[0]}", first)
    lines: list[str] = []
    assert main(["export", "--tracking-uri", first, "-o", str(tmp_path / "b.tar")], out=lines.append) == 0
    assert "3 runs" in lines[0]
    second = str(tmp_path / "second") if dest_kind == "sqlite" else request.getfixturevalue("postgresql_uri")
    assert main(["import", "bundle", str(tmp_path / "b.tar"), "--to", second], out=lines.append) == 0
    report, checked = import_mlflow(str(tmp_path / "b.tar"), second)
    assert report.changes() == 0 and checked.ok  # a second import of the bundle adds nothing
    mine, theirs = _snapshot(first, tmp_path / "dl1"), _snapshot(second, tmp_path / "dl2")
    assert len(mine["runs"]) == 3 and all(fields[9] for fields in mine["runs"].values())  # histories read
    assert sum(len(fields[11]) for fields in mine["runs"].values()) == 6  # artifact files read
    assert [sorted(m["files"]) for m in mine["logged_models"].values()] == [["MLmodel", "sub/w.bin"]]
    assert mine == theirs  # every field, every metric point bit for bit, every artifact byte, the registry,
    # the logged model and its files


def _check_logged_model_on(server_store: Path, artifacts: Path, dump: dict[str, Any]) -> None:
    """The logged model is in the server's store with its fields, its files in its artifact destination."""
    from fitscribe.backends import get_tracking_store
    from fitscribe.uri import file_uri_to_path

    (expected,) = dump["logged_models"]
    store = get_tracking_store(str(server_store))
    try:
        got = store.get_logged_model(expected["id"])
        assert (got.name, got.status, got.source_run_id, got.model_type, got.tags, got.params,
                got.creation_timestamp, store.get_experiment(got.experiment_id).name) == (
            expected["name"], "LOGGED_MODEL_" + expected["status"], expected["run"], expected["type"],
            expected["tags"], expected["params"], expected["created"], expected["exp"])
    finally:
        store.close()
    assert got.artifact_location.startswith("mlflow-artifacts:/")
    copy = artifacts / got.artifact_location.removeprefix("mlflow-artifacts:/")
    source = Path(file_uri_to_path(expected["artifact_uri"]))
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    assert files == ["MLmodel", "sub/w.bin"]
    assert {rel: (copy / rel).read_bytes() for rel in files} == {rel: (source / rel).read_bytes() for rel in files}


def test_import_to_a_server_sends_everything_once(mlflow_sqlite: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``import mlflow SOURCE --to http://...``: into a real ``fitscribe server`` process, through its
    import endpoint; compared with MLflow's own reading; importing again sends nothing."""
    from test_offline_push import _CliServer

    db, dump = mlflow_sqlite
    server = _CliServer(str(tmp_path / "server-store"), tmp_path / "server-artifacts")
    client = Client(server.url)
    try:
        assert main(["import", "mlflow", f"sqlite:///{db}", "--to", server.url]) == 0
        out = capsys.readouterr().out
        assert "Sent 3 of 3 run(s)" in out and "DIFFERS" not in out, out
        _check_experiments(client, dump)
        _check_runs(client, dump)
        _check_registry(client)
        _check_logged_model_on(tmp_path / "server-store", tmp_path / "server-artifacts", dump)
        assert main(["import", "mlflow", f"sqlite:///{db}", "--to", server.url]) == 0  # again: nothing sent
        again = capsys.readouterr().out
        assert "Nothing new" in again and "DIFFERS" not in again, again
        ids = [e.experiment_id for e in client.search_experiments(view_type="ALL")]
        assert len(client.search_runs(ids, run_view_type="ALL")) == 3
    finally:
        client.close()
        server.stop()


def test_old_mlruns_layouts_are_read(tmp_path: Path) -> None:
    """Older file stores: 2-field metric lines (step 0), integer experiment ids, no lifecycle_stage or
    status in a run's meta.yaml (read as active and RUNNING), 5-field lines with a dataset."""
    root = tmp_path / "mlruns"
    run = root / "7" / "0123456789abcdef0123456789abcdef"
    (run / "metrics").mkdir(parents=True)
    (root / "7" / "meta.yaml").write_text("experiment_id: 7\nname: old\nartifact_location: /nowhere\n")
    (run / "meta.yaml").write_text("run_uuid: 0123456789abcdef0123456789abcdef\nexperiment_id: 7\n"
                                   "start_time: 1000\nuser_id: ann\nartifact_uri: /nowhere/run\n")
    (run / "metrics" / "acc").write_text("1000 0.5\n1001 nan\n1001 nan\n")
    (run / "metrics" / "loss").write_text("1000 2.5 3 train abc123\n")
    report, checked = import_mlflow(str(root), str(tmp_path / "store"))
    assert checked.ok and report.mapped_ids == {}
    client = Client(str(tmp_path / "store"))
    try:
        got = client.get_run("0123456789abcdef0123456789abcdef")
        assert (str(got.info.status), str(got.info.lifecycle_stage), got.info.experiment_id) == ("RUNNING", "active", "7")
        acc = client.get_metric_history(got.info.run_id, "acc")
        assert [(m.step, m.timestamp) for m in acc] == [(0, 1000), (0, 1001)] and math.isnan(acc[1].value)
        assert [(m.step, m.value) for m in client.get_metric_history(got.info.run_id, "loss")] == [(3, 2.5)]
    finally:
        client.close()
    assert report.skipped == []  # no artifact folder: nothing to copy, nothing skipped


def test_a_changed_point_value_is_found_by_the_verification(mlflow_sqlite: tuple[Path, dict[str, Any]],
                                                            tmp_path: Path) -> None:
    """The per-run digest compared point counts only; the point hashes see one flipped bit of one value."""
    dest = tmp_path / "store"
    report, checked = import_mlflow(f"sqlite:///{mlflow_sqlite[0]}", str(dest))
    assert checked.ok and ("metric values", 6, 6) in checked.rows  # 3 runs x (loss, odd)
    db = sqlite3.connect(dest / "tracking.db")
    chunk, run_id, blob = db.execute("SELECT id, run_uuid, value_blob FROM metric_chunks WHERE key = 'loss' "
                                     "ORDER BY id LIMIT 1").fetchone()
    changed = bytearray(blob)
    changed[0] ^= 1  # the last bit of the mantissa of the first point (1.0 -> 1.0000000000000002)
    db.execute("UPDATE metric_chunks SET value_blob = ? WHERE id = ?", (bytes(changed), chunk))
    db.commit()
    db.close()
    report, checked = import_mlflow(f"sqlite:///{mlflow_sqlite[0]}", str(dest))
    assert report.changes() == 0  # same point counts: nothing to write
    assert not checked.ok and checked.mismatched_runs == [run_id], checked.table()
    assert "metric values" in checked.table() and "DIFFERS" in checked.table()


def test_the_point_hash_is_the_same_in_sqlite_numpy_and_python() -> None:
    """MLflow's SQLite source hashes in SQL, the destination with numpy (Python without it): one number."""
    import random
    import struct

    import numpy as np

    from fitscribe.migrate.point_hash import P, SQLITE_POINT, _point, series_hash

    rng = random.Random(7)
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-300, 5e-324, MAX_DOUBLE, -MAX_DOUBLE, 9.3e18, -9.3e18, 2.0**53, 12345.678]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(300)]
    values = [v for v in values if math.isfinite(v)]
    rows = [(v, rng.randrange(-2**63, 2**63), rng.randrange(-2**63, 2**63), 0) for v in values]
    rows += [(0.0, 1_700_000_000_000 + i, i, 1) for i in range(5)]  # NaN, as MLflow's SQL store keeps it
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE metrics (value FLOAT, timestamp BIGINT, step BIGINT, is_nan BOOLEAN)")
    db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)
    by_sql = [h for (h,) in db.execute(f"SELECT {SQLITE_POINT} FROM metrics ORDER BY rowid")]
    columns = ([math.nan if n else v for v, _, _, n in rows], [t for _, t, _, _ in rows], [s for _, _, s, _ in rows])
    assert by_sql == [_point(*point) for point in zip(*columns)]
    assert db.execute(f"SELECT SUM({SQLITE_POINT}) FROM metrics").fetchone()[0] % P == series_hash(*columns)
    assert series_hash([math.inf], [5], [1]) == series_hash([MAX_DOUBLE], [5], [1])  # MLflow's clamp
    assert series_hash([1.0], [5], [1]) != series_hash([1.0000000000000002], [5], [1])
    assert series_hash([1.0, 2.0], [5, 5], [1, 2]) != series_hash([2.0, 1.0], [5, 5], [1, 2])  # values swapped
    assert np.asarray(by_sql).max() < P
    from fitscribe.migrate.point_hash import column_hashes  # many series at once (bundles' index), empty ones too

    parts = [tuple(c[a:b] for c in columns) for a, b in ((0, 0), (0, 7), (7, 7), (7, 200), (200, len(rows)), (0, 0))]
    assert column_hashes(parts) == [series_hash(*part) for part in parts] and column_hashes(parts)[0] == 0
