"""``mlflow.pytorch`` under its MLflow name: ``import fitscribe as mlflow`` then ``mlflow.pytorch.*``.

Thin aliases with MLflow's signatures over :mod:`fitscribe.flavors.pytorch` (plain ``nn.Module``
and Lightning modules) and, for :func:`autolog`, the Lightning integration
(:mod:`fitscribe.autolog.lightning`), which is what ``mlflow.pytorch.autolog`` drives too.
Importing this module does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fitscribe._dropin import model_name, pip_options, refuse

if TYPE_CHECKING:
    from fitscribe.flavors.base import ModelInfo
    from fitscribe.flavors.model import Model

__all__ = ["FLAVOR_NAME", "log_model", "save_model", "load_model", "autolog"]

FLAVOR_NAME = "pytorch"


def log_model(
    pytorch_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    pickle_module: Any = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    extra_files: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    export_model: bool = False,
    serialization_format: str | None = None,
    **options: Any,
) -> "ModelInfo":
    """Log a torch ``nn.Module`` or a LightningModule, as ``mlflow.pytorch.log_model``.

    ``artifact_path`` is the deprecated spelling of ``name``. ``pickle_module`` and ``extra_files``
    are not supported (an error if given); MLflow 3's LoggedModel fields are accepted and ignored.
    Other keywords (``save_mode``, ``model_init_kwargs``, ``run_id``) go to
    :func:`fitscribe.flavors.pytorch.log_model`.
    """
    from fitscribe.flavors import pytorch as flavor

    refuse("fitscribe's pytorch flavor", pickle_module=pickle_module, extra_files=extra_files)
    # serialization_format / export_model: MLflow's pt2-or-pickle choice; fitscribe has its own format
    return flavor.log_model(
        pytorch_model, model_name(name, artifact_path), registered_model_name=registered_model_name,
        signature=signature, input_example=input_example, metadata=metadata, code_paths=code_paths,
        **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def save_model(
    pytorch_model: Any,
    path: str,
    conda_env: Any = None,
    mlflow_model: Any = None,
    code_paths: Sequence[str] | None = None,
    pickle_module: Any = None,
    signature: Any = None,
    input_example: Any = None,
    extra_files: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    export_model: bool = False,
    serialization_format: str | None = None,
    **options: Any,
) -> "Model":
    """Save a torch model into a new folder, as ``mlflow.pytorch.save_model`` (``serialization_format``
    and ``export_model`` are accepted: fitscribe has its own format)."""
    from fitscribe.flavors import pytorch as flavor

    refuse("fitscribe's pytorch flavor", pickle_module=pickle_module, extra_files=extra_files)
    return flavor.save_model(
        pytorch_model, path, signature=signature, input_example=input_example, metadata=metadata,
        code_paths=code_paths, **pip_options(conda_env, pip_requirements, extra_pip_requirements), **options,
    )


def load_model(model_uri: str, dst_path: str | None = None, **kwargs: Any) -> Any:
    """Load a torch model, as ``mlflow.pytorch.load_model`` (``torch.load`` options are ignored)."""
    from fitscribe.flavors import pytorch as flavor

    return flavor.load_model(model_uri, dst_path)


def autolog(
    log_every_n_epoch: int = 1,
    log_every_n_step: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    checkpoint: bool = True,
    checkpoint_monitor: str | None = "val_loss",
    checkpoint_mode: str = "min",
    checkpoint_save_best_only: bool = True,
    checkpoint_save_weights_only: bool = False,
    checkpoint_save_freq: Any = "epoch",
    log_model_signatures: bool = True,
) -> None:
    """Autolog PyTorch Lightning training (``Trainer.fit``), as ``mlflow.pytorch.autolog``.

    Drives :func:`fitscribe.autolog.lightning.autolog`; ``checkpoint`` maps to its
    ``log_checkpoint``, and the ``checkpoint_*`` fine-tuning options are accepted and ignored.
    """
    from fitscribe.autolog import lightning as integration

    integration.autolog(
        log_every_n_epoch=log_every_n_epoch, log_every_n_step=log_every_n_step, log_models=log_models,
        log_datasets=log_datasets, disable=disable, exclusive=exclusive, silent=silent,
        registered_model_name=registered_model_name, extra_tags=extra_tags, log_checkpoint=checkpoint,
        log_model_signatures=log_model_signatures,
    )

