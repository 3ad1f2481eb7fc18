"""Resolve the tracking, registry and artifact URIs at call time: explicit argument, then the value
set with ``set_tracking_uri``, then environment, then default.

Environment variables (read when a URI is resolved, never at import). Each ``FITSCRIBE_`` variable
has an MLflow twin (``MLFLOW_TRACKING_URI``...), read when the ``FITSCRIBE_`` one is unset or empty,
so a script written for MLflow keeps its configuration:

- ``FITSCRIBE_TRACKING_URI``: where runs are recorded. A folder path (or ``file:`` URI) means an
  embedded store in that folder; ``sqlite:///...``, ``postgresql://...``, ``mysql://...`` name a
  database; ``http(s)://...`` a tracking server.
- ``FITSCRIBE_REGISTRY_URI``: where the model registry lives (default: the tracking URI).
- ``FITSCRIBE_ARTIFACT_URI``: where new experiments store artifacts (default: the ``artifacts``
  folder beside the embedded database, or ``./fitruns/artifacts`` for a database server).
- ``FITSCRIBE_EXPERIMENT_NAME``: the experiment fluent runs go to when none was set (created if
  missing); ``FITSCRIBE_EXPERIMENT_ID``: the same by id (it must exist). When both are set they
  must name the same experiment.
- ``FITSCRIBE_RUN_ID``: ``start_run()`` without a ``run_id`` resumes this run, then removes the
  variable (and its MLflow twin) from ``os.environ``.
- ``FITSCRIBE_STRICT``: ``1`` makes autolog re-raise its own errors (used by the test suite).
- ``FITSCRIBE_OFFLINE``: ``auto`` makes a process whose tracking server cannot be reached when its
  store is first opened log into a local store instead (``FITSCRIBE_OFFLINE_DIR``, default
  ``./fitruns``), for ``fitscribe push`` later; see :mod:`fitscribe.offline`.

Credentials and TLS options of a tracking server are read by the REST client
(``fitscribe.backends.rest.http``) with the same rule.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from fitscribe.uri import file_uri_to_path, path_to_file_uri, scheme_key

__all__ = [
    "DEFAULT_FOLDER",
    "DB_FILENAME",
    "ARTIFACTS_DIRNAME",
    "ENV_TRACKING_URI",
    "ENV_REGISTRY_URI",
    "ENV_ARTIFACT_URI",
    "ENV_EXPERIMENT_NAME",
    "ENV_EXPERIMENT_ID",
    "ENV_RUN_ID",
    "ENV_STRICT",
    "MLFLOW_TWINS",
    "env_value",
    "env_source",
    "set_tracking_uri",
    "set_registry_uri",
    "current_tracking_uri",
    "reset",
    "resolve_tracking_uri",
    "resolve_registry_uri",
    "resolve_artifact_root",
    "embedded_folder",
    "offline_choice",
    "export_variable",
]

DEFAULT_FOLDER = "fitruns"
DB_FILENAME = "tracking.db"
ARTIFACTS_DIRNAME = "artifacts"

ENV_TRACKING_URI = "FITSCRIBE_TRACKING_URI"
ENV_REGISTRY_URI = "FITSCRIBE_REGISTRY_URI"
ENV_ARTIFACT_URI = "FITSCRIBE_ARTIFACT_URI"
ENV_EXPERIMENT_NAME = "FITSCRIBE_EXPERIMENT_NAME"
ENV_EXPERIMENT_ID = "FITSCRIBE_EXPERIMENT_ID"
ENV_RUN_ID = "FITSCRIBE_RUN_ID"
ENV_STRICT = "FITSCRIBE_STRICT"

MLFLOW_TWINS = {
    ENV_TRACKING_URI: "MLFLOW_TRACKING_URI",
    ENV_REGISTRY_URI: "MLFLOW_REGISTRY_URI",
    ENV_EXPERIMENT_NAME: "MLFLOW_EXPERIMENT_NAME",
    ENV_EXPERIMENT_ID: "MLFLOW_EXPERIMENT_ID",
    ENV_RUN_ID: "MLFLOW_RUN_ID",
    "FITSCRIBE_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
    "FITSCRIBE_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
    "FITSCRIBE_TRACKING_TOKEN": "MLFLOW_TRACKING_TOKEN",
    "FITSCRIBE_TRACKING_INSECURE_TLS": "MLFLOW_TRACKING_INSECURE_TLS",
    "FITSCRIBE_TRACKING_SERVER_CERT_PATH": "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "FITSCRIBE_TRACKING_CLIENT_CERT_PATH": "MLFLOW_TRACKING_CLIENT_CERT_PATH",
}
"""Each ``FITSCRIBE_`` variable and the MLflow variable read when it is unset."""


def env_source(name: str) -> str | None:
    """Return the variable that gives ``name``'s value: ``name`` itself, else its MLflow twin, else None.

    >>> env_source("FITSCRIBE_NO_SUCH_VARIABLE") is None
    True
    """
    if os.environ.get(name):
        return name
    twin = MLFLOW_TWINS.get(name)
    if twin and os.environ.get(twin):
        return twin
    return None


def env_value(name: str) -> str | None:
    """Return ``$name`` if set and not empty, else its MLflow twin's value (``MLFLOW_...``), else None."""
    source = env_source(name)
    return os.environ[source] if source else None


