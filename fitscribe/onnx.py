"""``mlflow.onnx`` under its MLflow name: ``import fitscribe as mlflow`` then ``mlflow.onnx.*``.

Thin aliases with MLflow's signatures over :mod:`fitscribe.flavors.onnx`. As in MLflow there is no
ONNX autologging (ONNX models are converted, not trained). Importing this module does not import
onnx or onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from fitscribe._dropin import model_name, pip_options, refuse

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model

__all__ = ["FLAVOR_NAME", "log_model", "save_model", "load_model"]

FLAVOR_NAME = "onnx"


def log_model(
    onnx_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    onnx_execution_providers: Sequence[str] | None = None,
    onnx_session_options: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    save_as_external_data: bool = True,
    extra_files: Any = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **options: Any,
) -> "ModelInfo":
    """Log an ONNX model (a ``ModelProto`` or a file), as ``mlflow.onnx.log_model``.

    ``artifact_path`` is the deprecated spelling of ``name``; MLflow 3's LoggedModel fields are
    accepted and ignored.
    """
    from fitscribe.flavors import onnx as flavor

    refuse("fitscribe's onnx flavor", extra_files=extra_files)
    return flavor.log_model(
        onnx_model, model_name(name, artifact_path), onnx_execution_providers=onnx_execution_providers,
        onnx_session_options=onnx_session_options, registered_model_name=registered_model_name,
        signature=signature, input_example=input_example, metadata=metadata, code_paths=code_paths,
        save_as_external_data=save_as_external_data,
        **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def save_model(
    onnx_model: Any,
    path: str,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    onnx_execution_providers: Sequence[str] | None = None,
    onnx_session_options: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    save_as_external_data: bool = True,
    extra_files: Any = None,
    **options: Any,
) -> "Model":
    """Save an ONNX model into a new folder, as ``mlflow.onnx.save_model``."""
    from fitscribe.flavors import onnx as flavor

    refuse("fitscribe's onnx flavor", extra_files=extra_files)
    return flavor.save_model(
        onnx_model, path, onnx_execution_providers=onnx_execution_providers,
        onnx_session_options=onnx_session_options, signature=signature, input_example=input_example,
        metadata=metadata, code_paths=code_paths, save_as_external_data=save_as_external_data,
        **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load an ONNX model as an ``onnx.ModelProto``, as ``mlflow.onnx.load_model``."""
    from fitscribe.flavors import onnx as flavor

    return flavor.load_model(model_uri, dst_path)
