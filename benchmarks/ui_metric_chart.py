"""The metric page on a 1,000,000-point history: the server's data request, then the browser's chart.

Server: ``GET /ui/api/metrics/series`` of one run (M4 down to 2,000 points) over real HTTP, cold
(first request of a fresh server) and warm (median), with the two steps inside it measured apart:
the columnar read of the packed chunks and the downsampling. Browser (Debian's Chromium through
Playwright, headless, software rendering): from the page's data request to the chart drawn
(``Plotly.react`` resolved), read from the page's ``window.__timings``; then a zoom to 1% of the steps
and the re-fetched, full-resolution chart. fitscribe only (``--mlflow-python`` is ignored).
Target (issue #6): chart drawn under 1 s after the page's data request.
"""

from __future__ import annotations

import statistics
import time

import _browser
import _harness as h


def workload(bench: h.Bench, p: dict) -> dict:
    if bench.lib != "fitscribe":
        return {}
    import httpx
    import numpy as np

    client, Metric = bench.client, bench.Metric
    run_id = client.create_run(client.create_experiment("bench"), run_name="long").info.run_id
    n, now = p["points"], int(time.time() * 1000)
    values = np.random.default_rng(0).random(n).tolist()
    values[n // 2] = 100.0  # one spike the chart must show
    for start in range(0, n, 100_000):
        client.log_batch(run_id, metrics=[Metric("loss", values[i], now + i, i) for i in range(start, min(n, start + 100_000))])
    client.flush()
    figures = _store_figures(bench, run_id, p["repeats"])
    with _browser.serve(bench.tmp) as url:
        series = f"{url}/ui/api/metrics/series?run_ids={run_id}&key=loss&points=2000"
        with httpx.Client(timeout=60) as http:
            start = time.perf_counter()
            answer = http.get(series, headers={"Accept-Encoding": "identity"})
            figures["request_cold_ms"] = (time.perf_counter() - start) * 1000
            figures["response_kb"] = len(answer.content) / 1024
            body = answer.json()["series"][0]
            figures["points_sent"] = len(body["x"])
            figures["spike_kept"] = 100.0 in body["y"]
            figures["response_gz_kb"] = int(http.get(series).headers["content-length"]) / 1024
            figures["request_ms"] = bench.median_seconds(lambda: http.get(series).raise_for_status(), p["repeats"]) * 1000
        figures.update(_browser_figures(f"{url}/metric?run_ids={run_id}&key=loss", n, p["repeats"]))
    return figures


def _store_figures(bench: h.Bench, run_id: str, repeats: int) -> dict:
    from fitscribe.backends.sql.metric_arrays import read_metric_arrays
    from fitscribe.server.ui.downsample import downsample_series

    store = bench.client.store
    arrays = read_metric_arrays(store, [run_id], "loss")[run_id]
    return {
        "read_arrays_ms": bench.median_seconds(lambda: read_metric_arrays(store, [run_id], "loss"), repeats) * 1000,
        "downsample_ms": bench.median_seconds(lambda: downsample_series(arrays.steps, arrays.values, 2000), repeats) * 1000,
        "history_points": len(arrays.steps),
    }


def _browser_figures(url: str, n: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    drawn, fetched, zoomed = [], [], []
    with sync_playwright() as p:
        browser = _browser.launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        for _ in range(repeats + 1):  # the first visit loads plotly.js; later ones take it from the cache
            page.goto(url)
            page.wait_for_selector("#metric-chart[data-fetches='1'][data-ready='1']", timeout=120_000)
            t = page.evaluate("window.__timings")
            drawn.append(t["drawn"] - t["request"])
            fetched.append(t["received"] - t["request"])
            page.evaluate("Plotly.relayout(document.getElementById('metric-chart'), "
                          f"{{'xaxis.range': [{n // 2 - n // 200}, {n // 2 + n // 200}]}})")
            page.wait_for_selector("#metric-chart[data-fetches='2'][data-ready='1']", timeout=120_000)
            t = page.evaluate("window.__timings")
            zoomed.append(t["drawn"] - t["request"])
        browser.close()
    return {
        "browser_first_ms": drawn[0],
        "browser_drawn_ms": statistics.median(drawn[1:]),
        "browser_fetch_ms": statistics.median(fetched[1:]),
        "browser_zoom_ms": statistics.median(zoomed[1:]),
    }


FIGURES = [
    h.Figure("history_points", "points in the history", "points", "info"),
    h.Figure("read_arrays_ms", "columnar read of the packed chunks (median)", "ms", "lower"),
    h.Figure("downsample_ms", "M4 downsampling to 2,000 points (median)", "ms", "lower"),
    h.Figure("request_cold_ms", "series request over HTTP, first of a fresh server", "ms", "lower"),
    h.Figure("request_ms", "series request over HTTP (median)", "ms", "lower"),
    h.Figure("response_kb", "  response size (uncompressed)", "KB", "info"),
    h.Figure("response_gz_kb", "  response size (gzip, as browsers get it)", "KB", "info"),
    h.Figure("points_sent", "  points sent", "points", "info"),
    h.Figure("spike_kept", "  the one spike is in the answer", "", "info"),
    h.Figure("browser_first_ms", "browser: data request -> chart drawn, first visit", "ms", "lower"),
    h.Figure("browser_drawn_ms", "browser: data request -> chart drawn (median; target < 1000)", "ms", "lower"),
    h.Figure("browser_fetch_ms", "  of which the request", "ms", "lower"),
    h.Figure("browser_zoom_ms", "browser: zoom to 1% -> full-resolution chart drawn (median)", "ms", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "metric page on one long history: server data request and browser chart (fitscribe only)",
           workload, FIGURES, lambda quick: {"points": 100_000 if quick else 1_000_000, "repeats": 3 if quick else 5})
