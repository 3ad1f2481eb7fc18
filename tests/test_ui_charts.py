"""Charts of the web UI: M4 downsampling, columnar history reads, the metric JSON API over HTTP, and the
compare and metric pages in a real Chromium (via _ui_support: direct fixture import)."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

from _ui_support import READY_TIMEOUT_MS, browser, page, screenshot, serve_app  # noqa: F401  (fixtures)
from fitscribe import Client
from fitscribe.backends.sql.metric_arrays import order_arrays, read_metric_arrays
from fitscribe.entities import Metric
from fitscribe.server.ui.downsample import downsample_m4, downsample_series, m4_indices

XSS_NAME = "<img src=x onerror=alert(1)>"


# -- downsampling (pure) ---------------------------------------------------------------------------
def _reference_m4(x: np.ndarray, y: np.ndarray, buckets: int) -> set[int]:
    """First, min, max and last index per equal-width bucket, the slow obvious way."""
    lo, hi = float(x[0]), float(x[-1])
    edges = [lo + (hi - lo) * (b / buckets) for b in range(1, buckets)]
    groups: dict[int, list[int]] = {}
    for i, xi in enumerate(x):
        groups.setdefault(sum(edge <= xi for edge in edges), []).append(i)
    kept: set[int] = set()
    for idx in groups.values():
        values = [y[i] for i in idx]
        kept.update((idx[0], idx[-1], idx[values.index(min(values))], idx[values.index(max(values))]))
    return kept


def test_m4_matches_a_per_bucket_reference() -> None:
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.integers(1, 5, 3000)).astype(np.float64)  # uneven spacing
    y = rng.normal(size=3000)
    kept = m4_indices(x, y, 37)
    assert set(kept.tolist()) == _reference_m4(x, y, 37)
    assert np.all(np.diff(kept) > 0)


def test_one_spike_among_a_million_points_is_kept() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(1_000_000)
    y[654_321] = 1e6
    y[123_457] = -1e6
    out = downsample_series(np.arange(1_000_000), y, points=2000)
    assert len(out.x) <= 2000
    assert out.y.max() == 1e6 and out.x[out.y.argmax()] == 654_321
    assert out.y.min() == -1e6 and out.x[out.y.argmin()] == 123_457
    assert (out.x[0], out.x[-1]) == (0, 999_999)  # first and last kept
    assert out.total == 1_000_000 and out.nonfinite == 0
    assert out.x.dtype.kind == "i"  # integer steps stay integers (exact in JSON)


def test_nan_and_infinities_are_reported_apart_never_dropped() -> None:
    y = np.linspace(0.0, 1.0, 10_000)
    y[[5, 6, 7000]] = np.nan
    y[100] = np.inf
    y[9999] = -np.inf
    out = downsample_series(np.arange(10_000), y, points=400)
    assert np.isfinite(out.y).all()
    assert out.nonfinite == 5 and out.total == 10_000
    assert out.nan.tolist() == [5, 6, 7000]
    assert out.pos_inf.tolist() == [100] and out.neg_inf.tolist() == [9999]
    assert out.x[-1] == 9998  # the last finite point


def test_many_nonfinite_points_are_thinned_to_one_per_bucket() -> None:
    y = np.ones(100_000)
    y[1::2] = np.nan  # 50,000 NaN: every bucket holds some
    out = downsample_series(np.arange(100_000), y, points=400)
    assert out.nonfinite == 50_000 and 90 <= len(out.nan) <= 100
    buckets = (out.nan * 100 // 100_000).astype(int)
    assert sorted(set(buckets.tolist())) == list(range(100)) and out.nan[0] == 1


def test_all_nan_series_and_empty_series() -> None:
    out = downsample_series([1, 2, 3], [math.nan] * 3)
    assert len(out.x) == 0 and out.nan.tolist() == [1, 2, 3] and out.nonfinite == 3
    empty = downsample_series([], [])
    assert empty.total == 0 and len(empty.x) == 0 and len(empty.nan) == 0


def test_range_selection_keeps_the_range_ends() -> None:
    x = np.arange(100_000)
    y = np.sin(x / 500.0)
    out = downsample_series(x, y, points=1000, x_min=20_000, x_max=30_000)
    assert out.x[0] == 20_000 and out.x[-1] == 30_000
    assert out.total == 10_001
    narrow = downsample_series(x, y, points=1000, x_min=20_000, x_max=20_300)
    assert narrow.x.tolist() == list(range(20_000, 20_301))  # fewer points than asked: all of them
    assert downsample_series(x, y, x_min=200_000).total == 0


@pytest.mark.parametrize("n", [1, 3, 4, 5, 999, 1000, 1001, 12_345])
@pytest.mark.parametrize("points", [4, 7, 100, 1000])
def test_output_size_bounds(n: int, points: int) -> None:
    buckets = points // 4
    noisy = downsample_series(np.arange(n), np.random.default_rng(n).normal(size=n), points=points)
    constant = downsample_series(np.arange(n), np.ones(n), points=points)
    if n <= 4 * buckets:  # nothing to reduce
        assert len(noisy.x) == len(constant.x) == n
    else:  # every bucket keeps its first and last point, and at most its min and max besides
        assert 2 * buckets <= len(noisy.x) <= 4 * buckets
        assert len(constant.x) == 2 * buckets


def test_unordered_x_are_sorted_and_index_points_into_the_input() -> None:
    x = np.array([5, 1, 4, 2, 3])
    y = np.array([50.0, 10.0, 40.0, 20.0, 30.0])
    out = downsample_series(x, y, points=100)
    assert out.x.tolist() == [1, 2, 3, 4, 5]
    assert y[out.index].tolist() == out.y.tolist()
    assert x[out.index].tolist() == out.x.tolist()


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="x has 2 values but y has 3"):
        downsample_series([1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="points must be at least 4"):
        downsample_series([1], [1.0], points=3)
    with pytest.raises(ValueError, match="swap them"):
        downsample_series([1], [1.0], x_min=5, x_max=1)
    with pytest.raises(ValueError, match="buckets must be at least 1"):
        downsample_m4([1], [1.0], 0)


def test_downsample_m4_for_sparklines() -> None:
    steps, values = downsample_m4(list(range(1000)), [float(i % 7) if i != 500 else 99.0 for i in range(1000)], 10)
    assert isinstance(steps, list) and isinstance(values, list)
    assert len(steps) <= 40 and 99.0 in values and steps[0] == 0 and steps[-1] == 999
    assert downsample_m4([1, 2, 3], [1.0, math.nan, 3.0], 5) == ([1, 3], [1.0, 3.0])


# -- columnar reads ----------------------------------------------------------------------------------
def test_order_arrays_orders_by_step_then_timestamp_keeping_logging_order() -> None:
    steps = np.array([2, 1, 1, 0, 1], dtype=np.int64)
    times = np.array([0, 9, 5, 3, 5], dtype=np.int64)
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    ordered = order_arrays(steps, times, values)
    assert ordered.values.tolist() == [3.0, 2.0, 4.0, 1.0, 0.0]
    assert ordered.steps.tolist() == [0, 1, 1, 1, 2]


def test_read_metric_arrays_equals_the_history(tracking_uri: str) -> None:
    client = Client(tracking_uri=tracking_uri)
    exp = client.create_experiment("arrays")
    run_id = client.create_run(exp).info.run_id
    empty_run = client.create_run(exp).info.run_id
    values = [math.nan, math.inf, -math.inf, -0.0, 1.5] + [float(i) for i in range(40_000)]
    points = [Metric("loss", v, 1000 + i, (i * 7919) % 20_000) for i, v in enumerate(values)]  # unordered, ties
    for start in range(0, len(points), 10_000):
        client.log_batch(run_id, metrics=points[start:start + 10_000])
    client.log_metric(run_id, "loss", 2.5, step=3, timestamp=1)
    client.flush()
    store = client.store
    found = read_metric_arrays(store, [run_id, empty_run], "loss")  # type: ignore[arg-type]
    history = client.get_metric_history(run_id, "loss")
    arrays = found[run_id]
    assert arrays.steps.tolist() == [m.step for m in history]
    assert arrays.timestamps.tolist() == [m.timestamp for m in history]
    assert np.array_equal(arrays.values, np.array([m.value for m in history]), equal_nan=True)
    assert len(found[empty_run].steps) == 0
    assert store.run_start_times([run_id, empty_run, "f" * 32]) == {
        run_id: client.get_run(run_id).info.start_time, empty_run: client.get_run(empty_run).info.start_time}
    part = read_metric_arrays(store, [run_id], "loss", 5000, 5100)[run_id]  # type: ignore[arg-type]
    inside = (part.steps >= 5000) & (part.steps <= 5100)
    assert part.steps[inside].tolist() == [m.step for m in history if 5000 <= m.step <= 5100]
    assert part.timestamps[inside].tolist() == [m.timestamp for m in history if 5000 <= m.step <= 5100]
    for start in range(0, 100_000, 10_000):  # an ordered history in chunks of at most 16,384 points
        client.log_batch(empty_run, metrics=[Metric("acc", 1.0, 0, s) for s in range(start, start + 10_000)])
    client.flush()
    zoomed = read_metric_arrays(store, [empty_run], "acc", 42_000, 42_100)[empty_run]  # type: ignore[arg-type]
    steps = zoomed.steps.tolist()
    assert set(range(42_000, 42_101)) <= set(steps) and len(steps) <= 2 * 16_384  # only chunks holding the range
    client.close()


# -- JSON API over HTTP --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def charts_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with two runs: A (named like an XSS payload) with a 20,000-point loss holding a spike,
    NaN and infinities, and B with a short loss; params lr (differs) and seed (equal)."""
    root = str(tmp_path_factory.mktemp("charts") / "store")
    client = Client(tracking_uri=root)
    exp = client.create_experiment("charts")
    a = client.create_run(exp, run_name=XSS_NAME).info.run_id
    b = client.create_run(exp, run_name="baseline").info.run_id
    start = client.get_run(a).info.start_time
    rng = np.random.default_rng(7)
    loss = (1.0 / np.arange(1, 20_001) + rng.random(20_000) * 0.01).tolist()
    loss[12_345] = 42.0
    loss[100], loss[200], loss[300] = math.nan, math.inf, -math.inf
    metrics = [Metric("loss", v, start + 10 * i, i) for i, v in enumerate(loss)]
    metrics += [Metric("acc", i / 100, start + 10 * i, i) for i in range(100)]
    client.log_batch(a, metrics=metrics)
    client.log_batch(b, metrics=[Metric("loss", 1.0 / (i + 1), start + i, i) for i in range(300)])
    for run_id, lr in ((a, "0.1"), (b, "0.01")):
        client.log_param(run_id, "lr", lr)
        client.log_param(run_id, "seed", "7")
        client.set_terminated(run_id)
    empty = client.create_run(exp, run_name="empty").info.run_id
    wide = client.create_run(exp, run_name="wide").info.run_id
    client.log_batch(wide, metrics=[Metric(f"layer_{k:02d}", float(s), start + s, s) for k in range(30) for s in range(5)])
    client.close()
    with serve_app(root) as url:
        yield {"url": url, "a": a, "b": b, "empty": empty, "wide": wide, "start": start}


