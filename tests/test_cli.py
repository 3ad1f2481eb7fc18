"""The ``fitscribe`` command on a real embedded store."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fitscribe
from fitscribe.backends.sql.tables import SCHEMA_REVISION
from fitscribe.cli import build_parser, main


def _run(*argv: str) -> tuple[int, str]:
    lines: list[str] = []
    code = main(list(argv), out=lines.append)
    return code, "\n".join(lines)


@pytest.fixture
def populated(tmp_path: Path) -> dict[str, str]:
    """Two runs in experiment 'cli' of the default ./fitruns store, one with an artifact."""
    fitscribe.set_experiment("cli")
    ids = {}
    for name, acc in [("good", 0.9), ("bad", 0.4)]:
        with fitscribe.start_run(run_name=name) as run:
            fitscribe.log_param("model", name)
            fitscribe.log_metric("acc", acc)
            fitscribe.log_text("hello", "notes/readme.txt")
            ids[name] = run.info.run_id
    return ids


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "fitscribe", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"fitscribe {fitscribe.__version__}"


def test_experiments_create_list_rename_delete_restore() -> None:
    code, out = _run("experiments", "create", "exp-a")
    assert code == 0 and "Created experiment 'exp-a' with id 1" in out
    assert "exp-a" in _run("experiments", "list")[1]
    assert _run("experiments", "rename", "exp-a", "exp-b")[0] == 0
    assert _run("experiments", "delete", "exp-b")[0] == 0
    listed = json.loads(_run("experiments", "list", "--json")[1])
    assert [e["name"] for e in listed] == ["Default"]
    everything = json.loads(_run("experiments", "list", "--all", "--json")[1])
    assert {e["name"]: e["lifecycle_stage"] for e in everything} == {"Default": "active", "exp-b": "deleted"}
    assert _run("experiments", "restore", "1")[0] == 0
    assert len(json.loads(_run("experiments", "list", "--json")[1])) == 2


def test_runs_list_filter_and_describe(populated: dict[str, str]) -> None:
    code, out = _run("runs", "list", "-e", "cli", "--filter", "metrics.acc > 0.5")
    assert code == 0 and populated["good"] in out and populated["bad"] not in out
    header = out.splitlines()[0].split()
    assert header[:4] == ["RUN", "ID", "NAME", "STATUS"] and "ACC" in header
    runs = json.loads(_run("runs", "list", "-e", "cli", "-o", "metrics.acc ASC", "--json")[1])
    assert [r["info"]["run_name"] for r in runs] == ["bad", "good"]
    code, out = _run("runs", "describe", populated["good"])
    assert code == 0 and "FINISHED" in out and "model" in out and "0.9" in out
    described = json.loads(_run("runs", "describe", populated["good"], "--json")[1])
    assert described["data"]["params"] == {"model": "good"}


def test_artifacts_list_and_download(populated: dict[str, str], tmp_path: Path) -> None:
    code, out = _run("artifacts", "list", "-r", populated["good"])
    assert code == 0 and "notes/" in out
    listed = json.loads(_run("artifacts", "list", "-r", populated["good"], "-p", "notes", "--json")[1])
    assert listed == [{"path": "notes/readme.txt", "is_dir": False, "file_size": 5}]
    code, out = _run("artifacts", "download", "-r", populated["good"], "-p", "notes/readme.txt", "-d", str(tmp_path / "dl"))
    assert code == 0 and Path(out).read_text() == "hello"


def test_delete_gc_purges_runs_and_artifacts(populated: dict[str, str]) -> None:
    bad = populated["bad"]
    folder = Path(fitscribe.get_run(bad).info.artifact_uri.removeprefix("file://"))
    assert folder.exists()
    assert _run("runs", "delete", bad)[0] == 0
    code, out = _run("gc", "--dry-run")
    assert code == 0 and f"Would purge run {bad}" in out and folder.exists()
    assert "Nothing to purge" in _run("gc", "--older-than", "1d")[1]
    code, out = _run("gc")
    assert code == 0 and f"Purged run {bad}" in out
    assert not folder.exists()
    with pytest.raises(fitscribe.errors.RunNotFound):
        fitscribe.get_run(bad)
    assert fitscribe.get_run(populated["good"]).info.status == "FINISHED"


def test_errors_are_one_clear_line(populated: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("runs", "list", "--filter", "metrics.acc > 'high'")[0] == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid search filter") and "expects a number" in err
    assert _run("runs", "describe", "0" * 32)[0] == 1
    assert "error: " in capsys.readouterr().err
    assert _run("experiments", "delete", "no-such-exp")[0] == 1
    assert "fitscribe experiments list" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["gc", "--older-than", "soon"])
    assert info.value.code == 2 and "30d" in capsys.readouterr().err


def test_db_upgrade_on_current_store(tmp_path: Path) -> None:
    fitscribe.Client(str(tmp_path / "s")).create_run("0")
    code, out = _run("db", "upgrade", str(tmp_path / "s"))
    assert code == 0 and f"already at schema revision {SCHEMA_REVISION}" in out
    code, out = _run("--tracking-uri", str(tmp_path / "new"), "db", "upgrade")
    assert code == 0 and f"from schema revision (empty) to {SCHEMA_REVISION}" in out


def test_tracking_uri_before_or_after_the_command(tmp_path: Path) -> None:
    fitscribe.Client(str(tmp_path / "other")).create_experiment("elsewhere")
    assert "elsewhere" in _run("--tracking-uri", str(tmp_path / "other"), "experiments", "list")[1]
    assert "elsewhere" in _run("experiments", "list", "--tracking-uri", str(tmp_path / "other"))[1]
    assert "elsewhere" not in _run("experiments", "list")[1]


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser (``("runs", "list")``...), groups included."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


def test_help_of_every_command_and_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11 item 10: ``--help`` works everywhere (a ``%`` in a help text crashed argparse)."""
    paths = _commands(build_parser())
    assert ("experiments", "list") in paths and ("runs", "list") in paths and len(paths) > 15
    for path in paths:
        with pytest.raises(SystemExit) as info:
            main([*path, "--help"])
        out = capsys.readouterr().out
        assert info.value.code == 0 and out.startswith("usage: fitscribe"), path
    assert "name LIKE 'mnist%'" in _help("experiments", "list")


