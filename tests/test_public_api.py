"""The public API: every export resolves, is documented, and every documented env variable is real."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import fitscribe
import fitscribe.config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", fitscribe.__all__)
def test_export_resolves_and_is_documented(name: str) -> None:
    obj = getattr(fitscribe, name)
    if name == "__version__":
        assert isinstance(obj, str)
        return
    assert inspect.getdoc(obj), f"fitscribe.{name} has no docstring"


def _public_callables(obj: object) -> list[tuple[str, object]]:
    return [(n, m) for n, m in inspect.getmembers(obj) if not n.startswith("_") and callable(m)]


def test_client_methods_are_documented() -> None:
    missing = [n for n, m in _public_callables(fitscribe.Client) if not inspect.getdoc(m)]
    assert missing == []


def test_mlflow_client_names_are_present() -> None:
    expected = {
        "create_experiment", "get_experiment", "get_experiment_by_name", "search_experiments",
        "delete_experiment", "restore_experiment", "rename_experiment", "set_experiment_tag",
        "create_run", "get_run", "update_run", "set_terminated", "delete_run", "restore_run",
        "search_runs", "log_param", "log_metric", "set_tag", "delete_tag", "log_batch", "log_inputs",
        "log_artifact", "log_artifacts", "log_text", "log_dict", "log_figure", "log_image",
        "list_artifacts", "download_artifacts", "get_metric_history", "get_parent_run",
    }
    assert expected <= {n for n, _ in _public_callables(fitscribe.Client)}


def test_mlflow_registry_names_are_present() -> None:
    expected = {
        "create_registered_model", "get_registered_model", "rename_registered_model", "update_registered_model",
        "delete_registered_model", "search_registered_models", "get_latest_versions", "set_registered_model_tag",
        "delete_registered_model_tag", "create_model_version", "get_model_version", "update_model_version",
        "delete_model_version", "search_model_versions", "transition_model_version_stage", "set_model_version_tag",
        "delete_model_version_tag", "set_registered_model_alias", "delete_registered_model_alias",
        "get_model_version_by_alias",
    }
    assert expected <= {n for n, _ in _public_callables(fitscribe.Client)}


def test_environment_variables_are_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    names = [v for k, v in vars(fitscribe.config).items() if k.startswith("ENV_")]
    assert names and all(name in readme for name in names)


def test_entry_point_groups_are_documented_in_readme() -> None:
    from fitscribe.backends import artifact_stores, tracking_stores

    readme = (ROOT / "README.md").read_text()
    assert tracking_stores.group in readme and artifact_stores.group in readme
