"""``mlflow.pyfunc`` under its MLflow name: custom models and the generic loader.

``PythonModel``, ``PythonModelContext`` and ``PyFuncModel`` are fitscribe's own classes from
:mod:`fitscribe.flavors.pyfunc`, read from there on first use (so ``import fitscribe.pyfunc`` stays
cheap); the functions keep MLflow's signatures.

>>> import fitscribe as mlflow
>>> class Doubler(mlflow.pyfunc.PythonModel):                      # doctest: +SKIP
...     def predict(self, context, model_input, params=None):
...         return model_input * 2
>>> info = mlflow.pyfunc.log_model(name="model", python_model=Doubler())   # doctest: +SKIP
>>> mlflow.pyfunc.load_model(info.model_uri).predict(df)           # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe._dropin import model_name, pip_options, refuse

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model
    from fitscribe.flavors.pyfunc import PyFuncModel, PythonModel, PythonModelContext

__all__ = [
    "FLAVOR_NAME", "PythonModel", "PythonModelContext", "PyFuncModel", "log_model", "save_model", "load_model",
    "get_model_dependencies",
]

FLAVOR_NAME = "python_function"
_FROM_FLAVOR = ("PythonModel", "PythonModelContext", "PyFuncModel")


def __getattr__(name: str) -> Any:
    if name in _FROM_FLAVOR:
        from fitscribe.flavors import pyfunc as flavor

        value = getattr(flavor, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fitscribe.pyfunc' has no attribute {name!r}")


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Sequence[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    streamable: bool | None = None,
    resources: Any = None,
    auth_policy: Any = None,
    uv_project_path: Any = None,
    uv_groups: Any = None,
    uv_extras: Any = None,
    prompts: Any = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **options: Any,
) -> "ModelInfo":
    """Log a custom ``PythonModel`` (or a models-from-code file), as ``mlflow.pyfunc.log_model``.

    ``artifact_path`` is the deprecated spelling of ``name``. ``loader_module`` and ``data_path``
    (MLflow's module-path models) are refused: fitscribe never stores a module path to import.
    MLflow 3's LoggedModel fields are accepted and ignored.
    """
    from fitscribe.flavors import pyfunc as flavor

    refuse("fitscribe.pyfunc.log_model", loader_module=loader_module, data_path=data_path, resources=resources,
           auth_policy=auth_policy, uv_project_path=uv_project_path, uv_groups=uv_groups, uv_extras=uv_extras,
           prompts=prompts)
    if model_config is not None:
        options["model_config"] = model_config
    return flavor.log_model(
        model_name(name, artifact_path), python_model=python_model, artifacts=artifacts, code_paths=code_paths,
        registered_model_name=registered_model_name, signature=signature, input_example=input_example,
        metadata=metadata, **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def save_model(
    path: str,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Sequence[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    mlflow_model: Any = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    streamable: bool | None = None,
    resources: Any = None,
    auth_policy: Any = None,
    uv_project_path: Any = None,
    uv_groups: Any = None,
    uv_extras: Any = None,
    **options: Any,
) -> "Model":
    """Save a custom ``PythonModel`` into a new folder, as ``mlflow.pyfunc.save_model``."""
    from fitscribe.flavors import pyfunc as flavor

    refuse("fitscribe.pyfunc.save_model", loader_module=loader_module, data_path=data_path, resources=resources,
           auth_policy=auth_policy, uv_project_path=uv_project_path, uv_groups=uv_groups, uv_extras=uv_extras)
    return flavor.save_model(
        path, python_model, artifacts=artifacts, code_paths=code_paths, model_config=model_config,
        signature=signature, input_example=input_example, metadata=metadata,
        **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def load_model(model_uri: str, suppress_warnings: bool = False, dst_path: str | None = None,
               model_config: Any = None) -> "PyFuncModel":
    """Load a model of any flavor for ``predict``, as ``mlflow.pyfunc.load_model``.

    Raises:
        InvalidValueError: ``model_config`` was given (the saved config is used).
    """
    from fitscribe.flavors import pyfunc as flavor

    refuse("fitscribe.pyfunc.load_model", model_config=model_config)
    return flavor.load_model(model_uri, dst_path)


def get_model_dependencies(model_uri: str, format: str = "pip") -> str:
    """Return the local path of a model's ``requirements.txt`` (``format="pip"``) or ``conda.yaml``
    (``format="conda"``), downloading the model if needed, as ``mlflow.pyfunc.get_model_dependencies``.

    Raises:
        InvalidValueError: ``format`` is neither ``"pip"`` nor ``"conda"``.
        NotFoundError: The model has no such file.
    """
    from fitscribe.errors import InvalidValueError, NotFoundError
    from fitscribe.flavors.loading import resolve_model_uri

    files = {"pip": "requirements.txt", "conda": "conda.yaml"}
    if format not in files:
        raise InvalidValueError(f"format must be 'pip' or 'conda', not {format!r}.")
    path = os.path.join(resolve_model_uri(model_uri), files[format])
    if not os.path.isfile(path):
        raise NotFoundError(f"The model at {model_uri!r} has no {files[format]}.")
    return path
