"""``fitscribe push`` beyond runs (issue 14), against a real server on 127.0.0.1 (one per module):
MLflow 3 logged models (fields and file bytes) and experiments without runs (tags, lifecycle) reach
the server, directly and through a bundle carried by hand; a change of the registry alone (a new
alias, a stage transition, tags and descriptions of a model or version), of an experiment's tags or
of a logged model reaches it on the next push, with nothing sent when nothing changed; what is
deleted for good here (an alias, a version) stays on the server, as the push documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from test_bundle_logged_models import make_store

from fitscribe import Client
from fitscribe.backends import get_tracking_store
from fitscribe.cli_import import main
from fitscribe.server.app import create_app
from fitscribe.server.run import ThreadedServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("push-server")
    with ThreadedServer(create_app(str(root / "store"), str(root / "artifacts"), ui=False)) as running:
        yield {"url": running.url, "store": root / "store", "artifacts": root / "artifacts"}


def _push(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["push", *args]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "DIFFERS" not in out, out
    return out


def _logged(store_uri: str, ids: list[str], files: Any) -> dict[str, Any]:
    store = get_tracking_store(store_uri)
    try:
        found = {}
        for model_id in ids:
            model = store.get_logged_model(model_id, allow_deleted=True)
            fields = {k: v for k, v in vars(model).items() if k not in ("artifact_location", "experiment_id",
                                                                          "last_updated_timestamp")}
            found[model_id] = {**fields, "experiment": store.get_experiment(model.experiment_id).name,
                               "files": files(model.artifact_location)}
        return found
    finally:
        store.close()


def _local_files(location: str) -> dict[str, bytes]:
    root = Path(location.removeprefix("file://"))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _server_files(artifacts: Path) -> Any:
    def files(location: str) -> dict[str, bytes]:
        assert location.startswith("mlflow-artifacts:/"), location
        return _local_files(str(artifacts / location.removeprefix("mlflow-artifacts:/")))
    return files


def _experiments(uri: str) -> dict[str, tuple[str, dict[str, str]]]:
    client = Client(uri)
    try:
        return {e.name: (e.lifecycle_stage, e.tags) for e in client.search_experiments(view_type="ALL")
                if e.name != "Default"}
    finally:
        client.close()


def _registry(uri: str, name: str) -> dict[str, Any]:
    client = Client(uri)
    try:
        model = client.get_registered_model(name)
        versions = {}
        for number in (1, 2):
            try:
                v = client.get_model_version(name, number)
            except Exception:  # noqa: BLE001 - absent
                continue
            versions[number] = (v.current_stage, v.description, v.tags)
        return {"description": model.description, "tags": model.tags, "aliases": dict(model.aliases),
                "versions": versions}
    finally:
        client.close()


def test_logged_models_and_experiments_without_runs_are_pushed(
        server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "fitruns"
    made = make_store(src, tmp_path, model="pushed")
    url = server["url"]
    first = _push(capsys, str(src), url)
    assert "Sent 1 of 1 run(s)" in first
    assert [line.split()[-3:] for line in first.splitlines() if line.startswith("logged models")] == [["3", "3", "ok"]]
    ids = made["logged"]
    theirs = _logged(str(server["store"]), ids, _server_files(server["artifacts"]))
    assert theirs == _logged(str(src), ids, _local_files)
    assert theirs[ids[0]]["files"]["data/model.pkl"] == bytes(range(256))
    assert [m["lifecycle_stage"] for m in theirs.values()] == ["active", "active", "deleted"]
    assert _experiments(url) == _experiments(str(src))
    assert _experiments(url)["empty"] == ("active", {"owner": "ana", "purpose": "later"})
    assert "Nothing new" in _push(capsys, str(src), url)

    local = Client(str(src))  # an experiment's tag and a logged model changed alone
    local.set_experiment_tag(local.get_experiment_by_name("empty").experiment_id, "purpose", "now")
    local.close()
    store = get_tracking_store(str(src))
    store.update_logged_model(ids[1], status="READY", tags={"reviewed": "yes"})
    store.close()
    assert "Sent 0 of 1 run(s) and 2 changed" in _push(capsys, str(src), url)
    assert _experiments(url)["empty"][1]["purpose"] == "now"
    assert _logged(str(server["store"]), ids, _server_files(server["artifacts"])) == _logged(str(src), ids, _local_files)
    assert "Nothing new" in _push(capsys, str(src), url)


def test_a_change_of_the_registry_alone_is_pushed(
        server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "fitruns"
    made = make_store(src, tmp_path, model="registry-only")
    url = server["url"]
    _push(capsys, str(src), url)
    local = Client(str(src))
    run_id = made["run"]
    local.create_model_version("registry-only", f"runs:/{run_id}/model", run_id=run_id)
    local.set_registered_model_alias("registry-only", "champion", 1)
    local.transition_model_version_stage("registry-only", 1, "Production")
    local.set_registered_model_tag("registry-only", "owner", "ana")
    local.update_registered_model("registry-only", description="the classifier")
    local.set_model_version_tag("registry-only", 1, "validated", "yes")
    local.update_model_version("registry-only", 1, description="first good one")
    local.close()
    assert _registry(url, "registry-only")["aliases"] == {}
    second = _push(capsys, str(src), url)
    assert "Sent 1 of 1 run(s)" in second  # the run of the new version goes with the model
    assert _registry(url, "registry-only") == _registry(str(src), "registry-only")
    assert _registry(url, "registry-only")["aliases"] == {"champion": 1}
    assert _registry(url, "registry-only")["versions"][1] == ("Production", "first good one", {"validated": "yes"})
    assert "Nothing new" in _push(capsys, str(src), url)

    local = Client(str(src))  # no new version: the stage, alias and tags alone
    local.transition_model_version_stage("registry-only", 2, "Staging")
    local.set_registered_model_alias("registry-only", "challenger", 2)
    local.set_model_version_tag("registry-only", 2, "note", "b")
    local.close()
    assert "Sent 0 of 1 run(s) and 1 changed" in _push(capsys, str(src), url)
    assert _registry(url, "registry-only") == _registry(str(src), "registry-only")
    assert "Nothing new" in _push(capsys, str(src), url)

    local = Client(str(src))  # deleted for good here: kept on the server
    local.delete_registered_model_alias("registry-only", "champion")
    local.delete_model_version("registry-only", 2)
    local.close()
    assert "Nothing new" in _push(capsys, str(src), url)
    kept = _registry(url, "registry-only")
    assert set(kept["aliases"]) == {"champion", "challenger"} and set(kept["versions"]) == {1, 2}


def test_logged_models_travel_in_a_bundle_carried_by_hand(
        server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = make_store(tmp_path / "offline", tmp_path, model="carried")
    bundle = tmp_path / "carried.tar"
    assert main(["export", "--tracking-uri", str(tmp_path / "offline"), "-o", str(bundle)]) == 0
    out = _push(capsys, str(bundle), server["url"])
    assert "Sent 1 of 1 run(s)" in out
    ids = made["logged"]
    assert (_logged(str(server["store"]), ids, _server_files(server["artifacts"]))
            == _logged(str(tmp_path / "offline"), ids, _local_files))
    assert "Nothing new" in _push(capsys, str(bundle), server["url"])


def test_versions_whose_runs_go_in_later_requests_point_at_the_servers_copy(
        server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model with more versions than one request carries runs (20), each version's source a path
    under its run's artifacts (as MLflow 2 wrote them): every source is pointed at the server's copy."""
    src = tmp_path / "fitruns"
    local = Client(str(src))
    experiment = local.create_experiment("many versions")
    local.create_registered_model("spread")
    for i in range(25):
        run = local.create_run(experiment, run_name=f"r{i}")
        local.log_text(run.info.run_id, f"weights {i}", "model/w.txt")
        local.set_terminated(run.info.run_id)
        local.create_model_version("spread", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    local.set_registered_model_alias("spread", "last", 25)
    local.close()
    assert "Sent 25 of 25 run(s)" in _push(capsys, str(src), server["url"])
    client = Client(server["url"])
    try:
        versions = [client.get_model_version("spread", n) for n in range(1, 26)]
        assert {v.source.split(":", 1)[0] for v in versions} == {"mlflow-artifacts"}, [v.source for v in versions]
        assert all(v.source.endswith(f"/{v.run_id}/artifacts/model") for v in versions), [v.source for v in versions]
        assert client.get_registered_model("spread").aliases == {"last": 25}
    finally:
        client.close()
    assert "Nothing new" in _push(capsys, str(src), server["url"])


def test_a_value_changed_on_the_server_is_found_by_the_push_verification(
        server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3
    import struct

    from fitscribe.config import DB_FILENAME

    made = make_store(tmp_path / "fitruns", tmp_path, model="checked")
    out = _push(capsys, str(tmp_path / "fitruns"), server["url"])
    assert [line.split()[-3:] for line in out.splitlines() if line.startswith("metric values")] == [["1", "1", "ok"]]
    db = sqlite3.connect(server["store"] / DB_FILENAME)  # one stored value changed behind the server's back
    with db:
        (blob,) = db.execute("SELECT value_blob FROM metric_chunks WHERE run_uuid = ?", (made["run"],)).fetchone()
        changed = struct.pack("<d", 0.123) + bytes(blob)[8:]
        db.execute("UPDATE metric_chunks SET value_blob = ? WHERE run_uuid = ?", (changed, made["run"]))
    db.close()
    assert main(["push", str(tmp_path / "fitruns"), server["url"]]) == 1
    again = capsys.readouterr().out
    assert [line.split()[-3:] for line in again.splitlines() if line.startswith("metric values")] == [
        ["1", "0", "DIFFERS"]]
    assert f"DIFFERS: {made['run']}" in again
