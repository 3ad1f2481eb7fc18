"""A conformance suite every ``ModelRegistryStore`` must pass.

Subclass it in a test module and provide a ``registry`` fixture returning the registry of a fresh,
empty store::

    class TestMyRegistry(ModelRegistryStoreSuite):
        @pytest.fixture
        def registry(self, tmp_path):
            return MyStore(...).registry
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from fitscribe._time import now_ms
from fitscribe.backends.base import ModelRegistryStore
from fitscribe.errors import (
    AlreadyExistsError,
    InvalidValueError,
    ModelNotFound,
    ModelVersionNotFound,
    NotFoundError,
)

__all__ = ["ModelRegistryStoreSuite"]

RUN_ID = "0123456789abcdef0123456789abcdef"
OTHER_RUN_ID = "fedcba9876543210fedcba9876543210"


class ModelRegistryStoreSuite:
    """Behaviour shared by all model registries; needs a ``registry`` fixture."""

    @pytest.fixture
    def registry(self) -> ModelRegistryStore:  # pragma: no cover - overridden
        raise NotImplementedError("Provide a `registry` fixture returning a fresh ModelRegistryStore.")

    def _model_with_versions(self, registry: ModelRegistryStore, name: str = "m", count: int = 3) -> None:
        registry.create_registered_model(name)
        for i in range(count):
            registry.create_model_version(name, f"runs:/{RUN_ID}/model{i + 1}", RUN_ID)

    # -- registered models -----------------------------------------------------------------------
    def test_create_and_get_registered_model(self, registry: ModelRegistryStore) -> None:
        before = now_ms()
        created = registry.create_registered_model("modèle-ü 🌲", tags={"team": "risk"}, description="first")
        got = registry.get_registered_model("modèle-ü 🌲")
        assert got == created
        assert (got.name, got.description, got.tags, got.aliases, got.latest_versions) == (
            "modèle-ü 🌲", "first", {"team": "risk"}, {}, [])
        assert before <= got.creation_timestamp == got.last_updated_timestamp <= now_ms()

    def test_registered_model_names_are_unique_and_case_sensitive(self, registry: ModelRegistryStore) -> None:
        registry.create_registered_model("Churn")
        with pytest.raises(AlreadyExistsError, match="'Churn' already exists"):
            registry.create_registered_model("Churn")
        registry.create_registered_model("churn")
        assert registry.get_registered_model("churn").name == "churn"

    @pytest.mark.parametrize(
        "name, pattern",
        [("", "non-empty"), ("   ", "non-empty"), (None, "non-empty"), ("team/model", "contains '/'"),
         ("x" * 257, "limit is 256")],
    )
    def test_invalid_registered_model_names(self, registry: ModelRegistryStore, name: Any, pattern: str) -> None:
        with pytest.raises(InvalidValueError, match=pattern):
            registry.create_registered_model(name)

    def test_longest_name_and_description(self, registry: ModelRegistryStore) -> None:
        name = "n" * 256
        registry.create_registered_model(name, description="d" * 5000)
        assert registry.get_registered_model(name).description == "d" * 5000
        with pytest.raises(InvalidValueError, match="limit is 5000"):
            registry.update_registered_model(name, "d" * 5001)

    def test_missing_registered_model(self, registry: ModelRegistryStore) -> None:
        calls = [
            lambda: registry.get_registered_model("ghost"),
            lambda: registry.rename_registered_model("ghost", "other"),
            lambda: registry.update_registered_model("ghost", "x"),
            lambda: registry.delete_registered_model("ghost"),
            lambda: registry.set_registered_model_tag("ghost", "k", "v"),
            lambda: registry.delete_registered_model_alias("ghost", "champion"),
            lambda: registry.create_model_version("ghost", "s3://bucket/model"),
            lambda: registry.get_model_version("ghost", 1),
            lambda: registry.get_latest_versions("ghost"),
            lambda: registry.get_model_version_by_alias("ghost", "champion"),
        ]
        for call in calls:
            with pytest.raises(ModelNotFound, match="No registered model is named 'ghost'.*create_registered_model"):
                call()
        assert issubclass(ModelNotFound, NotFoundError)

    def test_update_registered_model(self, registry: ModelRegistryStore) -> None:
        created = registry.create_registered_model("m", description="old")
        time.sleep(0.002)
        updated = registry.update_registered_model("m", "new")
        assert updated.description == "new" and updated == registry.get_registered_model("m")
        assert updated.last_updated_timestamp > created.creation_timestamp  # type: ignore[operator]
        assert registry.update_registered_model("m", None).description is None

    def test_registered_model_tags(self, registry: ModelRegistryStore) -> None:
        registry.create_registered_model("m", tags={"a": "1"})
        registry.set_registered_model_tag("m", "a", "2")
        registry.set_registered_model_tag("m", "b", "x" * 8000)
        assert registry.get_registered_model("m").tags == {"a": "2", "b": "x" * 8000}
        registry.delete_registered_model_tag("m", "a")
        registry.delete_registered_model_tag("m", "a")  # already gone: nothing happens
        assert registry.get_registered_model("m").tags == {"b": "x" * 8000}
        with pytest.raises(InvalidValueError, match="not allowed"):
            registry.set_registered_model_tag("m", "bad*key", "v")

    def test_rename_keeps_versions_tags_and_aliases(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "old")
        registry.set_registered_model_tag("old", "team", "risk")
        registry.set_model_version_tag("old", 2, "validated", "yes")
        registry.set_registered_model_alias("old", "champion", 2)
        renamed = registry.rename_registered_model("old", "new")
        assert renamed.name == "new" and renamed.tags == {"team": "risk"} and renamed.aliases == {"champion": 2}
        with pytest.raises(ModelNotFound, match="'old'"):
            registry.get_registered_model("old")
        version = registry.get_model_version_by_alias("new", "champion")
        assert (version.name, version.version) == ("new", 2)
        assert (version.tags, version.aliases) == ({"validated": "yes"}, ["champion"])
        assert [v.version for v in registry.search_model_versions("name = 'new'")] == [3, 2, 1]
        assert registry.search_model_versions("name = 'old'") == []
        assert registry.create_model_version("new", "s3://b/m").version == 4  # numbering continues
        registry.create_registered_model("taken")
        with pytest.raises(AlreadyExistsError, match="'taken' already exists"):
            registry.rename_registered_model("new", "taken")
        with pytest.raises(InvalidValueError, match="'/'"):
            registry.rename_registered_model("new", "a/b")

    def test_delete_registered_model_cascades(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m")
        registry.set_registered_model_tag("m", "team", "risk")
        registry.set_model_version_tag("m", 1, "k", "v")
        registry.set_registered_model_alias("m", "champion", 1)
        registry.create_registered_model("other")
        registry.create_model_version("other", "s3://b/o")
        registry.delete_registered_model("m")
        with pytest.raises(ModelNotFound):
            registry.get_registered_model("m")
        assert [(v.name, v.version) for v in registry.search_model_versions()] == [("other", 1)]
        recreated = registry.create_registered_model("m")
        assert (recreated.tags, recreated.aliases, recreated.latest_versions) == ({}, {}, [])
        version = registry.create_model_version("m", "s3://b/fresh")
        assert (version.version, version.tags) == (1, {})  # a new model counts from 1 again

    # -- model versions --------------------------------------------------------------------------
    def test_create_and_get_model_version(self, registry: ModelRegistryStore) -> None:
        registry.create_registered_model("m")
        before = now_ms()
        created = registry.create_model_version(
            "m", f"runs:/{RUN_ID}/model", RUN_ID, tags={"k": "v"}, description="first", run_link="http://x/run",
            user_id="alice",
        )
        assert (created.name, created.version, created.run_id) == ("m", 1, RUN_ID)
        assert created.source == f"runs:/{RUN_ID}/model"
        assert (created.status, created.current_stage, created.tags, created.aliases) == ("READY", "None", {"k": "v"}, [])
        assert (created.description, created.user_id, created.run_link) == ("first", "alice", "http://x/run")
        assert before <= created.creation_timestamp <= now_ms()
        assert registry.get_model_version("m", 1) == created
        assert registry.get_model_version("m", "1") == created
        model = registry.get_registered_model("m")
        assert model.latest_versions == [created]
        assert model.last_updated_timestamp >= created.creation_timestamp  # type: ignore[operator]

    def test_missing_and_invalid_versions(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 1)
        for call in (
            lambda: registry.get_model_version("m", 7),
            lambda: registry.update_model_version("m", 7, "x"),
            lambda: registry.delete_model_version("m", "7"),
            lambda: registry.set_model_version_tag("m", 7, "k", "v"),
            lambda: registry.set_registered_model_alias("m", "champion", 7),
            lambda: registry.transition_model_version_stage("m", 7, "Staging"),
        ):
            with pytest.raises(ModelVersionNotFound, match="'m' has no version 7"):
                call()
        for bad in ("abc", "1.5", 1.5, True, -1, None):
            with pytest.raises(InvalidValueError, match="version"):
                registry.get_model_version("m", bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="source"):
            registry.create_model_version("m", "")
        with pytest.raises(InvalidValueError, match="run id"):
            registry.create_model_version("m", "s3://b/m", run_id="not a run id")

    def test_version_numbers_are_never_reused(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 3)
        registry.delete_model_version("m", 3)
        with pytest.raises(ModelVersionNotFound, match="no version 3"):
            registry.get_model_version("m", 3)
        assert registry.create_model_version("m", "s3://b/4").version == 4
        registry.delete_model_version("m", 1)
        assert registry.create_model_version("m", "s3://b/5").version == 5
        assert [v.version for v in registry.search_model_versions("name = 'm'")] == [5, 4, 2]

    def test_update_model_version_and_tags(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 2)
        created = registry.get_model_version("m", 2)
        time.sleep(0.002)
        updated = registry.update_model_version("m", "2", "better")
        assert updated.description == "better"
        assert updated.last_updated_timestamp > created.last_updated_timestamp  # type: ignore[operator]
        registry.set_model_version_tag("m", 2, "k", "1")
        registry.set_model_version_tag("m", 2, "k", "2")
        registry.set_model_version_tag("m", 1, "k", "other version")
        assert registry.get_model_version("m", 2).tags == {"k": "2"}
        registry.delete_model_version_tag("m", 2, "k")
        registry.delete_model_version_tag("m", 2, "k")  # already gone: nothing happens
        assert registry.get_model_version("m", 2).tags == {}
        assert registry.get_model_version("m", 1).tags == {"k": "other version"}

    def test_delete_model_version_removes_its_tags_and_aliases(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 2)
        registry.set_model_version_tag("m", 2, "k", "v")
        registry.set_registered_model_alias("m", "champion", 2)
        registry.set_registered_model_alias("m", "backup", 1)
        registry.delete_model_version("m", 2)
        assert registry.get_registered_model("m").aliases == {"backup": 1}
        with pytest.raises(ModelVersionNotFound, match="no alias 'champion'"):
            registry.get_model_version_by_alias("m", "champion")
        assert registry.create_model_version("m", "s3://b/3").tags == {}

    # -- aliases ---------------------------------------------------------------------------------
    def test_aliases(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 3)
        registry.set_registered_model_alias("m", "champion", 1)
        registry.set_registered_model_alias("m", "challenger", "2")
        assert registry.get_model_version_by_alias("m", "champion").version == 1
        registry.set_registered_model_alias("m", "champion", 3)  # an existing alias moves
        champion = registry.get_model_version_by_alias("m", "champion")
        assert (champion.version, champion.aliases) == (3, ["champion"])
        assert registry.get_model_version("m", 1).aliases == []
        registry.set_registered_model_alias("m", "challenger", 3)
        assert registry.get_model_version("m", 3).aliases == ["challenger", "champion"]
        assert registry.get_registered_model("m").aliases == {"challenger": 3, "champion": 3}
        registry.delete_registered_model_alias("m", "challenger")
        registry.delete_registered_model_alias("m", "challenger")  # already gone: nothing happens
        with pytest.raises(ModelVersionNotFound, match=r"no alias 'challenger' \(its aliases: 'champion'\)"):
            registry.get_model_version_by_alias("m", "challenger")
        assert registry.get_registered_model("m").aliases == {"champion": 3}

    @pytest.mark.parametrize(
        "alias, pattern",
        [("latest", "reserved"), ("LATEST", "reserved"), ("v1", "reserved"), ("V22", "reserved"),
         ("bad alias", "not allowed"), ("a@b", "not allowed"), ("", "non-empty"), ("a" * 256, "limit is 255")],
    )
    def test_invalid_aliases(self, registry: ModelRegistryStore, alias: str, pattern: str) -> None:
        self._model_with_versions(registry, "m", 1)
        with pytest.raises(InvalidValueError, match=pattern):
            registry.set_registered_model_alias("m", alias, 1)

    def test_longest_alias_and_unusual_aliases(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 1)
        for alias in ("a" * 255, "v1beta", "version-2", "123", "Champion_2"):
            registry.set_registered_model_alias("m", alias, 1)
            assert registry.get_model_version_by_alias("m", alias).version == 1

    # -- stages ----------------------------------------------------------------------------------
    def test_stages_and_latest_versions(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "m", 4)
        assert registry.transition_model_version_stage("m", 1, "production").current_stage == "Production"
        registry.transition_model_version_stage("m", 2, "Staging")
        registry.transition_model_version_stage("m", "3", "PRODUCTION")

        def latest(stages: Any = None) -> list[tuple[int, str]]:
            return [(v.version, v.current_stage) for v in registry.get_latest_versions("m", stages)]

        assert latest() == [(2, "Staging"), (3, "Production"), (4, "None")]
        assert latest([]) == latest()
        assert latest(["production"]) == [(3, "Production")]
        assert latest(["Archived"]) == []
        assert [(v.version, v.current_stage) for v in registry.get_registered_model("m").latest_versions] == latest()
        moved = registry.transition_model_version_stage("m", 4, "Production", archive_existing_versions=True)
        assert moved.current_stage == "Production"
        stages = {v.version: v.current_stage for v in registry.search_model_versions("name = 'm'")}
        assert stages == {1: "Archived", 2: "Staging", 3: "Archived", 4: "Production"}
        with pytest.raises(InvalidValueError, match="Unknown model version stage 'Prod'"):
            registry.transition_model_version_stage("m", 1, "Prod")
        with pytest.raises(InvalidValueError, match="Staging or Production"):
            registry.transition_model_version_stage("m", 1, "Archived", archive_existing_versions=True)
        with pytest.raises(InvalidValueError, match="Unknown model version stage"):
            registry.get_latest_versions("m", ["Deleted"])

    # -- search ----------------------------------------------------------------------------------
    def test_search_registered_models(self, registry: ModelRegistryStore) -> None:
        for i, name in enumerate(["alpha", "beta", "Beta-2", "delta", "gamma"]):
            registry.create_registered_model(name, tags={"team": "risk" if i % 2 else "growth"})
            time.sleep(0.002)

        def names(filter_string: str | None = None, order_by: list[str] | None = None) -> list[str]:
            return [m.name for m in registry.search_registered_models(filter_string, order_by=order_by)]

        lower = "name != 'Beta-2'"  # how upper and lower case sort depends on the database's collation
        assert names(lower) == ["alpha", "beta", "delta", "gamma"]  # by name by default
        assert names(lower, ["name DESC"]) == ["gamma", "delta", "beta", "alpha"]
        assert names("name = 'alpha'") == ["alpha"]
        assert names("name LIKE 'beta%'") == ["beta"]
        assert sorted(names("name ILIKE 'BETA%'")) == ["Beta-2", "beta"]
        assert names("name LIKE '%a%' AND tags.team = 'risk'") == ["beta", "delta"]
        assert names("tags.team = 'risk' OR name = 'gamma'") == ["beta", "delta", "gamma"]
        assert sorted(names("tags.`team` != 'risk'")) == ["Beta-2", "alpha", "gamma"]
        assert len(names("tags.owner IS NULL")) == 5
        assert names(order_by=["last_updated_timestamp DESC"]) == ["gamma", "delta", "Beta-2", "beta", "alpha"]
        assert names("creation_timestamp > 0", ["timestamp ASC"]) == ["alpha", "beta", "Beta-2", "delta", "gamma"]
        seen: list[str] = []
        token = None
        while True:
            page = registry.search_registered_models(max_results=2, page_token=token)
            assert len(page) <= 2
            seen += [m.name for m in page]
            token = page.token
            if token is None:
                break
        assert seen == names()
        for bad in ("metrics.acc > 1", "run_id = 'x'", "name = ", "name = alpha"):
            with pytest.raises(InvalidValueError, match="Invalid search filter"):
                registry.search_registered_models(bad)
        with pytest.raises(InvalidValueError, match="max_results"):
            registry.search_registered_models(max_results=0)
        with pytest.raises(InvalidValueError, match="page token"):
            registry.search_registered_models(page_token="garbage")

    def test_search_model_versions(self, registry: ModelRegistryStore) -> None:
        self._model_with_versions(registry, "a", 3)
        registry.create_registered_model("b")
        registry.create_model_version("b", "s3://bucket/b/1", OTHER_RUN_ID, tags={"validated": "yes"})
        registry.create_model_version("b", "s3://bucket/b/2", OTHER_RUN_ID)
        registry.set_model_version_tag("a", 2, "validated", "no")
        registry.transition_model_version_stage("a", 1, "Staging")

        def found(filter_string: str | None = None, order_by: list[str] | None = None) -> list[tuple[str, int]]:
            return [(v.name, v.version) for v in registry.search_model_versions(filter_string, order_by=order_by)]

        assert found() == [("a", 3), ("a", 2), ("a", 1), ("b", 2), ("b", 1)]  # name, then newest first
        assert found("name = 'b'") == [("b", 2), ("b", 1)]
        assert found(f"run_id = '{OTHER_RUN_ID}'") == [("b", 2), ("b", 1)]
        assert found(f"run_id IN ('{RUN_ID}') AND version_number >= 2") == [("a", 3), ("a", 2)]
        assert found("source = 's3://bucket/b/1'") == [("b", 1)]
        assert found("source_path LIKE 's3://bucket/%'") == [("b", 2), ("b", 1)]
        assert found("version_number = 2") == [("a", 2), ("b", 2)]
        assert found("tags.validated = 'yes'") == [("b", 1)]
        assert found("tags.validated IS NOT NULL") == [("a", 2), ("b", 1)]
        assert found("current_stage = 'Staging'") == [("a", 1)]
        assert found("name ILIKE 'A'", ["version_number ASC"]) == [("a", 1), ("a", 2), ("a", 3)]
        assert found(None, ["creation_timestamp DESC", "name DESC"])[0] == ("b", 2)
        first = registry.search_model_versions(max_results=2)
        second = registry.search_model_versions(max_results=2, page_token=first.token)
        third = registry.search_model_versions(max_results=2, page_token=second.token)
        assert [(v.name, v.version) for v in first + second + third] == found() and third.token is None
        for bad in ("metrics.acc > 1", "version_number = 'two'", "params.x = '1'"):
            with pytest.raises(InvalidValueError, match="Invalid search filter"):
                registry.search_model_versions(bad)
        with pytest.raises(InvalidValueError, match="twice"):
            registry.search_model_versions(order_by=["name", "name DESC"])

    # -- concurrency -----------------------------------------------------------------------------
    def test_concurrent_create_model_version(self, registry: ModelRegistryStore) -> None:
        registry.create_registered_model("m")
        per_thread = 5
        errors: list[Exception] = []
        numbers: list[int] = []
        lock = threading.Lock()

        def create() -> None:
            try:
                for _ in range(per_thread):
                    version = registry.create_model_version("m", "s3://b/m").version
                    with lock:
                        numbers.append(version)
            except Exception as exc:  # reported below; a thread's exception would be lost
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(numbers) == list(range(1, 4 * per_thread + 1))
        assert sorted(v.version for v in registry.search_model_versions("name = 'm'")) == sorted(numbers)
