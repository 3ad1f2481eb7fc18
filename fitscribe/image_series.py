"""Time-stepped images in MLflow's layout: one frame of the series ``key`` per ``log_image`` call.

A frame is ``images/<key>+step+<step>+timestamp+<ms>+<uuid>.png`` plus a copy scaled to fit
256 x 256 pixels (``...+compressed.webp``, MLflow's thumbnail), and the run gets the tag
``mlflow.loggedImages = "True"``; a ``/`` in the key is written ``~``. ``Client.log_image`` and the
fluent ``log_image`` both come here; PIL is imported only when a frame is written.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from fitscribe import _time
from fitscribe.errors import InvalidValueError

if TYPE_CHECKING:
    from fitscribe.client import Client

__all__ = ["TAG_LOGGED_IMAGES", "check_arguments", "log_frame"]

TAG_LOGGED_IMAGES = "mlflow.loggedImages"
_KEY = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
_THUMBNAIL = 256


def check_arguments(artifact_file: str | None, key: str | None, step: int | None, timestamp: int | None) -> None:
    """Check that ``log_image`` got a static file name alone or a series key, as MLflow requires.

    Raises:
        TypeError: Neither or both of ``artifact_file`` and ``key`` (or its ``step``/``timestamp``).
        InvalidValueError: ``key`` has characters other than letters, digits, ``_-./`` and space.
    """
    if artifact_file is not None and (key is not None or step is not None or timestamp is not None):
        raise TypeError("log_image takes artifact_file alone, or key (with step and timestamp), not both.")
    if artifact_file is None and key is None:
        raise TypeError("log_image needs artifact_file (a static image) or key (a time-stepped image series).")
    if key is not None and not _KEY.match(key):
        raise InvalidValueError(f"The image key {key!r} may only hold letters, digits, '_', '-', '.', '/' and spaces.")


def log_frame(client: "Client", run_id: str, image: Any, key: str, step: int | None = None,
              timestamp: int | None = None) -> None:
    """Log ``image`` (a numpy array or PIL image) as the frame ``step`` of the series ``key``.

    ``timestamp`` defaults to now (:func:`fitscribe._time.now_ms`), ``step`` to 0.
    """
    check_arguments(None, key, step, timestamp)
    stamp = timestamp if timestamp is not None else _time.now_ms()
    base = f"images/{key.replace('/', '~')}+step+{step or 0}+timestamp+{stamp}+{uuid.uuid4()}"
    client.log_image(run_id, image, f"{base}.png")
    thumbnail = _thumbnail(image)
    if thumbnail is not None:
        client.log_image(run_id, thumbnail, f"{base}+compressed.webp")
    client.set_tag(run_id, TAG_LOGGED_IMAGES, "True")


def _thumbnail(image: Any) -> Any:
    """A copy scaled to fit 256 x 256 (MLflow's compressed size), or None without WebP support."""
    from PIL import Image, features

    if not features.check("webp"):
        return None
    if not isinstance(image, Image.Image):
        from fitscribe.artifact_writers import _to_uint8_array

        image = Image.fromarray(_to_uint8_array(image))
    width, height = image.size
    scale = _THUMBNAIL / max(width, height, 1)
    return image.resize((max(1, int(width * scale)), max(1, int(height * scale))))
