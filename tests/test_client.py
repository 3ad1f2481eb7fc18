"""Client: artifacts end to end, configuration and error messages, on real stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

import fitscribe
from fitscribe.errors import ConfigError, InvalidValueError, MissingDependencyError, NotFoundError


@pytest.fixture
def client(tmp_path: Path) -> fitscribe.Client:
    return fitscribe.Client(str(tmp_path / "store"))


def test_constructor_does_no_io(tmp_path: Path) -> None:
    fitscribe.Client(str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_artifacts_round_trip(client: fitscribe.Client, tmp_path: Path) -> None:
    run_id = client.create_run("0").info.run_id
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    client.log_artifact(run_id, str(src / "a.txt"))
    client.log_artifacts(run_id, str(src), "folder")
    client.log_text(run_id, "hello ü", "notes/readme.md")
    client.log_dict(run_id, {"a": 1, "b": [1, 2]}, "conf.yaml")
    client.log_dict(run_id, {"x": 0.5}, "meta/data.json")
    listing = {f.path: f.is_dir for f in client.list_artifacts(run_id)}
    assert listing == {"a.txt": False, "folder": True, "notes": True, "conf.yaml": False, "meta": True}
    assert [f.path for f in client.list_artifacts(run_id, "folder/sub")] == ["folder/sub/b.txt"]
    dst = client.download_artifacts(run_id, "", str(tmp_path / "dl"))
    assert Path(dst, "folder", "sub", "b.txt").read_text() == "B"
    assert Path(dst, "notes", "readme.md").read_text(encoding="utf-8") == "hello ü"
    assert yaml.safe_load(Path(dst, "conf.yaml").read_text()) == {"a": 1, "b": [1, 2]}
    assert json.loads(Path(dst, "meta", "data.json").read_text()) == {"x": 0.5}
    single = client.download_artifacts(run_id, "folder/a.txt", str(tmp_path / "one"))
    assert Path(single).read_text() == "A"


@pytest.mark.parametrize("bad", ["../escape", "a/../../escape", "/etc/passwd"])
def test_artifact_paths_cannot_climb_out(client: fitscribe.Client, tmp_path: Path, bad: str) -> None:
    run_id = client.create_run("0").info.run_id
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InvalidValueError, match="artifact"):
        client.log_artifact(run_id, str(tmp_path / "f.txt"), bad)
    with pytest.raises(InvalidValueError):
        client.log_text(run_id, "x", bad + "/x.txt")
    with pytest.raises(InvalidValueError):
        client.download_artifacts(run_id, bad, str(tmp_path / "dl"))


def test_missing_local_file_is_named(client: fitscribe.Client, tmp_path: Path) -> None:
    run_id = client.create_run("0").info.run_id
    with pytest.raises(NotFoundError, match="missing.txt"):
        client.log_artifact(run_id, str(tmp_path / "missing.txt"))


def test_figure_and_image(client: fitscribe.Client, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    run_id = client.create_run("0").info.run_id
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    client.log_figure(run_id, fig, "plots/line.png")
    plt.close(fig)
    image = np.zeros((8, 6, 3), dtype=np.uint8)
    image[2, 3] = [255, 0, 0]
    client.log_image(run_id, image, "img/red.png")
    dst = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    with Image.open(dst / "plots" / "line.png") as line, Image.open(dst / "img" / "red.png") as red:
        assert line.size[0] > 100
        assert np.array_equal(np.asarray(red), image)


def test_inputs_via_client(client: fitscribe.Client) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_input(run_id, fitscribe.Dataset("iris", "d1", "local", "iris.csv"), context="training")
    (item,) = client.get_run(run_id).inputs.dataset_inputs
    assert item.dataset.name == "iris" and item.tags[0].value == "training"


def test_terminate_and_rename(client: fitscribe.Client) -> None:
    run_id = client.create_run("0", run_name="first").info.run_id
    client.update_run(run_id, name="second")
    client.set_terminated(run_id, "KILLED")
    info = client.get_run(run_id).info
    assert (info.run_name, info.status) == ("second", "KILLED") and info.end_time
    with pytest.raises(InvalidValueError, match="FINISHED"):
        client.set_terminated(run_id, "DONE")


def test_experiment_management(client: fitscribe.Client) -> None:
    exp_id = client.create_experiment("e", tags={"a": 1})
    client.set_experiment_tag(exp_id, "b", "2")
    client.rename_experiment(exp_id, "e2")
    assert client.get_experiment(exp_id).tags == {"a": "1", "b": "2"}
    assert client.get_experiment_id("e2") == exp_id
    client.delete_experiment(exp_id)
    assert [e.name for e in client.search_experiments("DELETED_ONLY")] == ["e2"]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'ftp'.*'postgresql'.*fitscribe\.tracking_stores"):
        fitscribe.Client("ftp://example/x").store


def test_password_is_redacted_from_errors() -> None:
    client = fitscribe.Client("postgresql://bob:hunter2@127.0.0.1:1/none")
    with pytest.raises(fitscribe.errors.BackendError) as info:
        client.get_experiment("0")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from fitscribe.backends.sql import engine

    with pytest.raises(MissingDependencyError, match=r'fitscribe\[postgres\]') as info:
        engine._require_driver("no_such_driver_module_xyz", "postgres", "postgresql")
    assert info.value.extra == "postgres"


def test_sqlite_uri_and_folder_uri_are_the_same_store(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    run_id = fitscribe.Client(str(folder)).create_run("0").info.run_id
    same = fitscribe.Client(f"sqlite:///{folder}/tracking.db")
    assert same.get_run(run_id).info.run_id == run_id
    assert fitscribe.Client(f"file://{folder}").get_run(run_id).info.run_id == run_id


def test_wal_mode_is_on(client: fitscribe.Client) -> None:
    client.create_run("0")
    import sqlite3

    path = os.path.join(client.tracking_uri, "tracking.db")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
