"""Small PNG charts drawn with Pillow: the training plots of scikit-learn and XGBoost autologging.

matplotlib would draw them too, but importing it adds about 30 MB to the training process (its
modules, fonts and extension libraries), more than the rest of autologging together; Pillow adds
about 7 MB. Three chart kinds are enough here: curves on the unit square (ROC, precision-recall),
an annotated heat map (confusion matrix) and horizontal bars (feature importance). Text is anti-aliased by FreeType; lines are not
(drawing at twice the size and scaling down smooths them, but measured 5 MB more at the peak of
an autologged fit, so ``_SCALE`` is 1).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Curve", "bars_png", "curves_png", "heatmap_png"]

_SCALE = 1  # 2: drawn at twice the size, then scaled down (smoother lines, more memory)
_BLUES = ((247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107))
_PALETTE = (  # the ten "tab10" colours
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
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


def bars_png(
    title: str, labels: Sequence[str], values: Sequence[Any], xlabel: str, series: Sequence[str] = (),
    max_bars: int = 40, width: int = 700,
) -> bytes:
    """Draw one horizontal bar per label, the largest at the top, each with its value; return PNG bytes.

    Bars are ranked by the sum of the absolute values of their row; NaN counts as nothing and gets
    no bar (its value label reads ``nan``). Negative values grow leftwards from a zero line. Only
    the ``max_bars`` largest are drawn, and the title then says ``(top N of M)``. Names wider than
    a third of the image are cut with an ellipsis. The height follows the number of bars.

    Args:
        title: Printed above the bars.
        labels: One name per bar.
        values: One number per bar, or one row of numbers per bar (grouped bars, one per series).
        xlabel: Printed under the value axis.
        series: Legend names of the grouped bars (default ``class 0``, ``class 1``...).
        max_bars: How many bars at most.
        width: Image width in pixels.

    Raises:
        ValueError: ``labels`` and ``values`` differ in length.
        TypeError: A value is not a number or a row of numbers.
    """
    rows = [_row(v) for v in values]
    if len(rows) != len(labels):
        raise ValueError(f"bars_png got {len(labels)} labels but {len(rows)} values; pass one value (or row) per label.")
    groups = max((len(r) for r in rows), default=1)
    rows = [r + [math.nan] * (groups - len(r)) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: -sum(abs(v) for v in rows[i] if not math.isnan(v)))[:max_bars]
    if len(rows) > max_bars:
        title = f"{title} (top {max_bars} of {len(rows)})"
    names = (list(series) or [f"class {k}" for k in range(groups)]) if groups > 1 else []
    chart = _Bars([str(labels[i]) for i in order], [rows[i] for i in order], list(names), width)
    return chart.draw(title, xlabel)


def _row(value: Any) -> list[float]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"bars_png values must be numbers or rows of numbers, got {value!r}.")
    try:
        return [float(v) for v in value]
    except TypeError:
        return [float(value)]


def _short(value: float) -> str:
    """Format a number in at most about 6 characters: 4 significant digits, no exponent when readable."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if not 1e-3 <= magnitude < 1e6:
        return f"{value:.3g}"
    text = f"{value:.{max(0, 3 - math.floor(math.log10(magnitude)))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    return [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]