def _strict_json(response: httpx.Response) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"bare {constant} in JSON: not valid JSON")

    return json.loads(response.text, parse_constant=refuse)


def _get(store: dict[str, Any], path: str, **params: Any) -> httpx.Response:
    return httpx.get(store["url"] + path, params=params, timeout=30)


def test_series_api_downsamples_each_run_and_reports_nonfinite(charts_store: dict[str, Any]) -> None:
    s = charts_store
    response = _get(s, "/ui/api/metrics/series", run_ids=f"{s['a']},{s['b']}", key="loss", points=400)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.headers["content-encoding"] == "gzip"  # httpx asks for it and decodes it
    body = _strict_json(response)
    assert body["key"] == "loss" and body["x"] == "step" and body["points"] == 400
    series_a, series_b = body["series"]
    assert (series_a["run_id"], series_b["run_id"]) == (s["a"], s["b"])
    assert len(series_a["x"]) <= 400 and series_a["downsampled"] is True
    assert 42.0 in series_a["y"] and series_a["x"][series_a["y"].index(42.0)] == 12_345
    assert (series_a["nan"], series_a["pos_inf"], series_a["neg_inf"]) == ([100], [200], [300])
    assert series_a["total"] == 20_000 and series_a["nonfinite"] == 3
    assert series_a["x"][0] == 0 and series_a["x"][-1] == 19_999
    assert series_b["x"] == list(range(300)) and series_b["downsampled"] is False
    assert "steps" not in series_a


