"""The logged-model half of the REST store: MLflow 3's ``logged-models/*`` endpoints.

Each method is one request, sent after the store's queued writes. A model's ``mlflow-artifacts:``
location comes back as an explicit URL of the server (as runs' artifact URIs do). A tracking
server keeps what it is given except ids and times: it assigns those itself, so ``model_id``,
``artifact_location`` and the timestamps of :meth:`RestLoggedModelsMixin.create_logged_model` are
refused rather than silently changed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import quote

from fitscribe import wire
from fitscribe.entities import PagedList
from fitscribe.entities.logged_model import LoggedModel, check_model_id, parse_status
from fitscribe.errors import InvalidValueError

from .http import IDEMPOTENT, SAFE

__all__ = ["RestLoggedModelsMixin"]


def _pairs(items: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": val} for k, val in (items or {}).items()]


class RestLoggedModelsMixin:
    """Logged-model methods of :class:`~fitscribe.backends.rest.store.RestTrackingStore`."""

    if TYPE_CHECKING:
        def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None, *,
                  params: dict[str, Any] | None = None, retry: str | None = SAFE,
                  drain: bool = True) -> dict[str, Any]: ...

        def _artifact_uri(self, uri: str) -> str: ...

    def _model(self, answer: dict[str, Any]) -> LoggedModel:
        model = wire.logged_model_from_json(answer["model"])
        return replace(model, artifact_location=self._artifact_uri(model.artifact_location))

    def create_logged_model(
        self, experiment_id: str, name: str, *, model_id: str | None = None, source_run_id: str | None = None,
        model_type: str | None = None, params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
        status: str | int = "LOGGED_MODEL_PENDING", status_message: str | None = None,
        artifact_location: str | None = None, creation_timestamp: int | None = None,
        last_updated_timestamp: int | None = None,
    ) -> LoggedModel:
        """Create a logged model on the server (then finalize it if ``status`` is not PENDING).

        Raises:
            InvalidValueError: An id, location or time is given (the server assigns them), or a value is invalid.
            ExperimentNotFound: No experiment has this id.
        """
        kept = {"model_id": model_id, "artifact_location": artifact_location, "creation_timestamp": creation_timestamp,
                "last_updated_timestamp": last_updated_timestamp}
        given = sorted(k for k, val in kept.items() if val is not None)
        if given:
            raise InvalidValueError(f"A tracking server assigns {', '.join(given)} itself; import into its "
                                    "database instead to keep them (fitscribe import).")
        body = {"experiment_id": str(experiment_id), "name": name, "model_type": model_type,
                "source_run_id": source_run_id, "params": _pairs(params), "tags": _pairs(tags)}
        model = self._model(self._call("POST", "logged-models", {k: val for k, val in body.items() if val}))
        if parse_status(status) != model.status or status_message:
            model = self.update_logged_model(model.model_id, status=status, status_message=status_message)
        return model

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """Return a logged model (``NotFoundError`` if there is none)."""
        params = {"allow_deleted": "true"} if allow_deleted else None
        return self._model(self._call("GET", f"logged-models/{quote(check_model_id(model_id))}", params=params,
                                      retry=IDEMPOTENT))

    def search_logged_models(
        self, experiment_ids: Sequence[str], filter_string: str | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None, max_results: int = 100, page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Return one page of logged models matching the filter (the server caps a page at 1000)."""
        body = {"experiment_ids": [str(e) for e in experiment_ids], "filter": filter_string,
                "order_by": [dict(o) for o in order_by or ()], "max_results": max_results, "page_token": page_token}
        answer = self._call("POST", "logged-models/search", {k: val for k, val in body.items() if val},
                            retry=IDEMPOTENT)
        return PagedList([self._model({"model": m}) for m in answer.get("models") or ()], answer.get("next_page_token"))

    def update_logged_model(
        self, model_id: str, *, status: str | int | None = None, status_message: str | None = None,
        tags: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """Set tags, params and then the status of a logged model (one request each); return it.

        Raises:
            InvalidValueError: ``status_message`` is given (MLflow's API has no field for it).
        """
        if status_message:
            raise InvalidValueError("A tracking server takes no logged model status message over MLflow's API.")
        path = f"logged-models/{quote(check_model_id(model_id))}"
        if tags:
            self._call("PATCH", f"{path}/tags", {"tags": _pairs(tags)}, retry=IDEMPOTENT)
        if params:
            self._call("POST", f"{path}/params", {"model_id": model_id, "params": _pairs(params)}, retry=IDEMPOTENT)
        if status is not None:
            return self._model(self._call("PATCH", path, {"model_id": model_id, "status": parse_status(status)},
                                          retry=IDEMPOTENT))
        return self.get_logged_model(model_id)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model (``NotFoundError`` if it has none)."""
        self._call("DELETE", f"logged-models/{quote(check_model_id(model_id))}/tags/{quote(key, safe='')}")

    def delete_logged_model(self, model_id: str) -> None:
        """Mark a logged model deleted."""
        self._call("DELETE", f"logged-models/{quote(check_model_id(model_id))}")
