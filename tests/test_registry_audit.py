"""The model registry's audit trail (issue 15 item 3): every change recorded with who, when, what,
old -> new and the comment, in the change's own transaction, on SQLite, PostgreSQL, MariaDB and
over REST (where "who" is the identity the server authenticated)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

import fitscribe
from fitscribe._actor import ANONYMOUS, acting_as, current_actor
from fitscribe.entities import RegistryEvent
from fitscribe.errors import AlreadyExistsError, InvalidValueError, ModelNotFound, ModelVersionNotFound
from fitscribe.run_context import current_user

SOURCE = "runs:/0123456789abcdef0123456789abcdef/model"


def _view(events: list[RegistryEvent]) -> list[tuple[Any, ...]]:
    """Oldest first: (action, version, key, old, new, comment)."""
    return [(e.action, e.version, e.key, e.old_value, e.new_value, e.comment) for e in reversed(events)]


def _exercise(client: fitscribe.Client) -> None:
    """Every kind of registry change, once or more."""
    client.create_registered_model("churn", tags={"team": "a"}, description="first")
    client.set_registered_model_tag("churn", "team", "b")
    client.delete_registered_model_tag("churn", "team")
    client.update_registered_model("churn", "second")
    client.create_model_version("churn", SOURCE, tags={"q": "1"})
    client.create_model_version("churn", SOURCE)
    client.set_model_version_tag("churn", "1", "q", "2")
    client.delete_model_version_tag("churn", "1", "q")
    client.update_model_version("churn", 1, "v1 notes")
    client.transition_model_version_stage("churn", 1, "staging", comment="ready for QA")
    client.transition_model_version_stage("churn", 2, "Staging", archive_existing_versions=True, comment="better AUC")
    client.set_registered_model_alias("churn", "champion", 1)
    client.set_registered_model_alias("churn", "champion", 2)
    client.set_registered_model_alias("churn", "backup", 1)
    client.delete_registered_model_alias("churn", "backup")
    client.rename_registered_model("churn", "churn2")
    client.delete_model_version("churn2", 2)
    client.delete_registered_model("churn2")


EXPECTED_MODEL = [
    ("create_model", None, None, None, "first", None),
    ("set_model_tag", None, "team", None, "a", None),
    ("set_model_tag", None, "team", "a", "b", None),
    ("delete_model_tag", None, "team", "b", None, None),
    ("update_model_description", None, None, "first", "second", None),
    ("create_version", 1, None, None, SOURCE, None),
    ("set_version_tag", 1, "q", None, "1", None),
    ("create_version", 2, None, None, SOURCE, None),
    ("set_version_tag", 1, "q", "1", "2", None),
    ("delete_version_tag", 1, "q", "2", None, None),
    ("update_version_description", 1, None, None, "v1 notes", None),
    ("transition_stage", 1, None, "None", "Staging", "ready for QA"),
    ("transition_stage", 1, None, "Staging", "Archived", "better AUC"),
    ("transition_stage", 2, None, "None", "Staging", "better AUC"),
    ("set_alias", 1, "champion", None, "1", None),
    ("move_alias", 2, "champion", "1", "2", None),
    ("set_alias", 1, "backup", None, "1", None),
    ("delete_alias", 1, "backup", "1", None, None),
    ("rename_model", None, None, "churn", "churn2", None),
    ("delete_alias", 2, "champion", "2", None, None),
    ("delete_version", 2, None, "Staging", None, None),
    ("delete_model", None, None, None, None, None),
]


def _check_trail(client: fitscribe.Client, who: str, start: int) -> None:
    events = client.get_registered_model_history("churn2")
    assert _view(events) == EXPECTED_MODEL
    assert {e.user_id for e in events} == {who}
    assert {e.name for e in events} == {"churn2"}  # the history followed the rename
    assert all(start <= e.timestamp <= fitscribe._time.now_ms() for e in events)
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)  # newest first
    assert _view(client.get_model_version_history("churn2", 1)) == [
        row for row in EXPECTED_MODEL if row[1] == 1
    ]
    assert client.get_registered_model_history("churn") == []


def test_every_change_is_recorded_with_old_and_new(tracking_uri: str) -> None:
    client = fitscribe.Client(tracking_uri)
    start = fitscribe._time.now_ms()
    with acting_as("alice"):
        _exercise(client)
    _check_trail(client, "alice", start)
    client.close()


def test_a_failed_change_records_nothing(tracking_uri: str) -> None:
    client = fitscribe.Client(tracking_uri)
    client.create_registered_model("m")
    client.create_registered_model("other")
    client.create_model_version("m", SOURCE)
    before = client.get_registered_model_history("m")
    assert [e.action for e in before] == ["create_version", "create_model"]
    failures: list[tuple[type[Exception], Any, tuple[Any, ...], dict[str, Any]]] = [
        (AlreadyExistsError, client.create_registered_model, ("m",), {}),
        (AlreadyExistsError, client.rename_registered_model, ("m", "other"), {}),
        (ModelVersionNotFound, client.transition_model_version_stage, ("m", 9, "Production"), {"comment": "x"}),
        (InvalidValueError, client.transition_model_version_stage, ("m", 1, "Prod"), {}),
        (InvalidValueError, client.transition_model_version_stage, ("m", 1, "Archived"),
         {"archive_existing_versions": True}),
        (ModelVersionNotFound, client.set_registered_model_alias, ("m", "champion", 7), {}),
        (InvalidValueError, client.set_registered_model_alias, ("m", "latest", 1), {}),
        (ModelVersionNotFound, client.set_model_version_tag, ("m", 3, "k", "v"), {}),
        (ModelVersionNotFound, client.update_model_version, ("m", 3, "d"), {}),
        (ModelVersionNotFound, client.delete_model_version, ("m", 3), {}),
        (ModelNotFound, client.create_model_version, ("nope", SOURCE), {}),
        (ModelNotFound, client.delete_registered_model, ("nope",), {}),
    ]
    for error, call, args, kwargs in failures:
        with pytest.raises(error):
            call(*args, **kwargs)
    # removing what is not there is no change either
    client.delete_registered_model_tag("m", "absent")
    client.delete_registered_model_alias("m", "absent")
    client.delete_model_version_tag("m", 1, "absent")
    assert client.get_registered_model_history("m") == before
    assert client.get_registered_model_history("nope") == []
    assert client.get_model_version("m", 1).current_stage == "None"
    client.close()


def test_the_embedded_store_records_the_os_user(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "store"))
    assert current_actor() == current_user()
    client.create_registered_model("m")
    client.create_model_version("m", SOURCE)
    client.transition_model_version_stage("m", "1", "Production")
    [event] = client.get_model_version_history("m", 1)[:1]
    assert (event.action, event.user_id, event.old_value, event.new_value, event.comment) == (
        "transition_stage", current_user(), "None", "Production", None)
    assert {e.user_id for e in client.get_registered_model_history("m")} == {current_user()}
    client.close()


def test_upgrade_from_a_0005_store_adds_the_trail(tracking_uri: str) -> None:
    """A database at revision 0005 (no audit table) is upgraded to 0006; its models keep working and
    their changes are recorded from then on."""
    from fitscribe.backends.sql import tables
    from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema

    engine = make_engine(parse_database_uri(tracking_uri))
    upgrade_schema(engine, "0005")
    assert "registry_audit" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(tables.registered_models.insert().values(
            name="old", creation_time=1, last_updated_time=1, next_version=1))
    assert upgrade_schema(engine) == ("0005", tables.SCHEMA_REVISION)
    assert "registry_audit" in sa.inspect(engine).get_table_names()
    engine.dispose()
    client = fitscribe.Client(tracking_uri)
    assert client.get_registered_model_history("old") == []
    client.create_model_version("old", SOURCE)
    assert [e.action for e in client.get_registered_model_history("old")] == ["create_version"]
    client.close()


# -- over REST ---------------------------------------------------------------------------------------
ALICE, BOB, READER = "alice-token-5d1", "bob-token-8c3", "reader-token-2e7"


@pytest.fixture(scope="module")
def audit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with an auth file: two read-write identities and a read-only one."""
    from fitscribe.server.app import create_app
    from fitscribe.server.auth import hash_secret, load_auth_file
    from fitscribe.server.run import ThreadedServer
    from fitscribe.server.security import SecurityConfig

    root = tmp_path_factory.mktemp("audit")
    auth = root / "auth.yaml"
    auth.write_text(
        "tokens:\n"
        f"  alice: {{token_hash: '{hash_secret(ALICE, iterations=1000)}', access: read-write}}\n"
        f"  bob: {{token_hash: '{hash_secret(BOB, iterations=1000)}', access: read-write}}\n"
        f"  viewer: {{token_hash: '{hash_secret(READER, iterations=1000)}', access: read-only}}\n"
    )
    security = SecurityConfig(credentials=load_auth_file(str(auth)))
    with ThreadedServer(create_app(str(root / "store"), str(root / "artifacts"), security=security)) as server:
        yield server.url


