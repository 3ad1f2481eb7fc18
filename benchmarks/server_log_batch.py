"""log-batch requests of 1,000 metrics: ``fitscribe server`` vs ``mlflow server``, side by side.

Both servers run at once on this machine, each on a fresh SQLite file (``--postgres URI``: also on
two fresh PostgreSQL databases), one worker process each. The same client code (``http.client``,
one kept-alive connection per client process) sends each server ``--requests`` log-batch requests
per client, each 1,000 metrics (10 keys x 100 steps, new steps every request), from 1 and from 4
concurrent client processes, after a warm-up of 3 requests. Rounds alternate between the servers
(A, B, A, B...), and the printed figure is the median requests/s over the rounds, with fitscribe's
ratio (target: >= 5x).

    python benchmarks/server_log_batch.py [--requests 20] [--rounds 3] [--clients 1 4] [--postgres URI]
                                          [--request-ids]

The full MLflow server is not in .venv-mlflow (mlflow-skinny); build .venv-mlflow-server with
``bash scripts/mlflow_server_venv.sh``. Without it only fitscribe's figures are printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import BUILD_HINT, Server, create_run, mlflow_available, post  # noqa: E402

REQUEST_ID_HEADER = "X-Fitscribe-Request-Id"

KEYS, STEPS_PER_KEY = 10, 100  # 1,000 metrics per request


def _bodies(run_id: str, requests: int) -> list[bytes]:
    """Encoded log-batch bodies: 1,000 metrics each, new steps in every request."""
    now = int(time.time() * 1000)
    bodies = []
    for index in range(requests):
        metrics = [{"key": f"k{k}", "value": 0.5 * step + k, "timestamp": now, "step": index * STEPS_PER_KEY + step}
                   for k in range(KEYS) for step in range(STEPS_PER_KEY)]
        bodies.append(json.dumps({"run_id": run_id, "metrics": metrics}).encode())
    return bodies


def _client(port: int, requests: int, ids: bool, go: Any, ready: Any, results: Any) -> None:
    """One client process: its own run and connection; sends its requests once ``go`` is set."""
    bodies = _bodies(create_run(port), requests)
    headers = [{REQUEST_ID_HEADER: uuid.uuid4().hex} if ids else {} for _ in bodies]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    post(conn, "runs/log-batch", json.loads(bodies[0]) | {"metrics": []})  # connect and warm the handler
    ready.release()
    go.wait()
    started = time.perf_counter()
    for body, extra in zip(bodies, headers):
        post(conn, "runs/log-batch", body, extra)
    results.put((started, time.perf_counter()))
    conn.close()


def measure(port: int, clients: int, requests: int, ids: bool = False) -> float:
    """Return requests/s of ``clients`` concurrent client processes, ``requests`` each."""
    context = multiprocessing.get_context("fork")
    go, ready, results = context.Event(), context.Semaphore(0), context.Queue()
    workers = [context.Process(target=_client, args=(port, requests, ids, go, ready, results))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    go.set()
    spans = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return clients * requests / wall


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="log-batch requests per client per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server, taken in turns")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4], help="concurrent client processes")
    parser.add_argument("--postgres", metavar="URI", help="also on PostgreSQL: an admin URI (two databases are created)")
    parser.add_argument("--request-ids", action="store_true",
                        help=f"send {REQUEST_ID_HEADER} as fitscribe's client does (applied once; mlflow ignores it)")
    args = parser.parse_args()
    kinds = ["fitscribe"] + (["mlflow"] if mlflow_available() else [])
    if "mlflow" not in kinds:
        print(f"mlflow server not found; fitscribe only. To compare, {BUILD_HINT}")
    stores = [("sqlite", {kind: None for kind in kinds})]
    if args.postgres:
        stores.append(("postgresql", {kind: _fresh_database(args.postgres, f"bench_{kind}") for kind in kinds}))
    print(f"log-batch of {KEYS * STEPS_PER_KEY} metrics, {args.requests} requests per client, {args.rounds} rounds "
          f"in turns, 1 server worker each{', with request ids' if args.request_ids else ''}; "
          f"machine: {os.cpu_count()} CPUs")
    print(f"{'store':<11}{'clients':>8}" + "".join(f"{kind + ' req/s':>18}" for kind in kinds)
          + ("   fitscribe / mlflow" if len(kinds) == 2 else ""))
    for store_name, uris in stores:
        with tempfile.TemporaryDirectory() as tmp:
            servers = {}
            try:
                for kind in kinds:
                    uri = uris[kind] or f"sqlite:///{os.path.join(tmp, kind + '.db')}"
                    servers[kind] = Server(kind, uri, os.path.join(tmp, f"{kind}-artifacts"))
                    servers[kind].start()
                    measure(servers[kind].port, 1, 3)  # warm-up, not counted: first-use imports and caches
                for clients in args.clients:
                    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
                    for round_ in range(args.rounds):
                        for kind in (kinds if round_ % 2 == 0 else kinds[::-1]):
                            rates[kind].append(measure(servers[kind].port, clients, args.requests, args.request_ids))
                    medians = {kind: statistics.median(rates[kind]) for kind in kinds}
                    row = f"{store_name:<11}{clients:>8}" + "".join(f"{medians[k]:>18.1f}" for k in kinds)
                    if len(kinds) == 2:
                        row += f"   {medians['fitscribe'] / medians['mlflow']:.1f}x"
                    print(row, flush=True)
            finally:
                for server in servers.values():
                    server.stop()
    if args.postgres:
        for kind in kinds:
            _fresh_database(args.postgres, f"bench_{kind}", create=False)  # dropped


def _fresh_database(admin_uri: str, name: str, create: bool = True) -> str:
    """Create (or recreate; or only drop) a PostgreSQL database with psycopg; return its URI."""
    import psycopg

    with psycopg.connect(admin_uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_uri.rpartition("/")
    return f"{base}/{name}"


if __name__ == "__main__":
    main()
