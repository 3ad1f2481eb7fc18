"""Documentation guards for the flavors and autolog packages: every public function has a
docstring, and every entry-point group is named in the README."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "fitscribe.flavors", "fitscribe.flavors.sklearn", "fitscribe.flavors.xgboost", "fitscribe.flavors.pytorch",
    "fitscribe.flavors.onnx", "fitscribe.flavors.pyfunc", "fitscribe.flavors.signature", "fitscribe.flavors.model",
    "fitscribe.flavors.environment", "fitscribe.flavors.loading", "fitscribe.flavors.saving",
    "fitscribe.autolog", "fitscribe.autolog.sklearn", "fitscribe.autolog.xgboost", "fitscribe.autolog.lightning",
    "fitscribe.model_registry", "fitscribe.server",
    # the MLflow-named modules (import fitscribe as mlflow)
    "fitscribe.sklearn", "fitscribe.xgboost", "fitscribe.pytorch", "fitscribe.onnx", "fitscribe.pyfunc",
    "fitscribe.models", "fitscribe.models.signature", "fitscribe.tracking.client", "fitscribe.data", "fitscribe.artifacts", "fitscribe.tracking", "fitscribe.fluent_mlflow",
    "fitscribe.tables", "fitscribe.cli_mlflow", "fitscribe.config", "fitscribe.entities",
    "fitscribe.entities.model_registry", "fitscribe.image_series",
    # serving and the registry's commands and pages
    "fitscribe.serving", "fitscribe.serving.app", "fitscribe.serving.protocol", "fitscribe.serving.run",
    "fitscribe.serving.batching", "fitscribe.cli_models", "fitscribe.server.ui.registry_pages",
    # moving history in and out
    "fitscribe.cli_import", "fitscribe.migrate", "fitscribe.migrate.mlflow_sql", "fitscribe.migrate.mlruns",
    "fitscribe.migrate.bundle", "fitscribe.backends.sql.bulk_import",
]


def _public(module: object) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if getattr(obj, "__module__", "").startswith("fitscribe"):
                out.append((name, obj))
    return out


@pytest.mark.parametrize("module_name", MODULES)
def test_public_functions_and_classes_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    missing = []
    for name, obj in _public(module):
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, member in vars(obj).items()
                        if not m.startswith("_") and inspect.isfunction(member) and not inspect.getdoc(member)]
    assert missing == [], f"undocumented in {module_name}: {missing}"


def test_entry_point_groups_are_in_the_readme() -> None:
    from fitscribe.autolog import INTEGRATIONS
    from fitscribe.flavors.base import FLAVORS

    readme = (ROOT / "README.md").read_text()
    assert FLAVORS.group in readme and INTEGRATIONS.group in readme
