"""Tests of the serialisers behind ``Client.log_text/log_dict/log_figure/log_image``.

Real matplotlib (Agg backend), numpy and Pillow; every file is read back and compared.
"""

from __future__ import annotations

import datetime
import enum
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _require import require_module
import yaml

from fitscribe.artifact_writers import write_dict, write_figure, write_image, write_text
from fitscribe.errors import InvalidValueError, MissingDependencyError

np = require_module("numpy")
Image = require_module("PIL.Image")
matplotlib = require_module("matplotlib")
matplotlib.use("Agg")


# -- write_text -----------------------------------------------------------------------------------


def test_write_text_exact_utf8(tmp_path: Path) -> None:
    text = "héllo ✓\r\nline two\n"
    path = write_text(text, str(tmp_path / "new"), "notes file.md")
    assert path == str(tmp_path / "new" / "notes file.md")
    assert Path(path).read_bytes() == text.encode("utf-8")


def test_write_text_refuses_non_str(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"expects a str, got bytes b'x'.*str\(\)"):
        write_text(b"x", str(tmp_path), "a.txt")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b.txt", "a\\b.txt", "/abs.txt"])
def test_filename_must_be_bare(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidValueError, match="not a bare file name.*artifact path") as info:
        write_text("x", str(tmp_path), bad)
    assert repr(bad) in str(info.value)


# -- write_dict -----------------------------------------------------------------------------------


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _sample() -> dict[str, Any]:
    return {
        "zeta": 1,
        "alpha": "ä ✓",
        "nested": {"lr": np.float32(0.5), "layers": (64, np.int64(32)), "flag": np.bool_(True)},
        "array": np.arange(6).reshape(2, 3),
        "none": None,
        1: "int key",
        "enum": [Color.RED, Level.HIGH],
        "when": datetime.date(2024, 5, 17),
    }


_EXPECTED = {
    "zeta": 1,
    "alpha": "ä ✓",
    "nested": {"lr": 0.5, "layers": [64, 32], "flag": True},
    "array": [[0, 1, 2], [3, 4, 5]],
    "none": None,
    1: "int key",
    "enum": ["red", 3],
    "when": "2024-05-17",
}


def test_write_dict_json(tmp_path: Path) -> None:
    path = write_dict(_sample(), str(tmp_path), "params.json")
    loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    assert loaded == {("1" if k == 1 else k): v for k, v in _EXPECTED.items()}
    assert list(loaded) == ["zeta", "alpha", "nested", "array", "none", "1", "enum", "when"]
    assert "ä ✓" in Path(path).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["config.yaml", "config.YML"])
def test_write_dict_yaml_keeps_order(tmp_path: Path, name: str) -> None:
    path = write_dict(_sample(), str(tmp_path), name)
    text = Path(path).read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert loaded == _EXPECTED
    assert list(loaded) == list(_EXPECTED)
    assert text.startswith("zeta: 1\n")


def test_write_dict_other_extension_is_json(tmp_path: Path) -> None:
    path = write_dict({"a": [1, 2]}, str(tmp_path), "data.txt")
    assert json.loads(Path(path).read_text()) == {"a": [1, 2]}


def test_write_dict_nan_and_inf(tmp_path: Path) -> None:
    data = {"nan": float("nan"), "inf": np.float64("inf"), "ninf": -math.inf}
    loaded_json = json.loads(Path(write_dict(data, str(tmp_path), "a.json")).read_text())
    loaded_yaml = yaml.safe_load(Path(write_dict(data, str(tmp_path), "a.yaml")).read_text())
    for loaded in (loaded_json, loaded_yaml):
        assert math.isnan(loaded["nan"])
        assert loaded["inf"] == math.inf and loaded["ninf"] == -math.inf


def test_write_dict_unserialisable_value_names_key(tmp_path: Path) -> None:
    data = {"model": {"layers": [1, object()]}}
    with pytest.raises(InvalidValueError, match=r"dictionary\['model'\]\['layers'\]\[1\] is object") as info:
        write_dict(data, str(tmp_path), "a.json")
    assert "convert it to a str, number, bool, None, list or dict" in str(info.value)
    assert not (tmp_path / "a.json").exists()


def test_write_dict_bad_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"key \(1, 2\) in dictionary\['outer'\] is tuple"):
        write_dict({"outer": {(1, 2): "x"}}, str(tmp_path), "a.yaml")


def test_write_dict_refuses_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"expects a dict, got list \[1, 2\]"):
        write_dict([1, 2], str(tmp_path), "a.json")  # type: ignore[arg-type]


# -- write_figure ---------------------------------------------------------------------------------


@pytest.fixture
def figure() -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1, 2], [2, 0, 1])
    yield fig
    plt.close(fig)


@pytest.mark.parametrize(
    ("name", "magic"), [("loss.png", b"\x89PNG"), ("loss.svg", b"<?xml"), ("loss.pdf", b"%PDF")]
)
def test_write_matplotlib_figure(tmp_path: Path, figure: Any, name: str, magic: bytes) -> None:
    path = write_figure(figure, str(tmp_path), name)
    assert path == str(tmp_path / name)
    assert Path(path).read_bytes().startswith(magic)


def test_write_matplotlib_figure_kwargs_and_default_png(tmp_path: Path, figure: Any) -> None:
    path = write_figure(figure, str(tmp_path), "loss", dpi=50)
    assert path == str(tmp_path / "loss.png")
    with Image.open(path) as img:
        assert img.size == (100, 75)  # 2 x 1.5 inches at 50 dpi


