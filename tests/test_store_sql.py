"""The tracking store and model registry conformance suites on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from fitscribe.backends import get_tracking_store
from fitscribe.backends.base import ModelRegistryStore, TrackingStore
from fitscribe.testing.model_registry_suite import ModelRegistryStoreSuite
from fitscribe.testing.tracking_store_suite import TrackingStoreSuite


class TestSqlStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, tracking_uri: str) -> TrackingStore:
        store = get_tracking_store(tracking_uri)
        yield store
        store.close()


class TestSqlModelRegistry(ModelRegistryStoreSuite):
    @pytest.fixture
    def registry(self, tracking_uri: str) -> ModelRegistryStore:
        store = get_tracking_store(tracking_uri)
        yield store.registry  # type: ignore[attr-defined]
        store.close()
