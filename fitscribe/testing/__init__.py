"""Conformance suites for third-party backends: subclass them in your tests.

- :class:`~fitscribe.testing.tracking_store_suite.TrackingStoreSuite` checks a ``TrackingStore``.
- :class:`~fitscribe.testing.model_registry_suite.ModelRegistryStoreSuite` checks a ``ModelRegistryStore``.
"""

from __future__ import annotations

__all__ = ["TrackingStoreSuite", "ModelRegistryStoreSuite"]


def __getattr__(name: str) -> object:
    if name == "TrackingStoreSuite":
        from fitscribe.testing.tracking_store_suite import TrackingStoreSuite

        return TrackingStoreSuite
    if name == "ModelRegistryStoreSuite":
        from fitscribe.testing.model_registry_suite import ModelRegistryStoreSuite

        return ModelRegistryStoreSuite
    raise AttributeError(name)