def test_write_matplotlib_figure_unknown_format(tmp_path: Path, figure: Any) -> None:
    with pytest.raises(InvalidValueError, match=r"cannot save the figure as 'loss.xyz'.*'.png'"):
        write_figure(figure, str(tmp_path), "loss.xyz")


def test_write_figure_refuses_other_objects(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="expects a matplotlib or plotly figure, got ndarray"):
        write_figure(np.zeros((2, 2)), str(tmp_path), "a.png")


def test_write_plotly_figure_html(tmp_path: Path) -> None:
    go = require_module("plotly.graph_objects")
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    path = write_figure(fig, str(tmp_path), "curve")
    assert path == str(tmp_path / "curve.html")
    assert "plotly" in Path(path).read_text(encoding="utf-8").lower()


@pytest.mark.skipif(importlib.util.find_spec("kaleido") is not None, reason="kaleido is installed")
def test_write_plotly_image_without_kaleido(tmp_path: Path) -> None:
    go = require_module("plotly.graph_objects")
    with pytest.raises(MissingDependencyError, match="kaleido.*pip install kaleido"):
        write_figure(go.Figure(), str(tmp_path), "curve.png")


# -- write_image ----------------------------------------------------------------------------------


def _read(path: str) -> Any:
    with Image.open(path) as img:
        return np.asarray(img)


@pytest.mark.parametrize("channels", [3, 4])
def test_write_image_uint8_color(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(5, 7, channels), dtype=np.uint8)
    path = write_image(array, str(tmp_path), "img.png")
    np.testing.assert_array_equal(_read(path), array)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_write_image_grayscale(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(shape) * 10
    path = write_image(array, str(tmp_path), "gray")
    assert path.endswith("gray.png")
    np.testing.assert_array_equal(_read(path), array.reshape(4, 6))


def test_write_image_float_scaled(tmp_path: Path) -> None:
    array = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    path = write_image(array, str(tmp_path), "f.png")
    np.testing.assert_array_equal(_read(path), np.round(array * 255).astype(np.uint8))


def test_write_image_int64_and_bool(tmp_path: Path) -> None:
    path = write_image(np.array([[0, 128], [255, 7]]), str(tmp_path), "i.png")
    np.testing.assert_array_equal(_read(path), [[0, 128], [255, 7]])
    path = write_image(np.array([[True, False]]), str(tmp_path), "b.png")
    np.testing.assert_array_equal(_read(path), [[255, 0]])


def test_write_image_jpeg_from_extension(tmp_path: Path) -> None:
    array = np.full((8, 8, 3), 200, dtype=np.uint8)
    path = write_image(array, str(tmp_path), "photo.jpg")
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert np.abs(np.asarray(img).astype(int) - 200).max() <= 2


def test_write_pil_image(tmp_path: Path) -> None:
    img = Image.new("RGB", (3, 2), (10, 20, 30))
    path = write_image(img, str(tmp_path), "pil.bmp")
    with Image.open(path) as back:
        assert back.format == "BMP"
        assert back.getpixel((2, 1)) == (10, 20, 30)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([[0.0, 1.5]]), r"float image array has values from 0.0 to 1.5, outside \[0.0, 1.0\]"),
        (np.array([[-0.1, 0.5]]), "rescale it to"),
        (np.array([[np.nan, 0.5]]), "contains NaN"),
        (np.array([[0, 300]]), r"integer image array has values from 0.0 to 300.0.*\[0, 255\]"),
        (np.zeros((2, 2, 2), dtype=np.uint8), r"shape \(2, 2, 2\).*HxWx3"),
        (np.zeros((0, 3), dtype=np.uint8), r"shape \(0, 3\)"),
        (np.zeros(5, dtype=np.uint8), r"shape \(5,\)"),
        (np.array([["a"]]), "dtype <U1"),
    ],
)
def test_write_image_refuses_bad_arrays(tmp_path: Path, array: Any, match: str) -> None:
    with pytest.raises(InvalidValueError, match=match):
        write_image(array, str(tmp_path), "x.png")
    assert os.listdir(tmp_path) == []


def test_write_image_refuses_other_types(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="numpy array or a PIL image, got list"):
        write_image([[0, 1]], str(tmp_path), "x.png")


def test_write_image_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"Cannot save an image as 'x.nope'.*'.png'"):
        write_image(np.zeros((2, 2), dtype=np.uint8), str(tmp_path), "x.nope")


def test_write_image_mode_the_format_cannot_hold(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    with pytest.raises(InvalidValueError, match=r"Cannot save a RGBA image as 'x.jpg'.*convert\('RGB'\)"):
        write_image(rgba, str(tmp_path), "x.jpg")


# -- import cost ----------------------------------------------------------------------------------


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, fitscribe.artifact_writers\n"
        "heavy = {'numpy', 'PIL', 'matplotlib', 'plotly', 'yaml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_pillow_names_the_plots_extra(tmp_path: Path) -> None:
    # -S drops site-packages, so Pillow is really missing in the child; fitscribe comes from the repo.
    repo = str(Path(__file__).resolve().parents[1])
    code = (
        "from fitscribe.artifact_writers import write_image\n"
        "from fitscribe.errors import MissingDependencyError\n"
        "try:\n"
        f"    write_image([[0]], {str(tmp_path)!r}, 'x.png')\n"
        "except MissingDependencyError as exc:\n"
        "    assert exc.extra == 'plots' and exc.package == 'pillow', exc\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    env = {**os.environ, "PYTHONPATH": repo}
    done = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'pip install "fitscribe[plots]"' in done.stdout
