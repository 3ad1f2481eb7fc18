"""MLflow 3's logged models: the entity, its statuses and the fields a search may name.

A logged model is a model's own record (``models:/m-<32 hex>``), apart from any run: its files are
under ``artifact_location`` (``<experiment location>/models/<model_id>/artifacts`` when the store
assigns it), it has tags and params, and a status: PENDING while its files are uploaded, READY
after. Stores keep them through ``TrackingStore.create_logged_model`` and its siblings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoggedModel", "STATUSES", "LOGGED_MODEL_ATTRIBUTES", "parse_status", "check_model_id", "new_model_id"]

STATUSES = ("LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
            "LOGGED_MODEL_UPLOAD_FAILED")
"""MLflow's LoggedModelStatus names, in the order of their enum numbers (a SQL store keeps the number)."""

LOGGED_MODEL_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "name": ("name", "string"),
    "model_id": ("model_id", "string"),
    "model_type": ("model_type", "string"),
    "status": ("status", "string"),
    "source_run_id": ("source_run_id", "string"),
    "creation_timestamp": ("creation_timestamp_ms", "number"),
    "creation_time": ("creation_timestamp_ms", "number"),
    "last_updated_timestamp": ("last_updated_timestamp_ms", "number"),
    "last_updated_time": ("last_updated_timestamp_ms", "number"),
}
"""Fields a logged-model search filter and ``order_by`` may name (besides ``tags.<key>``), each with
the column it reads and its kind."""

_ID_RE = re.compile(r"^[A-Za-z0-9][\w\-]{0,35}$")


@dataclass(frozen=True)
class LoggedModel:
    """One logged model, as MLflow's ``LoggedModel`` names its fields (times in epoch ms).

    ``status`` is a name of :data:`STATUSES`; ``lifecycle_stage`` is ``active`` or ``deleted``.
    """

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str = "LOGGED_MODEL_PENDING"
    lifecycle_stage: str = "active"
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``, the URI that loads this model."""
        return f"models:/{self.model_id}"


def parse_status(value: Any) -> str:
    """Return the status name for a name (``"LOGGED_MODEL_READY"`` or ``"READY"``) or enum number.

    >>> parse_status("ready"), parse_status(1)
    ('LOGGED_MODEL_READY', 'LOGGED_MODEL_PENDING')

    Raises:
        InvalidValueError: The value names no status.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(STATUSES):
        return STATUSES[value]
    if isinstance(value, str):
        name = value.upper()
        for candidate in (name, f"LOGGED_MODEL_{name}"):
            if candidate in STATUSES:
                return candidate
        if name == "FAILED":  # MLflow's Python enum says FAILED for UPLOAD_FAILED
            return "LOGGED_MODEL_UPLOAD_FAILED"
    from fitscribe.errors import InvalidValueError

    raise InvalidValueError(f"Invalid logged model status {value!r}; use one of {', '.join(STATUSES)}.")


def check_model_id(model_id: Any) -> str:
    """Return ``model_id`` if it can be a logged model's id (letters, digits, ``-``, ``_``; 36 at most).

    Raises:
        InvalidValueError: It cannot.
    """
    if not isinstance(model_id, str) or not _ID_RE.match(model_id):
        from fitscribe.errors import InvalidValueError

        raise InvalidValueError(f"Invalid logged model id {model_id!r}; ids look like 'm-<32 hex digits>'.")
    return model_id


def new_model_id() -> str:
    """Return a new logged model id: ``m-`` and a random uuid4 as 32 hex digits, as MLflow makes them."""
    import uuid

    return f"m-{uuid.uuid4().hex}"
