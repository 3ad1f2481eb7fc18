"""The last gaps of the MLflow drop-in (issue 12): ``MlflowClient``'s tables and time-stepped
images, ``mlflow.entities.model_registry``, timestamps from the one clock, and the README's word
on writing a store.

Each test writes with a real client on a SQLite store in ``tmp_path`` and reads back at once.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fitscribe
import fitscribe as mlflow
import fitscribe._time
from fitscribe import errors

ROOT = Path(__file__).resolve().parents[1]
IMAGE = np.zeros((300, 150, 3), dtype=np.uint8)

_CLIENT_PROBE = """
import inspect, json, mlflow
print(json.dumps({n: [(p.name, p.kind.name) for p in inspect.signature(getattr(mlflow.MlflowClient, n)).parameters.values()]
                  for n in ("log_table", "load_table", "log_image")}))
"""


def test_client_table_and_image_signatures_are_mlflows() -> None:
    from _mlflow_support import run_mlflow

    result = run_mlflow(["-c", _CLIENT_PROBE], cwd=os.getcwd(), env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, theirs in json.loads(result.stdout.strip().splitlines()[-1]).items():
        ours = [(p.name, p.kind.name) for p in inspect.signature(getattr(fitscribe.Client, name)).parameters.values()]
        assert ours == [tuple(p) for p in theirs], name


def test_client_logs_and_loads_tables(tmp_path: Path) -> None:
    client = mlflow.MlflowClient(str(tmp_path / "store"))
    exp_id = client.create_experiment("tables")
    first, second = (client.create_run(exp_id).info.run_id for _ in range(2))
    client.log_table(first, {"q": ["x", "y"], "score": [1, 2]}, "eval/t.json")
    client.log_table(first, pd.DataFrame({"q": ["z"], "score": [3]}), "eval/t.json")
    client.log_table(second, {"q": ["w"], "score": [4]}, "eval/t.json")
    client.log_table(second, {"only": "one row"}, "single.json")
    elsewhere = client.create_run(client.create_experiment("other")).info.run_id
    client.log_table(elsewhere, {"q": ["v"], "score": [5]}, "eval/t.json")

    both = client.load_table(exp_id, "eval/t.json", extra_columns=["run_id"])
    assert both.groupby("run_id")["score"].apply(sorted).to_dict() == {first: [1, 2, 3], second: [4]}
    only = client.load_table(exp_id, "eval/t.json", run_ids=[second])
    assert only.to_dict("list") == {"q": ["w"], "score": [4]}
    assert client.load_table(exp_id, "single.json").to_dict("list") == {"only": ["one row"]}
    tag = json.loads(client.get_run(first).data.tags["mlflow.loggedArtifacts"])
    assert tag == [{"path": "eval/t.json", "type": "table"}]
    with pytest.raises(errors.NotFoundError, match="missing.json"):
        client.load_table(exp_id, "missing.json")
    with pytest.raises(errors.InvalidValueError, match=".json or .parquet"):
        client.log_table(first, {"a": [1]}, "t.csv")
    with pytest.raises(errors.InvalidValueError, match="DataFrame or a dict"):
        client.log_table(first, [1, 2], "t.json")


def test_fluent_and_client_tables_are_one_format(tmp_path: Path) -> None:
    """A table the fluent call logged is read by the client, and the other way round."""
    mlflow.set_tracking_uri(str(tmp_path / "store"))
    with mlflow.start_run() as run:
        mlflow.log_table({"a": [1]}, "t.json")
    client = mlflow.MlflowClient()
    client.log_table(run.info.run_id, {"a": [2]}, "t.json")
    assert mlflow.load_table("t.json")["a"].tolist() == [1, 2]
    assert client.load_table(run.info.experiment_id, "t.json")["a"].tolist() == [1, 2]


def test_client_logs_time_stepped_images(tmp_path: Path) -> None:
    client = fitscribe.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id
    client.log_image(run_id, IMAGE, "plain.png")
    assert "mlflow.loggedImages" not in client.get_run(run_id).data.tags
    client.log_image(run_id, IMAGE, key="val/pred", step=3, timestamp=1234)
    client.log_image(run_id, IMAGE, None, "val/pred", 4, 1235)  # positional, in MLflow's order
    client.log_image(run_id, IMAGE, key="first")  # step 0, timestamp now
    frames = sorted(f.path for f in client.list_artifacts(run_id, "images"))
    assert [p.split("+")[:5] for p in frames if "val~pred" in p] == [
        ["images/val~pred", "step", str(s), "timestamp", str(1231 + s)] for s in (3, 3, 4, 4)]
    assert sum(p.endswith("+compressed.webp") for p in frames) == 3 and len(frames) == 6
    first = next(p for p in frames if p.startswith("images/first+step+0+") and p.endswith(".png"))
    assert int(first.split("+")[4]) == pytest.approx(fitscribe._time.now_ms(), abs=60_000)
    from PIL import Image

    with Image.open(client.download_artifacts(run_id, frames[0], str(tmp_path / "thumb"))) as thumb:
        assert thumb.size == (128, 256)
    assert client.get_run(run_id).data.tags["mlflow.loggedImages"] == "True"
    assert {f.path for f in client.list_artifacts(run_id)} == {"images", "plain.png"}


@pytest.mark.parametrize("kwargs, message", [
    ({"artifact_file": "x.png", "key": "k"}, "artifact_file alone"),
    ({"artifact_file": "x.png", "step": 1}, "artifact_file alone"),
    ({}, "needs artifact_file"),
])
def test_client_log_image_refuses_mlflows_bad_combinations(tmp_path: Path, kwargs: dict[str, object],
                                                           message: str) -> None:
    client = fitscribe.Client(str(tmp_path / "store"))
    run_id = client.create_run("0").info.run_id
    with pytest.raises(TypeError, match=message):
        client.log_image(run_id, IMAGE, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidValueError, match="image key"):
        client.log_image(run_id, IMAGE, key="bad:key")
    assert client.list_artifacts(run_id) == []


@pytest.mark.parametrize("spelling", ["fluent", "client"])
def test_image_timestamps_come_from_the_one_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  spelling: str) -> None:
    """Moving fitscribe._time.now_ms moves the default timestamp of both log_image spellings."""
    monkeypatch.setattr(fitscribe._time, "now_ms", lambda: 4242)
    mlflow.set_tracking_uri(str(tmp_path / "store"))
    with mlflow.start_run() as run:
        if spelling == "fluent":
            mlflow.log_image(IMAGE, key="series", step=1)
        else:
            mlflow.MlflowClient().log_image(run.info.run_id, IMAGE, key="series", step=1)
    frames = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "images")]
    assert len(frames) == 2 and {p.split("+")[4] for p in frames} == {"4242"}


def test_registry_entities_under_mlflows_module_name(tmp_path: Path) -> None:
    from fitscribe.entities.model_registry import ModelVersion, RegisteredModel

    import fitscribe.entities

    assert ModelVersion is fitscribe.entities.ModelVersion and RegisteredModel is fitscribe.entities.RegisteredModel
    assert mlflow.entities.model_registry.ModelVersion is ModelVersion
    client = mlflow.MlflowClient(str(tmp_path / "store"))
    assert isinstance(client.create_registered_model("m"), RegisteredModel)
    assert isinstance(client.create_model_version("m", "file:///nowhere/model"), ModelVersion)
    for name in fitscribe.entities.__all__:  # the package keeps every name of the former module
        assert getattr(fitscribe.entities, name) is not None


def test_registry_entities_import_cheaply() -> None:
    probe = ("import sys, json; import fitscribe as mlflow; "
             "from fitscribe.entities.model_registry import ModelVersion, RegisteredModel; "
             "mlflow.entities.model_registry.RegisteredModel; print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                           text=True).stdout))
    assert sorted(loaded & {"sqlalchemy", "numpy", "pandas", "httpx", "yaml"}) == []


def test_readme_says_how_a_store_extends_the_bases() -> None:
    from fitscribe.backends import ArtifactStore, TrackingStore

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Extending"):]
    section = section[: section.index("\n## ", 1)]
    assert "`fitscribe.backends.TrackingStore`" in section and "`fitscribe.backends.ArtifactStore`" in section
    assert "NotImplementedError" in section
    named = re.search(r"fallback \(([^)]*)\)", section)
    assert named is not None
    for capability in re.findall(r"`(\w+)`", named.group(1)):
        base = TrackingStore if hasattr(TrackingStore, capability) else ArtifactStore
        assert callable(getattr(base, capability)), capability
