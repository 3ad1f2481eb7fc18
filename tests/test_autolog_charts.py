"""The Pillow charts behind scikit-learn autolog's training plots, and the memory they spare."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PIL_Image = pytest.importorskip("PIL.Image")

from fitscribe.autolog._charts import Curve, curves_png, heatmap_png  # noqa: E402


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
fitscribe.flush()
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
