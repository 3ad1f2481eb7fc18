"""MLflow 3 logged-model endpoints: what MLflow's client calls to ``log_model`` and to find a run's
models (create, get, finalize, delete, search, tags, params, artifact listing). The models are kept
by the tracking store (``TrackingStore.create_logged_model`` and its siblings): ``s.logged_models``."""

from __future__ import annotations

from typing import Any

from fitscribe.run_context import generate_run_name
from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.routes.artifacts import list_under
from fitscribe.server.serialization import file_info_to_json, key_values_from_json, page_to_json
from fitscribe.server.state import ServerState
from fitscribe.wire import logged_model_to_json

__all__ = ["ENDPOINTS", "logged_model_to_json"]

MAX_SEARCH_RESULTS = 1000


def create_logged_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Create a logged model (PENDING) in an experiment; its files go under its ``artifact_uri``."""
    experiment_id = p.required_text("experiment_id")
    s.tracking.get_experiment(experiment_id)  # ExperimentNotFound before the run's RunNotFound
    source_run_id = p.text("source_run_id") or None
    if source_run_id:
        s.tracking.get_run(source_run_id)
    model = s.logged_models.create_logged_model(
        experiment_id, p.text("name") or generate_run_name(), source_run_id=source_run_id,
        model_type=p.text("model_type") or None,
        params=dict(key_values_from_json(p.objects("params"), "params")),
        tags=dict(key_values_from_json(p.objects("tags"), "tags")),
    )
    return {"model": logged_model_to_json(model)}


def get_logged_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer a logged model; 404 when there is none."""
    model = s.logged_models.get_logged_model(p.required_text("model_id"), allow_deleted=p.flag("allow_deleted"))
    return {"model": logged_model_to_json(model)}


def finalize_logged_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Set a logged model's status (READY once its files are uploaded)."""
    model = s.logged_models.update_logged_model(p.required_text("model_id"), status=p.text("status", required=True))
    return {"model": logged_model_to_json(model)}


def delete_logged_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Mark a logged model deleted (its files stay)."""
    s.logged_models.delete_logged_model(p.required_text("model_id"))
    return {}


def search_logged_models(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer logged models of the experiments matching the filter (attributes and ``tags.<key>``)."""
    page = s.logged_models.search_logged_models(
        p.strings("experiment_ids"), p.text("filter") or None, p.objects("order_by"),
        p.integer("max_results", 100, minimum=1, maximum=MAX_SEARCH_RESULTS) or 100, p.text("page_token") or None,
    )
    return page_to_json("models", [logged_model_to_json(m) for m in page], page.token)


def set_logged_model_tags(s: ServerState, p: Params) -> dict[str, Any]:
    """Set tags on a logged model."""
    tags = dict(key_values_from_json(p.objects("tags"), "tags"))
    s.logged_models.update_logged_model(p.required_text("model_id"), tags=tags)
    return {}


def delete_logged_model_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove a tag from a logged model."""
    s.logged_models.delete_logged_model_tag(p.required_text("model_id"), p.required_text("tag_key"))
    return {}


def log_logged_model_params(s: ServerState, p: Params) -> dict[str, Any]:
    """Add params to a logged model."""
    params = dict(key_values_from_json(p.objects("params"), "params"))
    s.logged_models.update_logged_model(p.required_text("model_id"), params=params)
    return {}


def list_logged_model_artifacts(s: ServerState, p: Params) -> dict[str, Any]:
    """List a logged model's files under ``artifact_directory_path`` (model-relative paths)."""
    root = s.logged_models.get_logged_model(p.required_text("model_id")).artifact_location
    infos = list_under(s, root, p.text("artifact_directory_path") or "")
    out: dict[str, Any] = {"root_uri": root}
    if infos:
        out["files"] = [file_info_to_json(i.path, i.is_dir, i.file_size) for i in infos]
    return out


_ID = "model_id!"
ENDPOINTS = (
    Endpoint("POST", "logged-models", create_logged_model, "Create a logged model.",
             fields("experiment_id! name model_type source_run_id params:objects tags:objects")),
    Endpoint("POST", "logged-models/search", search_logged_models, "Search logged models.",
             fields("experiment_ids:strings! filter datasets:objects max_results:int64 order_by:objects page_token"),
             read_only=True),
    Endpoint("GET", "logged-models/{model_id}", get_logged_model, "Get a logged model.",
             fields(f"{_ID} allow_deleted:bool")),
    Endpoint("PATCH", "logged-models/{model_id}", finalize_logged_model, "Finalize a logged model (set its status).",
             fields(f"{_ID} status!")),
    Endpoint("DELETE", "logged-models/{model_id}", delete_logged_model, "Delete a logged model.", fields(_ID)),
    Endpoint("PATCH", "logged-models/{model_id}/tags", set_logged_model_tags, "Set tags on a logged model.",
             fields(f"{_ID} tags:objects")),
    Endpoint("DELETE", "logged-models/{model_id}/tags/{tag_key}", delete_logged_model_tag,
             "Delete a tag from a logged model.", fields(f"{_ID} tag_key!")),
    Endpoint("POST", "logged-models/{model_id}/params", log_logged_model_params, "Log params of a logged model.",
             fields(f"{_ID} params:objects")),
    Endpoint("GET", "logged-models/{model_id}/artifacts/directories", list_logged_model_artifacts,
             "List a logged model's artifacts.", fields(f"{_ID} artifact_directory_path page_token")),
)
