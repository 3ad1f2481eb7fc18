"""``mlflow.tracking.client`` under its MLflow name: ``MlflowClient`` is :class:`fitscribe.Client`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.client import Client as MlflowClient

__all__ = ["MlflowClient"]


def __getattr__(name: str) -> Any:
    if name == "MlflowClient":
        from fitscribe.client import Client

        globals()[name] = Client
        return Client
    raise AttributeError(f"module 'fitscribe.tracking.client' has no attribute {name!r}")
