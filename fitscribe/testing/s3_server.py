"""An S3-protocol server on loopback for tests and benchmarks: moto's server mode in a child process.

moto keeps objects in its own memory, so it runs in a separate process: the memory of the process
under test then shows only what fitscribe itself holds. Needs ``moto[server]`` (the dev extra).

    with MotoS3Server() as server:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = server.endpoint_url
        server.create_bucket("artifacts")
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import IO, Any

__all__ = ["MotoS3Server", "FAKE_CREDENTIALS"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials moto accepts; set them in the environment of the process talking to the server."""

_CHILD = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin (or dies)
server.stop()
"""


class MotoS3Server:
    """moto's S3 server on 127.0.0.1, a free port, in a child process; a context manager.

    Attributes:
        endpoint_url: ``http://127.0.0.1:<port>``, set once started.
    """

    def __init__(self) -> None:
        self.endpoint_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> "MotoS3Server":
        """Start the server and wait until it listens.

        Raises:
            RuntimeError: The child process did not start (moto missing, or it crashed).
        """
        env = {**os.environ, **FAKE_CREDENTIALS}
        self._log = tempfile.TemporaryFile()  # moto's request log: a file, so it never blocks on a full pipe
        self._process = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"moto's S3 server did not start (pip install 'moto[server]'): {line!r}\n{log}")
        self.endpoint_url = f"http://127.0.0.1:{line}"
        return self

    def client(self) -> Any:
        """Return a boto3 S3 client for this server (with :data:`FAKE_CREDENTIALS`)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint_url)

    def create_bucket(self, name: str) -> None:
        """Create a bucket on the server."""
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server (closing its stdin ends it; killed if it lingers)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            if process.stdout:
                process.stdout.close()
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> "MotoS3Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
