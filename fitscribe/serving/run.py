"""Serve, predict with, and package a model: what ``fitscribe models serve|predict|generate-dockerfile`` run.

``serve`` loads the model once in this process (so a bad URI or a refused model fails before the
port opens), then runs uvicorn; with ``workers`` > 1, each worker process loads the model itself
from the same URI (spawned, not forked: a loaded model's threads and sessions do not survive a
fork). ``env_manager="virtualenv"`` builds a virtual environment from the model's
``requirements.txt`` once (kept under ``~/.fitscribe/envs``, keyed by the requirements and the
Python version) and runs the same command inside it with ``env_manager="local"``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable

from fitscribe.errors import ConfigError, InvalidValueError

if TYPE_CHECKING:
    import socket

__all__ = ["serve", "predict_file", "generate_dockerfile", "virtualenv_python", "ENV_MANAGERS"]

ENV_MANAGERS = ("local", "virtualenv")
_EXTRAS = "[server,serving,pandas]"  # the scoring server: uvicorn (uvloop, httptools); request parsing: pandas
_ENV_ROOT = "FITSCRIBE_ENV_ROOT"


def _load(model_uri: str) -> Any:
    from fitscribe.flavors.pyfunc import load_model

    return load_model(model_uri)


def _load_deferring(model_uri: str) -> tuple[Any, Callable[[], None] | None]:
    """Load the model with :data:`~fitscribe.serving.deferred.DEFERRED` modules deferred; return it and
    what finishes them (None when nothing was deferred), for the scoring app to run once it serves."""
    from fitscribe.serving import deferred

    with deferred.deferring():
        model = _load(model_uri)
    return model, (deferred.finish if deferred.still_deferred() else None)


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    """uvicorn's settings for the scoring server: uvloop and httptools when installed
    (``fitscribe[serving]``; about a fifth less CPU per one-row request than asyncio and h11)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                          ws="none", server_header=False, loop="auto", http="auto")


def serve(model_uri: str, *, host: str = "127.0.0.1", port: int = 5000, workers: int = 1,
          timeout: float = 60.0, max_request_mb: float = 64, log_level: str = "warning",
          announce: Callable[[str], None] = print) -> None:
    """Serve ``model_uri`` over MLflow's scoring protocol until interrupted (Ctrl-C or SIGTERM).

    Args:
        model_uri: ``runs:/``, ``models:/name/1``, ``models:/name@alias``, ``models:/name/Stage``,
            a folder...
        host: Interface to listen on (default: this machine only).
        port: TCP port (0: any free port; the announcement names it).
        workers: Server processes sharing the socket.
        timeout: Seconds one prediction may take (504 past it).
        max_request_mb: Larger request bodies get 413.
        log_level: uvicorn's log level.
        announce: Receives the line naming the URL served.

    Raises:
        ConfigError: ``workers`` below 1.
        MissingDependencyError: starlette or uvicorn missing (``fitscribe[server]``).
    """
    from fitscribe.server.run import _no_delay, _require_server_packages

    _require_server_packages()
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    model, warm_up = _load_deferring(model_uri)
    options = {"model_uri": model_uri, "timeout": timeout, "max_request_mb": max_request_mb}
    import uvicorn

    from fitscribe.serving.app import create_scoring_app

    app = (create_scoring_app(model, timeout=timeout, max_request_mb=max_request_mb, warm_up=warm_up)
           if workers == 1 else None)
    config = _uvicorn_config(app, host, port, log_level)
    sock = config.bind_socket()
    _no_delay(sock)
    shown = f"[{host}]" if ":" in host else host
    announce(f"fitscribe models serve: {model.flavor} model at http://{shown}:{sock.getsockname()[1]}/invocations "
             f"({workers} worker{'s' if workers > 1 else ''}; Ctrl-C to stop)")
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        _run_workers(options, sock, workers, log_level)


def _worker(options: dict[str, Any], sock: "socket.socket", log_level: str) -> None:  # pragma: no cover - child
    import uvicorn

    from fitscribe.serving.app import create_scoring_app

    model, warm_up = _load_deferring(options["model_uri"])
    app = create_scoring_app(model, timeout=options["timeout"], max_request_mb=options["max_request_mb"],
                             warm_up=warm_up)
    uvicorn.Server(_uvicorn_config(app, "", 0, log_level)).run(sockets=[sock])


