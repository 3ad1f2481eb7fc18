"""Model registry endpoints: registered models, model versions, stages, tags and aliases.

MLflow's ``ModelRegistryService`` over the tracking store's ``registry``: field names and shapes as
MLflow's (version numbers travel as strings, aliases of a registered model as ``[{alias, version}]``,
a model version's as ``[alias, ...]``). A missing model or version is 404 RESOURCE_DOES_NOT_EXIST, a
taken name 400 RESOURCE_ALREADY_EXISTS, a bad value 400 INVALID_PARAMETER_VALUE (the one error table
in :mod:`fitscribe.server.errors`). Unlike MLflow, which answers a missing alias with 400, a missing
alias is a 404 like any other missing resource.

MLflow's client adds `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every registered-model search
(prompts are registered models carrying that tag): a model without the tag must match, so that
clause is widened to "no such tag, or not 'true'" before the store sees it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fitscribe.entities import RegistryEvent
from fitscribe.errors import InvalidValueError, NotFoundError
from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.serialization import key_values_from_json
from fitscribe.server.state import ServerState
from fitscribe.uri import check_relative_path, join_uri
from fitscribe.wire import model_version_to_json, page_to_json, registered_model_to_json

if TYPE_CHECKING:
    from fitscribe.backends import ModelRegistryStore

__all__ = ["ENDPOINTS", "model_version_to_json", "registered_model_to_json", "widen_prompt_filter"]

MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000
_PROMPT_CLAUSE = re.compile(
    r"""\btags?\.(?P<key>`mlflow\.prompt\.is_prompt`|"mlflow\.prompt\.is_prompt"|mlflow\.prompt\.is_prompt)"""
    r"""\s*(?P<op>!=|=)\s*(?P<q>['"])(?P<value>true|false)(?P=q)""",
    re.IGNORECASE,
)
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")
_RUNS_SOURCE = re.compile(r"^runs:/+([0-9a-fA-F]{32})(?:/(.*))?$")


def widen_prompt_filter(filter_string: str | None) -> str | None:
    """Make MLflow's prompt-exclusion clause match registered models that lack the prompt tag.

    >>> widen_prompt_filter("name LIKE 'a%' AND tag.`mlflow.prompt.is_prompt` != 'true'")
    "name LIKE 'a%' AND (tags.`mlflow.prompt.is_prompt` IS NULL OR tags.`mlflow.prompt.is_prompt` != 'true')"
    """
    if not filter_string:
        return filter_string

    def widen(match: re.Match[str]) -> str:
        excludes = (match["op"] == "!=") == (match["value"].lower() == "true")
        if not excludes:  # "= 'true'" (or "!= 'false'"): prompts only, unchanged
            return match.group(0)
        key = "tags.`mlflow.prompt.is_prompt`"
        return f"({key} IS NULL OR {key} != 'true')"

    return _PROMPT_CLAUSE.sub(widen, filter_string)


# -- helpers -----------------------------------------------------------------------------------------
def _registry(s: ServerState) -> "ModelRegistryStore":
    """The registry of the tracking store (``RegistryNotSupportedError`` without one: 400)."""
    registry = s.tracking.registry
    if registry is None:
        from fitscribe.errors import RegistryNotSupportedError

        raise RegistryNotSupportedError(
            "This server's tracking store has no model registry; start the server on a database store."
        )
    return registry


def _tags(p: Params) -> dict[str, str]:
    return dict(key_values_from_json(p.objects("tags"), "tags"))


def _version(p: Params) -> str:
    """The ``version`` field (a string in MLflow's JSON; a JSON number is accepted)."""
    return p.required_text("version")


# -- registered models -------------------------------------------------------------------------------
def create_registered_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Create a registered model; 400 RESOURCE_ALREADY_EXISTS when the name is taken."""
    created = _registry(s).create_registered_model(p.required_text("name"), _tags(p), p.text("description"))
    return {"registered_model": registered_model_to_json(created)}


def get_registered_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer a registered model with its latest version per stage, tags and aliases."""
    return {"registered_model": registered_model_to_json(_registry(s).get_registered_model(p.required_text("name")))}


def rename_registered_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Rename a registered model (its versions, tags and aliases follow)."""
    renamed = _registry(s).rename_registered_model(p.required_text("name"), p.required_text("new_name"))
    return {"registered_model": registered_model_to_json(renamed)}


def update_registered_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Set a registered model's description (absent: cleared, as MLflow's store does)."""
    updated = _registry(s).update_registered_model(p.required_text("name"), p.text("description"))
    return {"registered_model": registered_model_to_json(updated)}


def delete_registered_model(s: ServerState, p: Params) -> dict[str, Any]:
    """Delete a registered model with its versions, tags and aliases."""
    _registry(s).delete_registered_model(p.required_text("name"))
    return {}


def search_registered_models(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer one page of registered models matching the filter."""
    page = _registry(s).search_registered_models(
        widen_prompt_filter(p.text("filter") or None),
        p.integer("max_results", 100, minimum=1, maximum=MAX_MODEL_RESULTS) or 100,
        p.strings("order_by") or None,
        p.text("page_token") or None,
    )
    return page_to_json("registered_models", [registered_model_to_json(m) for m in page], page.token)


def get_latest_versions(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the newest version in each stage (or in the stages asked for)."""
    versions = _registry(s).get_latest_versions(p.required_text("name"), p.strings("stages") or None)
    return page_to_json("model_versions", [model_version_to_json(mv) for mv in versions], None)


def set_registered_model_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Set (or replace) a tag on a registered model."""
    value = p.text("value", required=True) or ""
    _registry(s).set_registered_model_tag(p.required_text("name"), p.required_text("key"), value)
    return {}


def delete_registered_model_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove a tag from a registered model (an absent tag is fine)."""
    _registry(s).delete_registered_model_tag(p.required_text("name"), p.required_text("key"))
    return {}


def set_alias(s: ServerState, p: Params) -> dict[str, Any]:
    """Point an alias at a version (moving it if it exists); 404 if the version does not exist."""
    _registry(s).set_registered_model_alias(p.required_text("name"), p.required_text("alias"), _version(p))
    return {}


def delete_alias(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove an alias (an absent alias is fine; the model must exist)."""
    _registry(s).delete_registered_model_alias(p.required_text("name"), p.required_text("alias"))
    return {}


def get_version_by_alias(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the version an alias points at."""
    version = _registry(s).get_model_version_by_alias(p.required_text("name"), p.required_text("alias"))
    return {"model_version": model_version_to_json(version)}


# -- model versions ----------------------------------------------------------------------------------
def _source_run_id(s: ServerState, p: Params, source: str) -> str | None:
    """The run of a new version: ``run_id`` if sent, else the run that logged the model ``model_id``."""
    run_id = p.text("run_id") or None
    if run_id is not None:
        return run_id
    model_id = p.text("model_id") or None
    logged = _LOGGED_MODEL_SOURCE.match(source)
    if model_id is None and logged:
        model_id = logged.group(1)
    if model_id is None:
        return None
    try:
        model = s.logged_models.get_logged_model(model_id)
    except NotFoundError:
        if p.text("model_id"):
            raise
        return None
    return model.source_run_id or None


def create_model_version(s: ServerState, p: Params) -> dict[str, Any]:
    """Add the next version to a registered model; answered READY at once (MLflow's client polls)."""
    source = p.required_text("source")
    version = _registry(s).create_model_version(
        p.required_text("name"), source, _source_run_id(s, p, source), _tags(p), p.text("description"),
        run_link=p.text("run_link") or None, user_id=p.text("user_id") or None,
    )
    return {"model_version": model_version_to_json(version)}


def get_model_version(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer one model version."""
    version = _registry(s).get_model_version(p.required_text("name"), _version(p))
    return {"model_version": model_version_to_json(version)}


def update_model_version(s: ServerState, p: Params) -> dict[str, Any]:
    """Set a model version's description."""
    version = _registry(s).update_model_version(p.required_text("name"), _version(p), p.text("description"))
    return {"model_version": model_version_to_json(version)}


def delete_model_version(s: ServerState, p: Params) -> dict[str, Any]:
    """Delete a model version with its tags and the aliases pointing at it."""
    _registry(s).delete_model_version(p.required_text("name"), _version(p))
    return {}


def search_model_versions(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer one page of model versions matching the filter."""
    page = _registry(s).search_model_versions(
        p.text("filter") or None,
        p.integer("max_results", 10_000, minimum=1, maximum=MAX_VERSION_RESULTS) or 10_000,
        p.strings("order_by") or None,
        p.text("page_token") or None,
    )
    return page_to_json("model_versions", [model_version_to_json(mv) for mv in page], page.token)


def transition_stage(s: ServerState, p: Params) -> dict[str, Any]:
    """Move a version to a stage, optionally archiving the others in that stage; ``comment`` goes to
    the audit trail."""
    version = _registry(s).transition_model_version_stage(
        p.required_text("name"), _version(p), p.required_text("stage"), p.flag("archive_existing_versions"),
        comment=p.text("comment") or None,
    )
    return {"model_version": model_version_to_json(version)}


def set_model_version_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Set (or replace) a tag on a model version."""
    value = p.text("value", required=True) or ""
    _registry(s).set_model_version_tag(p.required_text("name"), _version(p), p.required_text("key"), value)
    return {}


def delete_model_version_tag(s: ServerState, p: Params) -> dict[str, Any]:
    """Remove a tag from a model version (an absent tag is fine)."""
    _registry(s).delete_model_version_tag(p.required_text("name"), _version(p), p.required_text("key"))
    return {}


def _event_to_json(event: RegistryEvent) -> dict[str, Any]:
    """An audit-trail event as JSON (``version`` a string, as MLflow sends version numbers)."""
    data = {"id": str(event.id), "timestamp": event.timestamp, "user_id": event.user_id, "action": event.action,
            "name": event.name, "version": None if event.version is None else str(event.version), "key": event.key,
            "old_value": event.old_value, "new_value": event.new_value, "comment": event.comment}
    return {k: val for k, val in data.items() if val is not None}


def get_model_version_history(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the audit trail of one model version, newest first (a fitscribe extension)."""
    events = _registry(s).get_model_version_history(p.required_text("name"), _version(p))
    return {"events": [_event_to_json(e) for e in events]}


def get_registered_model_history(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the audit trail of a registered model and its versions, newest first (a fitscribe extension)."""
    events = _registry(s).get_registered_model_history(p.required_text("name"))
    return {"events": [_event_to_json(e) for e in events]}


def get_download_uri(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer where a version's files are: a logged model's or a run's artifact URI, else its source."""
    source = _registry(s).get_model_version(p.required_text("name"), _version(p)).source
    logged = _LOGGED_MODEL_SOURCE.match(source)
    if logged:
        return {"artifact_uri": s.logged_models.get_logged_model(logged.group(1)).artifact_location}
    runs = _RUNS_SOURCE.match(source)
    if runs:
        root = s.tracking.get_run(runs.group(1).lower()).info.artifact_uri
        sub = check_relative_path(runs.group(2) or "", "model path")
        return {"artifact_uri": join_uri(root, sub) if sub else root}
    if source.startswith(("models:", "runs:")):
        raise InvalidValueError(f"Cannot resolve the model version source {source!r} to a storage location.")
    return {"artifact_uri": source}


_SEARCH = fields("filter max_results:int64 order_by:strings page_token")
_LATEST = fields("name! stages:strings")
_RM = "registered-models"
_MV = "model-versions"
ENDPOINTS = (
    Endpoint("POST", f"{_RM}/create", create_registered_model, "Create a registered model.",
             fields("name! tags:objects description deployment_job_id")),
    Endpoint("GET", f"{_RM}/get", get_registered_model, "Get a registered model.", fields("name!")),
    Endpoint("POST", f"{_RM}/rename", rename_registered_model, "Rename a registered model.", fields("name! new_name!")),
    Endpoint("PATCH", f"{_RM}/update", update_registered_model, "Set a registered model's description.",
             fields("name! description deployment_job_id")),
    Endpoint("DELETE", f"{_RM}/delete", delete_registered_model, "Delete a registered model and its versions.",
             fields("name!")),
    Endpoint("GET", f"{_RM}/search", search_registered_models, "Search registered models.", _SEARCH),
    Endpoint("POST", f"{_RM}/get-latest-versions", get_latest_versions, "Latest version per stage.", _LATEST,
             read_only=True),
    Endpoint("GET", f"{_RM}/get-latest-versions", get_latest_versions, "Latest version per stage.", _LATEST),
    Endpoint("POST", f"{_RM}/set-tag", set_registered_model_tag, "Set a tag on a registered model.",
             fields("name! key! value!")),
    Endpoint("DELETE", f"{_RM}/delete-tag", delete_registered_model_tag, "Delete a tag from a registered model.",
             fields("name! key!")),
    Endpoint("POST", f"{_RM}/alias", set_alias, "Point an alias at a model version.", fields("name! alias! version!")),
    Endpoint("DELETE", f"{_RM}/alias", delete_alias, "Delete an alias.", fields("name! alias!")),
    Endpoint("GET", f"{_RM}/alias", get_version_by_alias, "Get the model version an alias points at.",
             fields("name! alias!")),
    Endpoint("POST", f"{_MV}/create", create_model_version, "Create a model version.",
             fields("name! source! run_id tags:objects run_link description model_id user_id")),
    Endpoint("GET", f"{_MV}/get", get_model_version, "Get a model version.", fields("name! version!")),
    Endpoint("PATCH", f"{_MV}/update", update_model_version, "Set a model version's description.",
             fields("name! version! description")),
    Endpoint("DELETE", f"{_MV}/delete", delete_model_version, "Delete a model version.", fields("name! version!")),
    Endpoint("GET", f"{_MV}/search", search_model_versions, "Search model versions.", _SEARCH),
    Endpoint("POST", f"{_MV}/transition-stage", transition_stage, "Move a model version to a stage.",
             fields("name! version! stage! archive_existing_versions:bool comment")),
    Endpoint("POST", f"{_MV}/set-tag", set_model_version_tag, "Set a tag on a model version.",
             fields("name! version! key! value!")),
    Endpoint("DELETE", f"{_MV}/delete-tag", delete_model_version_tag, "Delete a tag from a model version.",
             fields("name! version! key!")),
    Endpoint("GET", f"{_MV}/get-download-uri", get_download_uri, "Where a model version's files are.",
             fields("name! version!")),
    Endpoint("GET", f"{_MV}/get-history", get_model_version_history,
             "The audit trail of a model version, newest first (fitscribe extension).", fields("name! version!")),
    Endpoint("GET", f"{_RM}/get-history", get_registered_model_history,
             "The audit trail of a registered model and its versions, newest first (fitscribe extension).",
             fields("name!")),
)
