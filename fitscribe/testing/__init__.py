"""Conformance suites for third-party backends: subclass them in your tests.

- :class:`~fitscribe.testing.tracking_store_suite.TrackingStoreSuite` checks a ``TrackingStore``.
"""

from __future__ import annotations

__all__ = ["TrackingStoreSuite"]


def __getattr__(name: str) -> object:
    if name == "TrackingStoreSuite":
        from fitscribe.testing.tracking_store_suite import TrackingStoreSuite

        return TrackingStoreSuite
    raise AttributeError(name)
