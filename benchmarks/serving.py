"""Model serving: requests/s and latency of one-row JSON predictions, and start to first ``/ping``.

A scikit-learn LogisticRegression (iris) is saved once; ``fitscribe models serve`` and, with
``--mlflow-python``, ``mlflow models serve --env-manager local`` serve the same folder, in turns
(alternating, ``--rounds`` times, each round a freshly started server; the table shows medians).
Four client threads, one keep-alive connection each, send the same ``{"dataframe_split": ...}``
one-row request for ``--seconds`` after a one-second warm-up. Figures: requests/s, p50/p99
until-answer latency as the clients saw it, the server's CPU time per request (comparable on a
busy machine, where wall-clock rates are not), the wall time from spawning the server to its first
answered ``GET /ping`` and to its first answered prediction (the request sent as soon as /ping
answered: when a user can read a result), the server's CPU time until that /ping (comparable
under load), and the 1-minute load average when each figure was taken (the machine is shared:
compare figures taken at the same load, alternating servers).

The load generator is ``wrk`` (Debian's package: ``apt-get install wrk``; native, 4 threads that
take little CPU from the two servers measured) when it is on PATH, else a Python client (4
threads of ``http.client``, which take a core and the GIL from the machine: lower figures for
both servers). ``--client`` picks one; the choice is printed.

``--baseline PATH`` also serves the model with the fitscribe checkout at PATH (e.g. a ``git
worktree`` of an older commit), for before/after figures under the same load.

Targets (issue 15): at least 3x MLflow's requests/s, p99 under 5 ms, start to /ping under 1 s.

    python benchmarks/serving.py [--seconds 5] [--rounds 3] [--threads 4] [--client auto|wrk|python]
        [--mlflow-python .venv-mlflow/bin/python] [--baseline /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}).encode()
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
"""
FIGURES = ("requests/s", "p50 ms", "p99 ms", "server CPU ms/request", "start to /ping s", "start to 1st prediction s",
           "CPU to /ping s")


def save_model(folder: str) -> None:
    """Train and save the iris LogisticRegression with fitscribe (every server loads this folder)."""
    code = (
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "import fitscribe.flavors.sklearn as fsk\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        f"fsk.save_model(LogisticRegression(max_iter=500).fit(X, y), {folder!r}, input_example=X.head(2))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_argv(kind: str, folder: str, port: int, args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment that serve ``folder`` with the server ``kind``."""
    env = dict(os.environ)
    if kind == "mlflow":
        bin_dir = os.path.dirname(args.mlflow_python)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        return [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", folder, "--env-manager", "local",
                "-p", str(port)], env
    if kind == "baseline":
        env["PYTHONPATH"] = os.path.abspath(args.baseline)
    return [sys.executable, "-m", "fitscribe", "models", "serve", "-m", folder, "--port", str(port)], env


def start(kind: str, folder: str, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int, dict[str, float]]:
    """Spawn a server; return it, its port, and the seconds until ``/ping`` first answered 200,
    until the prediction asked right then was answered, and of server CPU until that /ping."""
    port = free_port()
    argv, env = server_argv(kind, folder, port, args)
    began = time.perf_counter()
    # cwd: not this checkout, whose fitscribe `python -m` would import before --baseline's
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=os.path.dirname(folder))
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/ping")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                to_ping, cpu = time.perf_counter() - began, cpu_seconds(proc.pid)
                asked = time.perf_counter()  # the /proc scan above is not the server's time
                conn.request("POST", "/invocations", BODY, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"{kind} server answered {response.status} to the first prediction")
                return proc, port, {"start to /ping s": to_ping, "CPU to /ping s": cpu,
                                    "start to 1st prediction s": to_ping + time.perf_counter() - asked}
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} server exited with {proc.returncode}") from None
            time.sleep(0.005)


def load_wrk(port: int, seconds: float, threads: int, script: str) -> tuple[int, float, float, float]:
    """Run wrk; return (requests, seconds, p50 s, p99 s)."""
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{threads}", f"-d{seconds:g}s", "--timeout", "10s", "-s", script,
                           f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    requests, micros, p50, p99, errors = (int(x) for x in line.split()[1:])
    if errors:
        raise SystemExit(f"{errors} requests failed (non-2xx answers or socket errors)")
    return requests, micros / 1e6, p50 / 1e6, p99 / 1e6


def load_python(port: int, seconds: float, threads: int) -> tuple[int, float, float, float]:
    """Send requests from ``threads`` Python threads; return (requests, seconds, p50 s, p99 s)."""
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
    return len(flat), elapsed, statistics.median(flat), flat[min(len(flat) - 1, int(len(flat) * 0.99))]


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
    """Start one server, warm it up, load it; return its figures and the load average."""
    proc, port, started = start(kind, folder, args)
    run = ((lambda s: load_wrk(port, s, args.threads, args.wrk_script)) if args.client == "wrk"
           else (lambda s: load_python(port, s, args.threads)))
    try:
        run(1.0)  # warm up
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(proc.pid)
        requests, elapsed, p50, p99 = run(args.seconds)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"requests/s": requests / elapsed, "p50 ms": p50 * 1000, "p99 ms": p99 * 1000,
            "server CPU ms/request": cpu / requests * 1000, **started,
            "load": max(load_before, os.getloadavg()[0])}


def print_table(results: dict[str, list[dict[str, float]]]) -> None:
    """Print the medians of every figure side by side, and fitscribe's ratio to MLflow."""
    names = list(results)
    median = {n: {k: statistics.median(r[k] for r in results[n]) for k in (*FIGURES, "load")} for n in names}
    compare = "mlflow" in results
    print(f"\nmedians of {len(results[names[0]])} rounds")
    print(f"{'figure':<24}" + "".join(f"{n:>12}" for n in names) + ("   fitscribe vs mlflow" if compare else ""))
    for key in (*FIGURES, "load"):
        cells = "".join(f"{median[n][key]:>12.2f}" for n in names)
        ratio = ""
        if compare and key != "load":
            a, b = median["fitscribe"][key], median["mlflow"][key]
            ratio = f"   {a / b:.2f}x" if key == "requests/s" else f"   {b / a:.2f}x less"
        print(f"{key:<24}{cells}{ratio}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server, alternating (medians shown)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--mlflow-python", help="python of a venv with MLflow for the comparison")
    parser.add_argument("--baseline", help="a fitscribe checkout (e.g. a git worktree of an older commit) served too")
    args = parser.parse_args()
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    kinds = ["fitscribe"] + (["baseline"] if args.baseline else []) + (["mlflow"] if args.mlflow_python else [])
    print(f"load generator: {args.client} ({args.threads} threads, one connection each); {args.seconds:g} s per "
          f"round after a 1 s warm-up; {os.cpu_count()} cores")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="fitscribe-bench-serving-") as tmp:
        folder = os.path.join(tmp, "model")
        save_model(folder)
        args.wrk_script = os.path.join(tmp, "post.lua")
        with open(args.wrk_script, "w") as fh:
            fh.write(WRK_SCRIPT % BODY.decode())
        for round_number in range(args.rounds):
            for kind in kinds if round_number % 2 == 0 else kinds[::-1]:
                figures = measure(kind, folder, args)
                results[kind].append(figures)
                print(f"round {round_number + 1} {kind:<10} " + "  ".join(
                    f"{k} {figures[k]:.2f}" for k in (*FIGURES, "load")), flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