def _client_as(url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> fitscribe.Client:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    client = fitscribe.Client(url)
    client.search_registered_models()  # the store is made (and reads the token) now
    return client


def _get(url: str, path: str, token: str, **params: str) -> tuple[int, dict[str, Any]]:
    import httpx

    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        answer = http.get(f"{url}/api/2.0/mlflow/{path}", params=params)
    return answer.status_code, answer.json()


def test_over_rest_the_recorded_user_is_the_authenticated_one(
    audit_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = _client_as(audit_server, ALICE, monkeypatch)
    start = fitscribe._time.now_ms()
    with acting_as("someone-else"):  # the client's own context does not travel: the server decides
        _exercise(alice)
    _check_trail(alice, "alice", start)

    bob = _client_as(audit_server, BOB, monkeypatch)
    alice.create_registered_model("shared")
    alice.create_model_version("shared", SOURCE)
    bob.transition_model_version_stage("shared", 1, "Production", comment="ship it")
    viewer = _client_as(audit_server, READER, monkeypatch)
    with pytest.raises(fitscribe.errors.FitscribeError):
        viewer.transition_model_version_stage("shared", 1, "Archived", comment="nope")
    events = viewer.get_model_version_history("shared", 1)  # reading the trail is a read
    assert [(e.user_id, e.action, e.old_value, e.new_value, e.comment) for e in events] == [
        ("bob", "transition_stage", "None", "Production", "ship it"),
        ("alice", "create_version", None, SOURCE, None),
    ]
    assert [e.action for e in bob.get_registered_model_history("shared")] == [
        "transition_stage", "create_version", "create_model"]
    for client in (alice, bob, viewer):
        client.close()


def test_rest_history_endpoints_answer_json_and_clear_errors(audit_server: str) -> None:
    status, body = _get(audit_server, "registered-models/get-history", READER, name="never-made")
    assert (status, body) == (200, {"events": []})
    status, body = _get(audit_server, "model-versions/get-history", READER, name="m")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE" and "version" in body["message"]
    status, body = _get(audit_server, "model-versions/get-history", READER, name="m", version="x")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    status, body = _get(audit_server, "registered-models/get-history", READER)
    assert status == 400 and "name" in body["message"]


def test_a_server_without_auth_records_anonymous(tmp_path: Path) -> None:
    from fitscribe.server.app import create_app
    from fitscribe.server.run import ThreadedServer

    with ThreadedServer(create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"))) as server:
        client = fitscribe.Client(server.url)
        client.create_registered_model("m", description="d")
        [event] = client.get_registered_model_history("m")
        assert (event.user_id, event.action, event.new_value) == (ANONYMOUS, "create_model", "d")
        assert os.environ.get("USER", "") != ANONYMOUS
        client.close()
