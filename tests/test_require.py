"""The suite's own rules: nothing is skipped silently in CI, and the caller's settings do not leak in.

Each check runs pytest in a subprocess on a generated test file, as CI or a developer would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

TESTS = Path(__file__).resolve().parent

_PROBE = '''
import os
import pytest
from _require import require_module, unavailable

def test_missing_module_at_call():
    require_module("fitscribe_no_such_module_for_tests")

def test_missing_server():
    unavailable("a server not reachable: refused")

def test_present_module():
    assert require_module("json").dumps([1]) == "[1]"

def test_environment():
    print("ENV", sorted(n for n in os.environ if n.startswith(("FITSCRIBE_", "MLFLOW_"))))
'''


def _run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(_PROBE))
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(env, PYTHONPATH=str(TESTS))
    # -p conftest: the suite's real conftest.py (its autouse fixture) applies to the probe file.
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", "-s",
                           "-q", str(tmp_path / "test_probe.py"), "--rootdir", str(tmp_path)],
                          cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def test_ci_fails_what_is_missing(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, CI="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout and "fitscribe_no_such_module_for_tests" in result.stdout
    assert "2 failed, 2 passed" in result.stdout, result.stdout
    assert "skipped" not in result.stdout


def test_locally_what_is_missing_is_skipped_and_callers_settings_are_cleared(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, MLFLOW_TRACKING_URI="http://leak.invalid", FITSCRIBE_TRACKING_URI="/leak",
                        MLFLOW_EXPERIMENT_NAME="leak", FITSCRIBE_MLFLOW_PYTHON="/opt/mlflow/bin/python",
                        FITSCRIBE_SCREENSHOTS=str(tmp_path / "shots"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 2 skipped" in result.stdout, result.stdout
    assert "fitscribe_no_such_module_for_tests" in result.stdout and "a server not reachable" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "ENV [" in line)
    seen = set(eval(line.partition("ENV ")[2]))  # noqa: S307 (a list of names printed by the probe)
    assert {"FITSCRIBE_MLFLOW_PYTHON", "FITSCRIBE_SCREENSHOTS", "FITSCRIBE_STRICT"} <= seen, line
    assert not seen & {"MLFLOW_TRACKING_URI", "FITSCRIBE_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"}, line


@pytest.mark.parametrize(("value", "ci"), [("1", True), ("true", True), ("yes", True), ("false", True),
                                           ("", False), ("  ", False), (None, False)])
def test_ci_is_any_non_empty_value(monkeypatch: pytest.MonkeyPatch, value: str | None, ci: bool) -> None:
    from _require import in_ci

    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def _outcome(call: Callable[[], object]) -> str:
    """Return how ``call`` ended: "failed: <message>", "skipped: <message>" or "returned"."""
    try:
        call()
    except pytest.fail.Exception as exc:
        return f"failed: {exc}"
    except pytest.skip.Exception as exc:
        return f"skipped: {exc}"
    return "returned"


def test_browser_and_server_helpers_follow_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import conftest
    from _ui_support import _unavailable

    monkeypatch.setenv("CI", "1")
    assert _outcome(lambda: _unavailable("chromium is missing")).startswith("failed: UI tests need a browser")
    assert _outcome(lambda: conftest._server_unavailable("PostgreSQL", OSError("refused"))).startswith(
        "failed: PostgreSQL server not reachable: refused")
    monkeypatch.delenv("CI")
    assert "chromium is missing" in _outcome(lambda: _unavailable("chromium is missing")).partition("skipped: ")[2]


def test_no_test_module_uses_importorskip() -> None:
    """``pytest.importorskip`` skips even in CI: tests use ``_require.require_module`` instead."""
    needle = "pytest." + "importorskip("
    offenders = [path.name for path in sorted(TESTS.glob("test_*.py")) if needle in path.read_text(encoding="utf-8")]
    assert not offenders, f"use _require.require_module instead of pytest.importorskip in {offenders}"