def test_series_api_ranges_and_time_axes(charts_store: dict[str, Any]) -> None:
    s = charts_store
    ranged = _strict_json(_get(s, "/ui/api/metrics/series", run_ids=s["a"], key="loss", min_step=12_000,
                               max_step=12_500, points=2000))["series"][0]
    assert ranged["x"] == list(range(12_000, 12_501)) and ranged["downsampled"] is False
    timed = _strict_json(_get(s, "/ui/api/metrics/series", run_ids=s["a"], key="loss", x="time", points=400))["series"][0]
    assert timed["x"][0] == s["start"] and timed["steps"][0] == 0
    assert timed["x"][timed["steps"].index(12_345)] == s["start"] + 123_450 and timed["nan"] == [s["start"] + 1000]
    relative = _strict_json(_get(s, "/ui/api/metrics/series", run_ids=s["a"], key="loss", x="relative",
                                 x_min=10, x_max=20))["series"][0]
    assert relative["x"][0] == 10.0 and relative["x"][-1] == 20.0 and relative["steps"][0] == 1000
    missing = _strict_json(_get(s, "/ui/api/metrics/series", run_ids=s["b"], key="acc"))["series"][0]
    assert missing["x"] == [] and missing["total"] == 0


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"key": "loss"}, 400, "run_ids"),
        ({"run_ids": "{a}"}, 400, "'key'"),
        ({"run_ids": ",".join(f"r{i}" for i in range(101)), "key": "loss"}, 400, "at most 100"),
        ({"run_ids": "{a}", "key": "loss", "x": "epoch"}, 400, "step, time, relative"),
        ({"run_ids": "{a}", "key": "loss", "points": "2"}, 400, "points"),
        ({"run_ids": "{a}", "key": "loss", "points": "lots"}, 400, "points"),
        ({"run_ids": "{a}", "key": "loss", "min_step": "9", "max_step": "3"}, 400, "minimum is above"),
        ({"run_ids": "{a}", "key": "loss", "x_min": "NaN"}, 400, "finite"),
        ({"run_ids": "0" * 32, "key": "loss"}, 404, "0" * 32),
    ],
)
def test_series_api_errors_are_4xx_json(charts_store: dict[str, Any], params: dict[str, str], status: int, needle: str) -> None:
    params = {k: v.replace("{a}", charts_store["a"]) for k, v in params.items()}
    response = _get(charts_store, "/ui/api/metrics/series", **params)
    assert response.status_code == status
    body = response.json()
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") and needle in body["message"]