class _Current:
    """The process-wide URIs set by ``set_tracking_uri`` / ``set_registry_uri`` and the variables
    they overwrote (restored by :func:`reset`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tracking: str | None = None
        self.registry: str | None = None
        self.saved_env: dict[str, str | None] = {}
        self.offline_lock = threading.Lock()
        self.offline: dict[str, str] = {}  # server URI -> the store this process uses (FITSCRIBE_OFFLINE=auto)

    def export(self, names: tuple[str, ...], value: str | None) -> None:
        """Write ``value`` to the variables (or remove them) so child processes inherit it."""
        for name in names:
            self.saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_CURRENT = _Current()


def set_tracking_uri(uri: str | None) -> None:
    """Make ``uri`` the tracking URI of the whole process (None: back to the environment).

    It wins over the environment, and is also written to ``FITSCRIBE_TRACKING_URI`` and
    ``MLFLOW_TRACKING_URI`` so child processes inherit it, as MLflow does.
    """
    with _CURRENT.lock:
        _CURRENT.export((ENV_TRACKING_URI, MLFLOW_TWINS[ENV_TRACKING_URI]), uri or None)
        _CURRENT.tracking = uri or None


def set_registry_uri(uri: str | None) -> None:
    """Make ``uri`` the model registry URI of the whole process (None: back to the environment)."""
    with _CURRENT.lock:
        _CURRENT.export((ENV_REGISTRY_URI, MLFLOW_TWINS[ENV_REGISTRY_URI]), uri or None)
        _CURRENT.registry = uri or None


def current_tracking_uri() -> str | None:
    """Return the URI set with :func:`set_tracking_uri`, or None."""
    return _CURRENT.tracking


def reset() -> None:
    """Forget the URIs set in this process and put back the variables they overwrote (for tests)."""
    with _CURRENT.lock:
        for name, value in _CURRENT.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _CURRENT.saved_env.clear()
        _CURRENT.tracking = _CURRENT.registry = None
    with _CURRENT.offline_lock:
        _CURRENT.offline.clear()


def export_variable(name: str, value: str | None) -> None:
    """Set (or remove) an environment variable for child processes; :func:`reset` puts it back."""
    with _CURRENT.lock:
        _CURRENT.export((name,), value)


def offline_choice(uri: str, decide: Callable[[], str]) -> str:
    """Return the store this process uses for the server ``uri`` under ``FITSCRIBE_OFFLINE=auto``,
    calling ``decide()`` the first time only (the choice holds until the process ends or :func:`reset`)."""
    with _CURRENT.offline_lock:
        found = _CURRENT.offline.get(uri)
        if found is None:
            found = _CURRENT.offline[uri] = decide()
        return found


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """Return the tracking URI to use.

    Args:
        explicit: A URI given by the caller; wins over everything else.

    Returns:
        ``explicit``, else the URI set with ``set_tracking_uri``, else ``$FITSCRIBE_TRACKING_URI``,
        else ``$MLFLOW_TRACKING_URI``, else the absolute path of ``./fitruns``.
    """
    if explicit:
        return os.fspath(explicit)
    current = _CURRENT.tracking
    if current:
        return current
    from_env = env_value(ENV_TRACKING_URI)
    if from_env:
        return from_env
    return os.path.abspath(DEFAULT_FOLDER)


def resolve_registry_uri(explicit: str | None = None, tracking_uri: str | None = None) -> str:
    """Return the model registry URI to use.

    Returns:
        ``explicit``, else the URI set with ``set_registry_uri``, else ``$FITSCRIBE_REGISTRY_URI``,
        else ``$MLFLOW_REGISTRY_URI``, else the tracking URI (``tracking_uri`` or the resolved one).
    """
    if explicit:
        return os.fspath(explicit)
    current = _CURRENT.registry or env_value(ENV_REGISTRY_URI)
    return current or resolve_tracking_uri(tracking_uri)


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