class _Bars:
    """The layout of a horizontal bar chart: a name column, the bars, value labels, a value axis."""

    def __init__(self, names: list[str], rows: list[list[float]], series: list[str], width: int) -> None:
        self.rows = rows
        self.series = series
        groups = max(len(series), 1)
        self.row_h = 24.0 if groups == 1 else max(24.0, 9.0 * groups + 8)
        self.bar_h = (self.row_h - 8) / groups
        self.top = 36.0 + (20 if series else 0)
        height = round(self.top + self.row_h * max(len(rows), 2) + 8 + 52)
        self.canvas = _Canvas(width, height)
        self.size = (width, height)
        font = self.canvas.font(10)
        room = width / 3
        self.names = [_fit(self.canvas, name, font, room) for name in names]
        widest = max((self.canvas.draw.textlength(n, font=font) for n in self.names), default=0.0)
        self.left, self.right, self.bottom = 18 + widest / _SCALE + 8, width - 18.0, height - 52.0

    def draw(self, title: str, xlabel: str) -> bytes:
        """Draw everything and return the PNG bytes."""
        canvas = self.canvas
        canvas.text(((self.left + self.right) / 2, 12), title, size=13, anchor="ma")
        if self.series:
            self._legend()
        finite = [v for row in self.rows for v in row if not math.isnan(v)]
        if not finite:
            canvas.rectangle((self.left, self.top, self.right, self.bottom), outline=_INK)
            canvas.text(((self.left + self.right) / 2, (self.top + self.bottom) / 2), "(no values)", size=12, anchor="mm")
        else:
            self._bars(min(min(finite), 0.0), max(max(finite), 0.0))
        canvas.text(((self.left + self.right) / 2, self.size[1] - 22), xlabel, anchor="ma")
        return canvas.png()

    def _bars(self, low: float, high: float) -> None:
        canvas, font = self.canvas, self.canvas.font(9 if self.series else 10)
        labels = [[_short(v) for v in row] for row in self.rows]
        label_w = max(canvas.draw.textlength(t, font=font) for row in labels for t in row) / _SCALE + 6
        span = (high - low) or 1.0
        x0, x1 = self.left + 6 + (label_w if low < 0 else 0), self.right - 6 - (label_w if high > 0 else 0)
        if high == low:  # all zero: an axis from 0 to 1
            high = 1.0

        def at(value: float) -> float:
            return x0 + (value - low) / span * (x1 - x0)

        for tick in _ticks(low, high):
            if low - 1e-12 <= tick <= high + 1e-12:
                canvas.line([(at(tick), self.top), (at(tick), self.bottom)], _GRID)
                canvas.text((at(tick), self.bottom + 6), _short(tick), size=10, anchor="ma")
        zero = at(0.0)
        for i, (name, row) in enumerate(zip(self.names, self.rows)):
            middle = self.top + 4 + (i + 0.5) * self.row_h
            canvas.text((self.left - 8, middle), name, size=10, anchor="rm")
            for k, value in enumerate(row):
                y = middle - self.bar_h * len(row) / 2 + k * self.bar_h
                if not math.isnan(value) and value != 0:
                    end = at(value)
                    canvas.rectangle((min(zero, end), y + 1, max(zero, end), y + self.bar_h - 1), fill=_PALETTE[k % len(_PALETTE)])
                if self.bar_h >= 8:
                    tip = at(value) if not math.isnan(value) else zero
                    left_side = not math.isnan(value) and value < 0
                    canvas.text((tip - 4 if left_side else tip + 4, y + self.bar_h / 2), labels[i][k],
                                size=9 if self.series else 10, anchor="rm" if left_side else "lm")
        if low < 0:
            canvas.line([(zero, self.top), (zero, self.bottom)], _INK)
        canvas.rectangle((self.left, self.top, self.right, self.bottom), outline=_INK)

    def _legend(self) -> None:
        canvas, font = self.canvas, self.canvas.font(10)
        widths = [14 + canvas.draw.textlength(name, font=font) / _SCALE + 14 for name in self.series]
        x = max(self.left, (self.left + self.right - sum(widths)) / 2)
        for k, (name, w) in enumerate(zip(self.series, widths)):
            canvas.rectangle((x, 34, x + 10, 44), fill=_PALETTE[k % len(_PALETTE)])
            canvas.text((x + 14, 39), name, size=10, anchor="lm")
            x += w


def _fit(canvas: _Canvas, text: str, font: Any, room: float) -> str:
    """Return ``text``, or its longest prefix plus an ellipsis that is at most ``room`` pixels wide."""
    if canvas.draw.textlength(text, font=font) / _SCALE <= room:
        return text
    cut = min(len(text), int(room))  # a start for the search: glyphs are about a pixel wide at least
    while cut > 1 and canvas.draw.textlength(text[:cut] + "…", font=font) / _SCALE > room:
        cut -= 1
    return text[:cut] + "…"
