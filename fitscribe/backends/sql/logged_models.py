"""MLflow 3 logged models in the SQL store: ``logged_models`` with its tags and params (revision 0007).

:class:`SqlLoggedModels` gives ``SqlTrackingStore`` the logged-model capability of ``TrackingStore``.
Each method is one transaction, so processes and server replicas sharing the database see one
state: an update changes the model's row first (which locks it until commit), and tags and params
are upserted rows, so concurrent writers never lose each other's changes. Statuses are stored as
MLflow's enum numbers, as MLflow's own tables hold them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from fitscribe import validation as v
from fitscribe._time import now_ms
from fitscribe.entities import PagedList
from fitscribe.entities.logged_model import LOGGED_MODEL_ATTRIBUTES, STATUSES, LoggedModel, check_model_id
from fitscribe.entities.logged_model import new_model_id, parse_status
from fitscribe.errors import AlreadyExistsError, ConstraintViolation, InvalidValueError, NotFoundError
from fitscribe.uri import join_uri

from .store_core import StoreCore

if TYPE_CHECKING:
    import sqlalchemy as sa

    from fitscribe.entities import Experiment
    from fitscribe.search import Comparison

__all__ = ["SqlLoggedModels"]


def _text(value: Any, what: str, limit: int) -> str:
    text = v.check_text(value, what, nul=True)
    if len(text) > limit:
        raise InvalidValueError(f"The {what} is {len(text)} characters long; the limit is {limit}.")
    return text


def _pairs(items: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """Checked tags or params: keys of at most 255 characters, values any valid text."""
    return {_text(k, f"{what} key", 255): v.check_text(val, f"value of {what} {k!r}") for k, val in (items or {}).items()}


def _not_found(model_id: str) -> NotFoundError:
    return NotFoundError(f"Logged model with ID '{model_id}' not found.")


class SqlLoggedModels(StoreCore):
    """The logged-model methods of the SQL tracking store (a base class of ``SqlTrackingStore``).

    Each implements the ``TrackingStore`` method of its name, whose docstring lists its errors.
    """

    if TYPE_CHECKING:
        def get_experiment(self, experiment_id: str) -> Experiment: ...

    def create_logged_model(
        self, experiment_id: str, name: str, *, model_id: str | None = None, source_run_id: str | None = None,
        model_type: str | None = None, params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
        status: str | int = "LOGGED_MODEL_PENDING", status_message: str | None = None,
        artifact_location: str | None = None, creation_timestamp: int | None = None,
        last_updated_timestamp: int | None = None,
    ) -> LoggedModel:
        """Create a logged model (PENDING unless ``status`` says otherwise) and return it."""
        from . import tables as t

        experiment = self.get_experiment(experiment_id)
        model_id = new_model_id() if model_id is None else check_model_id(model_id)
        created = now_ms() if creation_timestamp is None else v.check_int(creation_timestamp, "creation_timestamp")
        row = {
            "model_id": model_id, "experiment_id": int(experiment.experiment_id),
            "name": _text(name, "logged model name", 500),
            "artifact_location": v.check_text(artifact_location, "artifact location", nul=True) if artifact_location
            else join_uri(experiment.artifact_location, "models", model_id, "artifacts"),
            "creation_timestamp_ms": created,
            "last_updated_timestamp_ms": created if last_updated_timestamp is None
            else v.check_int(last_updated_timestamp, "last_updated_timestamp"),
            "status": STATUSES.index(parse_status(status)), "lifecycle_stage": "active",
            "model_type": _text(model_type, "model type", 500) if model_type else None,
            "source_run_id": v.check_run_id(source_run_id) if source_run_id else None,
            "status_message": v.check_text(status_message, "status message") if status_message else None,
        }
        checked_tags, checked_params = _pairs(tags, "tag"), _pairs(params, "param")
        try:
            with self.sql_write() as w:
                w.sa.execute(t.logged_models.insert().values(row))
                self._set_pairs(w.sa, model_id, checked_tags, checked_params)
        except ConstraintViolation as exc:
            with self.sql_read(flush=False) as w:
                if _read_models(w.sa, model_id):
                    raise AlreadyExistsError(f"A logged model with ID '{model_id}' already exists.") from exc
            raise
        return _entity(row, checked_tags, checked_params)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """Return a logged model with its tags and params."""
        check_model_id(model_id)
        with self.sql_read(flush=False) as w:
            found = _read_models(w.sa, model_id)
        if not found or (found[0].lifecycle_stage == "deleted" and not allow_deleted):
            raise _not_found(model_id)
        return found[0]

    def search_logged_models(
        self, experiment_ids: Sequence[str], filter_string: str | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None, max_results: int = 100, page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Return one page of the active logged models of these experiments matching the filter."""
        from fitscribe.search import decode_page_token, parse_registry_filter

        from .store import _check_max_results, _page

        limit = _check_max_results(max_results)
        expr = parse_registry_filter(filter_string, LOGGED_MODEL_ATTRIBUTES)
        offset = decode_page_token(page_token)
        query = _search_query(experiment_ids, expr, order_by or ()).limit(limit + 1).offset(offset)
        with self.sql_read(flush=False) as w:
            return _page(_read_models(w.sa, query), limit, offset)

    def update_logged_model(
        self, model_id: str, *, status: str | int | None = None, status_message: str | None = None,
        tags: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """Set a logged model's status (and message), tags and params in one transaction; return it."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = STATUSES.index(parse_status(status))
        if status_message is not None:
            values["status_message"] = v.check_text(status_message, "status message")
        checked_tags, checked_params = _pairs(tags, "tag"), _pairs(params, "param")
        with self.sql_write() as w:
            self._touch(w.sa, model_id, values)
            self._set_pairs(w.sa, model_id, checked_tags, checked_params)
            return _read_models(w.sa, model_id)[0]

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model."""
        from . import tables as t

        tag = t.logged_model_tags.c
        with self.sql_write() as w:
            self._touch(w.sa, model_id)
            deleted = w.sa.execute(t.logged_model_tags.delete().where(tag.model_id == model_id, tag.tag_key == key))
            if deleted.rowcount == 0:
                raise NotFoundError(f"No tag with key {key!r} on logged model '{model_id}'.")

    def delete_logged_model(self, model_id: str) -> None:
        """Mark a logged model deleted (its files stay)."""
        with self.sql_write() as w:
            self._touch(w.sa, model_id, {"lifecycle_stage": "deleted"})

    # -- helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _touch(conn: sa.Connection, model_id: str, values: dict[str, Any] | None = None) -> None:
        """Update an active model's row (locking it until commit) and its last-updated time."""
        from . import tables as t

        lm = t.logged_models.c
        check_model_id(model_id)
        changed = conn.execute(t.logged_models.update().where(lm.model_id == model_id, lm.lifecycle_stage == "active")
                               .values({**(values or {}), "last_updated_timestamp_ms": now_ms()}))
        if changed.rowcount == 0:
            raise _not_found(model_id)

    def _set_pairs(self, conn: sa.Connection, model_id: str, tags: dict[str, str], params: dict[str, str]) -> None:
        from . import tables as t

        for table, key, value, items in ((t.logged_model_tags, "tag_key", "tag_value", tags),
                                         (t.logged_model_params, "param_key", "param_value", params)):
            if items:
                conn.execute(self.statements.upsert(table, [value]),
                             [{"model_id": model_id, key: k, value: val} for k, val in items.items()])


def _entity(row: Mapping[str, Any], tags: dict[str, str], params: dict[str, str]) -> LoggedModel:
    return LoggedModel(
        model_id=row["model_id"], experiment_id=str(row["experiment_id"]), name=row["name"],
        artifact_location=row["artifact_location"], creation_timestamp=row["creation_timestamp_ms"],
        last_updated_timestamp=row["last_updated_timestamp_ms"], status=parse_status(row["status"]),
        lifecycle_stage=row["lifecycle_stage"], model_type=row["model_type"], source_run_id=row["source_run_id"],
        status_message=row["status_message"], tags=tags, params=params,
    )


def _read_models(conn: sa.Connection, query: Any) -> list[LoggedModel]:
    """Run a query on ``logged_models`` (a model id: that model's row); return its models, in order,
    with their tags and params."""
    import sqlalchemy as sa

    from . import tables as t
    from .connection import in_chunks

    if isinstance(query, str):
        query = sa.select(t.logged_models).where(t.logged_models.c.model_id == query)
    rows = conn.execute(query).mappings().all()
    pairs: dict[str, tuple[dict[str, str], dict[str, str]]] = {row["model_id"]: ({}, {}) for row in rows}
    for part in in_chunks(list(pairs)):
        for index, table in enumerate((t.logged_model_tags, t.logged_model_params)):
            for model_id, key, value in conn.execute(sa.select(table).where(table.c.model_id.in_(part))):
                pairs[model_id][index][key] = value
    return [_entity(row, *pairs[row["model_id"]]) for row in rows]


def _condition(cmp: Comparison) -> Any:
    """The SQL condition of one comparison of a search filter (an attribute or ``tags.<key>``)."""
    import sqlalchemy as sa

    from . import tables as t
    from .search import compare

    lm, tag = t.logged_models.c, t.logged_model_tags.c
    if cmp.entity == "tag":
        exists = sa.exists().where(tag.model_id == lm.model_id, tag.tag_key == cmp.key)
        if cmp.op in ("IS NULL", "IS NOT NULL"):
            return sa.not_(exists) if cmp.op == "IS NULL" else exists
        return exists.where(compare(tag.tag_value, cmp.op, cmp.value))
    if cmp.key != "status" or cmp.op in ("IS NULL", "IS NOT NULL"):
        return compare(lm[cmp.key], cmp.op, cmp.value)
    if cmp.op in ("LIKE", "ILIKE"):  # on the status names: the numbers of those that match
        pattern = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(cmp.value))
        flags = re.S | (re.I if cmp.op == "ILIKE" else 0)
        return lm.status.in_([i for i, name in enumerate(STATUSES) if re.fullmatch(pattern, name, flags)])
    if cmp.op in ("IN", "NOT IN"):
        return compare(lm.status, cmp.op, [STATUSES.index(parse_status(s)) for s in cmp.value])
    return compare(lm.status, cmp.op, STATUSES.index(parse_status(cmp.value)))


