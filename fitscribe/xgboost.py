"""``mlflow.xgboost`` under its MLflow name: ``import fitscribe as mlflow`` then ``mlflow.xgboost.*``.

Thin aliases with MLflow's signatures over :mod:`fitscribe.flavors.xgboost` and
:mod:`fitscribe.autolog.xgboost`. Importing this module does not import XGBoost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fitscribe._dropin import model_name, pip_options, refuse

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model

__all__ = ["FLAVOR_NAME", "log_model", "save_model", "load_model", "autolog"]

FLAVOR_NAME = "xgboost"


def log_model(
    xgb_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    extra_files: Any = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **options: Any,
) -> "ModelInfo":
    """Log a Booster or an XGBoost scikit-learn wrapper, as ``mlflow.xgboost.log_model``.

    ``artifact_path`` is the deprecated spelling of ``name``; MLflow 3's LoggedModel fields are
    accepted and ignored (see :func:`fitscribe.sklearn.log_model`).
    """
    from fitscribe.flavors import xgboost as flavor

    refuse("fitscribe's xgboost flavor", extra_files=extra_files)
    return flavor.log_model(
        xgb_model, model_name(name, artifact_path), model_format=model_format,
        registered_model_name=registered_model_name, signature=signature, input_example=input_example,
        metadata=metadata, code_paths=code_paths, **pip_options(conda_env, pip_requirements, extra_pip_requirements),
        **options,
    )


def save_model(
    xgb_model: Any,
    path: str,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    extra_files: Any = None,
    **options: Any,
) -> "Model":
    """Save an XGBoost model into a new folder, as ``mlflow.xgboost.save_model``."""
    from fitscribe.flavors import xgboost as flavor

    refuse("fitscribe's xgboost flavor", extra_files=extra_files)
    return flavor.save_model(
        xgb_model, path, model_format=model_format, signature=signature, input_example=input_example,
        metadata=metadata, code_paths=code_paths, **pip_options(conda_env, pip_requirements, extra_pip_requirements),
        **options,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load an XGBoost model as the class it was saved as, as ``mlflow.xgboost.load_model``."""
    from fitscribe.flavors import xgboost as flavor

    return flavor.load_model(model_uri, dst_path)


def autolog(
    importance_types: Sequence[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "xgb",
    extra_tags: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Autolog XGBoost training (``xgb.train`` and the scikit-learn wrappers), as
    ``mlflow.xgboost.autolog`` (see :func:`fitscribe.autolog.xgboost.autolog`). MLflow's default
    ``model_format="xgb"`` (a deprecated XGBoost format) is saved as ``ubj``."""
    from fitscribe.autolog import xgboost as integration

    integration.autolog(
        **({} if importance_types is None else {"importance_types": list(importance_types)}), log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures, log_models=log_models, log_datasets=log_datasets,
        disable=disable, exclusive=exclusive, silent=silent, registered_model_name=registered_model_name,
        model_format="ubj" if model_format == "xgb" else model_format, extra_tags=extra_tags, **options,
    )