def _help(*path: str) -> str:
    result = subprocess.run([sys.executable, "-m", "fitscribe", *path, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- MLflow's spellings (issue 12 item 4) ----------------------------------------------------------------
def test_mlflow_spellings_of_experiment_commands(tmp_path: Path) -> None:
    code, out = _run("experiments", "create", "-n", "ml-style", "-l", str(tmp_path / "arts"))
    assert code == 0 and "with id 1" in out
    assert _run("experiments", "rename", "-x", "1", "--new-name", "renamed")[0] == 0
    got = json.loads(_run("experiments", "get", "-x", "1", "--output", "json")[1])
    assert got["name"] == "renamed" and got["artifact_location"].endswith("arts")
    assert "renamed" in _run("experiments", "get", "-n", "renamed")[1]
    assert _run("experiments", "delete", "-x", "1")[0] == 0
    assert "renamed" not in _run("experiments", "search")[1]
    assert "renamed" in _run("experiments", "search", "-v", "deleted_only")[1]
    assert "Default" not in _run("experiments", "search", "--view", "DELETED_ONLY")[1]
    assert len(_run("experiments", "search", "-v", "all", "--max-results", "1")[1].splitlines()) == 3  # header, rule, 1 row
    assert _run("experiments", "restore", "-x", "1")[0] == 0
    with pytest.raises(SystemExit) as info:
        main(["experiments", "create"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["experiments", "delete", "1", "-x", "1"])


def test_mlflow_spellings_of_run_commands(populated: dict[str, str], tmp_path: Path) -> None:
    exp_id = fitscribe.get_experiment_by_name("cli").experiment_id
    runs = json.loads(_run("runs", "list", "--experiment-id", exp_id, "--json")[1])
    assert {r["info"]["run_id"] for r in runs} == set(populated.values())
    assert json.loads(_run("runs", "describe", "--run-id", populated["good"], "--json")[1])["data"]["params"] == {"model": "good"}
    assert _run("runs", "delete", "--run-id", populated["bad"])[0] == 0
    listed = json.loads(_run("runs", "list", "--experiment-id", exp_id, "-v", "deleted_only", "--json")[1])
    assert [r["info"]["run_id"] for r in listed] == [populated["bad"]]
    assert len(json.loads(_run("runs", "list", "--experiment-id", exp_id, "-v", "all", "--json")[1])) == 2
    assert _run("runs", "restore", "--run-id", populated["bad"])[0] == 0
    code, out = _run("runs", "create", "--experiment-name", "made", "--run-name", "r1", "-t", "a=1", "--status", "KILLED",
                     "--description", "by hand")
    run_id = out.split()[2]
    run = fitscribe.get_run(run_id)
    assert code == 0 and run.info.status == "KILLED" and run.info.run_name == "r1"
    assert run.data.tags["a"] == "1" and run.data.tags["mlflow.note.content"] == "by hand"
    csv_file = tmp_path / "runs.csv"
    assert _run("experiments", "csv", "-x", exp_id, "-o", str(csv_file))[0] == 0
    header, *rows = csv_file.read_text().splitlines()
    assert "params.model" in header.split(",") and "metrics.acc" in header.split(",") and len(rows) == 2


def test_mlflow_spellings_of_artifact_commands(populated: dict[str, str], tmp_path: Path) -> None:
    good = populated["good"]
    listed = json.loads(_run("artifacts", "list", "-r", good, "-a", "notes", "--json")[1])
    assert [f["path"] for f in listed] == ["notes/readme.txt"]
    code, out = _run("artifacts", "download", "-r", good, "-a", "notes/readme.txt", "--dst-path", str(tmp_path / "a"))
    assert code == 0 and Path(out).read_text() == "hello"
    code, out = _run("artifacts", "download", "-u", f"runs:/{good}/notes/readme.txt", "-d", str(tmp_path / "b"))
    assert code == 0 and Path(out).read_text() == "hello"
    (tmp_path / "f.txt").write_text("one")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "g.txt").write_text("two")
    assert _run("artifacts", "log-artifact", "-l", str(tmp_path / "f.txt"), "-r", good, "-a", "up")[0] == 0
    assert _run("artifacts", "log-artifacts", "-l", str(tmp_path / "dir"), "-r", good)[0] == 0
    paths = {f.path for f in fitscribe.list_artifacts(good)} | {f.path for f in fitscribe.list_artifacts(good, "up")}
    assert {"up/f.txt", "g.txt"} <= paths
    with pytest.raises(SystemExit):
        main(["artifacts", "download", "-a", "x"])


def test_gc_purges_deleted_experiments_too(populated: dict[str, str]) -> None:
    """MLflow's gc: deleted experiments' runs go as well; comma-separated ids; compound ages."""
    keep = fitscribe.create_experiment("keep")
    with fitscribe.start_run(experiment_id=keep) as kept:
        pass
    exp_id = fitscribe.get_experiment_by_name("cli").experiment_id
    fitscribe.delete_experiment(exp_id)
    assert "Nothing to purge" in _run("gc", "--older-than", "1d2h3m4s")[1]
    code, out = _run("gc", "--experiment-ids", exp_id, "--dry-run")
    assert code == 0 and out.count("Would purge run") == 2
    code, out = _run("gc", "--backend-store-uri", fitscribe.get_tracking_uri())
    assert code == 0 and "Purged 2 run(s)" in out and "Purged experiment" in out and "'cli'" in out
    for run_id in populated.values():
        with pytest.raises(fitscribe.errors.RunNotFound):
            fitscribe.get_run(run_id)
    with pytest.raises(fitscribe.errors.ExperimentNotFound):  # the experiment is gone too, as with MLflow's gc
        fitscribe.Client().get_experiment(exp_id)
    assert fitscribe.get_experiment(fitscribe.create_experiment("cli")).name == "cli"  # its name is free again
    assert fitscribe.get_run(kept.info.run_id).info.lifecycle_stage == "active"
    with fitscribe.start_run(experiment_id=keep) as a, fitscribe.start_run(experiment_id=keep, nested=True) as b:
        pass
    fitscribe.delete_run(a.info.run_id)
    fitscribe.delete_run(b.info.run_id)
    code, out = _run("gc", "--run-ids", f"{a.info.run_id},{b.info.run_id}")
    assert code == 0 and "Purged 2 run(s)" in out
    assert _run("gc", "--experiment-ids", keep)[0] == 1  # not deleted: refused


@pytest.mark.parametrize("command", ["experiments create", "experiments delete", "experiments restore",
                                     "experiments rename", "experiments search", "experiments get", "experiments csv",
                                     "runs list", "runs describe", "runs delete", "runs restore", "runs create",
                                     "artifacts list", "artifacts download", "artifacts log-artifact",
                                     "artifacts log-artifacts", "gc"])
def test_every_option_of_mlflows_shared_commands_is_accepted(command: str, mlflow_options: dict[str, list[str]]) -> None:
    ours = build_parser()
    sub = ours
    for word in command.split():
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    accepted = set(sub._option_string_actions)
    ignored = {"--workspace", "--all-workspaces", "--logged-model-ids", "--jobs", "--job-ids",
               "--artifacts-destination", "--trace-archival-retention"}  # MLflow features fitscribe has not
    missing = [o for o in mlflow_options[command] if o not in accepted and o not in ignored]
    assert missing == [], f"fitscribe {command} lacks MLflow's {missing}"


@pytest.fixture(scope="module")
def mlflow_options() -> dict[str, list[str]]:
    """The option strings of MLflow's CLI commands, read from the real MLflow's click tree."""
    from _mlflow_support import run_mlflow

    probe = (
        "import json, mlflow.cli as c\n"
        "out = {}\n"
        "def walk(cmd, path):\n"
        "    for name, sub in getattr(cmd, 'commands', {}).items():\n"
        "        walk(sub, path + [name])\n"
        "    out[' '.join(path)] = [o for p in cmd.params for o in p.opts + p.secondary_opts if o.startswith('-')]\n"
        "walk(c.cli, [])\n"
        "print(json.dumps(out))\n"
    )
    result = run_mlflow(["-c", probe], cwd=os.getcwd(), env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
