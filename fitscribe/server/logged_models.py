"""MLflow 3 "logged models" on the server: kept by the tracking store, and the one-time import of
the JSON records older servers wrote.

The records live in the tracking database (``TrackingStore.create_logged_model`` and its siblings;
tables ``logged_models``, ``logged_model_tags``, ``logged_model_params``), so server replicas sharing
one database share them, and a search is one query. A model's files live under its
``artifact_location``: ``<experiment artifact location>/models/<model_id>/artifacts``, as MLflow lays
them out.

Servers before revision 0007 kept each model as a JSON file in the artifact destination,
``.fitscribe/logged-models/<model_id>.json``. The first time a server serves logged models it copies
those into the database (:func:`import_json_records`): each is inserted only if its id is absent, so
running it again, or on two replicas at once, changes nothing; an imported file then moves to
``.fitscribe/logged-models/imported/``. A record whose ``artifact_uri`` is not the folder the server
assigns for its experiment and id (changed outside the server) is refused with a warning and left
in place.

Not kept: metrics logged with a ``model_id`` (they are stored on the run only) and run outputs.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
from typing import TYPE_CHECKING, Any

from fitscribe.entities.logged_model import STATUSES, LOGGED_MODEL_ATTRIBUTES, parse_status
from fitscribe.errors import AlreadyExistsError, FitscribeError, NotFoundError
from fitscribe.uri import join_uri

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore, TrackingStore

__all__ = ["import_json_records", "STATUSES", "LOGGED_MODEL_ATTRIBUTES", "parse_status", "FOLDER"]

FOLDER = ".fitscribe/logged-models"
"""Where servers before revision 0007 kept logged-model records in the artifact destination."""
_IMPORTED = f"{FOLDER}/imported"
_log = logging.getLogger("fitscribe.server")


def import_json_records(tracking: "TrackingStore", destination: "ArtifactStore") -> int:
    """Copy the JSON logged-model records of older servers into the tracking store, once.

    Each record is inserted only if no model has its id, then its file moves to
    ``.fitscribe/logged-models/imported/``. Records that cannot be read, or that name an artifact
    location the server would not assign, are logged and left in place.

    Args:
        tracking: The server's tracking store (it keeps logged models).
        destination: The server's artifact destination, where the records are.

    Returns:
        How many models were inserted.
    """
    try:
        infos = destination.list(FOLDER)
    except NotFoundError:
        return 0
    inserted = 0
    for info in infos:
        if info.is_dir or not info.path.endswith(".json"):
            continue
        try:
            raw = b"".join(destination.open(info.path))
            inserted += _import_record(tracking, json.loads(raw))
        except (FitscribeError, ValueError, KeyError, TypeError) as exc:
            _log.warning("Did not import the logged model record %s: %s", info.path, exc)
            continue
        _move_to_imported(destination, info.path, raw)
    if inserted:
        _log.info("Imported %d logged model(s) from %s into the tracking database.", inserted, FOLDER)
    return inserted


def _import_record(tracking: "TrackingStore", record: dict[str, Any]) -> int:
    """Insert one record unless its id exists; return 1 if inserted, else 0.

    Raises:
        ValueError: The record names an artifact location the server would not assign.
    """
    model_id = record["model_id"]
    experiment = tracking.get_experiment(str(record["experiment_id"]))
    expected = join_uri(experiment.artifact_location, "models", model_id, "artifacts")
    if record.get("artifact_uri") != expected:
        raise ValueError(f"it names the artifact location {record.get('artifact_uri')!r} instead of {expected!r}; "
                         "it was changed outside the server")
    try:
        tracking.create_logged_model(
            experiment.experiment_id, record["name"], model_id=model_id,
            source_run_id=record.get("source_run_id") or None, model_type=record.get("model_type") or None,
            params=record.get("params") or {}, tags=record.get("tags") or {}, status=record["status"],
            artifact_location=expected, creation_timestamp=record["creation_timestamp_ms"],
            last_updated_timestamp=record["last_updated_timestamp_ms"])
    except AlreadyExistsError:
        return 0
    if record.get("lifecycle_stage") == "deleted":
        tracking.delete_logged_model(model_id)
    return 1


def _move_to_imported(destination: "ArtifactStore", path: str, raw: bytes) -> None:
    """Keep a copy of an imported record under ``imported/`` and remove the original."""
    with tempfile.TemporaryDirectory(prefix="fitscribe-model-") as tmp:
        local = os.path.join(tmp, posixpath.basename(path))
        with open(local, "wb") as handle:
            handle.write(raw)
        destination.put(local, _IMPORTED)
    try:
        destination.delete(path)
    except NotFoundError:  # another replica moved it first
        pass