def test_histories_from_a_store_without_columnar_reads(charts_store: dict[str, Any]) -> None:
    """Any other store (here the REST client store) is read through get_metric_history pages."""
    from fitscribe.backends import get_tracking_store
    from fitscribe.server.ui.chart_data import load_histories

    rest = get_tracking_store(charts_store["url"])
    try:
        found = load_histories(rest, [charts_store["a"], charts_store["b"]], "loss")
    finally:
        rest.close()
    arrays = found[charts_store["a"]]
    assert arrays.steps.tolist() == list(range(20_000)) and arrays.values[12_345] == 42.0
    assert math.isnan(arrays.values[100]) and arrays.values[200] == math.inf
    assert found[charts_store["b"]].steps.tolist() == list(range(300))


def test_keys_and_summary_api(charts_store: dict[str, Any]) -> None:
    s = charts_store
    keys = _strict_json(_get(s, "/ui/api/metrics/keys", run_ids=f"{s['a']},{s['b']}"))
    assert keys == {"keys": ["acc", "loss"], "runs": {s["a"]: ["acc", "loss"], s["b"]: ["loss"]}}
    summary = _strict_json(_get(s, "/ui/api/metrics/summary", run_ids=f"{s['a']},{s['b']}"))
    assert summary["param_keys"] == ["lr", "seed"] and summary["metric_keys"] == ["acc", "loss"]
    run_a = summary["runs"][0]
    assert run_a["name"] == XSS_NAME and run_a["params"] == {"lr": "0.1", "seed": "7"}
    assert run_a["metrics"]["loss"]["max"] == "Infinity" and run_a["metrics"]["loss"]["step"] == 19_999
    assert _get(s, "/ui/api/metrics/summary").status_code == 400


