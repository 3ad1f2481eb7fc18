"""Bytes a browser transfers to load the compare page: on the first visit (cold) and after it (warm).

Two runs with a few metrics (10,000 points each) and params are compared in Debian's Chromium
(Playwright, headless). Bytes are what went over the wire (Chrome DevTools' ``encodedDataLength``:
headers and compressed bodies; answers from the browser's cache count 0), summed until the page
says it is ready (every chart, the parallel coordinates and the scatter drawn). plotly.js is served
under a versioned URL as immutable, so the warm visit should not fetch it again.
fitscribe only (``--mlflow-python`` is ignored). Target (issue #6): under 2 MB warm.
"""

from __future__ import annotations

import time
from typing import Any

import _browser
import _harness as h


def workload(bench: h.Bench, p: dict) -> dict:
    if bench.lib != "fitscribe":
        return {}
    client, Metric = bench.client, bench.Metric
    exp = client.create_experiment("bench")
    run_ids = []
    now = int(time.time() * 1000)
    for r in range(2):
        run_id = client.create_run(exp, run_name=f"run-{r}").info.run_id
        for k in range(p["metrics"]):
            client.log_batch(run_id, metrics=[Metric(f"metric_{k}", 1.0 / (s + 1 + r), now + s, s) for s in range(p["steps"])])
        for k in range(10):
            client.log_param(run_id, f"param_{k}", str(k * (r + 1)))
        run_ids.append(run_id)
    client.flush()
    with _browser.serve(bench.tmp) as url:
        return _visits(f"{url}/compare?run_ids={','.join(run_ids)}")


class _Wire:
    """Counts bytes and requests reported by the DevTools protocol's Network domain."""

    def __init__(self, session: Any) -> None:
        self.bytes = 0
        self.requests = 0
        self.cached = 0
        self.largest: dict[str, int] = {}
        self._urls: dict[str, str] = {}
        session.on("Network.requestWillBeSent", self._sent)
        session.on("Network.requestServedFromCache", self._from_cache)
        session.on("Network.loadingFinished", self._finished)
        session.send("Network.enable")

    def _sent(self, event: dict) -> None:
        self.requests += 1
        self._urls[event["requestId"]] = event["request"]["url"]

    def _from_cache(self, event: dict) -> None:
        self.cached += 1

    def _finished(self, event: dict) -> None:
        size = int(event["encodedDataLength"])
        self.bytes += size
        url = self._urls.get(event["requestId"], "?").split("?")[0].rsplit("/", 1)[-1] or "/"
        self.largest[url] = self.largest.get(url, 0) + size

    def reset(self) -> None:
        self.bytes = self.requests = self.cached = 0
        self.largest = {}


def _visits(url: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser.launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        wire = _Wire(context.new_cdp_session(page))
        figures: dict[str, Any] = {}
        for visit in ("cold", "warm"):
            wire.reset()
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            page.wait_for_load_state("networkidle")
            figures[f"{visit}_s"] = time.perf_counter() - start
            figures[f"{visit}_kb"] = wire.bytes / 1024
            figures[f"{visit}_requests"] = wire.requests
            figures[f"{visit}_cached"] = wire.cached
            top = sorted(wire.largest.items(), key=lambda item: -item[1])[:3]
            figures[f"{visit}_top"] = ", ".join(f"{name} {size / 1024:.0f} KB" for name, size in top)
        browser.close()
    return figures


FIGURES = [
    h.Figure("cold_kb", "first visit: transferred", "KB", "lower"),
    h.Figure("cold_requests", "  requests", "", "info"),
    h.Figure("cold_top", "  largest", "", "info"),
    h.Figure("cold_s", "  until ready", "s", "lower"),
    h.Figure("warm_kb", "second visit: transferred (target < 2,048)", "KB", "lower"),
    h.Figure("warm_requests", "  requests", "", "info"),
    h.Figure("warm_cached", "  served from the browser's cache", "", "info"),
    h.Figure("warm_top", "  largest", "", "info"),
    h.Figure("warm_s", "  until ready", "s", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "compare page of two runs: bytes over the wire, first and second visit (fitscribe only)",
           workload, FIGURES, lambda quick: {"metrics": 3 if quick else 6, "steps": 2_000 if quick else 10_000})
