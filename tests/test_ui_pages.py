"""Web UI pages in a real browser (Debian's Chromium via Playwright) against the real app on loopback,
over a real SQLite store filled by the fluent API and sklearn autolog; plus fast HTTP checks of
status codes, escaping and security headers. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest

from _ui_support import browser, page, screenshot, serve_app, settle  # noqa: F401  (fixtures)

XSS = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"


def _png(width: int = 8, height: int = 6) -> bytes:
    """A small valid RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes([200, 60, 60]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _write_files(folder: Path) -> None:
    (folder / "plots").mkdir(parents=True)
    (folder / "data.csv").write_text("a,b\n1,2\n3,<b>4</b>\n")
    (folder / "config.json").write_text('{"lr": 0.1, "layers": [1, 2]}')
    (folder / "params.yaml").write_text("lr: 0.1\nname: demo\n")
    (folder / "page.html").write_text(f"<html><body>{XSS_SCRIPT}{XSS}</body></html>")
    (folder / f"{XSS}.txt").write_text("evil name")
    (folder / "plots" / "red.png").write_bytes(_png())
    (folder / "plots" / "notes.txt").write_text("hello plots")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A store with an autologged sklearn run, an XSS run with artifacts, ranked runs, a nested run
    and a running run; served on a loopback port for the whole module."""
    import fitscribe
    import fitscribe.fluent
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("ui-site")
    store = str(root / "store")
    fitscribe.fluent.reset()
    fitscribe.set_tracking_uri(store)
    experiment = fitscribe.set_experiment("demo")
    handle = fitscribe.autolog(log_input_examples=False)
    try:
        X, y = make_classification(n_samples=60, n_features=4, random_state=0)
        LogisticRegression(max_iter=200).fit(X, y)
        fitscribe.flush()
        autologged = fitscribe.last_active_run()
    finally:
        fitscribe.autolog(disable=True)
    assert handle is not None and autologged is not None
    files = root / "files"
    _write_files(files)
    with fitscribe.start_run(run_name=XSS) as evil:
        fitscribe.log_params({"payload": XSS_SCRIPT, "lr": 0.1})
        fitscribe.set_tags({"payload": XSS, "team": "vision"})
        for step in range(50):
            fitscribe.log_metric("loss", 1.0 / (step + 1), step=step)
        fitscribe.log_artifacts(str(files))
    ranked = {}
    for name, acc in (("rank-low", 0.2), ("rank-high", 0.9), ("rank-mid", 0.5)):
        with fitscribe.start_run(run_name=name) as run:
            fitscribe.log_metric("acc", acc)
            fitscribe.log_param("depth", str(int(acc * 10)))
        ranked[name] = run.info.run_id
    with fitscribe.start_run(run_name="parent-run") as parent:
        with fitscribe.start_run(run_name="child-run", nested=True) as child:
            fitscribe.log_metric("acc", 0.7)
    client = fitscribe.get_client()
    running = client.create_run(experiment.experiment_id, run_name="still-running")
    client.log_metric(running.info.run_id, "acc", 0.3)
    fitscribe.flush()
    fitscribe.fluent.reset()
    with serve_app(store) as url:
        yield SimpleNamespace(url=url, store=store, client=client, experiment_id=experiment.experiment_id,
                              autologged=autologged.info.run_id, evil=evil.info.run_id, ranked=ranked,
                              parent=parent.info.run_id, child=child.info.run_id, running=running.info.run_id)
    client.close()


def _runs_table(page: Any, site: SimpleNamespace, query: str = "") -> None:
    page.goto(f"{site.url}/experiments/{site.experiment_id}{query}")
    page.wait_for_selector("#runs-table[data-ready]")


def _names(page: Any) -> list[str]:
    return page.locator("#runs-table tbody a.run-link").all_inner_texts()


def _wait_until(page: Any, expression: str, timeout_s: float = 60) -> None:
    """Poll a JS expression until true (``wait_for_function`` polls with eval, which the CSP refuses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(50)


# -- browser --------------------------------------------------------------------------------------------
def test_newcomer_walks_experiment_runs_run_and_artifacts(page: Any, site: SimpleNamespace) -> None:
    page.goto(site.url + "/")
    page.wait_for_selector("#experiments .run-count:not(:text('…'))")
    row = page.locator("#experiments tr", has_text="demo")
    assert row.locator(".run-count").inner_text() == "8"
    screenshot(page, "01_experiments")
    row.locator("a.experiment-link").click()
    page.wait_for_selector("#runs-table[data-ready]")
    assert "still-running" in _names(page) and "parent-run" in _names(page)
    assert "child-run" not in _names(page)  # nested under its parent
    screenshot(page, "02_runs_table")

    page.goto(f"{site.url}/runs/{site.autologged}")
    assert page.locator("#params").inner_text().count("solver") == 1
    assert page.locator("#metrics svg.spark").count() == 0  # one point per metric: no sparkline
    report = page.locator("#autolog-report")
    assert "sklearn" in report.inner_text() and "LogisticRegression" in report.inner_text()
    assert "dataset" in page.locator("#datasets").inner_text()
    assert page.locator("#plots img").count() == 3
    _wait_until(page, "[...document.querySelectorAll('#plots img')].every((i) => i.complete && i.naturalWidth > 0)")
    screenshot(page, "03_run_autologged")

    page.locator("#artifact-list a.artifact-link", has_text="model/").click()
    page.locator("#artifact-list a.artifact-link", has_text="MLmodel").click()
    card = page.locator("#model-card")
    assert "sklearn" in card.locator(".flavor-name").all_inner_texts()
    assert any(line.startswith("scikit-learn") for line in card.locator("#requirements li").all_inner_texts())
    assert "tensor" in page.locator("#signature-inputs").inner_text()
    screenshot(page, "04_mlmodel_card")

    page.goto(f"{site.url}/runs/{site.autologged}/artifacts/training_roc_curve.png")
    image = page.locator("#preview-image")
    image.wait_for()
    _wait_until(page, "document.getElementById('preview-image').naturalWidth > 0")
    screenshot(page, "05_image_artifact")


def test_run_page_shows_metrics_sparkline_and_previews(page: Any, site: SimpleNamespace) -> None:
    page.goto(f"{site.url}/runs/{site.evil}")
    assert page.locator("#run-name").inner_text() == XSS
    assert page.locator("#metrics svg.spark polyline").count() == 1
    assert page.locator("#metrics a.metric-link").get_attribute("href") == f"/metric?run_ids={site.evil}&key=loss"
    screenshot(page, "06_run_page")
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/data.csv")
    assert page.locator("#csv-table thead th").all_inner_texts() == ["a", "b"]
    assert page.locator("#csv-table tbody tr").nth(1).inner_text().split("\t") == ["3", "<b>4</b>"]
    screenshot(page, "07_csv_artifact")
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/config.json")
    assert json.loads(page.locator("#preview-text").inner_text()) == {"lr": 0.1, "layers": [1, 2]}
    assert '\n  "lr": 0.1' in page.locator("#preview-text").inner_text()
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/plots")
    assert page.locator("#artifact-list a.artifact-link").all_inner_texts() == ["notes.txt", "red.png"]


def test_filter_box_valid_and_invalid(page: Any, site: SimpleNamespace) -> None:
    page.fitscribe_expected_statuses.add(400)  # the invalid filter's answer
    _runs_table(page, site)
    page.fill("#filter-input", "metrics.acc >= 0.5")
    page.click("#filter-form button[type=submit]")
    page.wait_for_selector("#runs-table[data-ready]")
    assert sorted(_names(page)) == ["rank-high", "rank-mid"]
    assert "filter=metrics.acc" in page.url
    page.fill("#filter-input", "metrics.acc >")
    page.click("#filter-form button[type=submit]")
    message = page.locator("#runs-message")
    message.wait_for(state="visible")
    assert "expects a number" in message.inner_text()
    screenshot(page, "08_filter_error")


def test_sort_by_metric_last_min_max(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site, "?filter=params.depth%20IS%20NOT%20NULL")
    header = page.locator("#runs-table th[data-order='metrics.`acc`']")
    header.click()
    page.wait_for_selector("#runs-table th.sorted-desc")
    page.wait_for_selector("#runs-table[data-ready]")
    assert _names(page) == ["rank-high", "rank-mid", "rank-low"]
    header = page.locator("#runs-table th[data-order='metrics.`acc`']")
    header.click()
    page.wait_for_selector("#runs-table th.sorted-asc")
    assert _names(page) == ["rank-low", "rank-mid", "rank-high"]
    page.select_option("#metric-mode", "2")  # max: the sort follows the mode
    page.wait_for_selector("#runs-table[data-ready] th.sorted-asc")
    assert "max(metrics" in page.url.replace("%28", "(")
    assert _names(page) == ["rank-low", "rank-mid", "rank-high"]
    screenshot(page, "09_sorted_by_metric")
    page.locator("#runs-table th[data-order='params.`depth`']").click()  # params sort as strings
    page.wait_for_selector("#runs-table[data-ready] th.sorted-desc[data-order='params.`depth`']")
    assert _names(page) == ["rank-high", "rank-mid", "rank-low"]


def test_paging_with_load_more(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site, "?page_size=3")
    assert len(_names(page)) == 3 and page.is_visible("#more-button")
    first = _names(page)
    page.click("#more-button")
    page.locator("#runs-table tbody a.run-link").nth(5).wait_for()
    page.click("#more-button")
    page.locator("#runs-table tbody a.run-link").nth(6).wait_for()
    names = _names(page)
    assert names[:3] == first and len(set(names)) == 7 and page.is_hidden("#more-button")
    assert page.locator("#runs-count").inner_text() == "7 runs loaded"


def test_nested_runs_expand(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site)
    row = page.locator(f"#runs-table tr[data-run-id='{site.parent}']")
    row.locator("button.expander").click()
    child = page.locator(f"#runs-table tr.child[data-run-id='{site.child}']")
    child.wait_for()
    assert child.locator("a.run-link").inner_text() == "child-run"
    screenshot(page, "10_nested_expanded")
    child.locator("a.run-link").click()
    page.wait_for_url(f"**/runs/{site.child}")
    assert page.locator("#parent-link").inner_text() == "parent-run"
    page.go_back()
    page.wait_for_selector("#runs-table[data-ready]")
    row.locator("button.expander").click()
    child.wait_for()
    row.locator("button.expander").click()
    child.wait_for(state="detached")


def test_column_chooser_persists_across_reload(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site)
    assert page.locator("#runs-table th", has_text="team").count() == 0
    page.click("#columns-button")
    page.wait_for_selector("#columns-panel[data-keys]")
    page.check("#columns-panel input[data-kind=tag][data-key=team]")
    page.uncheck("#columns-panel input[data-kind=metric][data-key=acc]")
    assert page.locator("#runs-table th", has_text="team").count() == 1
    page.reload()
    page.wait_for_selector("#runs-table[data-ready]")
    headers = page.locator("#runs-table thead th").all_inner_texts()
    assert any("team" in h for h in headers) and not any(h.endswith(" acc") or h == "acc" for h in headers)
    assert "vision" in page.locator(f"#runs-table tr[data-run-id='{site.evil}']").inner_text()


def test_select_runs_then_compare(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site)
    assert page.is_disabled("#compare-button")
    for name in ("rank-low", "rank-high"):
        page.locator(f"#runs-table tr[data-run-id='{site.ranked[name]}'] input.select-run").check()
    # the compare page itself is tested in test_ui_charts.py; here only the URL the button builds
    page.route(re.compile(r".*/compare\?.*"), lambda route: route.fulfill(body="compare", content_type="text/plain"))
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/compare\?run_ids="))
    ids = page.url.split("run_ids=")[1].split(",")
    assert sorted(ids) == sorted([site.ranked["rank-low"], site.ranked["rank-high"]])


def test_live_refresh_of_a_running_run(page: Any, site: SimpleNamespace) -> None:
    _runs_table(page, site, "?refresh=1")
    row = page.locator(f"#runs-table tr[data-run-id='{site.running}']")
    assert row.get_attribute("data-status") == "RUNNING"
    site.client.set_terminated(site.running, "FINISHED")
    page.wait_for_selector(f"#runs-table tr[data-run-id='{site.running}'][data-status=FINISHED]")


def test_description_is_edited_through_the_rest_api(page: Any, site: SimpleNamespace) -> None:
    page.goto(f"{site.url}/runs/{site.ranked['rank-mid']}")
    page.click("#note-edit")
    page.fill("#note-text", f"tuned by hand {XSS}")
    page.click("#note-save")
    page.wait_for_selector("#note-message:has-text('Saved')")
    page.reload()
    assert page.locator("#note-view").inner_text() == f"tuned by hand {XSS}"
    assert site.client.get_run(site.ranked["rank-mid"]).data.tags["mlflow.note.content"] == f"tuned by hand {XSS}"


def test_experiments_create_rename_delete(page: Any, site: SimpleNamespace) -> None:
    page.goto(site.url + "/")
    page.fill("#new-experiment-name", "scratch")
    page.click("#create-experiment button")
    row = page.locator("#experiments tr[data-name=scratch]")
    row.wait_for()
    row.locator("button.rename").click()
    page.fill(".rename-input", "scratch-2")
    page.click(".rename-form .save")
    row = page.locator("#experiments tr[data-name=scratch-2]")
    row.wait_for()
    row.locator("button.delete").click()
    with page.expect_navigation():  # the page reloads once the experiment is deleted
        row.locator("button.confirm-delete").click()
    page.wait_for_selector("#experiments tr[data-name=scratch-2]", state="detached")
    page.click("text=Deleted experiments")
    with page.expect_navigation():
        page.locator("#experiments tr[data-name=scratch-2] button.restore").click()
    page.goto(site.url + "/")
    page.locator("#experiments tr[data-name=scratch-2]").wait_for()
    page.fitscribe_expected_statuses.add(400)
    page.fill("#new-experiment-name", "demo")  # taken: the store's message is shown
    page.click("#create-experiment button")
    page.wait_for_selector("#message:has-text('demo')")
    page.fill("#experiment-search", "dem")
    page.press("#experiment-search", "Enter")
    page.wait_for_url(re.compile(r"q=dem"))
    assert page.locator("#experiments a.experiment-link").all_inner_texts() == ["demo"]


def test_xss_payloads_never_execute(page: Any, site: SimpleNamespace) -> None:
    # the page fixture fails the test if any dialog opens
    experiment_id = site.client.create_experiment(XSS)
    page.goto(site.url + "/")
    assert page.locator(f"#experiments tr[data-experiment-id='{experiment_id}'] a.experiment-link").inner_text() == XSS
    page.goto(f"{site.url}/experiments/{experiment_id}")
    page.wait_for_selector("#runs-table[data-ready]")
    assert page.locator("h1").inner_text() == XSS
    site.client.delete_experiment(experiment_id)
    _runs_table(page, site)
    page.click("#columns-button")
    page.wait_for_selector("#columns-panel[data-keys]")
    page.check("#columns-panel input[data-kind=param][data-key=payload]")
    page.check("#columns-panel input[data-kind=tag][data-key=payload]")
    row = page.locator(f"#runs-table tr[data-run-id='{site.evil}']")
    assert XSS in row.inner_text() and XSS_SCRIPT in row.inner_text()
    page.goto(f"{site.url}/runs/{site.evil}")
    assert XSS in page.locator("#tags").inner_text() and XSS_SCRIPT in page.locator("#params").inner_text()
    assert page.locator("#artifact-list", has_text=f"{XSS}.txt").count() == 1
    page.locator("#artifact-list a.artifact-link", has_text=f"{XSS}.txt").click()
    assert page.locator("#preview-text").inner_text() == "evil name"
    page.fitscribe_expected_statuses.add(404)  # the payload's <img src=x> inside the sandboxed frame
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/page.html")
    assert XSS_SCRIPT in page.locator("#preview-text").text_content()
    frame = page.frame_locator("#preview-frame")
    frame.locator("body").wait_for(state="attached")
    settle(page)  # the page and its sandboxed frame have loaded: a payload would have fired by now
    screenshot(page, "11_html_artifact_sandboxed")
    page.goto(f"{site.url}/runs/{site.autologged}/artifacts/estimator.html")
    settle(page)
    assert page.evaluate("document.images.length") == 0
    assert not page.fitscribe_dialogs


def test_settle_lets_a_firing_payload_be_seen(page: Any) -> None:
    """The negative XSS checks above are able to fail: a payload that fires while the page loads has been
    reported once settle() returns (no fixed pause)."""
    page.set_content('<img src="x" onerror="alert(1)"><iframe srcdoc="<img src=y>"></iframe>')
    settle(page)
    assert page.fitscribe_dialogs == ["alert: 1"]
    page.fitscribe_dialogs.clear()  # seen: the fixture's own check must not fail this test


def test_download_file_and_folder_zip(page: Any, site: SimpleNamespace) -> None:
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/plots")
    with page.expect_download() as info:
        page.click("#download")
    archive = zipfile.ZipFile(info.value.path())
    assert sorted(archive.namelist()) == ["notes.txt", "red.png"]
    assert archive.read("notes.txt") == b"hello plots" and archive.read("red.png") == _png()
    page.goto(f"{site.url}/runs/{site.evil}/artifacts/plots/notes.txt")
    with page.expect_download() as info:
        page.click("#download")
    assert info.value.suggested_filename == "notes.txt"
    assert Path(info.value.path()).read_bytes() == b"hello plots"


# -- HTTP -----------------------------------------------------------------------------------------------
def test_pages_statuses_and_security_headers(site: SimpleNamespace) -> None:
    with httpx.Client(base_url=site.url) as http:
        for path in ("/", f"/experiments/{site.experiment_id}", f"/runs?experiment_ids={site.experiment_id}",
                     f"/runs/{site.evil}", f"/runs/{site.evil}/artifacts", f"/runs/{site.evil}/artifacts/plots/red.png"):
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            assert "unsafe-inline" not in answer.headers["content-security-policy"].split("script-src")[1].split(";")[0]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "<script>" not in answer.text and "onerror=alert" not in answer.text.replace("onerror=alert(1)&gt;", "")
        assert "&lt;img src=x onerror=alert(1)&gt;" in http.get(f"/runs/{site.evil}").text
        missing = http.get("/runs/0123456789abcdef0123456789abcdef")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        assert http.get("/experiments/99999").status_code == 404
        assert http.get("/runs").status_code == 400
        assert http.get(f"/experiments/{site.experiment_id}?refresh=0").status_code == 400
        assert "page_size must be a whole number from 1 to 1000" in http.get(f"/experiments/{site.experiment_id}?page_size=x").text
        assert http.get(f"/runs/{site.evil}/artifacts/nothing-here").status_code == 404
        assert http.get(f"/runs/{site.evil}/artifacts/plots/../../x").status_code in (400, 404)
        assert http.get(f"/runs/{site.evil}/download/%2e%2e/%2e%2e/x").status_code == 400


def test_run_page_survives_an_unusable_artifact_store(site: SimpleNamespace) -> None:
    experiment_id = site.client.create_experiment("elsewhere", artifact_location="nosuch://bucket/x")
    run = site.client.create_run(experiment_id, run_name="far-away")
    site.client.set_terminated(run.info.run_id)
    answer = httpx.get(f"{site.url}/runs/{run.info.run_id}")
    assert answer.status_code == 200 and "far-away" in answer.text
    assert 'id="artifact-error"' in answer.text and "nosuch" in answer.text
    assert httpx.get(f"{site.url}/runs/{run.info.run_id}/artifacts").status_code == 400
    site.client.delete_experiment(experiment_id)


def test_downloads_are_sandboxed_attachments(site: SimpleNamespace) -> None:
    with httpx.Client(base_url=site.url) as http:
        html = http.get(f"/runs/{site.evil}/download/page.html?inline=1")  # what the sandboxed frame shows
        assert html.status_code == 200
        assert html.headers["content-security-policy"] == "sandbox"
        assert html.headers["x-content-type-options"] == "nosniff"
        assert html.headers["content-disposition"].startswith("inline")
        assert http.get(f"/runs/{site.evil}/download/page.html").headers["content-disposition"].startswith("attachment")
        text = http.get(f"/runs/{site.evil}/download/plots/notes.txt?inline=1")
        assert text.headers["content-disposition"].startswith("attachment")  # only images and HTML go inline
        image = http.get(f"/runs/{site.evil}/download/plots/red.png?inline=1")
        assert image.headers["content-disposition"].startswith("inline") and image.content == _png()
        whole = http.get(f"/runs/{site.evil}/download")
        names = zipfile.ZipFile(io.BytesIO(whole.content)).namelist()
        assert "plots/red.png" in names and f"{XSS}.txt" in names and whole.headers["content-type"] == "application/zip"


def test_ui_json_api_errors_are_4xx_json(site: SimpleNamespace) -> None:
    with httpx.Client(base_url=site.url) as http:
        bad = http.get("/ui/api/runs", params={"experiment_ids": site.experiment_id, "filter": "params.x =", "nested": "1"})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "params.x =" in bad.json()["message"]
        assert "mlflow.parentRunId" not in bad.json()["message"]  # the user's filter is reported, not ours
        assert http.get("/ui/api/runs", params={"experiment_ids": site.experiment_id, "max_results": "0"}).status_code == 400
        assert http.get("/ui/api/runs").status_code == 400
        assert http.get("/ui/api/runs/children", params={"parent": "x'--"}).status_code == 400
        found = http.get("/ui/api/runs/has-children", params={"experiment_ids": site.experiment_id,
                                                               "run_ids": f"{site.parent},{site.evil}"}).json()
        assert found == {"has_children": [site.parent]}
        columns = http.get("/ui/api/runs/columns", params={"experiment_ids": site.experiment_id}).json()
        assert {"acc", "loss", "training_score"} <= set(columns["metrics"]) and "solver" in columns["params"]
        assert columns["tags"] == ["estimator_class", "estimator_name", "payload", "team"] and columns["complete"]
        page1 = http.get("/ui/api/runs", params={"experiment_ids": site.experiment_id, "max_results": "2"}).json()
        page2 = http.get("/ui/api/runs", params={"experiment_ids": site.experiment_id, "max_results": "2",
                                                 "page_token": page1["next_page_token"]}).json()
        assert len(page1["runs"]) == 2 and not {r["run_id"] for r in page1["runs"]} & {r["run_id"] for r in page2["runs"]}


def test_static_files_and_plotly_are_versioned(site: SimpleNamespace) -> None:
    import importlib.metadata

    with httpx.Client(base_url=site.url) as http:
        css_url = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', http.get("/").text).group(1)
        versioned = http.get(css_url)
        assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
        plain = http.get("/static/app.css")
        assert plain.headers["cache-control"] == "no-cache"
        assert http.get("/static/app.css", headers={"If-None-Match": plain.headers["etag"]}).status_code == 304
        assert http.get("/static/..%2Fpages.py").status_code == 404
        assert http.get("/static/nothing.js").status_code == 404
        version = importlib.metadata.version("plotly")
        plotly = http.get(f"/static/vendor/plotly-{version}.min.js", headers={"Accept-Encoding": "gzip"})
        assert plotly.status_code == 200 and plotly.headers["content-encoding"] == "gzip"
        assert plotly.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert b"plotly" in plotly.content[:2000].lower()
        assert http.get("/static/vendor/plotly-0.0.1.min.js").status_code == 404


def test_create_app_without_ui_serves_no_pages(tmp_path: Path) -> None:
    with serve_app(str(tmp_path / "s"), ui=False) as url:
        answer = httpx.get(url + "/")
        assert answer.status_code == 404 and answer.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        assert httpx.get(url + "/static/app.css").status_code == 404
        assert httpx.get(url + "/health").text == "OK"


def test_compare_children_link_stays_within_the_compare_page_limit(tmp_path: Path) -> None:
    import re as _re

    from fitscribe import Client

    client = Client(str(tmp_path / "s"))
    parent = client.create_run("0", run_name="sweep")
    for i in range(101):
        client.create_run("0", run_name=f"c{i}", tags={"mlflow.parentRunId": parent.info.run_id})
    with serve_app(str(tmp_path / "s")) as url:
        page = httpx.get(f"{url}/runs/{parent.info.run_id}", timeout=30)
        link = _re.search(r'id="compare-children" href="([^"]+)">([^<]+)<', page.text)
        assert link is not None and link.group(2) == "compare the newest 100"
        href = link.group(1).replace("&amp;", "&")
        assert len(href.split("run_ids=")[1].split(",")) == 100
        assert httpx.get(url + href, timeout=30).status_code == 200


def test_fitscribe_ui_command_serves_the_pages(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fitscribe", "ui", "--backend-store-uri", str(tmp_path / "s"), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url, f"no URL printed: {line!r}"
            assert line.startswith("fitscribe ui: "), line  # named as the command the user typed
            home = None
            for _ in range(200):  # the URL is printed when the socket is bound, before uvicorn listens
                try:
                    home = httpx.get(url.group(0) + "/", timeout=30)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert home is not None and home.status_code == 200 and "Experiments" in home.text
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_download_names_cannot_break_the_header() -> None:
    from fitscribe.server.ui.artifacts import _disposition

    header = _disposition('a\r\nSet-Cookie: x"é.txt', inline=False)
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="a__Set-Cookie: x__.txt"; filename*=UTF-8\'\'a__Set-Cookie%3A%20x%22%C3%A9.txt')


def test_runs_api_on_every_database(tracking_uri: str, tmp_path: Path) -> None:
    """The queries the runs table makes (nested view, sort by a metric, children, keys) on SQLite,
    PostgreSQL and MariaDB."""
    import fitscribe

    client = fitscribe.Client(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("db", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    ids = {}
    for name, acc in (("a", 0.1), ("b", 0.8)):
        run_id = client.create_run(experiment_id, run_name=name, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_metric(run_id, "acc", acc)
        client.log_param(run_id, "depth", str(acc))
        ids[name] = run_id
    client.flush()
    with serve_app(tracking_uri, artifact_uri=str(tmp_path / "artifacts")) as url, httpx.Client(base_url=url) as http:
        top = http.get("/ui/api/runs", params={"experiment_ids": experiment_id, "nested": "1"}).json()
        assert [r["run_name"] for r in top["runs"]] == ["parent"]
        found = http.get("/ui/api/runs/has-children", params={"experiment_ids": experiment_id, "run_ids": parent}).json()
        assert found["has_children"] == [parent]
        children = http.get("/ui/api/runs/children", params={"parent": parent}).json()["runs"]
        assert sorted(r["run_name"] for r in children) == ["a", "b"]
        flat = http.get("/ui/api/runs", params={"experiment_ids": experiment_id, "order_by": "metrics.`acc` DESC"}).json()
        assert [r["run_name"] for r in flat["runs"]] == ["b", "a", "parent"]  # no metric: last
        assert flat["runs"][0]["metrics"]["acc"] == [0.8, 0.8, 0.8]
        keys = http.get("/ui/api/runs/columns", params={"experiment_ids": experiment_id}).json()
        assert keys["metrics"] == ["acc"] and keys["params"] == ["depth"]
        assert http.get(f"/runs/{ids['a']}").status_code == 200
    client.close()
