"""The model registry's pages: the models list (``/models``) and one model (``/models/{name}``).

Reads go through the tracking store's registry in a worker thread (:func:`~fitscribe.server.ui.pages.page`);
changes (stage transitions, aliases, tags, descriptions, registering a run's model) are made by the
page's script through the MLflow REST endpoints, so the server's authentication decides who may
make them: a read-only identity gets the REST API's 403, shown on the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from fitscribe.errors import FitscribeError, InvalidValueError
from fitscribe.server.errors import hide_paths
from fitscribe.server.state import ServerState
from fitscribe.server.ui.pages import page

if TYPE_CHECKING:
    from fitscribe.backends.base import ModelRegistryStore
    from fitscribe.entities import ModelVersion

__all__ = ["registry_routes", "versions_of_run", "model_folders", "STAGES"]

STAGES = ("None", "Staging", "Production", "Archived")
MAX_MODELS = 1000
MAX_VERSIONS = 1000
MAX_HISTORY = 200


def registry_routes() -> list[BaseRoute]:
    """Return the routes of the models list and the model page."""
    return [
        Route("/models", page(models_page), methods=["GET", "HEAD"]),
        Route("/models/{name:path}", page(model_page), methods=["GET", "HEAD"]),
    ]


def _registry(s: ServerState) -> "ModelRegistryStore":
    registry = s.tracking.registry
    if registry is None:
        raise InvalidValueError("This server's tracking store has no model registry; start it on a database store.")
    return registry


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def models_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """Registered models with their newest version per stage, aliases and tags; ``?q=`` filters by name."""
    query = request.query_params.get("q", "").strip()
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    filter_string = f"name ILIKE {_quote('%' + escaped + '%')}" if query else None
    models = list(_registry(s).search_registered_models(filter_string, MAX_MODELS, ["name ASC"], None))
    rows = []
    for m in models:
        latest = sorted(m.latest_versions, key=lambda v: v.version)
        rows.append({"model": m, "latest": latest, "aliases": sorted(m.aliases.items()), "tags": sorted(m.tags.items())})
    return "models.html", {"title": "Models", "rows": rows, "query": query, "truncated": len(models) >= MAX_MODELS}


def model_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """One registered model: description, tags, aliases, every version with its model card, and the
    audit trail (newest first: who changed what, when, old -> new, the comment)."""
    name = request.path_params["name"]
    registry = _registry(s)
    model = registry.get_registered_model(name)
    versions = list(registry.search_model_versions(f"name = {_quote(name)}", MAX_VERSIONS,
                                                   ["version_number DESC"], None))
    cards = {v.version: _card(s, v) for v in versions[:20]}
    reader = getattr(registry, "get_registered_model_history", None)
    history = list(reader(model.name))[:MAX_HISTORY] if reader is not None else []
    return "model.html", {
        "title": model.name, "model": model, "versions": versions, "cards": cards, "stages": STAGES,
        "aliases": sorted(model.aliases.items()), "tags": sorted(model.tags.items()), "history": history,
        "history_limit": MAX_HISTORY,
    }


def _card(s: ServerState, version: "ModelVersion") -> dict[str, Any]:
    """The model card (flavors, signature, requirements) of a version whose source is ``runs:/...``."""
    from fitscribe.flavors.loading import parse_runs_uri
    from fitscribe.server.ui.artifacts import model_card

    parsed = parse_runs_uri(version.source or "")
    if parsed is None:
        return {"error": f"No card: the source {version.source!r} is not a run's artifacts."}
    run_id, path = parsed
    try:
        run = s.tracking.get_run(run_id)
        store = s.artifact_store_for(run.info.artifact_uri)
        return model_card(store, f"{path}/MLmodel" if path else "MLmodel")
    except (FitscribeError, OSError) as exc:
        return {"error": f"No card: {type(exc).__name__}: {hide_paths(str(exc))}"}


def versions_of_run(s: ServerState, run_id: str) -> list["ModelVersion"]:
    """The model versions registered from a run (for the run page); none when there is no registry."""
    registry = s.tracking.registry
    if registry is None:
        return []
    try:
        return list(registry.search_model_versions(f"run_id = {_quote(run_id)}", 200, ["creation_timestamp DESC"], None))
    except FitscribeError:
        return []


def model_folders(store: Any, artifacts: list[Any]) -> list[str]:
    """The run's top-level artifact folders that hold a model (an ``MLmodel`` file), for "Register"."""
    found = []
    for entry in artifacts[:50]:
        if not entry.is_dir:
            continue
        try:
            if any(f.path.rsplit("/", 1)[-1] == "MLmodel" and not f.is_dir for f in store.list(entry.path)):
                found.append(entry.path)
        except (FitscribeError, OSError):
            continue
    return found
