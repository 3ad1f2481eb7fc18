"""Bundles (issue 14) carry MLflow 3 logged models and experiments without runs, as a user moves a
store with ``fitscribe export`` then ``fitscribe import bundle``: every logged model keeps its id, name,
status, source run, tags, params, lifecycle and file bytes; an experiment holding no run keeps its
name, tags and lifecycle; the verification table counts the logged models; importing again adds
nothing; a store exported, imported and exported again gives the same bundle; a bundle of schema
version 1 (before logged models) still imports."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from fitscribe import Client
from fitscribe.backends import get_artifact_store, get_tracking_store
from fitscribe.cli_import import main


def _put(location: str, files: dict[str, bytes], tmp: Path) -> None:
    store = get_artifact_store(location)
    for name, data in files.items():
        local = tmp / "upload" / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        store.put(str(local), str(Path(name).parent) if "/" in name else None)


def _files(location: str) -> dict[str, bytes]:
    root = get_artifact_store(location).local_path("")
    assert root is not None
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}


def make_store(folder: Path, tmp: Path, model: str = "clf") -> dict[str, Any]:
    """A store with a run, a registered model (named ``model``) with one version, two experiments
    without runs (one deleted) and three logged models (READY with files, PENDING with a message,
    deleted); return their ids."""
    client = Client(str(folder))
    trained = client.create_experiment("trained", tags={"team": "vision"})
    empty = client.create_experiment("empty", tags={"owner": "ana", "purpose": "later"})
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    run = client.create_run(trained, run_name="fit")
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    for step in range(5):
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step)
    client.set_terminated(run_id)
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    client.close()
    store = get_tracking_store(str(folder))
    ready = store.create_logged_model(trained, "clf", source_run_id=run_id, model_type="sklearn",
                                      tags={"stage": "candidate"}, params={"C": "1.0"}, status="READY")
    _put(ready.artifact_location, {"MLmodel": b"flavors: {}\n", "data/model.pkl": bytes(range(256))}, tmp)
    pending = store.create_logged_model(empty, "draft", status_message="uploading", params={"k": "v"})
    deleted = store.create_logged_model(trained, "old", tags={"x": "1"}, status="READY")
    store.delete_logged_model(deleted.model_id)
    store.close()
    return {"run": run_id, "logged": [ready.model_id, pending.model_id, deleted.model_id]}


def _logged(folder: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    store = get_tracking_store(str(folder))
    try:
        found = {}
        for model_id in ids:
            model = store.get_logged_model(model_id, allow_deleted=True)
            experiment = store.get_experiment(model.experiment_id).name
            fields = {k: v for k, v in vars(model).items() if k not in ("artifact_location", "experiment_id")}
            found[model_id] = {**fields, "experiment": experiment, "files": _files(model.artifact_location)}
        return found
    finally:
        store.close()


def _experiments(folder: Path) -> dict[str, tuple[str, dict[str, str]]]:
    client = Client(str(folder))
    try:
        return {e.name: (e.lifecycle_stage, e.tags) for e in client.search_experiments(view_type="ALL")}
    finally:
        client.close()


def _lines(bundle: Path, name: str, drop: tuple[str, ...]) -> list[Any]:
    with tarfile.open(bundle) as tar:
        member = tar.extractfile(f"./{name}")
        assert member is not None
        items = [json.loads(line) for line in member.read().decode().splitlines()]
    kept = [{k: v for k, v in item.items() if k not in drop} for item in items
            if item.get("name") != "Default"]  # every store makes its own
    return sorted(kept, key=json.dumps)


def test_a_bundle_round_trip_keeps_logged_models_and_experiments_without_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = make_store(tmp_path / "src", tmp_path)
    bundle, copy = tmp_path / "out.tar", tmp_path / "dst"
    assert main(["export", "--tracking-uri", str(tmp_path / "src"), "-o", str(bundle)]) == 0
    assert "3 logged models" in capsys.readouterr().out
    assert main(["import", "bundle", str(bundle), "--to", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "3 logged model(s)" in out and "DIFFERS" not in out
    assert [line.split() for line in out.splitlines() if line.startswith("logged models")] == [
        ["logged", "models", "3", "3", "ok"]]
    mine, theirs = _logged(tmp_path / "src", made["logged"]), _logged(copy, made["logged"])
    # a model deleted in the source is created, then deleted: the deletion is dated by the import
    # (the store's create_logged_model takes no lifecycle stage)
    assert theirs[made["logged"][2]].pop("last_updated_timestamp") >= mine[made["logged"][2]].pop("last_updated_timestamp")
    assert theirs == mine
    assert mine[made["logged"][0]]["files"]["data/model.pkl"] == bytes(range(256))
    assert [m["lifecycle_stage"] for m in theirs.values()] == ["active", "active", "deleted"]
    assert _experiments(copy) == _experiments(tmp_path / "src")
    assert _experiments(copy)["empty"] == ("active", {"owner": "ana", "purpose": "later"})
    assert _experiments(copy)["gone"][0] == "deleted"

    assert main(["import", "bundle", str(bundle), "--to", str(copy)]) == 0  # again: nothing added
    assert "Nothing new" in capsys.readouterr().out

    again = tmp_path / "again.tar"  # exported from the copy: the same bundle, but where files are kept
    assert main(["export", "--tracking-uri", str(copy), "-o", str(again)]) == 0
    for name, drop in (("logged_models.jsonl", ("artifact_location", "experiment_id", "last_updated_timestamp")),
                       ("experiments.jsonl", ("experiment_id", "artifact_location")),
                       ("runs.jsonl", ("artifact_uri", "experiment_id")), ("metrics.jsonl", ()),
                       ("models.jsonl", ())):
        assert _lines(again, name, drop) == _lines(bundle, name, drop), name


def test_a_schema_version_1_bundle_still_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_store(tmp_path / "src", tmp_path)
    folder = tmp_path / "v1"
    assert main(["export", "--tracking-uri", str(tmp_path / "src"), "-o", str(folder)]) == 0
    (folder / "logged_models.jsonl").unlink()  # what a bundle written before logged models holds
    for path in sorted((folder / "logged_models").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (folder / "logged_models").rmdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    assert main(["import", "bundle", str(folder), "--to", str(tmp_path / "dst")]) == 0
    out = capsys.readouterr().out
    assert "1 run(s)" in out and "0 logged model(s)" in out and "DIFFERS" not in out
    assert _experiments(tmp_path / "dst")["empty"] == ("active", {"owner": "ana", "purpose": "later"})


def test_a_value_changed_inside_a_bundle_is_found_by_the_verification(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = make_store(tmp_path / "src", tmp_path)
    folder = tmp_path / "bundle"
    assert main(["export", "--tracking-uri", str(tmp_path / "src"), "-o", str(folder)]) == 0
    metrics = folder / "metrics.jsonl"
    text = metrics.read_text()
    assert text.count("0.25") == 1
    metrics.write_text(text.replace("0.25", "0.75"))  # same length: the index still points at each line
    assert main(["import", "bundle", str(folder), "--to", str(tmp_path / "dst")]) == 1
    out = capsys.readouterr().out
    assert [line.split() for line in out.splitlines() if line.startswith("metric values")] == [
        ["metric", "values", "1", "0", "DIFFERS"]]
    assert f"DIFFERS: {made['run']}" in out
