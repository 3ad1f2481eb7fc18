"""The newcomer's path of issue 6, end to end: run the demo (examples/quickstart.py, unchanged, in a
fresh folder), serve the UI on what it recorded, then in Chromium: see the demo's runs, compare the
two autologged models, see their metric charts, open a model card and a plot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from _ui_support import READY_TIMEOUT_MS, browser, page, screenshot, serve_app  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parent.parent


def test_demo_then_ui_browse_compare_plot_and_open_models(page: Any, tmp_path: Path) -> None:
    demo = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "fitscribe ui" in demo.stdout

    with serve_app(str(tmp_path / "fitruns")) as url:
        page.goto(url + "/")
        page.locator("#experiments a.experiment-link", has_text="quickstart").click()
        page.wait_for_selector("#runs-table[data-ready]")
        names = page.locator("#runs-table tbody a.run-link").all_inner_texts()
        assert {"lr-sweep", "logreg C=0.05", "logreg C=1.0"} <= set(names), names
        screenshot(page, "newcomer_01_runs")

        for name in ("logreg C=0.05", "logreg C=1.0"):
            page.locator("#runs-table tbody tr", has=page.locator("a.run-link", has_text=name)) \
                .locator("input.select-run").check()
        page.click("#compare-button")
        page.wait_for_selector("body[data-ready='1']", timeout=READY_TIMEOUT_MS)
        # one final score per run: drawn as bars named by run, not as lone markers on a step axis
        bars = page.locator("#charts .chart[data-key='training_accuracy_score'][data-kind='bars']")
        assert sorted(bars.locator(".xtick text").all_text_contents()) == ["logreg C=0.05", "logreg C=1.0"]
        assert bars.locator(".point").count() == 2
        differing = page.locator("#params-table tr.param-row.differs").all_inner_texts()
        c_row = [row.split("\t") for row in differing if row.startswith("logisticregression__C\t")]
        assert len(c_row) == 1 and sorted(c_row[0][1:]) == ["0.05", "1.0"], differing
        assert all("C=0.05" in row for row in differing if not row.startswith("logisticregression__C\t"))
        screenshot(page, "newcomer_02_compare")

        page.locator("#run-legend a", has_text="logreg C=1.0").click()
        page.wait_for_selector("#plots img")
        assert page.locator("#plots img").count() == 3
        page.locator("#artifact-list a.artifact-link", has_text="model/").click()
        page.locator("#artifact-list a.artifact-link", has_text="MLmodel").click()
        assert "sklearn" in page.locator("#model-card .flavor-name").all_inner_texts()
        screenshot(page, "newcomer_03_model_card")
