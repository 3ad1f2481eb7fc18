"""A training loop calling ``fitscribe.log_metric`` 10,000 times against a local ``fitscribe server``.

The added wall time is the loop's time with logging minus the same loop without it (target: < 1 s).
Each measurement runs in a fresh Python process that has imported fitscribe (not timed); the timed
region is ``start_run`` .. ``end_run``, and ``end_run`` returns once the server has every point, so
first-use costs (httpx, the connection, creating the run) are counted. The loop alone (the calls as
the training loop feels them) is printed too. Bare and tracked runs alternate (A, B, A, B...);
medians are printed.

    python benchmarks/server_log_metric_loop.py [--calls 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import Server  # noqa: E402

WORKER = r"""
import json, math, sys, time
import fitscribe

url, calls, tracked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
fitscribe.set_tracking_uri(url)
started = time.perf_counter()
if tracked:
    fitscribe.start_run()
loop_started = time.perf_counter()
total = 0.0
for step in range(calls):
    loss = math.exp(-step / calls) + 0.01 * (step % 7)  # the "training step"
    total += loss
    if tracked:
        fitscribe.log_metric("loss", loss, step=step)
loop = time.perf_counter() - loop_started
if tracked:
    fitscribe.end_run()  # returns once the server has every point
print(json.dumps({"wall": time.perf_counter() - started, "loop": loop}))
"""


def run_worker(url: str, calls: int, tracked: bool) -> dict[str, float]:
    """Run one loop in a fresh process; return its wall and loop seconds."""
    out = subprocess.run([sys.executable, "-c", WORKER, url, str(calls), "1" if tracked else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    """Start a server, run bare and tracked loops in turns, print the added time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env_journal = os.path.join(tmp, "journal")
        os.environ["FITSCRIBE_REST_JOURNAL_DIR"] = env_journal
        with Server("fitscribe", f"sqlite:///{os.path.join(tmp, 'tracking.db')}", os.path.join(tmp, "artifacts")) as server:
            url = f"http://127.0.0.1:{server.port}"
            run_worker(url, 100, True)  # warm-up: the server's first-use imports
            bare, tracked = [], []
            for _ in range(args.rounds):
                bare.append(run_worker(url, args.calls, False))
                tracked.append(run_worker(url, args.calls, True))
    added_wall = statistics.median(t["wall"] - b["wall"] for b, t in zip(bare, tracked))
    added_loop = statistics.median(t["loop"] - b["loop"] for b, t in zip(bare, tracked))
    print(f"{args.calls} log_metric calls via the fluent API against a local fitscribe server, "
          f"{args.rounds} rounds in turns ({os.cpu_count()} CPUs)")
    print(f"  bare loop                         {statistics.median(b['wall'] for b in bare) * 1000:8.1f} ms")
    print(f"  tracked, start_run..end_run        {statistics.median(t['wall'] for t in tracked) * 1000:8.1f} ms")
    print(f"  added wall time (target < 1 s)     {added_wall * 1000:8.1f} ms")
    print(f"  added inside the loop only         {added_loop * 1000:8.1f} ms "
          f"({added_loop / args.calls * 1e6:.1f} us per call)")


if __name__ == "__main__":
    main()
