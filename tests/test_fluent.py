"""The fluent API on the embedded default store: lifecycle, nesting, system tags, logging."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import fitscribe
from fitscribe.errors import InvalidStateError, InvalidValueError


def test_default_store_is_fitruns_in_cwd() -> None:
    with fitscribe.start_run() as run:
        fitscribe.log_param("lr", 0.01)
    assert os.path.isfile("fitruns/tracking.db")
    assert fitscribe.get_tracking_uri() == os.path.abspath("fitruns")
    got = fitscribe.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.artifact_uri.startswith("file://" + os.path.abspath("fitruns/artifacts"))


def test_run_lifecycle_statuses() -> None:
    with fitscribe.start_run() as ok:
        pass
    with pytest.raises(ZeroDivisionError):
        with fitscribe.start_run() as failed:
            1 / 0
    with pytest.raises(KeyboardInterrupt):
        with fitscribe.start_run() as killed:
            raise KeyboardInterrupt
    statuses = [fitscribe.get_run(r.info.run_id).info.status for r in (ok, failed, killed)]
    assert statuses == ["FINISHED", "FAILED", "KILLED"]
    assert fitscribe.active_run() is None


def test_system_tags_and_names(tmp_path: Path) -> None:
    with fitscribe.start_run(run_name="my-run", description="trying things", tags={"team": "a"}) as run:
        pass
    tags = fitscribe.get_run(run.info.run_id).data.tags
    assert tags["mlflow.runName"] == "my-run" and run.info.run_name == "my-run"
    assert tags["mlflow.note.content"] == "trying things" and tags["team"] == "a"
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
    with fitscribe.start_run() as unnamed:
        pass
    assert unnamed.info.run_name and unnamed.info.run_name.count("-") == 2


def test_git_commit_tag_read_without_subprocess(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text(textwrap.dedent("""
        import fitscribe
        fitscribe.set_tracking_uri({store!r})
        with fitscribe.start_run() as run:
            print(run.info.run_id)
    """).format(store=str(tmp_path / "store")))
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    out = subprocess.run([sys.executable, str(repo / "train.py")], check=True, capture_output=True, text=True)
    run = fitscribe.Client(str(tmp_path / "store")).get_run(out.stdout.strip())
    assert run.data.tags["mlflow.source.git.commit"] == sha
    assert run.data.tags["mlflow.source.name"] == str(repo / "train.py")


def test_nested_runs_and_parent_tag() -> None:
    with fitscribe.start_run() as parent:
        with pytest.raises(InvalidStateError, match="nested=True"):
            fitscribe.start_run()
        with fitscribe.start_run(nested=True) as child:
            assert fitscribe.active_run().info.run_id == child.info.run_id
        assert fitscribe.active_run().info.run_id == parent.info.run_id
    child_run = fitscribe.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert fitscribe.Client().get_parent_run(child.info.run_id).info.run_id == parent.info.run_id


def test_end_run_ends_open_children() -> None:
    parent = fitscribe.start_run()
    child = fitscribe.start_run(nested=True)
    fitscribe.end_run()
    fitscribe.end_run()
    assert fitscribe.active_run() is None
    for run in (parent, child):
        assert fitscribe.get_run(run.info.run_id).info.status == "FINISHED"


def test_logging_functions_autostart_a_run() -> None:
    fitscribe.log_metric("loss", 0.5)
    run = fitscribe.active_run()
    assert run is not None
    fitscribe.log_metrics({"a": 1.0, "b": math.inf}, step=3)
    fitscribe.log_params({"x": 1, "y": "two"})
    fitscribe.set_tags({"k": "v"})
    fitscribe.set_tag("k2", True)
    fitscribe.delete_tag("k")
    fitscribe.end_run()
    data = fitscribe.get_run(run.info.run_id).data
    assert data.metrics == {"loss": 0.5, "a": 1.0, "b": math.inf}
    assert data.params == {"x": "1", "y": "two"}
    assert data.tags["k2"] == "True" and "k" not in data.tags
    assert [m.step for m in fitscribe.get_metric_history(run.info.run_id, "a")] == [3]
    assert fitscribe.last_active_run().info.run_id == run.info.run_id


def test_param_change_is_a_clear_error() -> None:
    with fitscribe.start_run():
        fitscribe.log_param("lr", 0.1)
        with pytest.raises(InvalidValueError, match=r"already '0\.1'.*'0\.2'"):
            fitscribe.log_param("lr", 0.2)


def test_set_experiment_creates_and_selects() -> None:
    exp = fitscribe.set_experiment("my-exp")
    with fitscribe.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    assert fitscribe.set_experiment("my-exp").experiment_id == exp.experiment_id
    fitscribe.delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidStateError, match="restore"):
        fitscribe.set_experiment("my-exp")
    with pytest.raises(InvalidValueError, match="exactly one"):
        fitscribe.set_experiment()


def test_experiment_name_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_EXPERIMENT_NAME", "from-env")
    with fitscribe.start_run() as run:
        pass
    assert fitscribe.get_experiment(run.info.experiment_id).name == "from-env"


def test_tracking_uri_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FITSCRIBE_TRACKING_URI", str(tmp_path / "elsewhere"))
    with fitscribe.start_run():
        pass
    assert (tmp_path / "elsewhere" / "tracking.db").is_file()


def test_resume_run() -> None:
    with fitscribe.start_run() as run:
        fitscribe.log_metric("m", 1.0, step=0)
    with fitscribe.start_run(run_id=run.info.run_id, tags={"resumed": "yes"}):
        assert fitscribe.get_run(run.info.run_id).info.status == "RUNNING"
        fitscribe.log_metric("m", 2.0, step=1)
    resumed = fitscribe.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["resumed"] == "yes"
    assert [m.value for m in fitscribe.get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]


def test_runs_are_per_thread() -> None:
    seen: list[object] = []
    with fitscribe.start_run():
        thread = threading.Thread(target=lambda: seen.append(fitscribe.active_run()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_search_runs_list_and_pandas() -> None:
    exp = fitscribe.set_experiment("s")
    for i in range(3):
        with fitscribe.start_run(run_name=f"r{i}"):
            fitscribe.log_metric("acc", i / 10)
            fitscribe.log_param("i", i)
    runs = fitscribe.search_runs(filter_string="metrics.acc >= 0.1", order_by=["metrics.acc DESC"], output_format="list")
    assert [r.info.run_name for r in runs] == ["r2", "r1"]
    frame = fitscribe.search_runs(experiment_names=["s"], order_by=["params.i"])
    assert list(frame["params.i"]) == ["0", "1", "2"] and list(frame["metrics.acc"]) == [0.0, 0.1, 0.2]
    assert {"run_id", "status", "start_time", "tags.mlflow.runName"} <= set(frame.columns)
    assert len(fitscribe.search_runs([exp.experiment_id], max_results=2, output_format="list")) == 2


def test_unfinished_run_is_ended_at_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import fitscribe
        fitscribe.set_tracking_uri({str(tmp_path / 's')!r})
        run = fitscribe.start_run()
        fitscribe.log_metric("m", 1.0)
        print(run.info.run_id, flush=True)
        if __import__("sys").argv[1] == "fail":
            raise RuntimeError("boom")
    """)
    path = tmp_path / "script.py"
    path.write_text(script)
    ok = subprocess.run([sys.executable, str(path), "ok"], capture_output=True, text=True)
    bad = subprocess.run([sys.executable, str(path), "fail"], capture_output=True, text=True)
    client = fitscribe.Client(str(tmp_path / "s"))
    assert client.get_run(ok.stdout.strip()).info.status == "FINISHED"
    assert client.get_run(bad.stdout.strip()).info.status == "FAILED"
    assert "boom" in bad.stderr


