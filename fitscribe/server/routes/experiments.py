"""Experiment endpoints: create, get, get-by-name, search, update, delete, restore and tags."""

from __future__ import annotations

from typing import Any

from fitscribe.entities import LifecycleStage, ViewType
from fitscribe.errors import ExperimentNotFound, InvalidValueError
from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.serialization import experiment_to_json, key_values_from_json, page_to_json
from fitscribe.server.state import ServerState

__all__ = ["ENDPOINTS"]

MAX_SEARCH_RESULTS = 50000


def view_type(p: Params, name: str) -> ViewType:
    """Read a ViewType field given by name or number (default ACTIVE_ONLY)."""
    value = p.text(name)
    if not value:
        return ViewType.ACTIVE_ONLY
    return ViewType.parse(int(value) if value.isascii() and value.isdigit() else value)


def create_experiment(s: ServerState, p: Params) -> dict[str, Any]:
    """Create an experiment; answer its id."""
    tags = dict(key_values_from_json(p.objects("tags"), "tags"))
    location = p.text("artifact_location") or None
    if location is not None and location.lower().startswith("runs:"):
        raise InvalidValueError(f"Invalid artifact location {location!r}: a runs:/ URI cannot hold an experiment.")
    if location is not None and location.lower().startswith("mlflow-artifacts:"):
        from fitscribe.server.routes.artifacts import refuse_reserved

        refuse_reserved(location.partition(":")[2].strip("/"))
    exp_id = s.tracking.create_experiment(p.required_text("name"), location, tags)
    return {"experiment_id": exp_id}


def get_experiment(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer an experiment by id (active or deleted)."""
    return {"experiment": experiment_to_json(s.tracking.get_experiment(p.required_text("experiment_id")))}


def get_experiment_by_name(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer an experiment by name; 404 RESOURCE_DOES_NOT_EXIST when there is none."""
    name = p.required_text("experiment_name")
    exp = s.tracking.get_experiment_by_name(name)
    if exp is None:
        raise ExperimentNotFound(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_to_json(exp)}


def search_experiments(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer one page of experiments matching the filter."""
    page = s.tracking.search_experiments(
        view_type(p, "view_type"),
        p.integer("max_results", 1000, minimum=1, maximum=MAX_SEARCH_RESULTS) or 1000,
        p.text("filter") or None,
        p.strings("order_by") or None,
        p.text("page_token") or None,
    )
    return page_to_json("experiments", [experiment_to_json(e) for e in page], page.token)


def update_experiment(s: ServerState, p: Params) -> dict[str, Any]:
    """Rename an experiment."""
    s.tracking.update_experiment(p.required_text("experiment_id"), new_name=p.required_text("new_name"))
    return {}


def delete_experiment(s: ServerState, p: Params) -> dict[str, Any]:
    """Move an experiment and its runs to the deleted stage."""
    s.tracking.update_experiment(p.required_text("experiment_id"), lifecycle_stage=LifecycleStage.DELETED.value)
    return {}


def restore_experiment(s: ServerState, p: Params) -> dict[str, Any]:
    """Bring a deleted experiment and its runs back."""
    s.tracking.update_experiment(p.required_text("experiment_id"), lifecycle_stage=LifecycleStage.ACTIVE.value)
    return {}


def set_experiment_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Set (or replace) a tag on an experiment."""
    value = p.text("value", required=True)
    s.tracking.update_experiment(p.required_text("experiment_id"), tags={p.required_text("key"): value or ""})
    return {}


def delete_experiment_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove a tag from an experiment."""
    s.tracking.delete_experiment_tag(p.required_text("experiment_id"), p.required_text("key"))
    return {}


_SEARCH_FIELDS = fields("max_results:int64 page_token filter order_by:strings view_type")

ENDPOINTS = (
    Endpoint("POST", "experiments/create", create_experiment, "Create an experiment.",
             fields("name! artifact_location tags:objects")),
    Endpoint("GET", "experiments/get", get_experiment, "Get an experiment by id.", fields("experiment_id!")),
    Endpoint("GET", "experiments/get-by-name", get_experiment_by_name, "Get an experiment by name.",
             fields("experiment_name!")),
    Endpoint("POST", "experiments/search", search_experiments, "Search experiments.", _SEARCH_FIELDS,
             read_only=True),
    Endpoint("GET", "experiments/search", search_experiments, "Search experiments.", _SEARCH_FIELDS),
    Endpoint("POST", "experiments/update", update_experiment, "Rename an experiment.",
             fields("experiment_id! new_name!")),
    Endpoint("POST", "experiments/delete", delete_experiment, "Delete an experiment (restorable).",
             fields("experiment_id!")),
    Endpoint("POST", "experiments/restore", restore_experiment, "Restore a deleted experiment.",
             fields("experiment_id!")),
    Endpoint("POST", "experiments/set-experiment-tag", set_experiment_tag, "Set a tag on an experiment.",
             fields("experiment_id! key! value!")),
    Endpoint("POST", "experiments/delete-experiment-tag", delete_experiment_tag,
             "Delete a tag from an experiment.", fields("experiment_id! key!")),
)
