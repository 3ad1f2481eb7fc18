"""Serialise in-memory objects (text, dicts, figures, images) to files, for ``Client.log_*``.

Each ``write_*`` function writes one file named ``filename`` into ``dst_dir`` (usually a temporary
folder) and returns its path; the caller then logs that file as an artifact. ``filename`` is a bare
file name: folders belong in the artifact path.

Nothing heavy is imported here at module level: numpy and Pillow load inside the functions that
need them, and figures are duck-typed, so matplotlib and plotly are never imported by fitscribe.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from fitscribe.errors import InvalidValueError, MissingDependencyError

__all__ = ["write_text", "write_dict", "write_figure", "write_image"]

_YAML_SUFFIXES = (".yaml", ".yml")


def write_text(text: str, dst_dir: str, filename: str) -> str:
    """Write ``text`` as UTF-8, exactly as given (no newline translation).

    Args:
        text: The text to save.
        dst_dir: The folder to write into; created if missing.
        filename: A bare file name, e.g. ``"summary.md"``.

    Returns:
        The path of the written file.

    Raises:
        InvalidValueError: ``text`` is not a str, or ``filename`` is not a bare file name.
    """
    if not isinstance(text, str):
        raise InvalidValueError(
            f"log_text expects a str, got {type(text).__name__} {_short_repr(text)}; "
            "convert it with str() first, or use log_dict for a dict."
        )
    path = _target(dst_dir, filename)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return path


def write_dict(dictionary: Mapping[str, Any], dst_dir: str, filename: str) -> str:
    """Write a dict as YAML when ``filename`` ends in ``.yaml``/``.yml``, else as JSON.

    numpy scalars and arrays become Python numbers and lists, tuples become lists, and dates
    become ISO 8601 strings. NaN and infinities are written as JSON's ``NaN``/``Infinity`` (as
    Python's :mod:`json` and MLflow do, so :func:`json.load` reads them back) and YAML's
    ``.nan``/``.inf``. Keys are kept in insertion order.

    Args:
        dictionary: The mapping to save; keys must be str, int, float, bool or None.
        dst_dir: The folder to write into; created if missing.
        filename: A bare file name, e.g. ``"config.yaml"`` or ``"metrics.json"``.

    Returns:
        The path of the written file.

    Raises:
        InvalidValueError: ``dictionary`` is not a mapping, a key or value cannot be serialised
            (the message names its key path), or ``filename`` is not a bare file name.
    """
    if not isinstance(dictionary, Mapping):
        raise InvalidValueError(
            f"log_dict expects a dict, got {type(dictionary).__name__} {_short_repr(dictionary)}; "
            "wrap it, e.g. {'values': ...}."
        )
    plain = _to_plain(dictionary, "dictionary")
    path = _target(dst_dir, filename)
    with open(path, "w", encoding="utf-8") as handle:
        if filename.lower().endswith(_YAML_SUFFIXES):
            import yaml

            yaml.safe_dump(plain, handle, sort_keys=False, allow_unicode=True, default_flow_style=False)
        else:
            json.dump(plain, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
    return path


def write_figure(figure: Any, dst_dir: str, filename: str, **savefig_kwargs: Any) -> str:
    """Save a matplotlib or plotly figure; the format follows the file extension.

    A matplotlib figure (anything with ``savefig``) is saved with ``figure.savefig``; a plotly
    figure (anything with ``write_html``) with ``write_html`` for ``.html``/``.htm`` and
    ``write_image`` otherwise (which needs the ``kaleido`` package). A name without an extension
    gets ``.png`` (matplotlib) or ``.html`` (plotly).

    Args:
        figure: A ``matplotlib.figure.Figure`` or a ``plotly.graph_objects.Figure``.
        dst_dir: The folder to write into; created if missing.
        filename: A bare file name, e.g. ``"loss.png"``, ``"loss.svg"`` or ``"loss.html"``.
        **savefig_kwargs: Passed to ``savefig`` (e.g. ``dpi=150``) or to plotly's writer.

    Returns:
        The path of the written file (with the default extension added if there was none).

    Raises:
        InvalidValueError: ``figure`` is neither kind of figure, the extension is not a format
            the library can write, or ``filename`` is not a bare file name.
        MissingDependencyError: A plotly figure is saved as an image and kaleido is missing.
    """
    if hasattr(figure, "savefig"):
        return _save_matplotlib(figure, _target(dst_dir, filename, ".png"), savefig_kwargs)
    if hasattr(figure, "write_html"):
        return _save_plotly(figure, _target(dst_dir, filename, ".html"), savefig_kwargs)
    raise InvalidValueError(
        f"log_figure expects a matplotlib or plotly figure, got {type(figure).__name__}; "
        "pass e.g. the figure from plt.subplots() or plotly.graph_objects.Figure(), or use log_image "
        "for an array."
    )


def write_image(image: Any, dst_dir: str, filename: str) -> str:
    """Save a numpy array or PIL image with Pillow; the format follows the file extension.

    Arrays may be HxW (grayscale), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA), of an integer type with
    values in [0, 255], bool, or float with values in [0, 1] (scaled by 255 and rounded).
    A name without an extension gets ``.png``.

    Args:
        image: A numpy array or a ``PIL.Image.Image``.
        dst_dir: The folder to write into; created if missing.
        filename: A bare file name, e.g. ``"sample.png"`` or ``"sample.jpg"``.

    Returns:
        The path of the written file (with ``.png`` added if there was no extension).

    Raises:
        InvalidValueError: ``image`` has an unsupported type, shape, dtype or value range, the
            extension is not an image format Pillow can write (in this mode), or ``filename`` is
            not a bare file name.
        MissingDependencyError: Pillow (or numpy, for arrays) is not installed.
    """
    path = _target(dst_dir, filename, ".png")
    pil_image = _import("PIL.Image", "pillow", "log_image")
    if not isinstance(image, pil_image.Image):
        image = pil_image.fromarray(_to_uint8_array(image))
    try:
        image.save(path)
    except ValueError as exc:
        raise InvalidValueError(
            f"Cannot save an image as {filename!r}: {exc}. Use an extension Pillow writes, "
            "e.g. '.png' or '.jpg'."
        ) from exc
    except OSError as exc:
        if exc.errno is not None:  # a real I/O failure, not Pillow refusing the mode
            raise
        raise InvalidValueError(
            f"Cannot save a {image.mode} image as {filename!r}: {exc}. Save it as '.png', or "
            "convert it first (e.g. image.convert('RGB') for JPEG)."
        ) from exc
    return path


# -- helpers ----------------------------------------------------------------------------------


def _target(dst_dir: str, filename: str, default_suffix: str = "") -> str:
    """Check ``filename`` is a bare file name, create ``dst_dir``; return the file's path."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or "\x00" in filename:
        raise InvalidValueError(
            f"The file name {filename!r} is not a bare file name; give a name such as 'plot.png' "
            "and put folders in the artifact path."
        )
    if default_suffix and not os.path.splitext(filename)[1]:
        filename += default_suffix
    os.makedirs(dst_dir, exist_ok=True)
    return os.path.join(dst_dir, filename)