def _run_workers(options: dict[str, Any], sock: "socket.socket", workers: int, log_level: str) -> None:
    from fitscribe.server.run import run_worker_processes

    run_worker_processes(_worker, options, sock, workers, log_level)


def predict_file(model_uri: str, input_path: str | None, output_path: str | None = None,
                 content_type: str = "json") -> bytes:
    """Predict on a request file (the body ``/invocations`` takes) and return the JSON answer.

    Args:
        model_uri: Any model URI.
        input_path: A JSON request (``dataframe_split``...) or a CSV table; None reads stdin.
        output_path: Write the answer there too (None: only return it).
        content_type: ``json`` or ``csv`` (default: from the file name, else json).

    Raises:
        InvalidValueError: The input is not a valid request (the message says why).
    """
    from fitscribe.serving.app import _Scorer

    if input_path is None:
        body = sys.stdin.buffer.read()
    else:
        with open(input_path, "rb") as fh:
            body = fh.read()
        if input_path.lower().endswith(".csv"):
            content_type = "csv"
    if content_type not in ("json", "csv"):
        raise InvalidValueError(f"--content-type must be json or csv, not {content_type!r}.")
    from fitscribe.serving.protocol import ScoringError

    scorer = _Scorer(_load(model_uri), max_bytes=len(body) + 1, timeout=float("inf"))
    try:
        data, params = scorer.parse(content_type, body)
        answer = scorer.predict(data, params)
    except ScoringError as exc:
        raise InvalidValueError(exc.message) from None
    if output_path:
        with open(output_path, "wb") as fh:
            fh.write(answer)
    return answer


def _env_root() -> str:
    return os.environ.get(_ENV_ROOT) or os.path.join(os.path.expanduser("~"), ".fitscribe", "envs")


def _fitscribe_requirement() -> str:
    """How a new environment gets this fitscribe: the source checkout when running from one."""
    from fitscribe import __version__

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(root, "pyproject.toml")) and os.path.isdir(os.path.join(root, "fitscribe")):
        return f"{root}{_EXTRAS}"
    return f"fitscribe{_EXTRAS}=={__version__}"


def _without_fitscribe(requirements: str) -> str:
    """The requirement lines minus fitscribe's own (installed separately, possibly from source)."""
    import re

    return "".join(line for line in requirements.splitlines(keepends=True)
                   if not re.match(r"\s*fitscribe(\s*$|\s*[\[<>=!~;@ ])", line, re.IGNORECASE))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def virtualenv_python(model_folder: str, announce: Callable[[str], None] = _stderr) -> str:
    """Return the python of a virtual environment built from the model's ``requirements.txt``.

    Built once per requirements file and Python version, under ``$FITSCRIBE_ENV_ROOT`` (default
    ``~/.fitscribe/envs``); a later call with the same requirements returns at once. fitscribe
    itself is installed as it runs here (from this checkout when run from one), not as pinned.
    With pip 22.3 or later here, this pip installs into the environment, which has no pip of its
    own (see :func:`_pip_for`).
    """
    path = os.path.join(model_folder, "requirements.txt")
    requirements = open(path, encoding="utf-8").read() if os.path.isfile(path) else ""
    key = hashlib.sha256(f"{sys.version_info[:3]}\n{requirements}\n{_fitscribe_requirement()}".encode()).hexdigest()[:16]
    env = os.path.join(_env_root(), f"env-{key}")
    python = os.path.join(env, "bin", "python")
    done = os.path.join(env, ".fitscribe-ready")
    if os.path.exists(done):
        return python
    announce(f"fitscribe: building a virtual environment for this model in {env} (once)")
    shutil.rmtree(env, ignore_errors=True)
    pip = _pip_for(env, python)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fitscribe-wheel-") as wheels:
        subprocess.run([*pip, _fitscribe_install(wheels)], check=True)
    others = _without_fitscribe(requirements)
    if others.strip():
        filtered = os.path.join(env, "model-requirements.txt")
        with open(filtered, "w", encoding="utf-8") as fh:
            fh.write(others)
        subprocess.run([*pip, "-r", filtered], check=True)
    # pip installs with --no-compile: byte-compiling is most of an install's CPU, and pip does it
    # file by file; compileall makes the same .pyc files on every core.
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", env], check=True, stdout=subprocess.DEVNULL)
    open(done, "w").close()
    return python


