"""MLflow 3 "logged models", the minimum MLflow's client needs to ``log_model`` through the server.

The tracking database has no table for them, so each model is one JSON file in the artifact
destination, ``.fitscribe/logged-models/<model_id>.json``; several replicas sharing the destination
see the same models. Updates of one model are serialised within a process only (last writer wins
across replicas). The model's files live under its ``artifact_uri``:
``<experiment artifact location>/models/<model_id>/artifacts``, as MLflow lays them out.

Not kept: metrics logged with a ``model_id`` (they are stored on the run only) and run outputs.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import uuid
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe._time import now_ms
from fitscribe.errors import InvalidValueError, NotFoundError
from fitscribe.search import (
    And,
    Comparison,
    Expr,
    Or,
    decode_page_token,
    encode_page_token,
    parse_registry_filter,
)
from fitscribe.uri import join_uri
from fitscribe.validation import check_text

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore
    from fitscribe.entities import Experiment

__all__ = ["LoggedModelStore", "STATUSES", "LOGGED_MODEL_ATTRIBUTES"]

FOLDER = ".fitscribe/logged-models"
STATUSES = ("LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
            "LOGGED_MODEL_UPLOAD_FAILED")
"""MLflow's LoggedModelStatus names, in the order of their enum numbers."""

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
"""Fields a logged-model search filter and ``order_by`` may name (besides ``tags.<key>``)."""

_ID_RE = re.compile(r"^[A-Za-z0-9][\w\-]{0,127}$")



