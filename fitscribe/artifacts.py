"""``mlflow.artifacts`` under its MLflow name: download, list and read artifacts by URI.

A URI is ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` (or ``@alias``), or the URI of
an artifact store location (``file://...``, ``s3://...``, ``mlflow-artifacts:/...``, a local path).
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
from typing import TYPE_CHECKING, Any

from fitscribe.errors import InvalidValueError

if TYPE_CHECKING:
    from fitscribe.backends import FileInfo
    from fitscribe.client import Client

__all__ = ["download_artifacts", "list_artifacts", "load_text", "load_dict", "load_image"]

_RUNS = re.compile(r"^runs:/([0-9a-fA-F]{32})/?(.*)$")


def _client(tracking_uri: str | None) -> "Client":
    from fitscribe import fluent

    return fluent._PROCESS.client(tracking_uri)


def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                       dst_path: str | None = None, tracking_uri: str | None = None,
                       registry_uri: str | None = None) -> str:
    """Download an artifact file or folder and return its local path, as
    ``mlflow.artifacts.download_artifacts``: give ``artifact_uri``, or ``run_id`` (and ``artifact_path``).
    ``models:/`` URIs are resolved in the current registry (``registry_uri`` is accepted for MLflow's
    signature; use ``set_registry_uri``).

    Raises:
        InvalidValueError: Both or neither of ``artifact_uri`` and ``run_id`` were given.
        NotFoundError: Nothing is at the URI.
    """
    if (artifact_uri is None) == (run_id is None):
        raise InvalidValueError("Give exactly one of artifact_uri and run_id (with artifact_path).")
    if artifact_uri is not None and artifact_path is not None:
        raise InvalidValueError("artifact_path goes with run_id; put the path in artifact_uri instead.")
    dst = dst_path or tempfile.mkdtemp(prefix="fitscribe-download-")
    if run_id is not None:
        return _client(tracking_uri).download_artifacts(run_id, artifact_path or "", dst)
    assert artifact_uri is not None
    match = _RUNS.match(artifact_uri)
    if match:
        return _client(tracking_uri).download_artifacts(match.group(1), match.group(2).strip("/"), dst)
    if artifact_uri.startswith("models:/"):
        from fitscribe.flavors.loading import resolve_model_uri

        return resolve_model_uri(artifact_uri, dst)
    from fitscribe.backends import get_artifact_store

    parent, name = posixpath.split(artifact_uri.rstrip("/"))
    return get_artifact_store(parent).get(name, dst)


def list_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                   tracking_uri: str | None = None) -> "list[FileInfo]":
    """List the files and folders directly under an artifact URI or a run's ``artifact_path``."""
    if (artifact_uri is None) == (run_id is None):
        raise InvalidValueError("Give exactly one of artifact_uri and run_id (with artifact_path).")
    if run_id is not None:
        return _client(tracking_uri).list_artifacts(run_id, artifact_path)
    assert artifact_uri is not None
    match = _RUNS.match(artifact_uri)
    if match:
        return _client(tracking_uri).list_artifacts(match.group(1), match.group(2).strip("/") or None)
    from fitscribe.backends import get_artifact_store

    return get_artifact_store(artifact_uri).list(None)


def load_text(artifact_uri: str) -> str:
    """Return the text of an artifact file."""
    with tempfile.TemporaryDirectory(prefix="fitscribe-") as tmp:
        with open(download_artifacts(artifact_uri=artifact_uri, dst_path=tmp), encoding="utf-8") as fh:
            return fh.read()


def load_dict(artifact_uri: str) -> Any:
    """Return the content of a JSON or YAML artifact file.

    Raises:
        InvalidValueError: The file is neither JSON nor YAML.
    """
    text = load_text(artifact_uri)
    try:
        return json.loads(text)
    except ValueError:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidValueError(f"{artifact_uri!r} is neither JSON nor YAML: {exc}") from None


def load_image(artifact_uri: str) -> Any:
    """Return an image artifact as a ``PIL.Image.Image`` (loaded into memory)."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="fitscribe-") as tmp:
        with Image.open(download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)) as image:
            image.load()
            return image.copy()