def test_pages_escape_names_and_send_a_csp(charts_store: dict[str, Any]) -> None:
    s = charts_store
    for path in (f"/compare?run_ids={s['a']},{s['b']}", f"/metric?run_ids={s['a']},{s['b']}&key=loss"):
        response = httpx.get(s["url"] + path, timeout=30)
        assert response.status_code == 200
        assert XSS_NAME not in response.text and "&lt;img src=x onerror=alert(1)&gt;" in response.text
        assert "\\u003cimg" in response.text  # the JSON data block cannot close its <script>
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>", response.text)
        assert ("'unsafe-eval'" in policy) == path.startswith("/compare")  # parcoords (regl) only
    assert httpx.get(s["url"] + "/compare?run_ids=" + "0" * 32, timeout=30).status_code == 404
    assert httpx.get(s["url"] + f"/metric?run_ids={s['a']}", timeout=30).status_code == 400


# -- browser ---------------------------------------------------------------------------------------------
def _wait_ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=READY_TIMEOUT_MS)


def _wait_until(page: Any, expression: str) -> None:
    """Poll a JavaScript expression until it is true (page.wait_for_function would eval() inside the
    page, which the pages' CSP forbids; page.evaluate goes through the debugger protocol)."""
    deadline = time.monotonic() + READY_TIMEOUT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {READY_TIMEOUT_MS} ms: {expression}"
        page.wait_for_timeout(50)


def _no_injected_image(page: Any) -> None:
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.fitscribe_dialogs == []


def test_compare_page_in_the_browser(page: Any, charts_store: dict[str, Any]) -> None:
    s = charts_store
    page.goto(f"{s['url']}/compare?run_ids={s['a']},{s['b']}")
    _wait_ready(page)
    cards = page.locator("#charts .chart-card")
    assert cards.count() == 2 and cards.locator("figcaption").all_text_contents() == ["acc", "loss"]
    assert page.locator("#charts .chart[data-ready='1']").count() == 2
    legend = page.locator("#charts .chart[data-key='loss'] .legendtext").all_text_contents()
    assert legend == [XSS_NAME, "baseline"]
    assert page.input_value("#parcoords-metric") == "loss"  # the metric most runs have
    assert page.input_value("#scatter-x") == "param:lr" and page.input_value("#scatter-y") == "metric:loss@last"
    assert page.locator("#parcoords .parcoords").count() == 1 and page.locator("#scatter[data-ready='1']").count() == 1
    _no_injected_image(page)
    screenshot(page, "compare")

    seed_row = page.locator("#params-table tr.param-row", has_text="seed")
    assert seed_row.is_visible()
    page.check("#only-diff")
    assert not seed_row.is_visible() and page.locator("#params-table tr.param-row", has_text="lr").is_visible()
    page.uncheck("#only-diff")
    assert seed_row.is_visible()

    loss_chart = "#charts .chart[data-key='loss']"
    page.eval_on_selector("#smoothing", "e => { e.value = '0.9'; e.dispatchEvent(new Event('input')); }")
    _wait_until(page, f"document.querySelector(\"{loss_chart}\").data.filter(t => t.opacity === 0.25).length === 2")
    page.check("#log-y")
    _wait_until(page, f"document.querySelector(\"{loss_chart}\").layout.yaxis.type === 'log'")
    with page.expect_response(lambda r: "/ui/api/metrics/series" in r.url and "x=time" in r.url):
        page.select_option("#x-axis", "time")
    _wait_until(page, f"document.querySelector(\"{loss_chart}\").layout.xaxis.type === 'date'")
    screenshot(page, "compare-smoothed-log-time")