def _search_query(experiment_ids: Sequence[str], expr: Any, order_by: Sequence[Mapping[str, Any]]) -> Any:
    """The SELECT of the active models of these experiments matching ``expr``, in the order of MLflow's
    ``[{"field_name": ..., "ascending": ...}]`` (missing values last), then newest first, then by id."""
    import sqlalchemy as sa

    from . import tables as t
    from .search import compile_filter

    lm = t.logged_models.c
    ids = [int(e) for e in experiment_ids if isinstance(e, str) and re.fullmatch(r"-?\d{1,9}", e)]
    query = sa.select(t.logged_models).where(lm.experiment_id.in_(ids), lm.lifecycle_stage == "active")
    if expr is not None:
        query = query.where(compile_filter(expr, _condition))
    terms: list[Any] = []
    for clause in order_by:
        name = clause.get("field_name") if isinstance(clause, Mapping) else None
        if not isinstance(name, str) or name not in LOGGED_MODEL_ATTRIBUTES:
            allowed = ", ".join(sorted(LOGGED_MODEL_ATTRIBUTES))
            raise InvalidValueError(f"Cannot order logged models by {name!r}; use one of {allowed}.")
        column = lm[LOGGED_MODEL_ATTRIBUTES[name][0]]
        terms += [sa.case((column.is_(None), 1), else_=0),
                  column.asc() if clause.get("ascending", True) is not False else column.desc()]
    return query.order_by(*terms, lm.creation_timestamp_ms.desc(), lm.model_id.asc())
