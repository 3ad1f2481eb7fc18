"""Runs table of the web UI over one experiment of 100,000 runs: first page and sort by a metric.

Populates an embedded store (a SQLite folder) through the public store API, one run at a time:
``create_run``, one ``log_batch`` (3 metrics, 3 params) and ``update_run_info`` to FINISHED (so live
refresh stays idle); every 50th run is the parent of the next two, so the nested view has work to
do. Populating 100,000 runs takes minutes; ``--store DIR`` keeps the store and reuses it next time.

Figures (medians; the machine may be shared, so read them as orders of magnitude):
- server: ``GET /experiments/<id>`` (the page), ``GET /ui/api/runs`` first page of 100 (nested view,
  default order), the same sorted by ``metrics.m1 DESC``, a deep page (offset 50,000), the keys for
  the column chooser (newest 1,000 runs), which rows have children (asked after the rows are shown),
  and the experiments-page summary (run count, capped at 1,000 without a store count);
- browser (Debian chromium, headless, a fresh context per visit): navigation start to
  DOMContentLoaded and to the table's ready mark (``performance.mark("runs-table-ready")``), and a
  click on the metric's header until the sorted table is shown, both read from the page's clock.
  The server runs in its own process. Targets (issue 6): first page under 1 s; sort under 1 s.

    python benchmarks/ui_runs_table.py                   # 100,000 runs in a temporary store
    python benchmarks/ui_runs_table.py --runs 10000      # smaller
    python benchmarks/ui_runs_table.py --store /tmp/ui100k   # keep (or reuse) the populated store
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)


def populate(store_dir: str, n_runs: int) -> str:
    """Fill (or reuse) a store with ``n_runs`` runs in experiment ``ui-bench``; return its id."""
    from fitscribe.backends import get_tracking_store
    from fitscribe.entities import Metric, Param, RunStatus, RunTag

    store = get_tracking_store(store_dir)
    existing = store.get_experiment_by_name("ui-bench")
    if existing is not None:
        print(f"reusing {store_dir} (experiment {existing.experiment_id})")
        return existing.experiment_id
    exp_id = store.create_experiment("ui-bench")
    rng = random.Random(7)
    start = time.perf_counter()
    now = int(time.time() * 1000)
    parent = None
    for i in range(n_runs):
        tags = [RunTag("mlflow.parentRunId", parent)] if parent and i % 50 in (1, 2) else []
        run = store.create_run(exp_id, "bench", now + i, tags, f"run-{i}")
        run_id = run.info.run_id
        metrics = [Metric(f"m{k}", rng.random(), now + i, 0) for k in range(1, 4)]
        params = [Param(f"p{k}", rng.choice("abcd")) for k in range(1, 4)]
        store.log_batch(run_id, metrics=metrics, params=params)
        store.update_run_info(run_id, status=RunStatus.FINISHED, end_time=now + i + 1000)
        if i % 50 == 0:
            parent = run_id
        if (i + 1) % 10_000 == 0:
            rate = (i + 1) / (time.perf_counter() - start)
            print(f"  {i + 1:,} runs ({rate:,.0f} runs/s)", flush=True)
    store.close()
    return exp_id


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def server_figures(url: str, exp_id: str, repeats: int) -> dict[str, float]:
    """Time the page and the JSON requests the runs table makes."""
    import httpx

    base = {"experiment_ids": exp_id, "nested": "1", "max_results": "100"}
    with httpx.Client(base_url=url, timeout=120) as http:
        def get(path: str, params: dict[str, str] | None = None) -> Any:
            answer = http.get(path, params=params)
            answer.raise_for_status()
            return answer

        from fitscribe.search import encode_page_token

        deep = encode_page_token(50_000)
        return {
            "page_html_ms": median_ms(lambda: get(f"/experiments/{exp_id}"), repeats),
            "first_page_ms": median_ms(lambda: get("/ui/api/runs", base), repeats),
            "first_page_flat_ms": median_ms(lambda: get("/ui/api/runs", {**base, "nested": "0"}), repeats),
            "sorted_metric_ms": median_ms(lambda: get("/ui/api/runs", {**base, "order_by": "metrics.`m1` DESC"}), repeats),
            "sorted_max_metric_ms": median_ms(lambda: get("/ui/api/runs", {**base, "order_by": "max(metrics.`m1`) DESC"}), repeats),
            "deep_page_ms": median_ms(lambda: get("/ui/api/runs", {**base, "page_token": deep}), repeats),
            "columns_ms": median_ms(lambda: get("/ui/api/runs/columns", {"experiment_ids": exp_id}), repeats),
            "has_children_ms": median_ms(lambda: get("/ui/api/runs/has-children", {
                "experiment_ids": exp_id, "run_ids": ",".join(r["run_id"] for r in get("/ui/api/runs", base).json()["runs"])}), repeats),
            "experiments_summary_ms": median_ms(lambda: get("/ui/api/experiments/summary", {"ids": exp_id}), repeats),
        }


def browser_figures(url: str, exp_id: str, repeats: int) -> dict[str, float]:
    """Time the runs page and a sort by a metric in headless chromium, from the page's own clock
    (``performance`` marks), each visit in a fresh context (empty cache and localStorage)."""
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    marks = "performance.getEntriesByName('runs-table-ready').map((e) => e.startTime)"
    loads, dcls, sorts = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
        for i in range(repeats + 1):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{url}/experiments/{exp_id}", wait_until="domcontentloaded")
            page.wait_for_selector("#runs-table[data-ready] tbody tr", timeout=120_000)
            dcl = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
            ready = page.evaluate(marks)[0]
            page.wait_for_selector("#columns-panel[data-keys]", state="attached", timeout=120_000)
            header = page.locator("#runs-table th[data-order='metrics.`m1`']")
            before = len(page.evaluate(marks))
            clicked = page.evaluate("performance.now()")
            header.click()
            page.wait_for_selector("#runs-table[data-ready] th.sorted-desc", timeout=120_000)
            sorted_at = page.evaluate(marks)[before]
            if i:  # the first round warms the server and the browser's code cache
                loads.append(ready)
                dcls.append(dcl)
                sorts.append(sorted_at - clicked)
            context.close()
        browser.close()
    return {"browser_dcl_ms": statistics.median(dcls), "browser_ready_ms": statistics.median(loads),
            "browser_sort_ms": statistics.median(sorts)}


def serve(store_dir: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``fitscribe server`` on a free port in its own process (no GIL shared with the browser
    driver); return the process and its URL."""
    command = [sys.executable, "-m", "fitscribe", "server", "--backend-store-uri", store_dir, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        process.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    import httpx

    for _ in range(400):
        try:
            httpx.get(match.group(0) + "/health")
            break
        except httpx.ConnectError:
            time.sleep(0.05)
    return process, match.group(0)


def main() -> None:
    """Populate (or reuse) the store, serve it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--store", help="store folder to keep and reuse (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = args.store or os.path.join(tmp, "store")
        t0 = time.perf_counter()
        exp_id = populate(store_dir, args.runs)
        print(f"store ready in {time.perf_counter() - t0:.1f} s")
        process, url = serve(store_dir)
        try:
            figures = server_figures(url, exp_id, args.repeats)
            if not args.no_browser:
                figures.update(browser_figures(url, exp_id, args.repeats))
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"\nruns table over {args.runs:,} runs (medians of {args.repeats}):")
    for key, value in figures.items():
        print(f"  {key:<26} {value:9.1f} ms")


if __name__ == "__main__":
    main()
