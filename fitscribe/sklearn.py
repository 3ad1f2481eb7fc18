"""``mlflow.sklearn`` under its MLflow name: ``import fitscribe as mlflow`` then ``mlflow.sklearn.*``.

Thin aliases with MLflow's signatures over :mod:`fitscribe.flavors.sklearn` (models) and
:mod:`fitscribe.autolog.sklearn` (autologging). Importing this module imports neither scikit-learn
nor the flavor: each function imports what it needs when called.

>>> import fitscribe as mlflow
>>> mlflow.sklearn.autolog()                                      # doctest: +SKIP
>>> info = mlflow.sklearn.log_model(model, name="model")          # doctest: +SKIP
>>> same = mlflow.sklearn.load_model(info.model_uri)              # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fitscribe._dropin import model_name, pip_options, refuse

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model

__all__ = ["FLAVOR_NAME", "log_model", "save_model", "load_model", "autolog"]

FLAVOR_NAME = "sklearn"


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    extra_files: Any = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    name: str | None = None,
    skops_trusted_types: Sequence[str] | None = None,
    **options: Any,
) -> "ModelInfo":
    """Log a scikit-learn model into the active run (or a new one), as ``mlflow.sklearn.log_model``.

    ``artifact_path`` is MLflow's deprecated spelling of ``name`` (a warning; both: an error).
    ``conda_env`` gives its pip list as the requirements. ``await_registration_for``, ``params``,
    ``tags``, ``model_type``, ``step`` and ``model_id`` (MLflow 3's LoggedModel fields) are
    accepted and ignored. Other keywords go to :func:`fitscribe.flavors.sklearn.log_model`
    (``run_id``, ``onnx``, ``skops_trusted_types``...).
    """
    from fitscribe.flavors import sklearn as flavor

    refuse("fitscribe's sklearn flavor", extra_files=extra_files)
    if serialization_format is not None:
        options["serialization_format"] = serialization_format
    if skops_trusted_types is not None:
        options["skops_trusted_types"] = skops_trusted_types
    return flavor.log_model(
        sk_model, model_name(name, artifact_path), registered_model_name=registered_model_name, signature=signature,
        input_example=input_example, metadata=metadata, code_paths=code_paths, predict_fn=pyfunc_predict_fn,
        **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def save_model(
    sk_model: Any,
    path: str,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    serialization_format: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    skops_trusted_types: Sequence[str] | None = None,
    extra_files: Any = None,
    **options: Any,
) -> "Model":
    """Save a scikit-learn model into a new folder, as ``mlflow.sklearn.save_model``
    (``mlflow_model`` is ignored)."""
    from fitscribe.flavors import sklearn as flavor

    refuse("fitscribe's sklearn flavor", extra_files=extra_files)
    if serialization_format is not None:
        options["serialization_format"] = serialization_format
    if skops_trusted_types is not None:
        options["skops_trusted_types"] = skops_trusted_types
    return flavor.save_model(
        sk_model, path, signature=signature, input_example=input_example, metadata=metadata, code_paths=code_paths,
        predict_fn=pyfunc_predict_fn, **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load a scikit-learn model (``runs:/``, ``models:/``, a path...), as ``mlflow.sklearn.load_model``."""
    from fitscribe.flavors import sklearn as flavor

    return flavor.load_model(model_uri, dst_path)


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Autolog scikit-learn training, as ``mlflow.sklearn.autolog`` (see
    :func:`fitscribe.autolog.sklearn.autolog`). ``disable_for_unsupported_versions`` is accepted:
    outside the tested versions fitscribe warns once and still logs."""
    from fitscribe.autolog import sklearn as integration

    integration.autolog(
        log_input_examples=log_input_examples, log_model_signatures=log_model_signatures, log_models=log_models,
        log_datasets=log_datasets, disable=disable, exclusive=exclusive, silent=silent,
        max_tuning_runs=max_tuning_runs, log_post_training_metrics=log_post_training_metrics,
        serialization_format=serialization_format, registered_model_name=registered_model_name,
        pos_label=pos_label, extra_tags=extra_tags, **options,
    )