def test_metric_page_zoom_refetches_the_visible_range(page: Any, charts_store: dict[str, Any]) -> None:
    s = charts_store
    page.goto(f"{s['url']}/metric?run_ids={s['a']},{s['b']}&key=loss")
    _wait_ready(page)
    chart = page.locator("#metric-chart")
    assert chart.get_attribute("data-fetches") == "1"
    assert page.locator("#metric-chart .legendtext").all_text_contents()[0] == XSS_NAME
    # NaN, +inf and -inf: one marker each at the plot's edges (the lines draw no point markers)
    assert chart.get_attribute("data-nonfinite") == "3"
    markers = page.locator("#metric-chart path.point")
    assert markers.count() == 3
    plot = page.locator("#metric-chart .nsewdrag").first.bounding_box()
    for i in range(3):
        box = markers.nth(i).bounding_box()
        assert box is not None and plot["y"] - 12 <= box["y"] <= plot["y"] + plot["height"] + 12
    _no_injected_image(page)
    screenshot(page, "metric")

    # drag-zoom over the middle of the plot: the page asks again for the visible step range only
    x0, y = plot["x"] + plot["width"] * 0.55, plot["y"] + plot["height"] * 0.5
    with page.expect_request(lambda r: "/ui/api/metrics/series" in r.url and "min_step" in r.url) as request_info:
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move(x0 + plot["width"] * 0.04, y, steps=8)
        page.mouse.up()
    query = parse_qs(urlsplit(request_info.value.url).query)
    low, high = int(query["min_step"][0]), int(query["max_step"][0])
    assert 5_000 < low < high < 15_000 and high - low < 2_000
    page.wait_for_selector("#metric-chart[data-fetches='2'][data-ready='1']")  # (no wait_for_function: CSP forbids eval)
    shown = page.evaluate("document.querySelector('#metric-chart').data[0].x")
    assert shown[0] >= low and shown[-1] <= high and len(shown) == min(high, 19_999) - max(low, 0) + 1  # every point
    screenshot(page, "metric-zoomed")
    page.click("#reset-zoom")
    page.wait_for_selector("#metric-chart[data-fetches='3'][data-ready='1']")

    # on the wall-time axis plotly reports the zoomed range as UTC date strings
    page.select_option("#x-axis", "time")
    page.wait_for_selector("#metric-chart[data-fetches='4'][data-ready='1']")
    with page.expect_request(lambda r: "x=time" in r.url and "x_min" in r.url) as request_info:
        page.evaluate("Plotly.relayout(document.getElementById('metric-chart'), "
                      "{'xaxis.range': [new Date(%d).toISOString().replace('T', ' ').slice(0, 23), "
                      "new Date(%d).toISOString().replace('T', ' ').slice(0, 23)]})" % (s["start"] + 50_000, s["start"] + 60_000))
    query = parse_qs(urlsplit(request_info.value.url).query)
    assert s["start"] + 49_000 <= float(query["x_min"][0]) <= s["start"] + 50_000
    assert s["start"] + 60_000 <= float(query["x_max"][0]) <= s["start"] + 61_000
    page.wait_for_selector("#metric-chart[data-fetches='5'][data-ready='1']")
    steps = page.evaluate("document.getElementById('metric-chart').data[0].customdata")
    assert steps[0] >= 4_900 and steps[-1] <= 6_100 and len(steps) > 1_000  # every point of the range


def test_compare_page_draws_24_charts_then_the_rest_on_request(page: Any, charts_store: dict[str, Any]) -> None:
    page.goto(f"{charts_store['url']}/compare?run_ids={charts_store['wide']}")
    _wait_ready(page)
    assert page.locator("#charts .chart[data-ready='1']").count() == 24
    page.click("#more-charts")
    page.wait_for_selector("#charts .chart[data-key='layer_29'][data-ready='1']")
    assert page.locator("#charts .chart[data-ready='1']").count() == 30 and page.locator("#more-charts").count() == 0


def test_pages_of_a_run_without_metrics_or_params(page: Any, charts_store: dict[str, Any]) -> None:
    page.goto(f"{charts_store['url']}/compare?run_ids={charts_store['empty']}")
    _wait_ready(page)
    assert page.locator("#charts .empty").text_content() == "These runs have no metrics to plot."
    assert page.locator("#parcoords[data-ready='1'], #scatter[data-ready='1']").count() == 2
    page.goto(f"{charts_store['url']}/metric?run_ids={charts_store['empty']}&key=loss")
    _wait_ready(page)
    assert page.locator("#run-legend .series-info").text_content() == "0 points"
    assert page.input_value("#metric-select") == "loss"
