"""What one server application serves: its tracking store (logged models included) and artifact destination.

One :class:`ServerState` lives in ``app.state.server``; nothing is kept at module level. Stores are
built on first use, and their constructors do no I/O, so building an app is instant.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from fitscribe.backends import get_artifact_store, get_tracking_store
from fitscribe.config import resolve_artifact_root
from fitscribe.errors import InvalidValueError
from fitscribe.server.errors import EndpointNotFound
from fitscribe.uri import check_relative_path, join_uri, scheme_key

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore, TrackingStore

__all__ = ["ServerState", "PROXY_SCHEME", "check_proxy_path"]

PROXY_SCHEME = "mlflow-artifacts"
"""Artifact URIs of this scheme are served by the artifact proxy (``mlflow-artifacts:/1/<run>/artifacts``)."""


def check_proxy_path(path: str, *, file: bool = False) -> str:
    """Validate an artifact path received over HTTP; return it normalised (``""`` for the root).

    Refused: ``..`` segments, absolute paths, backslashes, ``#`` and NUL bytes (after URL decoding,
    which the server has already done).

    Args:
        path: The path, relative to the artifact destination or a run's artifact root.
        file: The path must name a file (not the root, no trailing slash).

    Raises:
        InvalidValueError: The path is refused.
    """
    if "\\" in path or "#" in path or "\x00" in path or ".." in path.split("/"):
        raise InvalidValueError(
            f"Invalid path {path!r}: artifact paths may not contain '..' segments, backslashes, '#' or NUL bytes."
        )
    relative = check_relative_path(path)
    if file and (not relative or path.endswith("/")):
        raise InvalidValueError(f"Invalid path {path!r}: it must name a file, e.g. '1/<run_id>/artifacts/model.pkl'.")
    return relative


class ServerState:
    """The stores behind one application.

    Args:
        tracking_uri: The tracking store's URI (a folder, ``sqlite:///``, ``postgresql://``...).
        artifact_uri: Where the artifact proxy keeps files (the ``--artifacts-destination``);
            default: the store's default artifact root (``artifacts/`` beside an embedded database).
        serve_artifacts: Serve the artifact proxy. New experiments then get ``mlflow-artifacts:/<id>``
            locations, so clients send artifacts through this server; otherwise they get locations
            under ``artifact_uri`` and write there themselves.
    """

    def __init__(self, tracking_uri: str, artifact_uri: str | None, serve_artifacts: bool) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_destination = artifact_uri or resolve_artifact_root(tracking_uri)
        self.serve_artifacts = serve_artifacts
        self.default_artifact_root = f"{PROXY_SCHEME}:/" if serve_artifacts else self.artifact_destination
        self._lock = threading.Lock()
        self._tracking: TrackingStore | None = None
        self._destination: ArtifactStore | None = None
        self._records_imported = False
        self._import_lock = threading.Lock()

    @property
    def tracking(self) -> "TrackingStore":
        """The tracking store, built on first use."""
        if self._tracking is None:
            with self._lock:
                if self._tracking is None:
                    self._tracking = get_tracking_store(self.tracking_uri, artifact_uri=self.default_artifact_root)
        return self._tracking

    @property
    def destination(self) -> "ArtifactStore":
        """The artifact store rooted at the artifact destination."""
        if self._destination is None:
            self._destination = get_artifact_store(self.artifact_destination)
        return self._destination

    @property
    def logged_models(self) -> "TrackingStore":
        """The tracking store, which keeps MLflow 3 logged models; on first use, the JSON records of
        older servers are imported into it (server/logged_models.py)."""
        if not self._records_imported:
            from fitscribe.server.logged_models import import_json_records

            with self._import_lock:
                if not self._records_imported:
                    try:
                        import_json_records(self.tracking, self.destination)
                    except Exception as exc:  # requests still work; a restart retries the import
                        logging.getLogger("fitscribe.server").warning(
                            "Could not import older servers' logged model records: %s", exc)
                    self._records_imported = True
        return self.tracking

    def proxy_store(self) -> "ArtifactStore":
        """The artifact destination, for the proxy endpoints.

        Raises:
            EndpointNotFound: The server was started without artifact serving.
        """
        if not self.serve_artifacts:
            raise EndpointNotFound(
                "This server does not serve artifacts (started with --no-serve-artifacts); "
                "write artifacts to the experiment's artifact location directly."
            )
        return self.destination

    def artifact_store_for(self, uri: str) -> "ArtifactStore":
        """Return an artifact store rooted at ``uri``: a run's or a model's artifact root.

        ``mlflow-artifacts:`` URIs resolve inside the artifact destination; any other URI opens the
        store registered for its scheme.
        """
        if scheme_key(uri) != PROXY_SCHEME:
            return get_artifact_store(uri)
        relative = check_proxy_path(unquote(urlsplit(uri).path).lstrip("/"))
        if not relative:
            return self.destination
        return get_artifact_store(join_uri(self.artifact_destination, relative))

    def warm_up(self) -> threading.Thread:
        """Open the tracking store in a background thread, so the first request finds it ready.

        A failure is logged, not raised: requests then report it (and open the store when it is back).
        """

        def open_store() -> None:
            try:
                self.tracking.search_experiments(max_results=1)
                self.logged_models  # noqa: B018 (imports older servers' records before the first request)
            except Exception as exc:  # the server must start even if the database is down
                logging.getLogger("fitscribe.server").warning("The tracking store is not reachable yet: %s", exc)

        thread = threading.Thread(target=open_store, name="fitscribe-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Flush and release the tracking store's connections."""
        store, self._tracking = self._tracking, None
        if store is not None:
            store.close()
