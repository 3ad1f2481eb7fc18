"""Resolve the tracking and artifact URIs at call time: explicit argument, then environment, then default.

Environment variables (read when a URI is resolved, never at import):

- ``FITSCRIBE_TRACKING_URI``: where runs are recorded. A folder path (or ``file:`` URI) means an
  embedded store in that folder; ``sqlite:///...``, ``postgresql://...``, ``mysql://...`` name a
  database; ``http(s)://...`` a tracking server.
- ``FITSCRIBE_ARTIFACT_URI``: where new experiments store artifacts (default: the ``artifacts``
  folder beside the embedded database, or ``./fitruns/artifacts`` for a database server).
- ``FITSCRIBE_EXPERIMENT_NAME``: the experiment fluent runs go to when none was set.
- ``FITSCRIBE_STRICT``: ``1`` makes autolog re-raise its own errors (used by the test suite).
"""

from __future__ import annotations

import os

from fitscribe.uri import file_uri_to_path, path_to_file_uri, scheme_key

__all__ = [
    "DEFAULT_FOLDER",
    "DB_FILENAME",
    "ARTIFACTS_DIRNAME",
    "ENV_TRACKING_URI",
    "ENV_ARTIFACT_URI",
    "ENV_EXPERIMENT_NAME",
    "ENV_STRICT",
    "resolve_tracking_uri",
    "resolve_artifact_root",
    "embedded_folder",
]

DEFAULT_FOLDER = "fitruns"
DB_FILENAME = "tracking.db"
ARTIFACTS_DIRNAME = "artifacts"

ENV_TRACKING_URI = "FITSCRIBE_TRACKING_URI"
ENV_ARTIFACT_URI = "FITSCRIBE_ARTIFACT_URI"
ENV_EXPERIMENT_NAME = "FITSCRIBE_EXPERIMENT_NAME"
ENV_STRICT = "FITSCRIBE_STRICT"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """Return the tracking URI to use.

    Args:
        explicit: A URI given by the caller; wins over everything else.

    Returns:
        ``explicit``, else ``$FITSCRIBE_TRACKING_URI``, else the absolute path of ``./fitruns``.
    """
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_TRACKING_URI)
    if from_env:
        return from_env
    return os.path.abspath(DEFAULT_FOLDER)


def embedded_folder(tracking_uri: str) -> str | None:
    """Return the local folder an embedded tracking URI lives in, or None for a server.

    A bare path or ``file:`` URI is the folder itself; ``sqlite:///x/tracking.db`` is ``x``.
    """
    key = scheme_key(tracking_uri)
    if key == "file":
        return os.path.abspath(file_uri_to_path(tracking_uri))
    if key == "sqlite":
        path = tracking_uri.split(":///", 1)[1] if ":///" in tracking_uri else ""
        path = path.split("?", 1)[0]
        if path and path != ":memory:":
            return os.path.dirname(os.path.abspath(path))
    return None


def resolve_artifact_root(tracking_uri: str, explicit: str | None = None) -> str:
    """Return the default artifact root for new experiments of a tracking store.

    Args:
        tracking_uri: The store's URI; an embedded store keeps artifacts beside its database.
        explicit: An artifact root given by the caller; wins over everything else.

    Returns:
        A URI: ``explicit``, else ``$FITSCRIBE_ARTIFACT_URI``, else ``file://<folder>/artifacts``.
    """
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_ARTIFACT_URI)
    if from_env:
        return from_env
    folder = embedded_folder(tracking_uri) or os.path.abspath(DEFAULT_FOLDER)
    return path_to_file_uri(os.path.join(folder, ARTIFACTS_DIRNAME))