def _pip_for(env: str, python: str) -> list[str]:
    """Create the environment at ``env``; return the pip command that installs into it.

    With pip 22.3 or later here, the environment is made without pip of its own and this pip
    installs into it (``pip --python``): ensurepip's copy of pip and setuptools was a tenth of
    the build. Otherwise the environment gets its own pip, as ``python -m venv`` makes it.
    """
    flags = ["install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    if _pip_version() >= (22, 3):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
        return [sys.executable, "-m", "pip", "--python", python, *flags]
    subprocess.run([sys.executable, "-m", "venv", env], check=True)
    return [python, "-m", "pip", *flags]


def _pip_version() -> tuple[int, ...]:
    from importlib import metadata

    try:
        return tuple(int(part) for part in metadata.version("pip").split(".")[:2] if part.isdigit())
    except metadata.PackageNotFoundError:
        return ()


def _fitscribe_install(wheels: str) -> str:
    """What pip installs for fitscribe: the requirement, or a wheel of this checkout built into
    ``wheels`` with this environment's setuptools (no isolated build environment to make, which
    was a third of the build), or the checkout itself when that build fails."""
    source = _fitscribe_requirement()
    if source.startswith("fitscribe[") or importlib.util.find_spec("setuptools") is None:
        return source
    root = source[: -len(_EXTRAS)]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, root],
                           capture_output=True, text=True)
    found = [name for name in os.listdir(wheels) if name.endswith(".whl")] if built.returncode == 0 else []
    return os.path.join(wheels, found[0]) + _EXTRAS if len(found) == 1 else source


_DOCKERFILE = """\
# Serves the model in ./model over MLflow's scoring protocol on port 8080.
# Build: docker build -t {image} .    Run: docker run -p 8080:8080 {image}
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/ml
{install_fitscribe}
COPY model/requirements.txt /opt/ml/model/requirements.txt
RUN grep -viE '^[[:space:]]*fitscribe([^a-z0-9_.-]|$)' /opt/ml/model/requirements.txt > /tmp/model-requirements.txt; \
    pip install -r /tmp/model-requirements.txt
COPY model /opt/ml/model
EXPOSE 8080
CMD ["fitscribe", "models", "serve", "-m", "/opt/ml/model", "--host", "0.0.0.0", "--port", "8080", "--env-manager", "local"]
"""


def generate_dockerfile(model_uri: str, output_directory: str, announce: Callable[[str], None] = print) -> str:
    """Write a Dockerfile and its build context (the model, and fitscribe when run from a checkout).

    Returns:
        The path of the Dockerfile written.
    """
    import yaml

    from fitscribe.flavors.loading import resolve_model_uri

    os.makedirs(output_directory, exist_ok=True)
    model_dir = os.path.join(output_directory, "model")
    if os.path.exists(model_dir):
        raise InvalidValueError(f"{output_directory!r} already holds a model/ folder; choose an empty --output-directory.")
    shutil.copytree(resolve_model_uri(model_uri), model_dir)
    python = "{}.{}".format(*sys.version_info[:2])
    env_file = os.path.join(model_dir, "python_env.yaml")
    if os.path.isfile(env_file):
        with open(env_file, encoding="utf-8") as fh:
            recorded = str((yaml.safe_load(fh) or {}).get("python", "")).split(".")
        if len(recorded) >= 2 and all(p.isdigit() for p in recorded[:2]):
            python = ".".join(recorded[:2])
    source = _fitscribe_requirement()
    if source.startswith("fitscribe["):
        install = f'RUN pip install "{source}"'
    else:
        src = os.path.join(output_directory, "fitscribe-src")
        root = source[: -len(_EXTRAS)]
        shutil.copytree(root, src, ignore=shutil.ignore_patterns(".git", ".venv*", "__pycache__", "fitruns",
                                                                  "test-output", "*.egg-info", "tests", "benchmarks"))
        install = f'COPY fitscribe-src /opt/ml/fitscribe-src\nRUN pip install "/opt/ml/fitscribe-src{_EXTRAS}"'
    path = os.path.join(output_directory, "Dockerfile")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(_DOCKERFILE.format(python=python, install_fitscribe=install, image="my-model"))
    announce(f"Wrote {path} and its build context; build it with: docker build -t my-model {output_directory}")
    return path
