"""The real MLflow client for interoperability tests: the python of the MLflow venv.

``scripts/test.sh`` builds ``.venv-mlflow`` (mlflow-skinny, see ``scripts/mlflow_venv.sh``) and
exports ``FITSCRIBE_MLFLOW_PYTHON``. Test modules import :func:`mlflow_python`, and run MLflow's
scripts with :func:`run_mlflow` (forked from a process with MLflow imported, started once a session).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def mlflow_python() -> str:
    """Return the MLflow venv's python, or skip (fail in CI) with the reason."""
    configured = os.environ.get("FITSCRIBE_MLFLOW_PYTHON")
    # abspath, not resolve(): a venv's bin/python is a symlink to the base interpreter.
    python = os.path.abspath(configured) if configured else str(REPO / ".venv-mlflow" / "bin" / "python")
    if not os.path.isfile(python):
        how = "from FITSCRIBE_MLFLOW_PYTHON" if configured else "the default; or set FITSCRIBE_MLFLOW_PYTHON"
        message = f"No MLflow python at {python!r} ({how}); create it with `bash scripts/mlflow_venv.sh`"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the MLflow interoperability tests)")
        pytest.skip(message)
    return python


_FORKSERVER = Path(__file__).resolve().parent / "_mlflow_scripts" / "forkserver.py"
_server: tuple[subprocess.Popen[str], queue.Queue[str]] | None = None
_server_lock = threading.Lock()


def _forkserver(python: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """The session's MLflow fork server (tests/_mlflow_scripts/forkserver.py), started on first use, and
    the queue of its answer lines ("" once it ended)."""
    global _server
    if _server is None or _server[0].poll() is not None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_"))}
        env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        process = subprocess.Popen([python, str(_FORKSERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, env=env, cwd=tempfile.gettempdir())
        answers: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in process.stdout:  # type: ignore[union-attr]
                answers.put(line)
            answers.put("")

        threading.Thread(target=read, name="mlflow-forkserver", daemon=True).start()
        atexit.register(_stop, process)
        _server = process, answers
    return _server


def _stop(process: subprocess.Popen[str]) -> None:
    """End the fork server at the session's end: a closed stdin ends its loop."""
    process.stdin.close()  # type: ignore[union-attr]
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_mlflow(args: list[str], *, cwd: str | Path, env: dict[str, str],
               timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` with MLflow's python, as ``subprocess.run`` would, but in a child forked from
    a process that has MLflow, scikit-learn and pandas imported already (2-3 s of CPU a script fewer).

    Args:
        args: The arguments after ``python``: a script and its arguments, or ``"-c"``, code, arguments.
        cwd: The script's working folder.
        env: Its whole environment.
        timeout: Seconds before the script is killed and ``subprocess.TimeoutExpired`` raised.

    Returns:
        The exit code and the script's stdout and stderr (text), in a ``CompletedProcess``.
    """
    python = mlflow_python()
    with _server_lock, tempfile.TemporaryDirectory() as tmp:
        process, answers = _forkserver(python)
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        request = {"args": [str(a) for a in args], "cwd": str(cwd), "env": env, "stdout": out, "stderr": err}
        process.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        pid = _answer(answers, 300)["pid"]
        try:
            code = _answer(answers, timeout)["returncode"]
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            _answer(answers, 60)
            raise
        with open(out, encoding="utf-8", errors="replace") as o, open(err, encoding="utf-8", errors="replace") as e:
            return subprocess.CompletedProcess([python, *args], code, o.read(), e.read())


def _answer(answers: queue.Queue[str], timeout: float) -> dict[str, int]:
    """The fork server's next answer, waiting at most ``timeout`` seconds."""
    try:
        line = answers.get(timeout=timeout)
    except queue.Empty:
        raise subprocess.TimeoutExpired(str(_FORKSERVER), timeout) from None
    if not line:
        raise RuntimeError("MLflow's fork server ended; its error is in the test's captured stderr")
    return json.loads(line)  # type: ignore[no-any-return]
