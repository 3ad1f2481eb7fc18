"""Save, log and load models with their environment.

One module per flavor, each with ``save_model``, ``log_model`` and ``load_model``:
:mod:`~fitscribe.flavors.sklearn`, :mod:`~fitscribe.flavors.xgboost`,
:mod:`~fitscribe.flavors.pytorch`, :mod:`~fitscribe.flavors.onnx` and
:mod:`~fitscribe.flavors.pyfunc` (custom models, and ``pyfunc.load_model`` for any flavor).
The generic functions here pick the flavor for you.

>>> import fitscribe.flavors as flavors                          # doctest: +SKIP
>>> info = flavors.log_model(model, "model")                     # doctest: +SKIP
>>> same = flavors.load_model(info.model_uri)                    # doctest: +SKIP

Models are folders in MLflow's format (``MLmodel`` + files + environment files); see
:mod:`fitscribe.flavors.model`. Submodules import their framework only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "save_model",
    "log_model",
    "load_model",
    "infer_signature",
    "ModelSignature",
    "ModelInfo",
    "Model",
    "FLAVORS",
    "sklearn",
    "xgboost",
    "pytorch",
    "onnx",
    "pyfunc",
]

_LAZY = {
    "save_model": "fitscribe.flavors.saving",
    "log_model": "fitscribe.flavors.saving",
    "infer_signature": "fitscribe.flavors.signature",
    "ModelSignature": "fitscribe.flavors.signature",
    "ModelInfo": "fitscribe.flavors.base",
    "FLAVORS": "fitscribe.flavors.base",
    "Model": "fitscribe.flavors.model",
}
_SUBMODULES = {"sklearn", "xgboost", "pytorch", "onnx", "pyfunc"}


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load a model as its native object (estimator, Booster, nn.Module...) with the flavor it was saved with.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
            a local path or an artifact-store URI.
        dst_path: Download into this folder instead of a temporary one.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A model file changed since it was saved.
    """
    from fitscribe.flavors.loading import open_model

    opened = open_model(model_uri, None, dst_path)
    return opened.flavor.load(opened.folder, opened.descriptor)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"fitscribe.flavors.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fitscribe.flavors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.flavors import onnx, pyfunc, pytorch, sklearn, xgboost
    from fitscribe.flavors.base import FLAVORS, ModelInfo
    from fitscribe.flavors.model import Model
    from fitscribe.flavors.saving import log_model, save_model
    from fitscribe.flavors.signature import ModelSignature, infer_signature