def _import(module: str, package: str, purpose: str) -> Any:
    """Import an optional module, or raise MissingDependencyError naming the ``plots`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError.for_package(package, "plots", purpose) from exc


def _short_repr(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_numpy(value: Any) -> bool:
    """Return True for numpy scalars and arrays, without importing numpy."""
    return type(value).__module__.split(".", 1)[0] == "numpy" and hasattr(value, "tolist")


def _to_plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain str/int/float/bool/None, lists and dicts, for JSON and YAML."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):  # subclasses (str enums, IntEnum...) become the built-in type
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if _is_numpy(value):
        return _to_plain(value.tolist(), where)
    if isinstance(value, Mapping):
        return {_plain_key(k, where): _to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise InvalidValueError(
        f"The value at {where} is {type(value).__name__} {_short_repr(value)}, which cannot be "
        "written to JSON or YAML; convert it to a str, number, bool, None, list or dict first."
    )


def _plain_key(key: Any, where: str) -> Any:
    """Return a dict key as a plain str/int/float/bool/None, or raise naming it."""
    if _is_numpy(key):
        key = key.tolist()
    if key is None or isinstance(key, (str, int, float)):
        return _to_plain(key, where)
    raise InvalidValueError(
        f"The key {_short_repr(key)} in {where} is {type(key).__name__}; keys must be str, int, "
        "float, bool or None. Convert it, e.g. with str()."
    )


def _save_matplotlib(figure: Any, path: str, kwargs: dict[str, Any]) -> str:
    """Save a matplotlib figure, translating an unknown format to InvalidValueError."""
    try:
        figure.savefig(path, **kwargs)
    except ValueError as exc:
        raise InvalidValueError(
            f"matplotlib cannot save the figure as {os.path.basename(path)!r}: {exc}. "
            "Use a supported extension such as '.png', '.svg' or '.pdf'."
        ) from exc
    return path


def _save_plotly(figure: Any, path: str, kwargs: dict[str, Any]) -> str:
    """Save a plotly figure as HTML, or as an image through kaleido."""
    if path.lower().endswith((".html", ".htm")):
        figure.write_html(path, **kwargs)
        return path
    if importlib.util.find_spec("kaleido") is None:
        raise MissingDependencyError(
            f"Saving a plotly figure as {os.path.basename(path)!r} needs the package 'kaleido', "
            "which is not installed. Install it with: pip install kaleido, or save as '.html'.",
            package="kaleido",
        )
    figure.write_image(path, **kwargs)
    return path


def _to_uint8_array(image: Any) -> Any:
    """Check an image array's shape and values and return it as a uint8 array for Pillow."""
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise InvalidValueError(
            f"log_image expects a numpy array or a PIL image, got {type(image).__name__}; "
            "convert it, e.g. with numpy.asarray(image)."
        )
    np = _import("numpy", "numpy", "log_image with an array")
    array = np.asarray(image)
    _check_shape(array.shape)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.uint8) * 255
    if kind in "iu":
        _check_range(array, 0, 255, "integer", "clip or rescale it to [0, 255]")
        return array.astype(np.uint8)
    if kind == "f":
        _check_range(array, 0.0, 1.0, "float", "rescale it to [0, 1], or convert it to uint8 in [0, 255]")
        return np.round(array * 255).astype(np.uint8)
    raise InvalidValueError(
        f"The image array has dtype {array.dtype}; use uint8 (or another integer type) in "
        "[0, 255], or float in [0, 1]."
    )


def _check_shape(shape: tuple[int, ...]) -> None:
    """Refuse shapes other than HxW, HxWx1, HxWx3 and HxWx4, and empty images."""
    valid = len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))
    if not valid or 0 in shape:
        raise InvalidValueError(
            f"The image array has shape {shape}; give HxW (grayscale), HxWx1, HxWx3 (RGB) or "
            "HxWx4 (RGBA) with H and W above 0."
        )


def _check_range(array: Any, low: float, high: float, kind: str, fix: str) -> None:
    """Refuse pixel values outside ``[low, high]``, and NaN."""
    lowest, highest = float(array.min()), float(array.max())
    if math.isnan(lowest) or math.isnan(highest):
        raise InvalidValueError(f"The {kind} image array contains NaN; replace it, then {fix}.")
    if lowest < low or highest > high:
        raise InvalidValueError(
            f"The {kind} image array has values from {lowest} to {highest}, outside [{low}, {high}]; "
            f"{fix}."
        )
