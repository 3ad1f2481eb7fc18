"""``fitscribe models`` registry commands as a user types them: register a run's model, move it
through stages, point and move an alias, list and describe, with clear errors for mistakes."""

from __future__ import annotations

import json
from typing import Any

import pytest

import fitscribe
from fitscribe.cli import main


def _run(store: str, *argv: str) -> tuple[int, str]:
    lines: list[str] = []
    code = main(["--tracking-uri", store, "models", *argv], out=lines.append)
    return code, "\n".join(lines)


@pytest.fixture()
def store_with_run(tmp_path: Any) -> tuple[str, str]:
    store = str(tmp_path / "fitruns")
    client = fitscribe.Client(store)
    run_id = client.create_run("0").info.run_id
    client.log_dict(run_id, {"flavors": {}}, "model/MLmodel")
    client.set_terminated(run_id)
    return store, run_id


def test_register_transition_alias_list_describe(store_with_run: tuple[str, str]) -> None:
    store, run_id = store_with_run
    code, text = _run(store, "register", f"runs:/{run_id}/model", "churn", "--tag", "team=ml", "--description", "first")
    assert code == 0 and "churn version 1" in text and "models:/churn/1" in text
    assert _run(store, "register", f"runs:/{run_id}/model", "churn")[1].startswith("Registered")
    code, text = _run(store, "transition", "churn", "1", "staging")
    assert code == 0 and "stage Staging" in text
    assert _run(store, "transition", "churn", "2", "Production", "--archive-existing")[0] == 0
    assert _run(store, "alias", "churn", "champion", "1")[0] == 0
    assert _run(store, "alias", "churn", "champion", "2")[0] == 0  # moved
    client = fitscribe.Client(store)
    assert client.get_model_version_by_alias("churn", "champion").version == 2
    assert [v.current_stage for v in sorted(client.search_model_versions("name = 'churn'"), key=lambda v: v.version)] \
        == ["Staging", "Production"]

    code, text = _run(store, "list")
    assert code == 0 and "churn" in text and "champion=v2" in text and "v2 Production" in text
    code, text = _run(store, "list", "--json")
    assert json.loads(text)[0]["aliases"] == {"champion": 2}
    code, text = _run(store, "describe", "churn")
    assert code == 0 and "champion -> v2" in text and run_id in text and "Production" in text
    described = json.loads(_run(store, "describe", "churn", "--json")[1])
    assert [v["version"] for v in described["versions"]] == [1, 2]
    assert described["versions"][0]["tags"] == {"team": "ml"} and described["versions"][0]["description"] == "first"

    assert _run(store, "alias", "churn", "champion", "--delete")[0] == 0
    assert client.get_registered_model("churn").aliases == {}


def test_history_shows_who_changed_what(store_with_run: tuple[str, str]) -> None:
    from fitscribe._actor import acting_as

    store, run_id = store_with_run
    with acting_as("carol"):
        _run(store, "register", f"runs:/{run_id}/model", "churn")
        code, _ = _run(store, "transition", "churn", "1", "Staging", "--comment", "QA passed")
        assert code == 0
        _run(store, "alias", "churn", "champion", "1")
    code, text = _run(store, "history", "churn", "--version", "1")
    lines = text.splitlines()
    assert code == 0 and "carol" in text and "QA passed" in text
    assert "set_alias" in lines[2] and "- -> 1" in lines[2] and "champion" in lines[2]  # newest first
    assert "transition_stage" in lines[3] and "None -> Staging" in lines[3]
    events = json.loads(_run(store, "history", "churn", "--json")[1])
    assert [e["action"] for e in events] == ["set_alias", "transition_stage", "create_version", "create_model"]
    assert {e["user_id"] for e in events} == {"carol"}
    assert _run(store, "history", "never")[1] == "No recorded changes of never."


def test_mistakes_are_clear_errors(store_with_run: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    store, run_id = store_with_run
    assert _run(store, "register", "runs:/" + "0" * 32 + "/model", "m")[0] == 1
    assert "0" * 32 in capsys.readouterr().err
    assert _run(store, "register", f"runs:/{run_id}/model", "m", "--tag", "novalue")[0] == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert _run(store, "transition", "m", "1", "Production")[0] == 1  # no such model
    assert "m" in capsys.readouterr().err
    _run(store, "register", f"runs:/{run_id}/model", "m")
    assert _run(store, "transition", "m", "1", "Shipped")[0] == 1
    assert "Shipped" in capsys.readouterr().err
    assert _run(store, "alias", "m", "champion")[0] == 1
    assert "VERSION" in capsys.readouterr().err
    assert _run(store, "describe", "nope")[0] == 1
