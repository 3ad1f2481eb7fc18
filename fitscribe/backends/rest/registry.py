"""The model registry half of the REST store: MLflow's ``registered-models/*`` and ``model-versions/*``.

Names, versions and aliases are checked here with the same rules (and messages) as the database
stores, so a bad value fails before any request; the rest is the server's answer, its errors raised
again as the same fitscribe classes (``ModelNotFound``, ``ModelVersionNotFound``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fitscribe import validation as v
from fitscribe import wire
from fitscribe.entities import ModelVersion, PagedList, RegisteredModel, RegistryEvent

from .http import IDEMPOTENT, SAFE

__all__ = ["RestRegistryMixin", "registry_event_from_json"]


def _tags(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": v.check_key(k, "tag key"), "value": str(val)} for k, val in (tags or {}).items()]


def registry_event_from_json(data: dict[str, Any]) -> RegistryEvent:
    """Read one audit-trail event from the server's JSON (``version`` and ``timestamp`` may be strings)."""
    version = data.get("version")
    return RegistryEvent(
        int(data.get("id") or 0), int(data.get("timestamp") or 0), data.get("user_id"), str(data.get("action", "")),
        str(data.get("name", "")), None if version in (None, "") else int(version), data.get("key"),
        data.get("old_value"), data.get("new_value"), data.get("comment"),
    )


