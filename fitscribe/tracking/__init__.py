"""``mlflow.tracking`` under its MLflow name: ``MlflowClient`` is :class:`fitscribe.Client`.

>>> from fitscribe.tracking import MlflowClient
>>> MlflowClient is __import__("fitscribe").Client
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.client import Client as MlflowClient

__all__ = ["MlflowClient"]


def __getattr__(name: str) -> Any:
    if name == "client":  # mlflow.tracking.client.MlflowClient after a plain import
        import importlib

        return importlib.import_module("fitscribe.tracking.client")
    if name == "MlflowClient":
        from fitscribe.client import Client

        globals()[name] = Client
        return Client
    raise AttributeError(f"module 'fitscribe.tracking' has no attribute {name!r}")
