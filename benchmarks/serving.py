"""Model serving: requests/s and latency of one-row JSON predictions, and start to first ``/ping``.

A scikit-learn LogisticRegression (iris) is saved once; ``fitscribe models serve`` and, with
``--mlflow-python``, ``mlflow models serve --env-manager local`` serve the same folder, in turns.
Four client threads send ``{"dataframe_split": ...}`` requests of one row over keep-alive
connections for ``--seconds`` each; the table gives requests/s and p50/p99 latency as the clients
saw them, the server's CPU time per request (comparable on a busy machine, where wall-clock rates
are not), and the wall time from spawning the server to its first answered ``GET /ping``.
Targets (issue 15): at least 3x MLflow's requests/s, p99 under 5 ms, start under 1 s.

    python benchmarks/serving.py [--seconds 5] [--threads 4] [--mlflow-python .venv-mlflow/bin/python]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}).encode()


def save_model(folder: str) -> None:
    """Train and save the iris LogisticRegression with fitscribe (both servers load this folder)."""
    code = (
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "import fitscribe.flavors.sklearn as fsk\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        f"fsk.save_model(LogisticRegression(max_iter=500).fit(X, y), {folder!r}, input_example=X.head(2))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(kind: str, folder: str, mlflow_python: str | None) -> tuple[subprocess.Popen[bytes], int, float]:
    """Spawn a server; return it, its port and the seconds until ``/ping`` first answered."""
    port = free_port()
    env = dict(os.environ)
    if kind == "fitscribe":
        argv = [sys.executable, "-m", "fitscribe", "models", "serve", "-m", folder, "--port", str(port)]
    else:
        assert mlflow_python is not None
        bin_dir = os.path.dirname(mlflow_python)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        argv = [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", folder, "--env-manager", "local",
                "-p", str(port)]
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc, port, time.perf_counter() - began
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} server exited with {proc.returncode}")
            time.sleep(0.01)


def load(port: int, seconds: float, threads: int) -> tuple[float, list[float]]:
    """Send requests from ``threads`` threads for ``seconds``; return requests/s and latencies (s)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    def client(out: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            conn.request("POST", "/invocations", BODY, headers)
            response = conn.getresponse()
            response.read()
            out.append(time.perf_counter() - t0)
            if response.status != 200:
                raise SystemExit(f"answer {response.status}")
        conn.close()

    workers = [threading.Thread(target=client, args=(latencies[i],)) for i in range(threads)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    return len(flat) / elapsed, flat


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc), else NaN."""
    if not os.path.isdir("/proc"):
        return float("nan")
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stats[entry] = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
    tree = {str(pid)}
    while True:
        grown = tree | {p for p, f in stats.items() if f[1] in tree}
        if grown == tree:
            break
        tree = grown
    return sum(sum(int(x) for x in stats[p][11:13]) for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, folder: str, args: argparse.Namespace) -> dict[str, float]:
    proc, port, to_ping = start(kind, folder, args.mlflow_python)
    try:
        load(port, 1.0, args.threads)  # warm up
        cpu_before = cpu_seconds(proc.pid)
        rate, lat = load(port, args.seconds, args.threads)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"requests/s": rate, "p50 ms": statistics.median(lat) * 1000,
            "p99 ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "server CPU ms/request": cpu / len(lat) * 1000, "start to /ping s": to_ping}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--mlflow-python", help="python of a venv with MLflow (and uvicorn) for the comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fitscribe-bench-serving-") as tmp:
        folder = os.path.join(tmp, "model")
        save_model(folder)
        results = {"fitscribe": measure("fitscribe", folder, args)}
        if args.mlflow_python:
            results["mlflow"] = measure("mlflow", folder, args)
    names = list(results)
    print(f"{'figure':<20}" + "".join(f"{n:>12}" for n in names) + ("   fitscribe/mlflow" if len(names) > 1 else ""))
    for key in results["fitscribe"]:
        cells = "".join(f"{results[n][key]:>12.2f}" for n in names)
        ratio = ""
        if len(names) > 1:
            a, b = results["fitscribe"][key], results["mlflow"][key]
            ratio = f"   {a / b:.2f}x" if key == "requests/s" else f"   {b / a:.2f}x less"
        print(f"{key:<20}{cells}{ratio}")


if __name__ == "__main__":
    main()
