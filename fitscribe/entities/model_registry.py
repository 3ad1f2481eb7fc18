"""The model registry's entities under MLflow's module name, ``mlflow.entities.model_registry``.

``from fitscribe.entities.model_registry import ModelVersion`` gives the same classes as
``from fitscribe.entities import ModelVersion``. fitscribe keeps tags and aliases as plain fields
(``ModelVersion.tags``, ``RegisteredModel.aliases``), so MLflow's ``RegisteredModelTag``,
``ModelVersionTag`` and ``RegisteredModelAlias`` entity classes have no counterpart here.
"""

from __future__ import annotations

from fitscribe.entities import ModelVersion, ModelVersionStage, RegisteredModel

__all__ = ["RegisteredModel", "ModelVersion", "ModelVersionStage"]