class RestRegistryMixin:
    """Registry methods of :class:`~fitscribe.backends.rest.store.RestTrackingStore`."""

    if TYPE_CHECKING:
        def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None, *,
                  params: dict[str, Any] | None = None, retry: str | None = SAFE,
                  drain: bool = True) -> dict[str, Any]: ...

        def _artifact_uri(self, uri: str) -> str: ...

    def _rpc(self, method: str, endpoint: str, retry: str | None = SAFE, **fields: Any) -> dict[str, Any]:
        """Send a registry RPC (GET fields go in the query string, others in the body)."""
        fields = {k: val for k, val in fields.items() if val is not None}
        if method == "GET":
            return self._call(method, endpoint, params=fields, retry=IDEMPOTENT, drain=False)
        return self._call(method, endpoint, fields, retry=retry, drain=False)

    @staticmethod
    def _version(version: int | str) -> str:
        return str(v.check_model_version(version))

    # -- registered models -----------------------------------------------------------------------
    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel:
        """Create a registered model (``AlreadyExistsError`` if the name is taken)."""
        answer = self._rpc("POST", "registered-models/create", name=v.check_model_name(name), tags=_tags(tags),
                           description=v.check_description(description))
        return wire.registered_model_from_json(answer["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest version per stage."""
        answer = self._rpc("GET", "registered-models/get", name=v.check_model_name(name))
        return wire.registered_model_from_json(answer["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, tags and aliases follow."""
        answer = self._rpc("POST", "registered-models/rename", name=v.check_model_name(name),
                           new_name=v.check_model_name(new_name, "new registered model name"))
        return wire.registered_model_from_json(answer["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set a registered model's description (None clears it)."""
        answer = self._rpc("PATCH", "registered-models/update", IDEMPOTENT, name=v.check_model_name(name),
                           description=v.check_description(description))
        return wire.registered_model_from_json(answer["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions, tags and aliases."""
        self._rpc("DELETE", "registered-models/delete", name=v.check_model_name(name))

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        """Return one page of registered models."""
        answer = self._rpc("GET", "registered-models/search", filter=filter_string, max_results=max_results,
                           order_by=list(order_by or []) or None, page_token=page_token)
        models = [wire.registered_model_from_json(m) for m in answer.get("registered_models") or ()]
        return PagedList(models, answer.get("next_page_token"))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model."""
        self._rpc("POST", "registered-models/set-tag", IDEMPOTENT, name=v.check_model_name(name),
                  key=v.check_key(key, "tag key"), value=str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (an absent tag is fine)."""
        self._rpc("DELETE", "registered-models/delete-tag", IDEMPOTENT, name=v.check_model_name(name), key=key)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point an alias at a version (moving it if it exists)."""
        self._rpc("POST", "registered-models/alias", IDEMPOTENT, name=v.check_model_name(name),
                  alias=v.check_alias(alias), version=self._version(version))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (an absent alias is fine)."""
        self._rpc("DELETE", "registered-models/alias", IDEMPOTENT, name=v.check_model_name(name), alias=alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at (``ModelVersionNotFound`` if none)."""
        answer = self._rpc("GET", "registered-models/alias", name=v.check_model_name(name), alias=alias)
        return wire.model_version_from_json(answer["model_version"])

    # -- model versions --------------------------------------------------------------------------
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, description: str | None = None, *,
                             run_link: str | None = None, user_id: str | None = None) -> ModelVersion:
        """Add the next version to a registered model."""
        answer = self._rpc(
            "POST", "model-versions/create", name=v.check_model_name(name), source=v.check_source(source),
            run_id=v.check_run_id(run_id) if run_id is not None else None, tags=_tags(tags),
            description=v.check_description(description), run_link=run_link, user_id=user_id,
        )
        return wire.model_version_from_json(answer["model_version"])

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one model version."""
        answer = self._rpc("GET", "model-versions/get", name=v.check_model_name(name), version=self._version(version))
        return wire.model_version_from_json(answer["model_version"])

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        """Set a model version's description (None clears it)."""
        answer = self._rpc("PATCH", "model-versions/update", IDEMPOTENT, name=v.check_model_name(name),
                           version=self._version(version), description=v.check_description(description))
        return wire.model_version_from_json(answer["model_version"])

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version with its tags and the aliases pointing at it."""
        self._rpc("DELETE", "model-versions/delete", name=v.check_model_name(name), version=self._version(version))

    def search_model_versions(self, filter_string: str | None = None, max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        """Return one page of model versions."""
        answer = self._rpc("GET", "model-versions/search", filter=filter_string, max_results=max_results,
                           order_by=list(order_by or []) or None, page_token=page_token)
        versions = [wire.model_version_from_json(mv) for mv in answer.get("model_versions") or ()]
        return PagedList(versions, answer.get("next_page_token"))

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Return the newest version in each stage (or in the given stages)."""
        if isinstance(stages, str):
            stages = [stages]
        answer = self._rpc("POST", "registered-models/get-latest-versions", IDEMPOTENT,
                           name=v.check_model_name(name), stages=list(stages or []) or None)
        return [wire.model_version_from_json(mv) for mv in answer.get("model_versions") or ()]

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False,
                                       comment: str | None = None) -> ModelVersion:
        """Move a version to a stage, optionally archiving the others in that stage."""
        answer = self._rpc("POST", "model-versions/transition-stage", name=v.check_model_name(name),
                           version=self._version(version), stage=stage,
                           archive_existing_versions=bool(archive_existing_versions),
                           comment=v.check_description(comment) or None)
        return wire.model_version_from_json(answer["model_version"])

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a tag on a model version."""
        self._rpc("POST", "model-versions/set-tag", IDEMPOTENT, name=v.check_model_name(name),
                  version=self._version(version), key=v.check_key(key, "tag key"), value=str(value))

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a model version (an absent tag is fine)."""
        self._rpc("DELETE", "model-versions/delete-tag", IDEMPOTENT, name=v.check_model_name(name),
                  version=self._version(version), key=key)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Return where a model version's files are stored."""
        answer = self._rpc("GET", "model-versions/get-download-uri", name=v.check_model_name(name),
                           version=self._version(version))
        return self._artifact_uri(str(answer["artifact_uri"]))

    # -- audit trail (fitscribe extension endpoints) ---------------------------------------------
    def get_model_version_history(self, name: str, version: int | str) -> list[RegistryEvent]:
        """Return the audit trail of one model version, newest first."""
        answer = self._rpc("GET", "model-versions/get-history", name=v.check_model_name(name),
                           version=self._version(version))
        return [registry_event_from_json(e) for e in answer.get("events") or ()]

    def get_registered_model_history(self, name: str) -> list[RegistryEvent]:
        """Return the audit trail of a registered model and its versions, newest first."""
        answer = self._rpc("GET", "registered-models/get-history", name=v.check_model_name(name))
        return [registry_event_from_json(e) for e in answer.get("events") or ()]
