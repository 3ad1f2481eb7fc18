"""``mlflow.models.signature`` under its MLflow name: ``infer_signature`` and ``ModelSignature``
(fitscribe's, from :mod:`fitscribe.flavors.signature`, read on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.flavors.signature import ModelSignature, infer_signature

__all__ = ["ModelSignature", "infer_signature"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fitscribe.flavors import signature

        value = getattr(signature, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fitscribe.models.signature' has no attribute {name!r}")
