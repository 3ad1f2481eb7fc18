"""The ``fitscribe`` command on a real embedded store."""

from __future__ import annotations

import argparse
import json
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
