"""Stores chosen by URI scheme through lazy registries.

``get_tracking_store(uri)`` and ``get_artifact_store(uri)`` look the scheme up (``postgresql+psycopg``
is ``postgresql``; a bare path is ``file``) and call the factory registered for it. Third parties
register factories under the entry-point groups ``fitscribe.tracking_stores`` and
``fitscribe.artifact_stores``; a factory is called as ``factory(uri, **options)``.
"""

from __future__ import annotations

from typing import Any, Callable

from fitscribe._plugins import Registry
from fitscribe.backends.base import (
    ArtifactStore,
    FileInfo,
    ModelRegistryStore,
    TrackingStore,
    as_artifact_store,
    as_tracking_store,
)
from fitscribe.uri import redact, scheme_key

__all__ = [
    "TrackingStore",
    "ArtifactStore",
    "ModelRegistryStore",
    "FileInfo",
    "tracking_stores",
    "artifact_stores",
    "get_tracking_store",
    "get_artifact_store",
]

tracking_stores: Registry[Callable[..., TrackingStore]] = Registry(
    "tracking store",
    "fitscribe.tracking_stores",
    {
        "file": "fitscribe.backends.sql.store:create_store",
        "sqlite": "fitscribe.backends.sql.store:create_store",
        "postgresql": "fitscribe.backends.sql.store:create_store",
        "postgres": "fitscribe.backends.sql.store:create_store",
        "mysql": "fitscribe.backends.sql.store:create_store",
        "mariadb": "fitscribe.backends.sql.store:create_store",
        "http": "fitscribe.backends.rest:create_store",
        "https": "fitscribe.backends.rest:create_store",
    },
)
"""Registry of tracking store factories by URI scheme."""

artifact_stores: Registry[Callable[..., ArtifactStore]] = Registry(
    "artifact store",
    "fitscribe.artifact_stores",
    {
        "file": "fitscribe.backends.artifacts_local:LocalArtifactStore",
        "s3": "fitscribe.backends.artifacts_s3:create_artifact_store",
        "mlflow-artifacts": "fitscribe.backends.rest:create_artifact_store",
        "http": "fitscribe.backends.rest:create_artifact_store",
        "https": "fitscribe.backends.rest:create_artifact_store",
    },
)
"""Registry of artifact store factories by URI scheme."""


def get_tracking_store(uri: str, **options: Any) -> TrackingStore:
    """Build the tracking store for ``uri``. Connects lazily, on first use.

    Args:
        uri: A folder path, ``file:``, ``sqlite:``, ``postgresql:``, ``mysql:`` URI, or any scheme
            registered by a plugin.
        **options: Passed to the factory.

    Raises:
        ConfigError: No store is registered for the URI's scheme (the message lists those known).
        MissingDependencyError: The store's driver is not installed (the message names the extra).

    A plugin's store that does not subclass :class:`TrackingStore` is returned in a view that adds
    the optional capabilities' fallbacks (see :func:`~fitscribe.backends.base.as_tracking_store`).
    """
    from fitscribe.errors import ConfigError

    try:
        factory = tracking_stores.get(scheme_key(uri))
    except ConfigError as exc:
        raise ConfigError(f"Cannot open the tracking URI {redact(uri)!r}: {exc}") from None
    return as_tracking_store(factory(uri, **options))


def get_artifact_store(uri: str, **options: Any) -> ArtifactStore:
    """Build the artifact store rooted at ``uri``.

    Raises:
        ConfigError: No artifact store is registered for the URI's scheme.
    """
    from fitscribe.errors import ConfigError

    try:
        factory = artifact_stores.get(scheme_key(uri))
    except ConfigError as exc:
        raise ConfigError(f"Cannot open the artifact URI {redact(uri)!r}: {exc}") from None
    return as_artifact_store(factory(uri, **options))
