"""What the security middleware costs per request: log-batch requests of 100 metrics over HTTP, and
the middleware alone in front of an app that does nothing.

Four apps on fresh SQLite stores, each behind a uvicorn server on 127.0.0.1 in this process:
``none`` (the security layer removed), ``default`` (Host check, CORS, size limits; no auth),
``token`` (plus bearer-token auth, a sha256 token hash) and ``basic`` (plus basic auth, a PBKDF2
password hash of 600,000 iterations: checked once, then remembered). Rounds take the apps in turns
(A, B, C, D, A, B...); each figure is the median over rounds of the median request time, with the
difference to ``none``. The in-process figure calls the middleware directly (no network, no store).

    python benchmarks/server_security.py [--requests 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import statistics
import tempfile
import time
from typing import Any

from fitscribe.server import create_app
from fitscribe.server.auth import Credentials, hash_secret, new_token
from fitscribe.server.run import ThreadedServer
from fitscribe.server.security import SecurityConfig, SecurityMiddleware, SecurityPolicy

API = "/api/2.0/mlflow"
PASSWORD = "benchmark-password"


def _post(conn: http.client.HTTPConnection, endpoint: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    conn.request("POST", f"{API}/{endpoint}", body, {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{endpoint}: HTTP {response.status}: {data[:300]!r}")
    result: dict[str, Any] = json.loads(data)
    return result


class Target:
    """One app behind a server, a connection to it, a run and the headers to send."""

    def __init__(self, name: str, security: SecurityConfig | None, headers: dict[str, str], root: str) -> None:
        app = create_app(f"{root}/{name}/store", f"{root}/{name}/artifacts", security=security)
        if name == "none":
            app.user_middleware = []  # the security layer removed: the baseline
        self.name, self.headers = name, headers
        self.server = ThreadedServer(app)
        self.server.start()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        run = _post(self.conn, "runs/create", b'{"experiment_id": "0"}', headers)
        self.run_id = run["run"]["info"]["run_id"]
        self.step = 0

    def round(self, requests: int) -> float:
        """Send ``requests`` log-batch requests of 100 metrics; return the median seconds per request."""
        times = []
        now = int(time.time() * 1000)
        for _ in range(requests):
            metrics = [{"key": f"k{k}", "value": 0.5 * k, "timestamp": now, "step": self.step} for k in range(100)]
            self.step += 1
            body = json.dumps({"run_id": self.run_id, "metrics": metrics}).encode()
            started = time.perf_counter()
            _post(self.conn, "runs/log-batch", body, self.headers)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def close(self) -> None:
        self.conn.close()
        self.server.stop()


def _targets(root: str) -> list[Target]:
    token, token_hash = new_token()
    credentials = Credentials(users={"bench": (hash_secret(PASSWORD), True)}, tokens={"ci": (token_hash, True)})
    auth = SecurityConfig(credentials=credentials)
    basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    return [Target("none", None, {}, root), Target("default", SecurityConfig(), {}, root),
            Target("token", auth, {"Authorization": f"Bearer {token}"}, root),
            Target("basic", auth, {"Authorization": basic}, root)]


def in_process(calls: int) -> dict[str, float]:
    """Microseconds per call of the middleware in front of an app that answers nothing."""
    token, token_hash = new_token()
    credentials = Credentials(users={}, tokens={"ci": (token_hash, True)})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        return None

    headers = [(b"host", b"127.0.0.1:5000"), (b"content-type", b"application/json"), (b"content-length", b"2")]
    out = {}
    for name, config, extra in [("default", SecurityConfig(), []),
                                ("token", SecurityConfig(credentials=credentials),
                                 [(b"authorization", f"Bearer {token}".encode())])]:
        middleware = SecurityMiddleware(app, SecurityPolicy(config))
        scope = {"type": "http", "method": "POST", "path": f"{API}/runs/log-batch", "headers": headers + extra}

        async def loop() -> float:
            await middleware(dict(scope), receive, send)  # the first call verifies the token
            started = time.perf_counter()
            for _ in range(calls):
                await middleware(dict(scope), receive, send)
            return (time.perf_counter() - started) / calls * 1e6

        out[name] = asyncio.run(loop())
    return out


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="log-batch requests per app per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000, help="in-process middleware calls")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fitscribe-bench-security-") as root:
        targets = _targets(root)
        try:
            for target in targets:
                target.round(10)  # warm up (the basic target checks its PBKDF2 hash here, once)
            medians: dict[str, list[float]] = {t.name: [] for t in targets}
            for index in range(args.rounds):
                order = targets[index % len(targets):] + targets[:index % len(targets)]  # rotate who goes first
                for target in order:
                    medians[target.name].append(target.round(args.requests))
        finally:
            for target in targets:
                target.close()
    base = statistics.median(medians["none"])
    print(f"log-batch of 100 metrics over HTTP, {args.requests} requests x {args.rounds} rounds per app, in turns:")
    for name, values in medians.items():
        value = statistics.median(values)
        print(f"  {name:8s} {value * 1e6:8.0f} us/request  ({(value - base) * 1e6:+6.0f} us vs none)")
    for name, micros in in_process(args.calls).items():
        print(f"middleware alone ({name}): {micros:.1f} us/call")


if __name__ == "__main__":
    main()
