"""The run tag ``mlflow.log-model.history``: a JSON list of the models logged into a run.

Every store appends to it through :func:`append_entry`, so the rule for what an entry must hold
and which entries are kept when the list outgrows the tag length limit is stated once: the newest
entries are kept, the oldest dropped. Appending is ``TrackingStore.record_logged_model``: stores
that can append atomically (in one transaction, or on the server) override it; the base class's
fallback reads the tag and writes it back (which two processes can race on).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from fitscribe.errors import InvalidValueError
from fitscribe.validation import MAX_TAG_VALUE_LENGTH, check_tag_value

__all__ = ["HISTORY_TAG", "REQUIRED_FIELDS", "check_entry", "append_entry", "record_logged_model"]

HISTORY_TAG = "mlflow.log-model.history"
"""The run tag holding the JSON list of logged models (MLflow's name, read by MLflow's tools)."""
REQUIRED_FIELDS = ("artifact_path", "flavors", "utc_time_created", "run_id")
"""The fields every entry has (those MLflow's ``runs/log-model`` endpoint requires)."""


def check_entry(entry: Any) -> dict[str, Any]:
    """Return ``entry`` as a dict if it is a mapping with the :data:`REQUIRED_FIELDS`.

    Raises:
        InvalidValueError: It is not a mapping, or lacks a required field.
    """
    if not isinstance(entry, Mapping):
        raise InvalidValueError(
            f"A logged model must be described by a JSON object (the MLmodel dict), not {type(entry).__name__}."
        )
    missing = [name for name in REQUIRED_FIELDS if entry.get(name) in (None, "")]
    if missing:
        raise InvalidValueError(
            f"The logged model's description lacks {', '.join(map(repr, missing))}; it must have "
            f"{', '.join(REQUIRED_FIELDS)} (the fields of its MLmodel file)."
        )
    if not isinstance(entry["flavors"], Mapping):
        raise InvalidValueError(f"The logged model's 'flavors' must be an object, not {type(entry['flavors']).__name__}.")
    return dict(entry)


def _checked(entry: Any) -> dict[str, Any]:
    """Return the entry checked by :func:`check_entry`, refusing what JSON cannot hold."""
    checked = check_entry(entry)
    try:
        json.dumps(checked, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"The logged model's description cannot be written as JSON: {exc}.") from None
    return checked


def _entries(current: str | None) -> list[Any]:
    """The entries of a stored history; a value that is not a JSON list (set by hand) starts afresh."""
    if not current:
        return []
    try:
        found = json.loads(current)
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def append_entry(current: str | None, entry: Mapping[str, Any]) -> str:
    """Return the history tag's new value: ``current`` with ``entry`` appended, trimmed to fit.

    The oldest entries are dropped until the JSON fits :data:`~fitscribe.validation.MAX_TAG_VALUE_LENGTH`.

    Args:
        current: The tag's value now (None or empty when the run has none).
        entry: The new model's description (see :func:`check_entry`).

    Raises:
        InvalidValueError: The entry is invalid (see :func:`check_entry`; or not JSON-serialisable),
            or too long to fit the tag alone.
    """
    checked = _checked(entry)
    items = [*_entries(current), checked]
    text = json.dumps(items)  # == "[" + ", ".join(json.dumps(item) for item in items) + "]"
    if len(text) <= MAX_TAG_VALUE_LENGTH:
        return text
    cut, first = 1, 0  # drop the oldest entries: text[1:cut] is theirs, with the ", " after each
    while len(text) - cut + 1 > MAX_TAG_VALUE_LENGTH and first < len(items) - 1:
        cut += len(json.dumps(items[first])) + 2
        first += 1
    return check_tag_value(HISTORY_TAG, "[" + text[cut:])


def record_logged_model(store: Any, run_id: str, entry: Mapping[str, Any]) -> None:
    """Append ``entry`` to the run's history tag through the store's ``record_logged_model``.

    ``store`` may be any tracking store, including one that does not subclass ``TrackingStore``
    (it then gets the fallback: read the run, set the tag).

    Raises:
        RunNotFound: No run has this id.
        InvalidStateError: The run is deleted.
        InvalidValueError: The entry is invalid, or too long to fit the tag.
    """
    from fitscribe.backends.base import as_tracking_store

    as_tracking_store(store).record_logged_model(run_id, entry)
