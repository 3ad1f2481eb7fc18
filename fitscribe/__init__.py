"""fitscribe: experiment tracking with one-line autologging.

>>> import fitscribe
>>> with fitscribe.start_run():                     # doctest: +SKIP
...     fitscribe.log_param("lr", 0.01)
...     fitscribe.log_metric("loss", 0.25, step=1)

The fluent functions and ``Client`` are re-exported here lazily: ``import fitscribe`` loads only
the standard library and fitscribe's light modules, never SQLAlchemy, numpy or a framework.

MLflow's names work too, so ``import fitscribe as mlflow`` runs MLflow scripts: ``MlflowClient``,
``register_model``, ``log_table``... and the modules ``fitscribe.sklearn``, ``.xgboost``,
``.pytorch``, ``.onnx``, ``.pyfunc``, ``.models``, ``.data``, ``.artifacts``, ``.tracking`` and
``.entities``, each loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "Client": "fitscribe.client",
    "MlflowClient": "fitscribe.tracking",
    # fluent: runs and logging
    "ActiveRun": "fitscribe.fluent",
    "set_tracking_uri": "fitscribe.fluent",
    "get_tracking_uri": "fitscribe.fluent",
    "is_tracking_uri_set": "fitscribe.fluent",
    "set_registry_uri": "fitscribe.fluent",
    "get_registry_uri": "fitscribe.fluent",
    "set_experiment": "fitscribe.fluent",
    "get_client": "fitscribe.fluent",
    "start_run": "fitscribe.fluent",
    "end_run": "fitscribe.fluent",
    "active_run": "fitscribe.fluent",
    "last_active_run": "fitscribe.fluent",
    "log_param": "fitscribe.fluent",
    "log_params": "fitscribe.fluent",
    "log_metric": "fitscribe.fluent",
    "log_metrics": "fitscribe.fluent",
    "set_tag": "fitscribe.fluent",
    "set_tags": "fitscribe.fluent",
    "delete_tag": "fitscribe.fluent",
    "log_artifact": "fitscribe.fluent",
    "log_artifacts": "fitscribe.fluent",
    "log_text": "fitscribe.fluent",
    "log_dict": "fitscribe.fluent",
    "log_figure": "fitscribe.fluent",
    "log_image": "fitscribe.fluent_mlflow",
    "log_input": "fitscribe.fluent",
    "get_artifact_uri": "fitscribe.fluent",
    "flush": "fitscribe.fluent",
    "log_table": "fitscribe.fluent_mlflow",
    "flush_async_logging": "fitscribe.fluent_mlflow",
    "load_table": "fitscribe.fluent_mlflow",
    "register_model": "fitscribe.fluent_mlflow",
    "search_registered_models": "fitscribe.fluent_mlflow",
    "search_model_versions": "fitscribe.fluent_mlflow",
    "get_parent_run": "fitscribe.fluent_mlflow",
    "set_experiment_tag": "fitscribe.fluent_mlflow",
    "set_experiment_tags": "fitscribe.fluent_mlflow",
    "delete_experiment_tag": "fitscribe.fluent_mlflow",
    # fluent: reading and managing
    "create_experiment": "fitscribe.lookup",
    "get_experiment": "fitscribe.lookup",
    "get_experiment_by_name": "fitscribe.lookup",
    "search_experiments": "fitscribe.lookup",
    "delete_experiment": "fitscribe.lookup",
    "restore_experiment": "fitscribe.lookup",
    "get_run": "fitscribe.lookup",
    "delete_run": "fitscribe.lookup",
    "restore_run": "fitscribe.lookup",
    "get_metric_history": "fitscribe.lookup",
    "list_artifacts": "fitscribe.lookup",
    "download_artifacts": "fitscribe.fluent_mlflow",
    "search_runs": "fitscribe.lookup",
    # entities
    "Experiment": "fitscribe.entities",
    "Run": "fitscribe.entities",
    "RunInfo": "fitscribe.entities",
    "RunData": "fitscribe.entities",
    "RunStatus": "fitscribe.entities",
    "Metric": "fitscribe.entities",
    "Param": "fitscribe.entities",
    "RunTag": "fitscribe.entities",
    "Dataset": "fitscribe.entities",
    "ViewType": "fitscribe.entities",
    "RegisteredModel": "fitscribe.entities",
    "ModelVersion": "fitscribe.entities",
}

_SUBPACKAGES = ("flavors", "autolog", "sklearn", "xgboost", "pytorch", "onnx", "pyfunc", "models", "data",
                "artifacts", "tracking", "entities")

__all__ = ["__version__", *_EXPORTS, *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:  # fitscribe.flavors.sklearn, fitscribe.sklearn... after a plain `import fitscribe`
        import importlib

        return importlib.import_module(f"fitscribe.{name}")
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'fitscribe' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from fitscribe.client import Client
    from fitscribe.client import Client as MlflowClient
    from fitscribe.entities import (
        Dataset, Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunData, RunInfo, RunStatus, RunTag,
        ViewType,
    )
    from fitscribe.fluent import (
        ActiveRun, active_run, delete_tag, end_run, flush, get_artifact_uri, get_client, get_registry_uri,
        get_tracking_uri, is_tracking_uri_set, last_active_run, log_artifact, log_artifacts, log_dict, log_figure,
        log_input, log_metric, log_metrics, log_param, log_params, log_text, set_experiment, set_registry_uri,
        set_tag, set_tags, set_tracking_uri, start_run,
    )
    from fitscribe.fluent_mlflow import (
        delete_experiment_tag, download_artifacts, flush_async_logging, get_parent_run, load_table, log_image, log_table, register_model,
        search_model_versions, search_registered_models, set_experiment_tag, set_experiment_tags,
    )
    from fitscribe.lookup import (
        create_experiment, delete_experiment, delete_run, get_experiment, get_experiment_by_name, get_metric_history,
        get_run, list_artifacts, restore_experiment, restore_run, search_experiments, search_runs,
    )
