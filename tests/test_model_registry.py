"""The model registry through ``fitscribe.Client`` on an embedded SQLite store (the store-level
behaviour on every database is checked by ``ModelRegistryStoreSuite`` in test_store_sql.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fitscribe
from fitscribe.errors import (
    AlreadyExistsError,
    InvalidValueError,
    ModelNotFound,
    ModelVersionNotFound,
    RegistryNotSupportedError,
)


@pytest.fixture
def client(tmp_path: Path) -> fitscribe.Client:
    return fitscribe.Client(str(tmp_path / "store"))


def test_register_resolve_and_promote(client: fitscribe.Client) -> None:
    run_id = client.create_run("0").info.run_id
    model = client.create_registered_model("churn", tags={"team": "risk", "tier": 1}, description="Churn model")
    assert isinstance(model, fitscribe.RegisteredModel) and model.tags == {"team": "risk", "tier": "1"}
    with pytest.raises(AlreadyExistsError, match="'churn' already exists"):
        client.create_registered_model("churn")
    v1 = client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id, tags={"auc": 0.9})
    v2 = client.create_model_version("churn", f"runs:/{run_id}/model2", run_id, description="retrained")
    assert isinstance(v1, fitscribe.ModelVersion)
    assert (v1.version, v2.version, v1.tags, v2.description) == (1, 2, {"auc": "0.9"}, "retrained")
    assert v1.user_id and v1.status == "READY" and v1.current_stage == "None"
    assert client.get_model_version("churn", "2") == v2
    assert max(v.version for v in client.get_latest_versions("churn")) == 2  # models:/churn/latest
    client.set_registered_model_alias("churn", "champion", v1.version)
    assert client.get_model_version_by_alias("churn", "champion").source == f"runs:/{run_id}/model"
    promoted = client.transition_model_version_stage("churn", 2, "Production")
    assert [v.version for v in client.get_latest_versions("churn", stages=["production"])] == [2]
    assert promoted.current_stage == "Production"
    assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}'")] == [2, 1]
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["churn"]
    renamed = client.rename_registered_model("churn", "churn-v2")
    assert renamed.aliases == {"champion": 1} and client.get_model_version("churn-v2", 2).current_stage == "Production"
    assert client.update_registered_model("churn-v2", "").description == ""
    assert client.update_model_version("churn-v2", 1, "first").description == "first"


def test_version_tags_by_number_or_stage(client: fitscribe.Client) -> None:
    client.create_registered_model("m")
    for i in range(3):
        client.create_model_version("m", f"s3://bucket/m/{i}")
    client.transition_model_version_stage("m", 2, "Staging")
    client.set_model_version_tag("m", 1, "checked", True)
    client.set_model_version_tag("m", key="gate", value="passed", stage="staging")
    assert client.get_model_version("m", 1).tags == {"checked": "True"}
    assert client.get_model_version("m", 2).tags == {"gate": "passed"}
    client.delete_model_version_tag("m", key="gate", stage="Staging")
    assert client.get_model_version("m", 2).tags == {}
    with pytest.raises(InvalidValueError, match="exactly one of version and stage"):
        client.set_model_version_tag("m", 1, "k", "v", stage="Staging")
    with pytest.raises(InvalidValueError, match="exactly one of version and stage"):
        client.delete_model_version_tag("m", key="k")
    with pytest.raises(ModelVersionNotFound, match="no version in stage 'Production'"):
        client.set_model_version_tag("m", key="k", value="v", stage="Production")


def test_errors_say_what_to_do(client: fitscribe.Client) -> None:
    with pytest.raises(ModelNotFound, match="No registered model is named 'ghost'. Create it with create_registered_"):
        client.create_model_version("ghost", "s3://bucket/model")
    client.create_registered_model("m")
    client.create_model_version("m", "s3://bucket/model")
    with pytest.raises(ModelVersionNotFound, match=r"'m' has no version 5\. List its versions"):
        client.get_model_version("m", 5)
    with pytest.raises(ModelVersionNotFound, match=r"no alias 'champion' \(its aliases: none\)"):
        client.get_model_version_by_alias("m", "champion")
    with pytest.raises(InvalidValueError, match="'latest' is reserved"):
        client.set_registered_model_alias("m", "latest", 1)
    with pytest.raises(InvalidValueError, match="use '-', '_' or '.' instead, e.g. 'team-m'"):
        client.create_registered_model("team/m")
    with pytest.raises(InvalidValueError, match="Nothing to update"):
        client.update_registered_model("m")
    with pytest.raises(InvalidValueError, match="Nothing to update"):
        client.update_model_version("m", 1)


_WORKER = """
import json, sys
import fitscribe
client = fitscribe.Client(sys.argv[1])
print(json.dumps([client.create_model_version("m", "s3://bucket/m").version for _ in range(int(sys.argv[2]))]))
"""


def test_concurrent_processes_get_distinct_version_numbers(tmp_path: Path) -> None:
    """Four processes adding versions to one SQLite store at once get 1..N, each number once."""
    store = str(tmp_path / "store")
    fitscribe.Client(store).create_registered_model("m")
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, store, "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(4)
    ]
    numbers: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers += json.loads(out)
    assert sorted(numbers) == list(range(1, 41))
    versions = fitscribe.Client(store).search_model_versions("name = 'm'", max_results=100)
    assert [v.version for v in versions] == list(range(40, 0, -1))


class _TrackingOnlyStore:
    """A third-party tracking store without a model registry (only what this test touches)."""

    def __init__(self, uri: str, **_: Any) -> None:
        self.uri = uri

    def close(self) -> None:
        """Nothing to release."""


def test_store_without_registry_says_so() -> None:
    from fitscribe.backends import tracking_stores

    undo = tracking_stores.register("trackingonly", _TrackingOnlyStore)
    try:
        client = fitscribe.Client("trackingonly://somewhere")
        with pytest.raises(RegistryNotSupportedError, match=r"_TrackingOnlyStore\) has no model registry.*sqlite:///"):
            client.create_registered_model("m")
        with pytest.raises(RegistryNotSupportedError):
            client.get_model_version_by_alias("m", "champion")
    finally:
        undo()


def test_names_that_model_uris_cannot_address_are_refused(tmp_path) -> None:
    import pytest

    import fitscribe
    from fitscribe.errors import InvalidValueError

    client = fitscribe.Client(str(tmp_path / "store"))
    with pytest.raises(InvalidValueError, match=r"contains '@'.*models:/<name>@<alias>.*'churn-v2'"):
        client.create_registered_model("churn@v2")
    with pytest.raises(InvalidValueError, match=r"contains '/'"):
        client.create_registered_model("team/churn")
    client.close()
