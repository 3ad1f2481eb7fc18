"""A fork server of MLflow's python for the interoperability tests (tests/_mlflow_support.py).

Importing MLflow, scikit-learn and pandas costs 2-3 s of CPU, paid by every script a test ran with
MLflow's python. This process imports them once; each script then runs in a child forked from it,
as ``python script.py args`` or ``python -c code args`` would run it: its own working folder,
environment, ``sys.argv``, ``sys.path[0]``, stdout and stderr (files), exit code; non-daemon threads
joined and ``atexit`` handlers run at its end, as at an interpreter's exit.

Runs under the MLflow venv's python and never imports fitscribe. One JSON object a line on stdin:
``{"args": [...], "cwd": ..., "env": {...}, "stdout": path, "stderr": path}``; the answers on stdout
are ``{"pid": n}`` once the child is forked, then ``{"returncode": n}`` when it ended. A closed
stdin ends the server.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from typing import Any


def _preload() -> None:
    import importlib

    for name in ("mlflow", "mlflow.sklearn", "pandas", "sklearn.linear_model"):
        importlib.import_module(name)


def _redirect(fd: int, path: str, flags: int) -> None:
    target = os.open(path, flags, 0o644)
    os.dup2(target, fd)
    os.close(target)


def _finish() -> None:
    """What an interpreter does at exit: threading's exit hooks (a thread pool tells its workers to
    stop), the non-daemon threads joined, then the atexit handlers."""
    import atexit

    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()


def _run(request: dict[str, Any]) -> int:
    """In the forked child: become ``python *args`` and return its exit code."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[1:1] = extra  # where python puts PYTHONPATH: after the script's folder
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    _redirect(2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    args = request["args"]
    try:
        if args[0] == "-c":
            sys.argv, sys.path[0] = ["-c", *args[2:]], ""
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            import runpy

            sys.argv, sys.path[0] = list(args), os.path.dirname(os.path.realpath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
        _finish()
        return 0
    except SystemExit as exc:
        _finish()
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - reported as the interpreter would, exit code 1
        traceback.print_exc()
        _finish()
        return 1


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Preload, then fork one child per request line until stdin closes."""
    _preload()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _run(request)
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer({"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
