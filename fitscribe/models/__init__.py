"""``mlflow.models`` under its MLflow name: signatures and the ``MLmodel`` descriptor.

``infer_signature`` and ``ModelSignature`` are fitscribe's (:mod:`fitscribe.flavors.signature`);
``Model.load`` also accepts what MLflow's does: a model folder, its ``MLmodel`` file, or a model URI
(``runs:/``, ``models:/``). Everything is read from the flavor modules on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model
    from fitscribe.flavors.signature import ModelSignature, infer_signature

__all__ = ["Model", "ModelInfo", "ModelSignature", "infer_signature", "set_model", "get_model_info"]

_LAZY = {
    "ModelSignature": "fitscribe.flavors.signature",
    "infer_signature": "fitscribe.flavors.signature",
    "ModelInfo": "fitscribe.flavors.base",
    "set_model": "fitscribe.flavors.pyfunc",
}


def __getattr__(name: str) -> Any:
    if name == "signature":  # mlflow.models.signature.infer_signature after a plain import
        import importlib

        return importlib.import_module("fitscribe.models.signature")
    if name == "Model":
        value: Any = _model_class()
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'fitscribe.models' has no attribute {name!r}")
    globals()[name] = value
    return value


def _model_class() -> type:
    from fitscribe.flavors.model import Model as _Descriptor

    class Model(_Descriptor):  # type: ignore[misc, valid-type]
        """The ``MLmodel`` descriptor of a saved model (fitscribe's :class:`~fitscribe.flavors.model.Model`)."""

        @classmethod
        def load(cls, path: str | os.PathLike[str]) -> Any:
            """Read the descriptor of a model folder, an ``MLmodel`` file or a model URI (downloaded)."""
            from fitscribe.flavors.loading import resolve_model_uri

            local = os.fspath(path)
            if os.path.isfile(local) and os.path.basename(local) == "MLmodel":
                local = os.path.dirname(local)
            elif not os.path.isdir(local):
                local = resolve_model_uri(local)
            return super().load(local)

    Model.__module__ = __name__
    Model.__qualname__ = "Model"
    return Model


def get_model_info(model_uri: str) -> Any:
    """Return the descriptor (``MLmodel``) of the model at ``model_uri``, as MLflow's ``get_model_info``
    returns its metadata."""
    return __getattr__("Model").load(model_uri)
