"""The tracking store conformance suite on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from fitscribe.backends import get_tracking_store
from fitscribe.backends.base import TrackingStore
from fitscribe.testing.tracking_store_suite import TrackingStoreSuite


class TestSqlStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, tracking_uri: str) -> TrackingStore:
        store = get_tracking_store(tracking_uri)
        yield store
        store.close()
