"""Small PNG charts drawn with Pillow: the training plots of scikit-learn autologging.

matplotlib would draw them too, but importing it adds about 30 MB to the training process (its
modules, fonts and extension libraries), more than the rest of autologging together; Pillow adds
about 7 MB. Two chart kinds are enough here: curves on the unit square (ROC, precision-recall)
and an annotated heat map (confusion matrix). Text is anti-aliased by FreeType; lines are not
(drawing at twice the size and scaling down smooths them, but measured 5 MB more at the peak of
an autologged fit, so ``_SCALE`` is 1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Curve", "curves_png", "heatmap_png"]

_SCALE = 1  # 2: drawn at twice the size, then scaled down (smoother lines, more memory)
_BLUES = ((247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107))
_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
_GRID = (225, 225, 225)
_INK = (30, 30, 30)


@dataclass(frozen=True)
class Curve:
    """One line of a chart: x and y values in [0, 1], a legend label, dashed or not, a colour."""

    x: Sequence[float]
    y: Sequence[float]
    label: str | None = None
    dashed: bool = False
    color: tuple[int, int, int] | None = None


class _Canvas:
    """An RGB image with fonts and helpers that take coordinates at the final (unscaled) size."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (width * _SCALE, height * _SCALE), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.size = (width, height)
        self._fonts: dict[int, Any] = {}

    def font(self, size: int) -> Any:
        """Return Pillow's default font at ``size`` points (loaded once per canvas and size)."""
        from PIL import ImageFont

        if size not in self._fonts:
            try:
                self._fonts[size] = ImageFont.load_default(size=size * _SCALE)
            except TypeError:  # Pillow < 10.1: one bitmap font size
                self._fonts[size] = ImageFont.load_default()
        return self._fonts[size]

    def text(self, xy: tuple[float, float], text: str, size: int = 11, anchor: str = "la", fill: Any = _INK) -> None:
        self.draw.text(_px(xy), text, font=self.font(size), anchor=anchor, fill=fill)

    def vertical_text(self, xy: tuple[float, float], text: str, size: int = 11) -> None:
        """Write ``text`` turned 90 degrees, centred on ``xy``."""
        from PIL import Image, ImageDraw

        font = self.font(size)
        left, top, right, bottom = self.draw.textbbox((0, 0), text, font=font)
        label = Image.new("RGB", (right - left + 4, bottom - top + 4), "white")
        ImageDraw.Draw(label).text((2 - left, 2 - top), text, font=font, fill=_INK)
        label = label.rotate(90, expand=True)
        x, y = _px(xy)
        self.image.paste(label, (x - label.width // 2, y - label.height // 2))

    def line(self, points: list[tuple[float, float]], fill: Any, width: float = 1.0, dashed: bool = False) -> None:
        pixels = [_px(p) for p in points]
        if not dashed:
            self.draw.line(pixels, fill=fill, width=round(width * _SCALE), joint="curve")
            return
        for a, b in zip(pixels, pixels[1:]):
            for start, end in _dashes(a, b, 6 * _SCALE):
                self.draw.line([start, end], fill=fill, width=round(width * _SCALE))

    def rectangle(self, box: tuple[float, float, float, float], fill: Any = None, outline: Any = None) -> None:
        x0, y0 = _px(box[:2])
        x1, y1 = _px(box[2:])
        self.draw.rectangle((x0, y0, x1, y1), fill=fill, outline=outline, width=_SCALE if outline else 0)

    def png(self) -> bytes:
        """Return the image, scaled down to its final size, as PNG bytes."""
        out = io.BytesIO()
        image = self.image.reduce(_SCALE) if _SCALE > 1 else self.image
        image.save(out, format="PNG")
        return out.getvalue()


def _px(xy: Sequence[float]) -> tuple[int, int]:
    return round(xy[0] * _SCALE), round(xy[1] * _SCALE)


def _dashes(a: tuple[int, int], b: tuple[int, int], step: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    (x0, y0), (x1, y1) = a, b
    length = max(abs(x1 - x0), abs(y1 - y0), 1)
    out = []
    for start in range(0, length, 2 * step):
        end = min(start + step, length)
        out.append(((x0 + (x1 - x0) * start // length, y0 + (y1 - y0) * start // length),
                    (x0 + (x1 - x0) * end // length, y0 + (y1 - y0) * end // length)))
    return out


def curves_png(
    curves: Sequence[Curve], title: str, xlabel: str, ylabel: str, legend: str = "lower right",
    width: int = 600, height: int = 450,
) -> bytes:
    """Draw curves on the unit square with a grid, axis labels, a title and a legend; return PNG bytes.

    Args:
        curves: The lines; values outside [0, 1] are clipped to the frame.
        title: Printed above the plot.
        xlabel: Printed under the x axis.
        ylabel: Printed along the y axis.
        legend: ``"lower right"`` or ``"lower left"``: the corner of the legend box.
        width: Image width in pixels.
        height: Image height in pixels.
    """
    canvas = _Canvas(width, height)
    left, top, right, bottom = 64.0, 36.0, width - 18.0, height - 52.0

    def at(x: float, y: float) -> tuple[float, float]:
        x, y = min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)
        return left + x * (right - left), bottom - y * (bottom - top)

    for i in range(6):
        value = i / 5
        canvas.line([at(value, 0), at(value, 1)], _GRID)
        canvas.line([at(0, value), at(1, value)], _GRID)
        canvas.text((at(value, 0)[0], bottom + 6), f"{value:.1f}", size=10, anchor="ma")
        canvas.text((left - 6, at(0, value)[1]), f"{value:.1f}", size=10, anchor="rm")
    canvas.rectangle((left, top, right, bottom), outline=_INK)
    for index, curve in enumerate(curves):
        color = curve.color or _PALETTE[index % len(_PALETTE)]
        canvas.line([at(x, y) for x, y in zip(curve.x, curve.y)], color, width=1.0 if curve.dashed else 1.8, dashed=curve.dashed)
    canvas.text((width / 2, 12), title, size=13, anchor="ma")
    canvas.text(((left + right) / 2, height - 22), xlabel, anchor="ma")
    canvas.vertical_text((18, (top + bottom) / 2), ylabel)
    _legend(canvas, [c for c in curves if c.label], (left, top, right, bottom), legend)
    return canvas.png()


def _legend(canvas: _Canvas, curves: Sequence[Curve], frame: tuple[float, float, float, float], corner: str) -> None:
    if not curves:
        return
    font = canvas.font(11)
    widest = max(canvas.draw.textlength(c.label or "", font=font) for c in curves) / _SCALE
    box_w, box_h = widest + 44, 8 + 18 * len(curves)
    left, _top, right, bottom = frame
    x0 = left + 10 if corner == "lower left" else right - 10 - box_w
    y0 = bottom - 10 - box_h
    canvas.rectangle((x0, y0, x0 + box_w, y0 + box_h), fill="white", outline=(200, 200, 200))
    for i, curve in enumerate(curves):
        y = y0 + 13 + 18 * i
        color = curve.color or _PALETTE[i % len(_PALETTE)]
        canvas.line([(x0 + 8, y), (x0 + 30, y)], color, width=1.8, dashed=curve.dashed)
        canvas.text((x0 + 36, y), curve.label or "", anchor="lm")


def _blue(value: float) -> tuple[int, int, int]:
    """Map [0, 1] onto a white-to-dark-blue scale."""
    value = min(max(float(value), 0.0), 1.0) * (len(_BLUES) - 1)
    i = min(int(value), len(_BLUES) - 2)
    t = value - i
    a, b = _BLUES[i], _BLUES[i + 1]
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def heatmap_png(
    matrix: Any, labels: Sequence[str], title: str, xlabel: str, ylabel: str, width: int = 500, height: int = 420,
) -> bytes:
    """Draw a square matrix of values in [0, 1] as coloured cells with a colour bar; return PNG bytes.

    Cells carry their value when there are at most 20 rows; tick labels are cut to 12 characters.

    Args:
        matrix: An n x n array-like of values in [0, 1].
        labels: The n row and column names.
        title: Printed above the matrix.
        xlabel: Printed under the columns.
        ylabel: Printed along the rows.
        width: Image width in pixels.
        height: Image height in pixels.
    """
    rows = [list(map(float, row)) for row in matrix]
    n = max(len(rows), 1)
    canvas = _Canvas(width, height)
    left, top, bar = 92.0, 36.0, 16.0
    side = min(width - left - 80, height - top - 74)
    cell = side / n
    names = [str(name) if len(str(name)) <= 12 else str(name)[:11] + "…" for name in labels] or [str(i) for i in range(n)]
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            x0, y0 = left + j * cell, top + i * cell
            canvas.rectangle((x0, y0, x0 + cell, y0 + cell), fill=_blue(value))
            if n <= 20:
                size = max(7, min(12, int(cell / 4)))
                canvas.text((x0 + cell / 2, y0 + cell / 2), f"{value:.2f}", size=size, anchor="mm",
                            fill="white" if value > 0.5 else "black")
    canvas.rectangle((left, top, left + side, top + side), outline=_INK)
    step = max(1, n // 20)
    for k in range(0, n, step):
        canvas.text((left + (k + 0.5) * cell, top + side + 6), names[k], size=10, anchor="ma")
        canvas.text((left - 6, top + (k + 0.5) * cell), names[k], size=10, anchor="rm")
    bar_left = left + side + 18
    for k in range(int(side)):
        canvas.rectangle((bar_left, top + k, bar_left + bar, top + k + 1), fill=_blue(1 - k / side))
    canvas.rectangle((bar_left, top, bar_left + bar, top + side), outline=_INK)
    for i in range(6):
        canvas.text((bar_left + bar + 4, top + side * (1 - i / 5)), f"{i / 5:.1f}", size=10, anchor="lm")
    canvas.text((width / 2, 12), title, size=13, anchor="ma")
    canvas.text((left + side / 2, top + side + 28), xlabel, anchor="ma")
    canvas.vertical_text((16, top + side / 2), ylabel)
    return canvas.png()
