"""The Pillow charts behind scikit-learn and XGBoost autolog's training plots, and the memory they spare."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _require import require_module

PIL_Image = require_module("PIL.Image")

from fitscribe.autolog._charts import Curve, bars_png, curves_png, heatmap_png  # noqa: E402


def _image(png: bytes):  # noqa: ANN202 - a PIL image
    assert png.startswith(b"\x89PNG")
    return PIL_Image.open(io.BytesIO(png)).convert("RGB")


def _count(image, color: tuple[int, int, int], tolerance: int = 40) -> int:  # noqa: ANN001
    pixels = np.asarray(image, dtype=np.int16)
    return int((np.abs(pixels - np.array(color)).max(axis=2) <= tolerance).sum())


def test_curves_are_drawn_in_their_colours_inside_the_frame() -> None:
    png = curves_png(
        [Curve([0, 0, 1], [0, 1, 1], "AUC = 1.000", color=(200, 0, 0)), Curve([0, 1], [0, 1], dashed=True, color=(0, 0, 200))],
        "ROC curve (training data)", "False positive rate", "True positive rate", width=400, height=300,
    )
    image = _image(png)
    assert image.size == (400, 300)
    pixels = np.asarray(image, dtype=np.int16)
    red = (np.abs(pixels - np.array((200, 0, 0))).max(axis=2) <= 40)
    ys, xs = np.nonzero(red)
    assert red.sum() > 300  # the step curve and its legend sample
    assert xs.min() >= 50 and xs.max() <= 390  # within the frame (the legend sits inside it too)
    assert _count(image, (0, 0, 200)) > 50  # the dashed diagonal
    assert _count(image, (30, 30, 30)) > 300  # frame, ticks, title and labels


def test_heatmap_colours_cells_by_value() -> None:
    png = heatmap_png(np.array([[1.0, 0.0], [0.0, 1.0]]), ["cat", "dog"], "Normalized confusion matrix", "Predicted", "True")
    image = _image(png)
    pixels = np.asarray(image, dtype=np.int16)
    dark = (np.abs(pixels - np.array((8, 48, 107))).max(axis=2) <= 10)
    pale = (np.abs(pixels - np.array((247, 251, 255))).max(axis=2) <= 3)
    ys, xs = np.nonzero(dark[:, :400])  # the cells, left of the colour bar
    assert dark.sum() > 5000 and pale.sum() > 5000
    # the two dark cells lie on the diagonal: top-left and bottom-right quadrants of the matrix
    mid_x, mid_y = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    on_diagonal = ((xs < mid_x) == (ys < mid_y)).sum()
    assert on_diagonal > 0.99 * len(xs)


def test_heatmap_of_many_classes_skips_cell_text_and_thins_ticks() -> None:
    matrix = np.eye(40)
    png = heatmap_png(matrix, [f"class-{i}-with-a-long-name" for i in range(40)], "t", "x", "y")
    assert _image(png).size == (500, 420)


BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # the first two bar colours


def _bars(png: bytes, color: tuple[int, int, int] = BLUE) -> list[tuple[int, int, int, int]]:
    """The bars of one colour, top to bottom, as (top, bottom, left, right) pixel bounds."""
    pixels = np.asarray(_image(png), dtype=np.int16)
    mask = np.abs(pixels - np.array(color)).max(axis=2) <= 12
    rows = set(np.nonzero(mask.sum(axis=1) >= 3)[0].tolist())  # 3+ pixels wide: bars, not anti-aliased text
    bars, start = [], None
    for y in range(mask.shape[0] + 1):
        inside = y in rows
        if inside and start is None:
            start = y
        elif not inside and start is not None:
            xs = np.nonzero(mask[start:y].any(axis=0))[0]
            bars.append((start, y - 1, int(xs.min()), int(xs.max())))
            start = None
    return bars


def test_bars_are_sorted_largest_on_top_with_lengths_proportional_to_values() -> None:
    png = bars_png("Feature importance: gain", ["a", "b", "c", "d"], [2.0, 8.0, 4.0, 1.0], "importance (gain)")
    bars = _bars(png)
    assert len(bars) == 4
    lengths = [right - left + 1 for _, _, left, right in bars]
    assert lengths == sorted(lengths, reverse=True)  # b (8) on top, then c, a, d
    assert len({left for _, _, left, _ in bars}) == 1  # all start at the zero line
    for length, value in zip(lengths, (8.0, 4.0, 2.0, 1.0)):
        assert length == pytest.approx(lengths[0] * value / 8.0, abs=2)
    assert _image(png).width == 700


def test_bars_of_nan_zero_and_negative_values() -> None:
    png = bars_png("t", ["up", "missing", "zero", "down"], [3.0, float("nan"), 0.0, -2.0], "x")
    (up, down) = _bars(png)  # NaN and zero draw no bar
    assert up[0] < down[0]  # |3| ranks above |-2|
    assert down[3] <= up[2] + 1  # the negative bar ends at the zero line, where the positive one starts
    assert (down[3] - down[2]) == pytest.approx((up[3] - up[2]) * 2 / 3, abs=2)
    assert _bars(bars_png("t", ["a", "b"], [float("nan"), 0.0], "x")) == []  # nothing to draw, still a chart


def test_bars_with_no_features_make_an_empty_chart() -> None:
    image = _image(bars_png("Feature importance: weight", [], [], "importance (weight)"))
    assert _bars(bars_png("t", [], [], "x")) == []
    assert _count(image, (30, 30, 30)) > 300  # frame, title and labels


def test_many_bars_are_capped_and_long_names_cut() -> None:
    names = [f"feature_{i}" for i in range(59)] + ["x" * 300]
    values = [float(i + 1) for i in range(60)]  # the long name has the largest value
    png = bars_png("t", names, values, "x", max_bars=40)
    bars = _bars(png)
    assert len(bars) == 40
    assert bars[0][2] < 700 / 3 + 40  # the name column is at most a third of the image
    assert _image(png).height < 40 * 30 + 150  # the height follows the bars drawn, not all 60
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        bars_png("t", ["a", "b"], [1.0], "x")
    with pytest.raises(TypeError, match="numbers"):
        bars_png("t", ["a"], ["1.0"], "x")


def test_grouped_bars_one_colour_per_class() -> None:
    png = bars_png("t", ["a", "b", "c"], [[1.0, -0.5], [0.2, 0.1], [-2.0, 1.0]], "x")
    blue, orange = _bars(png, BLUE), _bars(png, ORANGE)
    assert len(blue) == len(orange) == 1 + 3  # the legend swatch, then one bar per feature
    (_, blue), (_, orange) = (blue[0], blue[1:]), (orange[0], orange[1:])
    assert all(b[1] < o[0] for b, o in zip(blue, orange))  # class 0 above class 1 in each group
    assert blue[0][3] - blue[0][2] > 2 * (blue[1][3] - blue[1][2])  # c (|-2|+|1|) first, its class-0 bar longest
    assert blue[0][3] < orange[0][2]  # c's class-0 bar is negative: left of its positive class-1 bar


def test_training_plots_do_not_import_matplotlib(tmp_path: Path) -> None:
    code = """
import json, sys
import fitscribe
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
fitscribe.autolog(log_models=False)
X, y = make_classification(n_samples=60, n_features=4, random_state=0)
with fitscribe.start_run() as run:
    LogisticRegression().fit(X, y)
names = [a.path for a in fitscribe.Client().list_artifacts(run.info.run_id)]
print(json.dumps({"mpl": "matplotlib" in sys.modules, "artifacts": names}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    env["FITSCRIBE_TRACKING_URI"] = str(tmp_path / "store")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mpl"] is False
    assert {"training_confusion_matrix.png", "training_roc_curve.png", "training_precision_recall_curve.png"} <= set(result["artifacts"])