def parse_status(value: Any) -> str:
    """Return the status name for a name (``"LOGGED_MODEL_READY"`` or ``"READY"``) or enum number.

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
    raise InvalidValueError(f"Invalid logged model status {value!r}; use one of {', '.join(STATUSES)}.")


class LoggedModelStore:
    """Logged models as JSON records in an artifact store.

    Args:
        artifacts: The server's artifact destination.
    """

    def __init__(self, artifacts: "ArtifactStore") -> None:
        self._artifacts = artifacts
        self._lock = threading.Lock()

    # -- records -----------------------------------------------------------------------------
    def _path(self, model_id: str) -> str:
        if not isinstance(model_id, str) or not _ID_RE.match(model_id):
            raise InvalidValueError(f"Invalid logged model id {model_id!r}; ids look like 'm-<32 hex digits>'.")
        return f"{FOLDER}/{model_id}.json"

    def _write(self, record: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="fitscribe-model-") as tmp:
            local = os.path.join(tmp, f"{record['model_id']}.json")
            with open(local, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
            self._artifacts.put(local, FOLDER)

    def _read(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(b"".join(self._artifacts.open(path)))
        return data

    def get(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        """Return a model's record.

        Raises:
            NotFoundError: No model has this id (or it is deleted and ``allow_deleted`` is False).
        """
        path = self._path(model_id)
        try:
            record = self._read(path)
        except NotFoundError:
            record = None
        if record is None or (record.get("lifecycle_stage") == "deleted" and not allow_deleted):
            raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
        return record

    def create(self, experiment: "Experiment", *, name: str, source_run_id: str | None = None,
               model_type: str | None = None, params: dict[str, str] | None = None,
               tags: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a model in the PENDING state and return its record.

        Raises:
            InvalidValueError: The name, a tag or a param is not valid Unicode text.
        """
        check_text(name, "logged model name", nul=True)
        for key, value in [*(tags or {}).items(), *(params or {}).items()]:
            check_text(key, "key", nul=True), check_text(value, f"value of {key!r}")
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        record: dict[str, Any] = {
            "model_id": model_id, "experiment_id": experiment.experiment_id, "name": name,
            "artifact_uri": join_uri(experiment.artifact_location, "models", model_id, "artifacts"),
            "status": "LOGGED_MODEL_PENDING", "model_type": model_type or "", "source_run_id": source_run_id or "",
            "creation_timestamp_ms": now, "last_updated_timestamp_ms": now, "lifecycle_stage": "active",
            "tags": dict(tags or {}), "params": dict(params or {}),
        }
        self._write(record)
        return record

    def update(self, model_id: str, *, status: str | None = None, tags: dict[str, str] | None = None,
               params: dict[str, str] | None = None, delete_tag: str | None = None,
               lifecycle_stage: str | None = None) -> dict[str, Any]:
        """Change a model's status, tags, params or lifecycle stage; return the new record.

        Raises:
            NotFoundError: No model has this id, or ``delete_tag`` names no tag of it.
        """
        with self._lock:
            record = self.get(model_id)
            if status is not None:
                record["status"] = status
            record["tags"].update(tags or {})
            record["params"].update(params or {})
            if delete_tag is not None:
                if delete_tag not in record["tags"]:
                    raise NotFoundError(f"No tag with key {delete_tag!r} on logged model '{model_id}'.")
                del record["tags"][delete_tag]
            if lifecycle_stage is not None:
                record["lifecycle_stage"] = lifecycle_stage
            record["last_updated_timestamp_ms"] = now_ms()
            self._write(record)
        return record

    # -- search ------------------------------------------------------------------------------
    def search(self, experiment_ids: Sequence[str], filter_string: str | None,
               order_by: Sequence[dict[str, Any]], max_results: int,
               page_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of active models of the experiments matching the filter, and the next token.

        Raises:
            InvalidValueError: The filter or an ordering names an unsupported field.
        """
        expr = parse_registry_filter(filter_string, LOGGED_MODEL_ATTRIBUTES)
        keys = _sort_keys(order_by)
        offset = decode_page_token(page_token)
        wanted = set(experiment_ids)
        found = [r for r in self._all() if r.get("experiment_id") in wanted
                 and r.get("lifecycle_stage") != "deleted" and _matches(expr, r)]
        for field, ascending in reversed(keys):
            found.sort(key=lambda r: _sort_value(r.get(field)), reverse=not ascending)
        page = found[offset: offset + max_results]
        token = encode_page_token(offset + max_results) if len(found) > offset + max_results else None
        return page, token

    def _all(self) -> list[dict[str, Any]]:
        records = []
        for info in self._artifacts.list(FOLDER):
            if info.is_dir or not info.path.endswith(".json"):
                continue
            try:
                records.append(self._read(info.path))
            except (NotFoundError, ValueError):  # deleted meanwhile, or a torn file
                continue
        return records


def _sort_keys(order_by: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    keys = []
    for clause in order_by:
        name = clause.get("field_name")
        if not isinstance(name, str) or name not in LOGGED_MODEL_ATTRIBUTES:
            allowed = ", ".join(sorted(LOGGED_MODEL_ATTRIBUTES))
            raise InvalidValueError(f"Cannot order logged models by {name!r}; use one of {allowed}.")
        keys.append((LOGGED_MODEL_ATTRIBUTES[name][0], clause.get("ascending", True) is not False))
    if not any(k == "creation_timestamp_ms" for k, _ in keys):
        keys.append(("creation_timestamp_ms", False))
    keys.append(("model_id", True))
    return keys


def _sort_value(value: Any) -> tuple[bool, Any]:
    return (value is None, "" if value is None else value)


def _matches(expr: Expr | None, record: dict[str, Any]) -> bool:
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(_matches(item, record) for item in expr.items)
    if isinstance(expr, Or):
        return any(_matches(item, record) for item in expr.items)
    return _compare(expr, record)


def _compare(c: Comparison, record: dict[str, Any]) -> bool:
    value = record["tags"].get(c.key) if c.entity == "tag" else record.get(c.key)
    if c.op in ("IS NULL", "IS NOT NULL"):
        return (value is None or value == "") == (c.op == "IS NULL")
    if value is None:
        return False
    if c.op in ("LIKE", "ILIKE"):
        pattern = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(c.value))
        return re.fullmatch(pattern, str(value), re.S | (re.I if c.op == "ILIKE" else 0)) is not None
    if c.op in ("IN", "NOT IN"):
        return (value in c.value) == (c.op == "IN")
    if c.key == "status" and isinstance(c.value, str):
        target: Any = parse_status(c.value)
    else:
        target = c.value
    ops = {"=": value == target, "!=": value != target}
    if c.op in ops:
        return ops[c.op]
    try:
        return {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[c.op]
    except TypeError:
        return False