def test_sigkill_loses_nothing_logged(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, fitscribe
        fitscribe.set_tracking_uri({str(tmp_path / 's')!r})
        run = fitscribe.start_run()
        print(run.info.run_id, flush=True)
        for i in range(500):
            fitscribe.log_metric("m", float(i), step=i)
        fitscribe.log_param("p", "kept")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    path = tmp_path / "killed.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert proc.returncode == -9
    client = fitscribe.Client(str(tmp_path / "s"))
    run_id = proc.stdout.strip()
    assert len(client.get_metric_history(run_id, "m")) == 500
    run = client.get_run(run_id)
    assert run.data.params == {"p": "kept"} and run.info.status == "RUNNING"


def test_end_run_inside_with_keeps_the_status_and_end_time() -> None:
    """Issue 11 item 9: the with-exit leaves a run the block already ended alone."""
    with fitscribe.start_run() as run:
        fitscribe.end_run("KILLED")
        ended = fitscribe.get_run(run.info.run_id).info.end_time
        assert fitscribe.active_run() is None
    got = fitscribe.get_run(run.info.run_id).info
    assert got.status == "KILLED" and got.end_time == ended is not None
    with fitscribe.start_run() as outer:  # a child ended inside its with: the parent ends normally
        with fitscribe.start_run(nested=True) as inner:
            fitscribe.end_run("FAILED")
        assert fitscribe.active_run() is not None and fitscribe.active_run().info.run_id == outer.info.run_id
    assert fitscribe.get_run(inner.info.run_id).info.status == "FAILED"
    assert fitscribe.get_run(outer.info.run_id).info.status == "FINISHED"


def test_resuming_a_deleted_run_is_refused_at_once() -> None:
    """Issue 11 item 9: start_run(run_id=<deleted>) fails at start, not at the first log."""
    with fitscribe.start_run() as run:
        fitscribe.log_param("a", 1)
    fitscribe.delete_run(run.info.run_id)
    with pytest.raises(InvalidStateError, match="deleted.*restore_run"):
        fitscribe.start_run(run_id=run.info.run_id)
    assert fitscribe.active_run() is None
    got = fitscribe.get_run(run.info.run_id).info
    assert got.status == "FINISHED" and got.lifecycle_stage == "deleted"
    fitscribe.restore_run(run.info.run_id)
    with fitscribe.start_run(run_id=run.info.run_id):
        fitscribe.log_param("b", 2)
    assert fitscribe.get_run(run.info.run_id).data.params == {"a": "1", "b": "2"}
