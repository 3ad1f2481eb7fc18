"""The model registry of the SQL store: registered models, numbered versions, tags and aliases.

``SqlTrackingStore.registry`` returns a :class:`SqlModelRegistry` sharing the store's engine. Each
method is one transaction, which also appends the change to the audit trail ``registry_audit``
(registry_reads.py), so a change rolled back leaves no record.

Version numbers come from the counter ``registered_models.next_version``: creating a version first
increments it with an UPDATE, which locks the model's row (PostgreSQL, MariaDB) or the database
(SQLite's ``BEGIN IMMEDIATE``) until commit, so concurrent creators in any number of processes get
distinct, consecutive numbers; a deleted version's number is never given out again.
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
    read_events,
    read_model_versions,
    read_registered_models,
    record_event,
    search_query,
)

if TYPE_CHECKING:
    from .store import SqlTrackingStore

__all__ = ["SqlModelRegistry"]

_rm, _mv, _rma = t.registered_models.c, t.model_versions.c, t.registered_model_aliases.c
_ACTIVE_STAGES = (ModelVersionStage.STAGING.value, ModelVersionStage.PRODUCTION.value)


def _checked_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {v.check_key(k, "tag key"): v.check_tag_value(k, val) for k, val in (tags or {}).items()}


def _matching(table: sa.Table, values: dict[str, Any]) -> list[Any]:
    """The conditions ``column == value`` on ``table`` for each item of ``values``."""
    return [table.c[column] == value for column, value in values.items()]


class SqlModelRegistry:
    """Registered models and their versions in the database of a :class:`SqlTrackingStore`.

    Each method implements the one of :class:`~fitscribe.backends.base.ModelRegistryStore` with
    its name, whose docstring lists its errors.

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

    @staticmethod
    def _require(conn: sa.Connection, name: str, version: int | None = None) -> None:
        """Raise ``ModelNotFound`` unless the model exists (``ModelVersionNotFound``: the version)."""
        if version is not None:
            if conn.execute(sa.select(_mv.version).where(_mv.name == name, _mv.version == version)).first():
                return
        if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is None:
            raise ModelNotFound(
                f"No registered model is named {name!r}. Create it with create_registered_model, "
                "or list them with search_registered_models."
            )
        if version is not None:
            raise ModelVersionNotFound(
                f"The registered model {name!r} has no version {version}. "
                f"List its versions with search_model_versions(\"name = '{name}'\")."
            )

    def _field(self, conn: sa.Connection, name: str, version: int | None, column: str) -> Any:
        """One column of a model's row or, with ``version``, a version's (raise if there is none)."""
        table = t.registered_models if version is None else t.model_versions
        where = [table.c.name == name] if version is None else [_mv.name == name, _mv.version == version]
        row = conn.execute(sa.select(table.c[column]).where(*where)).first()
        if row is None:
            self._require(conn, name, version)
        return row[0] if row is not None else None

    def _describe(self, name: str, version: int | None, description: str | None) -> Any:
        """Set the description of a model or, with ``version``, a version (audited); return it."""
        description = v.check_description(description)
        table = t.registered_models if version is None else t.model_versions
        where = [table.c.name == name] if version is None else [_mv.name == name, _mv.version == version]
        with self._write() as conn:
            old = self._field(conn, name, version, "description")
            conn.execute(table.update().where(*where).values(description=description, last_updated_time=now_ms()))
            kind = "model" if version is None else "version"
            record_event(conn, f"update_{kind}_description", name, version, old=old, new=description)
            return self._model(conn, name) if version is None else self._version(conn, name, version)

    def _model(self, conn: sa.Connection, name: str) -> RegisteredModel:
        found = read_registered_models(conn, sa.select(t.registered_models).where(_rm.name == name))
        if not found:
            self._require(conn, name)
        return found[0]

    def _version(self, conn: sa.Connection, name: str, version: int) -> ModelVersion:
        query = sa.select(t.model_versions).where(_mv.name == name, _mv.version == version)
        found = read_model_versions(conn, query)
        if not found:
            self._require(conn, name, version)
        return found[0]

    def _set_tags(self, conn: sa.Connection, owner: dict[str, Any], tags: dict[str, str], now: int | None = None) -> None:
        """Set tags of a model (``owner`` {name}) or of a version ({name, version}); audit each."""
        if not tags:
            return
        kind = "version" if "version" in owner else "model"
        table = t.model_version_tags if kind == "version" else t.registered_model_tags
        where = [*_matching(table, owner), table.c.key.in_(list(tags))]
        old = dict(conn.execute(sa.select(table.c.key, table.c.value).where(*where)).all())
        conn.execute(self._store.statements.upsert(table, ["value"]),
                     [{**owner, "key": k, "value": val} for k, val in tags.items()])
        for key, value in tags.items():
            record_event(conn, f"set_{kind}_tag", owner["name"], owner.get("version"), key=key, old=old.get(key),
                         new=value, now=now)

    def _tag(self, name: str, version: int | None, key: str, value: str | None = None) -> None:
        """Set (``value`` given) or delete a tag of a registered model or, with ``version``, of a version."""
        owner = {"name": name} if version is None else {"name": name, "version": version}
        tags = _checked_tags({key: value}) if value is not None else {}
        with self._write() as conn:
            self._require(conn, name, version)
            if value is not None:
                self._set_tags(conn, owner, tags)
                return
            table = t.registered_model_tags if version is None else t.model_version_tags
            old = self._delete_one(conn, table, {**owner, "key": key}, "value")
            if old is not None:
                action = "delete_model_tag" if version is None else "delete_version_tag"
                record_event(conn, action, name, version, key=key, old=old)

    @staticmethod
    def _delete_one(conn: sa.Connection, table: sa.Table, where: dict[str, Any], column: str) -> Any:
        """Delete the row matching ``where`` if there is one; return its ``column`` (None if none)."""
        old = conn.execute(sa.select(table.c[column]).where(*_matching(table, where))).scalar()
        if old is not None:
            conn.execute(table.delete().where(*_matching(table, where)))
        return old

    def _search(self, versions: bool, filter_string: str | None, order_by: Sequence[str] | None, max_results: int,
                page_token: str | None) -> PagedList[Any]:
        """One page of a search of model versions (``versions``) or registered models."""
        from fitscribe.search import decode_page_token

        from .store import _check_max_results, _page

        limit = _check_max_results(max_results)
        offset = decode_page_token(page_token)
        query = search_query(versions, filter_string, order_by).limit(limit + 1).offset(offset)
        read = read_model_versions if versions else read_registered_models
        with self._read() as conn:
            return _page(read(conn, query), limit, offset)

    # -- registered models -----------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model with no versions and return it."""
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
                record_event(conn, "create_model", name, new=description, now=now)
                self._set_tags(conn, {"name": name}, checked, now)
        except ConstraintViolation as exc:  # created meanwhile by another process
            raise AlreadyExistsError(f"A registered model named {name!r} already exists.") from exc
        return RegisteredModel(name, now, now, description, [], checked, {})

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return the registered model with its tags, aliases and latest version per stage."""
        name = v.check_model_name(name)
        with self._read() as conn:
            return self._model(conn, name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, tags, aliases and audit trail follow it."""
        name = v.check_model_name(name)
        new_name = v.check_model_name(new_name, "new registered model name")
        try:
            with self._write() as conn:
                self._require(conn, name)
                if new_name != name:
                    if conn.execute(sa.select(_rm.name).where(_rm.name == new_name)).first() is not None:
                        raise AlreadyExistsError(
                            f"Cannot rename {name!r}: a registered model named {new_name!r} already exists."
                        )
                    # ON UPDATE CASCADE carries versions, tags and aliases over to the new name
                    conn.execute(t.registered_models.update().where(_rm.name == name)
                                 .values(name=new_name, last_updated_time=now_ms()))
                    audit = t.registry_audit
                    conn.execute(audit.update().where(audit.c.name == name).values(name=new_name))
                    record_event(conn, "rename_model", new_name, old=name, new=new_name)
                return self._model(conn, new_name)
        except ConstraintViolation as exc:
            raise AlreadyExistsError(f"Cannot rename {name!r}: {new_name!r} was registered meanwhile.") from exc

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set the description of a registered model (None clears it) and return the model."""
        return self._describe(v.check_model_name(name), None, description)  # type: ignore[no-any-return]

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions, tags and aliases."""
        name = v.check_model_name(name)
        with self._write() as conn:
            self._require(conn, name)
            record_event(conn, "delete_model", name)
            # children first, so the result does not depend on the database enforcing cascades
            for table in (t.registered_model_aliases, t.model_version_tags, t.model_versions,
                          t.registered_model_tags, t.registered_models):
                conn.execute(table.delete().where(table.c.name == name))

    def search_registered_models(
        self, filter_string: str | None = None, max_results: int = 100, order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Return one page of registered models, e.g. ``filter_string="name LIKE 'churn%'"``."""
        return self._search(False, filter_string, order_by, max_results, page_token)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model (a new value replaces the old one)."""
        self._tag(v.check_model_name(name), None, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (nothing happens if it has no such tag)."""
        self._tag(v.check_model_name(name), None, key)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at a version; an alias that already exists moves to this version."""
        name = v.check_model_name(name)
        alias = v.check_alias(alias)
        number = v.check_model_version(version)
        with self._write() as conn:
            self._require(conn, name, number)
            old = conn.execute(sa.select(_rma.version).where(_rma.name == name, _rma.alias == alias)).scalar()
            conn.execute(self._store.statements.upsert(t.registered_model_aliases, ["version"]),
                         [{"name": name, "alias": alias, "version": number}])
            action = "move_alias" if old is not None and int(old) != number else "set_alias"
            record_event(conn, action, name, number, key=alias, old=old, new=number)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (nothing happens if the model has no such alias)."""
        name = v.check_model_name(name)
        with self._write() as conn:
            self._require(conn, name)
            old = self._delete_one(conn, t.registered_model_aliases, {"name": name, "alias": alias}, "version")
            if old is not None:
                record_event(conn, "delete_alias", name, int(old), key=alias, old=old)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""
        name = v.check_model_name(name)
        with self._read() as conn:
            version = conn.execute(sa.select(_rma.version).where(_rma.name == name, _rma.alias == alias)).scalar()
            if version is None:
                self._require(conn, name)
                known = conn.execute(sa.select(_rma.alias).where(_rma.name == name).order_by(_rma.alias)).scalars()
                listed = ", ".join(repr(a) for a in known) or "none"
                raise ModelVersionNotFound(
                    f"The registered model {name!r} has no alias {alias!r} (its aliases: {listed}). "
                    "Set one with set_registered_model_alias."
                )
            return self._version(conn, name, int(version))

    # -- model versions ----------------------------------------------------------------------------
    def create_model_version(
        self, name: str, source: str, run_id: str | None = None, tags: dict[str, str] | None = None,
        description: str | None = None, *, run_link: str | None = None, user_id: str | None = None,
    ) -> ModelVersion:
        """Add the next version (1, 2, ...) to a registered model and return it, status READY."""
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
                self._require(conn, name)
            number = int(conn.execute(sa.select(_rm.next_version).where(_rm.name == name)).scalar_one()) - 1
            conn.execute(t.model_versions.insert().values(
                name=name, version=number, creation_time=now, last_updated_time=now, description=description,
                user_id=user_id, current_stage=stage, source=source, run_id=run_id, run_link=run_link,
                status="READY",
            ))
            record_event(conn, "create_version", name, number, new=source, now=now)
            self._set_tags(conn, {"name": name, "version": number}, checked, now)
        return ModelVersion(name, number, now, now, description, source, run_id, "READY", stage, checked, [],
                            user_id, run_link)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one version of a registered model."""
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        with self._read() as conn:
            return self._version(conn, name, number)

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        """Set the description of a model version (None clears it) and return the version."""
        name, number = v.check_model_name(name), v.check_model_version(version)
        return self._describe(name, number, description)  # type: ignore[no-any-return]

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version with its tags and the aliases pointing at it; its number is not reused."""
        name = v.check_model_name(name)
        number = v.check_model_version(version)
        with self._write() as conn:
            stage = self._field(conn, name, number, "current_stage")
            aliases = conn.execute(sa.select(_rma.alias).where(_rma.name == name, _rma.version == number)
                                   .order_by(_rma.alias)).scalars().all()
            for alias in aliases:
                record_event(conn, "delete_alias", name, number, key=alias, old=number)
            record_event(conn, "delete_version", name, number, old=stage)
            for table in (t.registered_model_aliases, t.model_version_tags, t.model_versions):
                conn.execute(table.delete().where(table.c.name == name, table.c.version == number))
            conn.execute(t.registered_models.update().where(_rm.name == name).values(last_updated_time=now_ms()))

    def search_model_versions(
        self, filter_string: str | None = None, max_results: int = 10000, order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Return one page of model versions, e.g. ``filter_string="name = 'churn' AND run_id = '...'"``."""
        return self._search(True, filter_string, order_by, max_results, page_token)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Return the newest version in each stage (in ``stages`` only, if given), by version number."""
        name = v.check_model_name(name)
        if isinstance(stages, str):
            stages = [stages]
        wanted = [ModelVersionStage.parse(s).value for s in stages] if stages else None
        with self._read() as conn:
            self._require(conn, name)
            return read_model_versions(conn, latest_versions_query([name], wanted))

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to a stage; optionally archive the model's other versions in that stage."""
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
            old = self._field(conn, name, number, "current_stage")
            if archive_existing_versions:
                others = [_mv.name == name, _mv.current_stage == target, _mv.version != number]
                archived = ModelVersionStage.ARCHIVED.value
                for other in conn.execute(sa.select(_mv.version).where(*others).order_by(_mv.version)).scalars().all():
                    record_event(conn, "transition_stage", name, int(other), old=target, new=archived,
                                 comment=comment, now=now)
                conn.execute(t.model_versions.update().where(*others)
                             .values(current_stage=archived, last_updated_time=now))
            conn.execute(t.model_versions.update().where(_mv.name == name, _mv.version == number)
                         .values(current_stage=target, last_updated_time=now))
            record_event(conn, "transition_stage", name, number, old=old, new=target, comment=comment, now=now)
            conn.execute(t.registered_models.update().where(_rm.name == name).values(last_updated_time=now))
            return self._version(conn, name, number)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a tag on a model version (a new value replaces the old one)."""
        self._tag(v.check_model_name(name), v.check_model_version(version), key, value)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a tag from a model version (nothing happens if it has no such tag)."""
        self._tag(v.check_model_name(name), v.check_model_version(version), key)

    # -- audit trail -------------------------------------------------------------------------------
    def get_model_version_history(self, name: str, version: int | str) -> list[RegistryEvent]:
        """Return the recorded changes of one model version, newest first (kept after its deletion)."""
        name, number = v.check_model_name(name), v.check_model_version(version)
        with self._read() as conn:
            return read_events(conn, name, number)

    def get_registered_model_history(self, name: str) -> list[RegistryEvent]:
        """Return every recorded change of a registered model and its versions, newest first."""
        name = v.check_model_name(name)
        with self._read() as conn:
            return read_events(conn, name)
