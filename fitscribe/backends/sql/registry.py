"""The model registry of the SQL store: registered models, numbered versions, tags and aliases.

``SqlTrackingStore.registry`` returns a :class:`SqlModelRegistry` sharing the store's engine; it
satisfies :class:`~fitscribe.backends.base.ModelRegistryStore`. Each method is one transaction.

Version numbers come from the counter ``registered_models.next_version``: creating a version first
increments it with an UPDATE, which locks the model's row (PostgreSQL, MariaDB) or the database
(SQLite's ``BEGIN IMMEDIATE``) until commit, so concurrent creators in any number of processes get
distinct, consecutive numbers; a deleted version's number is never given out again.

Every change also appends its row to the audit trail ``registry_audit`` in the same transaction
(who, when, action, old -> new, comment), read back by :meth:`SqlModelRegistry.get_model_version_history`
and :meth:`SqlModelRegistry.get_registered_model_history`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import sqlalchemy as sa

from fitscribe import validation as v
from fitscribe._time import now_ms
from fitscribe.entities import ModelVersion, ModelVersionStage, PagedList, RegisteredModel, RegistryEvent
from fitscribe.errors import (
    AlreadyExistsError,
    ConstraintViolation,
    InvalidValueError,
    ModelNotFound,
    ModelVersionNotFound,
)

from . import tables as t
from .registry_reads import (
    latest_versions_query,
    model_version_query,
    read_events,
    read_model_versions,
    read_registered_models,
    record_event,
    registered_model_query,
)

if TYPE_CHECKING:
    from .store import SqlTrackingStore

__all__ = ["SqlModelRegistry"]

_rm, _mv = t.registered_models.c, t.model_versions.c
_ACTIVE_STAGES = (ModelVersionStage.STAGING.value, ModelVersionStage.PRODUCTION.value)


def _checked_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {v.check_key(k, "tag key"): v.check_tag_value(k, val) for k, val in (tags or {}).items()}


def _matching(table: sa.Table, values: dict[str, Any]) -> list[Any]:
    """The conditions ``column == value`` on ``table`` for each item of ``values``."""
    return [table.c[column] == value for column, value in values.items()]


class SqlModelRegistry:
    """Registered models and their versions in the database of a :class:`SqlTrackingStore`.

    Args:
        store: The tracking store whose engine and transactions this registry uses.
    """

    def __init__(self, store: "SqlTrackingStore") -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"SqlModelRegistry({self._store!r})"

    # -- helpers ---------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._store.sql_write() as w:
            yield w.sa

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._store.sql_read(flush=False) as w:
            yield w.sa

    def _upsert(self, table: sa.Table, update_cols: list[str]) -> Any:
        return self._store.statements.upsert(table, update_cols)

    @staticmethod
    def _require_model(conn: sa.Connection, name: str) -> None:
        if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is None:
            raise ModelNotFound(
                f"No registered model is named {name!r}. Create it with create_registered_model, "
                "or list them with search_registered_models."
            )

    def _require_version(self, conn: sa.Connection, name: str, version: int) -> None:
        found = conn.execute(sa.select(_mv.version).where(_mv.name == name, _mv.version == version)).first()
        if found is None:
            self._require_model(conn, name)
            raise ModelVersionNotFound(
                f"The registered model {name!r} has no version {version}. "
                f"List its versions with search_model_versions(\"name = '{name}'\")."
            )

    def _version_field(self, conn: sa.Connection, name: str, version: int, column: Any) -> Any:
        """One column of a version's row (``ModelVersionNotFound`` if there is no such version)."""
        row = conn.execute(sa.select(column).where(_mv.name == name, _mv.version == version)).first()
        if row is None:
            self._require_version(conn, name, version)
        return row[0] if row is not None else None

    @staticmethod
    def _touch_model(conn: sa.Connection, name: str, now: int) -> None:
        conn.execute(t.registered_models.update().where(_rm.name == name).values(last_updated_time=now))

    def _model(self, conn: sa.Connection, name: str) -> RegisteredModel:
        found = read_registered_models(conn, sa.select(t.registered_models).where(_rm.name == name))
        if not found:
            self._require_model(conn, name)
        return found[0]

    def _version(self, conn: sa.Connection, name: str, version: int) -> ModelVersion:
        query = sa.select(t.model_versions).where(_mv.name == name, _mv.version == version)
        found = read_model_versions(conn, query)
        if not found:
            self._require_version(conn, name, version)
        return found[0]

    # -- registered models -----------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model with no versions and return it.

        Raises:
            AlreadyExistsError: A registered model has this name.
            InvalidValueError: The name, a tag or the description is invalid.
        """
        name = v.check_model_name(name)
        checked = _checked_tags(tags)
        description = v.check_description(description)
        now = now_ms()
        try:
            with self._write() as conn:
                if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is not None:
                    raise AlreadyExistsError(
                        f"A registered model named {name!r} already exists. Add a version to it with "
                        "create_model_version, or choose another name."
                    )
                conn.execute(t.registered_models.insert().values(
                    name=name, creation_time=now, last_updated_time=now, description=description, next_version=1
                ))
                self._set_tags(conn, t.registered_model_tags, {"name": name}, checked)
                record_event(conn, "create_model", name, new=description, now=now)
                for key, value in checked.items():
                    record_event(conn, "set_model_tag", name, key=key, new=value, now=now)
        except ConstraintViolation as exc:  # created meanwhile by another process
            raise AlreadyExistsError(f"A registered model named {name!r} already exists.") from exc
        return RegisteredModel(name, now, now, description, [], checked, {})

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return the registered model with its tags, aliases and latest version per stage.

        Raises:
            ModelNotFound: No registered model has this name.
        """
        name = v.check_model_name(name)
        with self._read() as conn:
            return self._model(conn, name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, tags and aliases follow it.

        Raises:
            ModelNotFound: No registered model has the name ``name``.
            AlreadyExistsError: A registered model is already named ``new_name``.
        """
        name = v.check_model_name(name)
        new_name = v.check_model_name(new_name, "new registered model name")
        try:
            with self._write() as conn:
                self._require_model(conn, name)
                if new_name != name:
                    if conn.execute(sa.select(_rm.name).where(_rm.name == new_name)).first() is not None:
                        raise AlreadyExistsError(
                            f"Cannot rename {name!r}: a registered model named {new_name!r} already exists."
                        )
                    # ON UPDATE CASCADE carries versions, tags and aliases over to the new name
                    conn.execute(t.registered_models.update().where(_rm.name == name)
                                 .values(name=new_name, last_updated_time=now_ms()))
                    # the history follows the model too
                    audit = t.registry_audit
                    conn.execute(audit.update().where(audit.c.name == name).values(name=new_name))
                    record_event(conn, "rename_model", new_name, old=name, new=new_name)
                return self._model(conn, new_name)
        except ConstraintViolation as exc:
            raise AlreadyExistsError(f"Cannot rename {name!r}: {new_name!r} was registered meanwhile.") from exc

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set the description of a registered model (None clears it) and return the model.

        Raises:
            ModelNotFound: No registered model has this name.
        """
        name = v.check_model_name(name)
        description = v.check_description(description)
        with self._write() as conn:
            row = conn.execute(sa.select(_rm.description).where(_rm.name == name)).first()
            if row is None:
                self._require_model(conn, name)
            conn.execute(t.registered_models.update().where(_rm.name == name)
                         .values(description=description, last_updated_time=now_ms()))
            old = row[0] if row is not None else None
            record_event(conn, "update_model_description", name, old=old, new=description)
            return self._model(conn, name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions, tags and aliases.

        Raises:
            ModelNotFound: No registered model has this name.
        """
        name = v.check_model_name(name)
        with self._write() as conn:
            self._require_model(conn, name)
            record_event(conn, "delete_model", name)
            # children first, so the result does not depend on the database enforcing cascades
            for table in (t.registered_model_aliases, t.model_version_tags, t.model_versions,
                          t.registered_model_tags, t.registered_models):
                conn.execute(table.delete().where(table.c.name == name))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Return one page of registered models, e.g. ``filter_string="name LIKE 'churn%'"``.

        Raises:
            InvalidValueError: The filter, order_by, max_results or page token is invalid.
        """
        return self._search(lambda: registered_model_query(filter_string, order_by), read_registered_models,
                            max_results, page_token)

    # -- tags and aliases of registered models -----------------------------------------------------
    def _set_tags(self, conn: sa.Connection, table: sa.Table, owner: dict[str, Any], tags: dict[str, str]) -> None:
        if tags:
            conn.execute(self._upsert(table, ["value"]), [{**owner, "key": k, "value": val} for k, val in tags.items()])

    def _set_tag(self, conn: sa.Connection, table: sa.Table, owner: dict[str, Any], tags: dict[str, str]) -> None:
        """Set one tag of a model (``owner`` {name}) or version ({name, version}) and record the change."""
        [(key, value)] = tags.items()
        old = conn.execute(sa.select(table.c.value).where(*_matching(table, {**owner, "key": key}))).scalar()
        self._set_tags(conn, table, owner, tags)
        action = "set_version_tag" if "version" in owner else "set_model_tag"
        record_event(conn, action, owner["name"], owner.get("version"), key=key, old=old, new=value)

    @staticmethod
    def _delete_one(conn: sa.Connection, table: sa.Table, where: dict[str, Any], column: str) -> Any:
        """Delete the row matching ``where`` if there is one; return its ``column`` (None if none)."""
        old = conn.execute(sa.select(table.c[column]).where(*_matching(table, where))).scalar()
        if old is not None:
            conn.execute(table.delete().where(*_matching(table, where)))
        return old

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model (a new value replaces the old one).

        Raises:
            ModelNotFound: No registered model has this name.
            InvalidValueError: The key or value is invalid.
        """
        name = v.check_model_name(name)
        tags = _checked_tags({key: value})
        with self._write() as conn:
            self._require_model(conn, name)
            self._set_tag(conn, t.registered_model_tags, {"name": name}, tags)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (nothing happens if it has no such tag).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        name = v.check_model_name(name)
        with self._write() as conn:
            self._require_model(conn, name)
            old = self._delete_one(conn, t.registered_model_tags, {"name": name, "key": key}, "value")
            if old is not None:
                record_event(conn, "delete_model_tag", name, key=key, old=old)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at a version; an alias that already exists moves to this version.

        Raises:
            ModelNotFound: No registered model has this name.
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: The alias is invalid or reserved (``latest``, ``v<number>``).
        """
        name = v.check_model_name(name)
        alias = v.check_alias(alias)
        number = v.check_model_version(version)
        rma = t.registered_model_aliases.c
        with self._write() as conn:
            self._require_version(conn, name, number)
            old = conn.execute(sa.select(rma.version).where(rma.name == name, rma.alias == alias)).scalar()
            conn.execute(self._upsert(t.registered_model_aliases, ["version"]),
                         [{"name": name, "alias": alias, "version": number}])
            action = "move_alias" if old is not None and int(old) != number else "set_alias"
            record_event(conn, action, name, number, key=alias, old=old, new=number)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (nothing happens if the model has no such alias).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        name = v.check_model_name(name)
        with self._write() as conn:
            self._require_model(conn, name)
            old = self._delete_one(conn, t.registered_model_aliases, {"name": name, "alias": alias}, "version")
            if old is not None:
                record_event(conn, "delete_alias", name, int(old), key=alias, old=old)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at.

        Raises:
            ModelNotFound: No registered model has this name.
            ModelVersionNotFound: The model has no such alias.
        """
        name = v.check_model_name(name)
        rma = t.registered_model_aliases.c
        with self._read() as conn:
            version = conn.execute(sa.select(rma.version).where(rma.name == name, rma.alias == alias)).scalar()
            if version is None:
                self._require_model(conn, name)
                known = list(conn.execute(sa.select(rma.alias).where(rma.name == name).order_by(rma.alias)).scalars())
                listed = ", ".join(repr(a) for a in known) if known else "none"
                raise ModelVersionNotFound(
                    f"The registered model {name!r} has no alias {alias!r} (its aliases: {listed}). "
                    "Set one with set_registered_model_alias."
                )
            return self._version(conn, name, int(version))

    # -- model versions ----------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        *,
        run_link: str | None = None,
        user_id: str | None = None,
    ) -> ModelVersion:
        """Add the next version (1, 2, ...) to a registered model and return it, status READY.

        Raises:
            ModelNotFound: No registered model has this name.
            InvalidValueError: The source, run id, a tag or the description is invalid.
        """
        name = v.check_model_name(name)
        source = v.check_source(source)
        run_id = v.check_run_id(run_id) if run_id is not None else None
        checked = _checked_tags(tags)
        description = v.check_description(description)
        now = now_ms()
        stage = ModelVersionStage.NONE.value
        with self._write() as conn:
            # Increment first: the row lock (the write lock on SQLite) serialises concurrent creators.
            bumped = conn.execute(t.registered_models.update().where(_rm.name == name)
                                  .values(next_version=_rm.next_version + 1, last_updated_time=now))
            if bumped.rowcount == 0:
                self._require_model(conn, name)
            number = int(conn.execute(sa.select(_rm.next_version).where(_rm.name == name)).scalar_one()) - 1
            conn.execute(t.model_versions.insert().values(
                name=name, version=number, creation_time=now, last_updated_time=now, description=description,
                user_id=user_id, current_stage=stage, source=source, run_id=run_id, run_link=run_link,
                status="READY",
            ))
            self._set_tags(conn, t.model_version_tags, {"name": name, "version": number}, checked)
            record_event(conn, "create_version", name, number, new=source, now=now)
            for key, value in checked.items():
                record_event(conn, "set_version_tag", name, number, key=key, new=value, now=now)
        return ModelVersion(name, number, now, now, description, source, run_id, "READY", stage, checked, [],
                            user_id, run_link)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one version of a registered model.

        Raises:
            ModelNotFound: No registered model has this name.
            ModelVersionNotFound: The model has no such version (never created, or deleted).
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        with self._read() as conn:
            return self._version(conn, name, number)

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        """Set the description of a model version (None clears it) and return the version.

        Raises:
            ModelVersionNotFound: The model has no such version.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        description = v.check_description(description)
        with self._write() as conn:
            old = self._version_field(conn, name, number, _mv.description)
            conn.execute(t.model_versions.update().where(_mv.name == name, _mv.version == number)
                         .values(description=description, last_updated_time=now_ms()))
            record_event(conn, "update_version_description", name, number, old=old, new=description)
            return self._version(conn, name, number)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version with its tags and the aliases pointing at it; its number is not reused.

        Raises:
            ModelVersionNotFound: The model has no such version.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        rma = t.registered_model_aliases.c
        with self._write() as conn:
            stage = self._version_field(conn, name, number, _mv.current_stage)
            aliases = conn.execute(sa.select(rma.alias).where(rma.name == name, rma.version == number)
                                   .order_by(rma.alias)).scalars().all()
            for alias in aliases:
                record_event(conn, "delete_alias", name, number, key=alias, old=number)
            record_event(conn, "delete_version", name, number, old=stage)
            for table in (t.registered_model_aliases, t.model_version_tags, t.model_versions):
                conn.execute(table.delete().where(table.c.name == name, table.c.version == number))
            self._touch_model(conn, name, now_ms())

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Return one page of model versions, e.g. ``filter_string="name = 'churn' AND run_id = '...'"``.

        Raises:
            InvalidValueError: The filter, order_by, max_results or page token is invalid.
        """
        return self._search(lambda: model_version_query(filter_string, order_by), read_model_versions, max_results,
                            page_token)

    def _search(self, query: Any, read: Any, max_results: int, page_token: str | None) -> PagedList[Any]:
        """One page of a registry search: ``read`` hydrates the rows ``query()`` selects."""
        from fitscribe.search import decode_page_token

        from .store import _check_max_results, _page

        limit = _check_max_results(max_results)
        offset = decode_page_token(page_token)
        with self._read() as conn:
            return _page(read(conn, query().limit(limit + 1).offset(offset)), limit, offset)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Return the newest version in each stage (in ``stages`` only, if given), by version number.

        Raises:
            ModelNotFound: No registered model has this name.
            InvalidValueError: A stage is not None, Staging, Production or Archived.
        """
        name = v.check_model_name(name)
        if isinstance(stages, str):
            stages = [stages]
        wanted = [ModelVersionStage.parse(s).value for s in stages] if stages else None
        with self._read() as conn:
            self._require_model(conn, name)
            return read_model_versions(conn, latest_versions_query([name], wanted))

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to a stage; optionally archive the model's other versions in that stage.

        The audit trail records the move (and each archived version) with ``comment``.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: Unknown stage, or ``archive_existing_versions`` with a stage other than
                Staging or Production.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        target = ModelVersionStage.parse(stage).value
        if archive_existing_versions and target not in _ACTIVE_STAGES:
            raise InvalidValueError(
                f"archive_existing_versions=True needs the stage Staging or Production, not {target!r}; "
                "pass archive_existing_versions=False."
            )
        comment = v.check_description(comment) or None
        now = now_ms()
        with self._write() as conn:
            old = self._version_field(conn, name, number, _mv.current_stage)
            if archive_existing_versions:
                archived = conn.execute(sa.select(_mv.version).where(
                    _mv.name == name, _mv.current_stage == target, _mv.version != number
                ).order_by(_mv.version)).scalars().all()
                for other in archived:
                    record_event(conn, "transition_stage", name, int(other), old=target,
                                 new=ModelVersionStage.ARCHIVED.value, comment=comment, now=now)
                conn.execute(
                    t.model_versions.update()
                    .where(_mv.name == name, _mv.current_stage == target, _mv.version != number)
                    .values(current_stage=ModelVersionStage.ARCHIVED.value, last_updated_time=now)
                )
            conn.execute(t.model_versions.update().where(_mv.name == name, _mv.version == number)
                         .values(current_stage=target, last_updated_time=now))
            record_event(conn, "transition_stage", name, number, old=old, new=target, comment=comment, now=now)
            self._touch_model(conn, name, now)
            return self._version(conn, name, number)

    # -- tags of model versions --------------------------------------------------------------------
    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a tag on a model version (a new value replaces the old one).

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: The key or value is invalid.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        tags = _checked_tags({key: value})
        with self._write() as conn:
            self._require_version(conn, name, number)
            self._set_tag(conn, t.model_version_tags, {"name": name, "version": number}, tags)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a model version (nothing happens if it has no such tag).

        Raises:
            ModelVersionNotFound: The model has no such version.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        with self._write() as conn:
            self._require_version(conn, name, number)
            old = self._delete_one(conn, t.model_version_tags, {"name": name, "version": number, "key": key}, "value")
            if old is not None:
                record_event(conn, "delete_version_tag", name, number, key=key, old=old)

    # -- audit trail -------------------------------------------------------------------------------
    def get_model_version_history(self, name: str, version: int | str) -> list[RegistryEvent]:
        """Return the recorded changes of one model version, newest first (kept after its deletion).

        Raises:
            InvalidValueError: The name or version is invalid.
        """
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        with self._read() as conn:
            return read_events(conn, name, number)

    def get_registered_model_history(self, name: str) -> list[RegistryEvent]:
        """Return every recorded change of a registered model and its versions, newest first.

        Raises:
            InvalidValueError: The name is invalid.
        """
        name = v.check_model_name(name)
        with self._read() as conn:
            return read_events(conn, name)
