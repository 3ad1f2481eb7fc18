"""Server start: from spawning ``fitscribe server`` to the first answered ``GET /health`` (target < 1 s).

Each start is a fresh subprocess on a fresh SQLite file; the median of ``--starts`` (5) is printed,
with the first answered ``runs/search`` (the store opened) as well, and the CPU time the server
process tree had used when ``/health`` first answered (Linux; on a busy machine the wall time mostly
measures waiting for a CPU, the CPU time does not). With the full MLflow server built
(``bash scripts/mlflow_server_venv.sh``), ``mlflow server`` is timed the same way, in turns, for scale.

    python benchmarks/server_start.py [--starts 5]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import BUILD_HINT, Server, mlflow_available, post  # noqa: E402


def _stat(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and all its descendants (Linux), else NaN."""
    if not os.path.isdir("/proc"):
        return float("nan")
    stats: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[entry] = _stat(entry)
            except OSError:
                continue
    tree, total = {str(pid)}, 0.0
    while True:  # add children until none is new
        grown = tree | {p for p, fields in stats.items() if fields[1] in tree}
        if grown == tree:
            break
        tree = grown
    for p in tree:
        if p in stats:
            total += sum(int(f) for f in stats[p][11:15])
    return total / os.sysconf("SC_CLK_TCK")


def one_start(kind: str, tmp: str, index: int) -> tuple[float, float, float]:
    """Start a server; return seconds to the first /health answer, CPU seconds by then, and seconds
    to the first store answer."""
    server = Server(kind, f"sqlite:///{os.path.join(tmp, f'{kind}-{index}.db')}", os.path.join(tmp, f"art-{index}"))
    started = time.perf_counter()
    try:
        to_health = server.start()
        assert server.process is not None
        cpu = cpu_seconds(server.process.pid)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        post(conn, "runs/search", {"experiment_ids": ["0"], "max_results": 1})
        conn.close()
        return to_health, cpu, time.perf_counter() - started
    finally:
        server.stop()


def main() -> None:
    """Time the starts in turns and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    kinds = ["fitscribe"] + (["mlflow"] if mlflow_available() else [])
    if "mlflow" not in kinds:
        print(f"mlflow server not found; fitscribe only. To compare, {BUILD_HINT}")
    times: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.starts):
            for kind in (kinds if index % 2 == 0 else kinds[::-1]):
                times[kind].append(one_start(kind, tmp, index))
    print(f"server start to first answer, median of {args.starts} fresh starts in turns ({os.cpu_count()} CPUs)")
    for kind in kinds:
        health = statistics.median(t[0] for t in times[kind])
        cpu = statistics.median(t[1] for t in times[kind])
        store = statistics.median(t[2] for t in times[kind])
        print(f"  {kind:<10} /health {health * 1000:8.0f} ms (CPU {cpu * 1000:6.0f} ms)   "
              f"first runs/search {store * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
