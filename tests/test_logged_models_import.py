"""Logged models through a tracking server: the REST store's side of the capability, and the one-time
import of the JSON records servers before revision 0007 kept in the artifact destination
(``.fitscribe/logged-models/<id>.json``): inserted if absent, moved to ``imported/``, forged or broken
records refused and left in place, a second start changing nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from fitscribe.backends import get_tracking_store
from fitscribe.errors import InvalidValueError, NotFoundError
from fitscribe.server import create_app
from fitscribe.server.run import ThreadedServer


def _serve(root: Path) -> ThreadedServer:
    return ThreadedServer(create_app(str(root / "store"), str(root / "artifacts")))


def _record(experiment_id: str, model_id: str, **changes: Any) -> dict[str, Any]:
    record = {"model_id": model_id, "experiment_id": experiment_id, "name": "old-model",
              "artifact_uri": f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts",
              "status": "LOGGED_MODEL_READY", "model_type": "", "source_run_id": "",
              "creation_timestamp_ms": 1_000, "last_updated_timestamp_ms": 2_000, "lifecycle_stage": "active",
              "tags": {"team": "risk"}, "params": {"alpha": "0.5"}}
    return {**record, **changes}


def test_the_rest_store_and_the_import_of_older_servers_json_records(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with _serve(tmp_path) as server:
        client = get_tracking_store(server.url)
        exp = client.create_experiment("imports")
        made = client.create_logged_model(exp, "fresh", tags={"a": "1"}, params={"p": "1"}, status="READY")
        assert made.status == "LOGGED_MODEL_READY" and made.artifact_location.startswith(server.url)
        client.update_logged_model(made.model_id, tags={"b": "2"}, params={"q": "2"})
        found = client.search_logged_models([exp], "tags.b = '2'", order_by=[{"field_name": "name"}])
        assert [(m.model_id, m.tags, m.params) for m in found] == [
            (made.model_id, {"a": "1", "b": "2"}, {"p": "1", "q": "2"})]
        client.delete_logged_model_tag(made.model_id, "b")
        with pytest.raises(NotFoundError):
            client.delete_logged_model_tag(made.model_id, "b")
        with pytest.raises(InvalidValueError, match="assigns model_id"):
            client.create_logged_model(exp, "kept", model_id="m-" + "1" * 32)
        client.close()

    folder = tmp_path / "artifacts" / ".fitscribe" / "logged-models"
    folder.mkdir(parents=True)
    ids = {name: f"m-{digit * 32}" for name, digit in (("old", "a"), ("gone", "b"), ("forged", "c"), ("taken", "d"))}
    records = {
        "old": _record(exp, ids["old"]),
        "gone": _record(exp, ids["gone"], lifecycle_stage="deleted"),
        "forged": _record(exp, ids["forged"], artifact_uri="/etc"),
        "taken": _record(exp, made.model_id, name="stale copy"),  # its id is in the database already
    }
    for name, record in records.items():
        (folder / f"{name}.json").write_text(json.dumps(record))
    (folder / "torn.json").write_text('{"model_id": ')
    caplog.set_level(logging.WARNING, logger="fitscribe.server")

    for start in range(2):  # the second start finds nothing more to import
        with _serve(tmp_path) as server:
            client = get_tracking_store(server.url)
            old = client.get_logged_model(ids["old"])
            assert (old.name, old.status, old.creation_timestamp, old.last_updated_timestamp, old.tags, old.params) == (
                "old-model", "LOGGED_MODEL_READY", 1_000, 2_000, {"team": "risk"}, {"alpha": "0.5"})
            assert old.artifact_location == f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{ids['old']}/artifacts"
            with pytest.raises(NotFoundError):
                client.get_logged_model(ids["gone"])
            assert client.get_logged_model(ids["gone"], allow_deleted=True).model_id == ids["gone"]
            with pytest.raises(NotFoundError):
                client.get_logged_model(ids["forged"])
            assert client.get_logged_model(made.model_id).name == "fresh"  # insert-if-absent
            assert sorted(m.name for m in client.search_logged_models([exp])) == ["fresh", "old-model"]
            client.close()
        assert sorted(p.name for p in folder.glob("*.json")) == ["forged.json", "torn.json"]  # refused: left in place
        assert sorted(p.name for p in (folder / "imported").iterdir()) == ["gone.json", "old.json", "taken.json"]
        assert "/etc" in caplog.text and "torn.json" in caplog.text
