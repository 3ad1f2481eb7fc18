"""Tracking servers for the server benchmarks: ``fitscribe server`` and ``mlflow server`` as subprocesses.

Standard library only. Each server gets a fresh SQLite file (or a database URI) and a free port on
127.0.0.1, and counts as started when ``GET /health`` answers 200. The full MLflow server lives in
``.venv-mlflow-server`` (``bash scripts/mlflow_server_venv.sh``); benchmarks skip it, saying how to
build it, when it is missing.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLFLOW_SERVER_VENV = os.environ.get("FITSCRIBE_MLFLOW_SERVER_VENV", os.path.join(REPO_ROOT, ".venv-mlflow-server"))
MLFLOW_BIN = os.path.join(MLFLOW_SERVER_VENV, "bin", "mlflow")
BUILD_HINT = "build it with: bash scripts/mlflow_server_venv.sh   (MLflow 3.17.2 with `mlflow server`)"
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def mlflow_available() -> bool:
    """True when the full MLflow server is installed in its benchmark venv."""
    return os.access(MLFLOW_BIN, os.X_OK)


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(kind: str, store_uri: str, artifacts: str, port: int, workers: int = 1) -> list[str]:
    """The command line starting ``kind`` ("fitscribe" or "mlflow") on ``store_uri``."""
    if kind == "fitscribe":
        return [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", store_uri,
                "--artifacts-destination", artifacts, "--port", str(port), "--workers", str(workers)]
    return [MLFLOW_BIN, "server", "--backend-store-uri", store_uri, "--artifacts-destination", artifacts,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


class Server:
    """One server subprocess; :meth:`start` returns the seconds until ``/health`` answered."""

    def __init__(self, kind: str, store_uri: str, artifacts: str, workers: int = 1) -> None:
        self.kind = kind
        self.store_uri = store_uri
        self.artifacts = artifacts
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start the server and wait for ``/health``; return the seconds that took."""
        env = {**os.environ, **MLFLOW_ENV}
        started = time.perf_counter()
        self.process = subprocess.Popen(server_command(self.kind, self.store_uri, self.artifacts, self.port,
                                                       self.workers),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        while True:
            if health(self.port):
                return time.perf_counter() - started
            if self.process.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError(f"{self.kind} server did not start: {' '.join(self.process.args)}")  # type: ignore[arg-type]
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def health(port: int) -> bool:
    """True when ``GET /health`` on the port answers 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def post(conn: http.client.HTTPConnection, endpoint: str, body: bytes | dict[str, Any],
         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST a JSON body to ``/api/2.0/mlflow/<endpoint>`` on a kept-alive connection; return the answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", f"/api/2.0/mlflow/{endpoint}", body=data,
                 headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"{endpoint}: HTTP {response.status}: {payload[:300]!r}")
    return json.loads(payload) if payload else {}


def create_run(port: int) -> str:
    """Create a run in the Default experiment; return its id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        answer = post(conn, "runs/create", {"experiment_id": "0", "start_time": int(time.time() * 1000)})
        return str(answer["run"]["info"]["run_id"])
    finally:
        conn.close()
