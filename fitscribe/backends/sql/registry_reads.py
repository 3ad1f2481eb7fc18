"""Model registry reads: rows to entities (tags, aliases and latest versions fetched in bulk), and
searches compiled from the filter grammar of :mod:`fitscribe.search`; and the audit trail
(``registry_audit``): :func:`record_event` writes one row in the caller's transaction,
:func:`read_events` reads a model's or a version's rows back, newest first.

Registered models can be filtered on ``name``, their timestamps and ``tags.<key>``; model versions
on ``name``, ``version_number``, ``run_id``, ``source`` (or ``source_path``), ``current_stage``,
``status``, ``user_id``, their timestamps and ``tags.<key>``. Every user value is a bound parameter.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa

from fitscribe.entities import ModelVersion, RegisteredModel, RegistryEvent
from fitscribe.errors import InvalidValueError
from fitscribe.search import Comparison

from . import tables as t
from .connection import in_chunks
from .search import compare, compile_filter, keyed_exists

__all__ = [
    "read_model_versions", "read_registered_models", "registered_model_query", "model_version_query",
    "record_event", "read_events",
]

_rm, _mv = t.registered_models.c, t.model_versions.c
_MODEL_COLUMNS: dict[str, Any] = {
    "name": _rm.name,
    "creation_timestamp": _rm.creation_time,
    "last_updated_timestamp": _rm.last_updated_time,
}
_VERSION_COLUMNS: dict[str, Any] = {
    "name": _mv.name,
    "version_number": _mv.version,
    "run_id": _mv.run_id,
    "source": _mv.source,
    "current_stage": _mv.current_stage,
    "status": _mv.status,
    "user_id": _mv.user_id,
    "creation_timestamp": _mv.creation_time,
    "last_updated_timestamp": _mv.last_updated_time,
}


# -- hydration ---------------------------------------------------------------------------------------
def read_model_versions(conn: sa.Connection, query: sa.Select[Any]) -> list[ModelVersion]:
    """Run ``query`` (selecting ``model_versions`` rows) and return the versions with tags and aliases."""
    rows = conn.execute(query).all()
    if not rows:
        return []
    keys = sorted({(r.name, r.version) for r in rows})
    tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
    mvt, rma = t.model_version_tags.c, t.registered_model_aliases.c
    for chunk in in_chunks(keys):
        for name, version, key, value in conn.execute(
            sa.select(mvt.name, mvt.version, mvt.key, mvt.value).where(sa.tuple_(mvt.name, mvt.version).in_(chunk))
        ):
            tags[(name, version)][key] = value
        for name, version, alias in conn.execute(
            sa.select(rma.name, rma.version, rma.alias)
            .where(sa.tuple_(rma.name, rma.version).in_(chunk))
            .order_by(rma.alias)
        ):
            aliases[(name, version)].append(alias)
    return [
        ModelVersion(
            name=r.name,
            version=r.version,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            description=r.description,
            source=r.source,
            run_id=r.run_id,
            status=r.status,
            current_stage=r.current_stage,
            tags=tags[(r.name, r.version)],
            aliases=aliases[(r.name, r.version)],
            user_id=r.user_id,
            run_link=r.run_link,
        )
        for r in rows
    ]


def latest_versions_query(names: Sequence[str], stages: Sequence[str] | None = None) -> sa.Select[Any]:
    """Return the SELECT of the newest version in each stage of each model, by name then version."""
    newest = sa.select(_mv.name, sa.func.max(_mv.version).label("version")).where(_mv.name.in_(names))
    if stages is not None:
        newest = newest.where(_mv.current_stage.in_(list(stages)))
    sub = newest.group_by(_mv.name, _mv.current_stage).subquery()
    return (
        sa.select(t.model_versions)
        .join(sub, sa.and_(_mv.name == sub.c.name, _mv.version == sub.c.version))
        .order_by(_mv.name, _mv.version)
    )


def read_registered_models(conn: sa.Connection, query: sa.Select[Any]) -> list[RegisteredModel]:
    """Run ``query`` (selecting ``registered_models`` rows) and return the models with their tags,
    aliases and latest version per stage."""
    rows = conn.execute(query).all()
    if not rows:
        return []
    names = [r.name for r in rows]
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    aliases: dict[str, dict[str, int]] = defaultdict(dict)
    latest: dict[str, list[ModelVersion]] = defaultdict(list)
    rmt, rma = t.registered_model_tags.c, t.registered_model_aliases.c
    for chunk in in_chunks(names):
        for name, key, value in conn.execute(sa.select(rmt.name, rmt.key, rmt.value).where(rmt.name.in_(chunk))):
            tags[name][key] = value
        for name, alias, version in conn.execute(
            sa.select(rma.name, rma.alias, rma.version).where(rma.name.in_(chunk)).order_by(rma.alias)
        ):
            aliases[name][alias] = version
        for version in read_model_versions(conn, latest_versions_query(chunk)):
            latest[version.name].append(version)
    return [
        RegisteredModel(
            name=r.name,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            description=r.description,
            latest_versions=latest[r.name],
            tags=tags[r.name],
            aliases=aliases[r.name],
        )
        for r in rows
    ]


# -- search ------------------------------------------------------------------------------------------
def registered_model_query(filter_string: str | None, order_by: Sequence[str] | None) -> sa.Select[Any]:
    """Return the SELECT on registered models for a search (default order: name).

    Raises:
        InvalidValueError: The filter or order_by is malformed or names an unknown field.
    """
    from fitscribe.search import REGISTERED_MODEL_ATTRIBUTES

    return _query(t.registered_models, REGISTERED_MODEL_ATTRIBUTES, _model_condition, _MODEL_COLUMNS, filter_string,
                  order_by, _rm.name.asc())


def model_version_query(filter_string: str | None, order_by: Sequence[str] | None) -> sa.Select[Any]:
    """Return the SELECT on model versions for a search (default order: name, then newest version).

    Raises:
        InvalidValueError: The filter or order_by is malformed or names an unknown field.
    """
    from fitscribe.search import MODEL_VERSION_ATTRIBUTES

    return _query(t.model_versions, MODEL_VERSION_ATTRIBUTES, _version_condition, _VERSION_COLUMNS, filter_string,
                  order_by, _mv.name.asc(), _mv.version.desc())


def _query(table: sa.Table, attributes: Any, condition: Any, columns: dict[str, Any], filter_string: str | None,
           order_by: Sequence[str] | None, *tiebreaks: Any) -> sa.Select[Any]:
    from fitscribe.search import parse_order_by, parse_registry_filter

    query = sa.select(table)
    expr = parse_registry_filter(filter_string, attributes)
    if expr is not None:
        query = query.where(compile_filter(expr, condition))
    seen: set[str] = set()
    orders = []
    for order in parse_order_by(order_by, attributes=attributes):
        if order.key in seen:
            raise InvalidValueError(f"order_by names {order.key!r} twice; give each field once.")
        seen.add(order.key)
        column = columns[order.key]
        orders.append(column.asc() if order.ascending else column.desc())
    return query.order_by(*orders, *tiebreaks)


def _value(cmp: Comparison) -> Any:
    """Numbers parse as floats; compare whole numbers as ints (version numbers, timestamps)."""
    if isinstance(cmp.value, float) and cmp.value.is_integer():
        return int(cmp.value)
    return cmp.value


def _model_condition(cmp: Comparison) -> Any:
    if cmp.entity == "tag":
        rmt = t.registered_model_tags
        return keyed_exists(rmt, rmt.c.name == _rm.name, cmp)
    return compare(_MODEL_COLUMNS[cmp.key], cmp.op, _value(cmp))


def _version_condition(cmp: Comparison) -> Any:
    if cmp.entity == "tag":
        mvt = t.model_version_tags
        return keyed_exists(mvt, sa.and_(mvt.c.name == _mv.name, mvt.c.version == _mv.version), cmp)
    return compare(_VERSION_COLUMNS[cmp.key], cmp.op, _value(cmp))


# -- audit trail -------------------------------------------------------------------------------------
_ra = t.registry_audit.c


def record_event(conn: sa.Connection, action: str, name: str, version: int | None = None, *,
                 key: str | None = None, old: Any = None, new: Any = None, comment: str | None = None,
                 now: int | None = None) -> None:
    """Append one audit row (who: :func:`fitscribe._actor.current_actor`) in ``conn``'s transaction.

    ``old`` and ``new`` are stored as text (None stays NULL), so a failed change, rolled back with
    its transaction, leaves no row.
    """
    from fitscribe._actor import current_actor
    from fitscribe._time import now_ms

    conn.execute(t.registry_audit.insert().values(
        timestamp=now if now is not None else now_ms(), user_id=current_actor(), action=action, name=name,
        version=version, key=key, old_value=None if old is None else str(old),
        new_value=None if new is None else str(new), comment=comment,
    ))


def read_events(conn: sa.Connection, name: str, version: int | None = None) -> list[RegistryEvent]:
    """Return the audit rows of a model (all of them) or of one of its versions, newest first."""
    query = sa.select(t.registry_audit).where(_ra.name == name)
    if version is not None:
        query = query.where(_ra.version == version)
    rows = conn.execute(query.order_by(_ra.id.desc())).all()
    return [RegistryEvent(int(r.id), int(r.timestamp), r.user_id, r.action, r.name,
                          None if r.version is None else int(r.version), r.key, r.old_value, r.new_value, r.comment)
            for r in rows]
