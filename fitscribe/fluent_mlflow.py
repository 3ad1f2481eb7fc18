"""More fluent calls with MLflow's names and signatures, for scripts written against ``mlflow``:
registering models, experiment tags, tables, time-stepped images and downloads by URI.

Each works on the current run or experiment of :mod:`fitscribe.fluent` and delegates to its
``Client``, like the rest of the fluent API.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe import fluent
from fitscribe.errors import AlreadyExistsError, InvalidValueError
from fitscribe.image_series import TAG_LOGGED_IMAGES, check_arguments

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
    in MLflow's format; see :meth:`fitscribe.Client.log_table`."""
    run_id = run_id or fluent._run_id()
    client = fluent._client_for_current() if fluent.active_run() else fluent.get_client()
    client.log_table(run_id, data, artifact_file)


def load_table(artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """Return the table ``artifact_file`` of every run of the current experiment that logged it
    (or of ``run_ids``) as one DataFrame, with ``extra_columns`` such as ``["run_id"]``."""
    return fluent.get_client().load_table(_experiment_id(), artifact_file, run_ids, extra_columns)


def log_image(image: Any, artifact_file: str | None = None, *, key: str | None = None, step: int | None = None,
              timestamp: int | None = None, synchronous: bool | None = None) -> None:
    """Save a numpy array or PIL image: as the file ``artifact_file``, or (``key``, ``step``) as one
    frame of a time-stepped image series, in MLflow's layout (``images/<key>+step+<step>+...png``
    plus a small ``.webp`` copy, and the ``mlflow.loggedImages`` tag); see :meth:`fitscribe.Client.log_image`.

    Raises:
        TypeError: Neither or both of ``artifact_file`` and ``key`` were given (as in MLflow).
        InvalidValueError: ``key`` has characters other than letters, digits, ``_-./`` and space.
    """
    check_arguments(artifact_file, key, step, timestamp)
    fluent._client_for_current().log_image(fluent._run_id(), image, artifact_file, key, step, timestamp)


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
