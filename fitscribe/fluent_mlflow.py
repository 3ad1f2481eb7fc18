"""More fluent calls with MLflow's names and signatures, for scripts written against ``mlflow``:
registering models, experiment tags, tables, time-stepped images and downloads by URI.

Each works on the current run or experiment of :mod:`fitscribe.fluent` and delegates to its
``Client``, like the rest of the fluent API.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe import fluent
from fitscribe.errors import AlreadyExistsError, InvalidValueError

if TYPE_CHECKING:
    from fitscribe.entities import ModelVersion, PagedList, RegisteredModel, Run

__all__ = [
    "register_model",
    "search_registered_models",
    "search_model_versions",
    "get_parent_run",
    "set_experiment_tag",
    "set_experiment_tags",
    "delete_experiment_tag",
    "log_table",
    "load_table",
    "log_image",
    "download_artifacts",
    "flush_async_logging",
    "TAG_LOGGED_IMAGES",
]

TAG_LOGGED_IMAGES = "mlflow.loggedImages"
_IMAGE_KEY = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
_THUMBNAIL = 256


def register_model(model_uri: str, name: str, await_registration_for: int = 300, *,
                   tags: dict[str, Any] | None = None) -> "ModelVersion":
    """Register the model at ``model_uri`` (e.g. ``runs:/<run_id>/model``) as a new version of
    ``name``, creating the registered model if needed; return the version (READY at once).

    Raises:
        NotFoundError: A ``runs:/`` URI names a run that does not exist.
    """
    client = fluent.get_client()
    run_id = None
    match = re.match(r"^runs:/([0-9a-fA-F]{32})(/|$)", model_uri)
    if match:
        run_id = match.group(1)
        client.get_run(run_id)
    try:
        client.create_registered_model(name)
    except AlreadyExistsError:
        pass
    return client.create_model_version(name, model_uri, run_id=run_id, tags=tags)


def search_registered_models(max_results: int | None = None, filter_string: str | None = None,
                             order_by: Sequence[str] | None = None) -> "list[RegisteredModel]":
    """Return every registered model matching the filter (all pages), e.g. ``"name LIKE 'churn%'"``."""
    client = fluent.get_client()
    return _all_pages(lambda size, token: client.search_registered_models(filter_string, size, order_by, token),
                      max_results, 1000)


def search_model_versions(max_results: int | None = None, filter_string: str | None = None,
                          order_by: Sequence[str] | None = None) -> "list[ModelVersion]":
    """Return every model version matching the filter (all pages), e.g. ``"name = 'churn'"``."""
    client = fluent.get_client()
    return _all_pages(lambda size, token: client.search_model_versions(filter_string, size, order_by, token),
                      max_results, 10000)


def _all_pages(fetch: Any, max_results: int | None, page: int) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        size = min(page, max_results - len(found)) if max_results else page
        got: PagedList[Any] = fetch(size, token)
        found.extend(got)
        token = got.token
        if not token or (max_results and len(found) >= max_results):
            return found


def get_parent_run(run_id: str) -> "Run | None":
    """Return the parent of a nested run, or None."""
    return fluent.get_client().get_parent_run(run_id)


def _experiment_id() -> str:
    client = fluent.get_client()
    return fluent._PROCESS.experiment_id or fluent._current_experiment_id(client)


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the current experiment (the one ``set_experiment`` or the environment chose)."""
    fluent.get_client().set_experiment_tag(_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the current experiment."""
    client = fluent.get_client()
    exp_id = _experiment_id()
    for key, value in tags.items():
        client.set_experiment_tag(exp_id, key, value)


def delete_experiment_tag(key: str) -> None:
    """Remove a tag from the current experiment."""
    fluent.get_client().delete_experiment_tag(_experiment_id(), key)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a DataFrame or dict of columns as a table artifact of the current run (or ``run_id``),
    in MLflow's format; see :mod:`fitscribe.tables`."""
    from fitscribe.tables import log_table as write

    run_id = run_id or fluent._run_id()
    client = fluent._client_for_current() if fluent.active_run() else fluent.get_client()
    write(client, run_id, data, artifact_file)


def load_table(artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """Return the table ``artifact_file`` of every run of the current experiment that logged it
    (or of ``run_ids``) as one DataFrame, with ``extra_columns`` such as ``["run_id"]``."""
    from fitscribe.tables import load_table as read

    return read(fluent.get_client(), _experiment_id(), artifact_file, run_ids, extra_columns)


def log_image(image: Any, artifact_file: str | None = None, *, key: str | None = None, step: int | None = None,
              timestamp: int | None = None, synchronous: bool | None = None) -> None:
    """Save a numpy array or PIL image: as the file ``artifact_file``, or (``key``, ``step``) as one
    frame of a time-stepped image series, in MLflow's layout (``images/<key>+step+<step>+...png``
    plus a small ``.webp`` copy, and the ``mlflow.loggedImages`` tag).

    Raises:
        TypeError: Neither or both of ``artifact_file`` and ``key`` were given (as in MLflow).
        InvalidValueError: ``key`` has characters other than letters, digits, ``_-./`` and space.
    """
    if artifact_file is not None and (key is not None or step is not None or timestamp is not None):
        raise TypeError("log_image takes artifact_file alone, or key (with step and timestamp), not both.")
    if artifact_file is None and key is None:
        raise TypeError("log_image needs artifact_file (a static image) or key (a time-stepped image series).")
    run_id = fluent._run_id()
    client = fluent._client_for_current()
    if artifact_file is not None:
        client.log_image(run_id, image, artifact_file)
        return
    assert key is not None
    if not _IMAGE_KEY.match(key):
        raise InvalidValueError(f"The image key {key!r} may only hold letters, digits, '_', '-', '.', '/' and spaces.")
    stamp = timestamp if timestamp is not None else int(time.time() * 1000)
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


def download_artifacts(run_id: str | None = None, artifact_path: str = "", dst_path: str | None = None, *,
                       artifact_uri: str | None = None, tracking_uri: str | None = None) -> str:
    """Download a run's artifact file or folder, or anything named by ``artifact_uri``
    (``runs:/<id>/path``, ``models:/...``, an artifact-store URI); return the local path.

    Raises:
        InvalidValueError: ``artifact_uri`` was given with ``run_id`` or ``artifact_path``.
    """
    if artifact_uri is not None:
        from fitscribe.artifacts import download_artifacts as by_uri

        if run_id is not None or artifact_path:
            raise InvalidValueError("Give artifact_uri alone, or run_id and artifact_path, not both.")
        return by_uri(artifact_uri=artifact_uri, dst_path=dst_path, tracking_uri=tracking_uri)
    from fitscribe.lookup import download_artifacts as by_run

    if tracking_uri is not None:
        from fitscribe.lookup import _current_run_id

        return fluent._PROCESS.client(tracking_uri).download_artifacts(run_id or _current_run_id(), artifact_path, dst_path)
    return by_run(run_id, artifact_path, dst_path)


def flush_async_logging() -> None:
    """Block until everything logged so far is stored (MLflow's name for :func:`fitscribe.flush`)."""
    fluent.flush()
