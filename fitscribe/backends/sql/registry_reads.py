"""Model registry reads: rows to entities (tags, aliases and latest versions fetched in bulk), the
searches, and the audit trail ``registry_audit`` (:func:`record_event`, :func:`read_events`).

Registered models can be filtered on ``name``, their timestamps and ``tags.<key>``; model versions
on ``name``, ``version_number``, ``run_id``, ``source`` (or ``source_path``), ``current_stage``,
``status``, ``user_id``, their timestamps and ``tags.<key>``. Every user value is a bound parameter.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import sqlalchemy as sa

from fitscribe._time import now_ms
from fitscribe.entities import ModelVersion, RegisteredModel, RegistryEvent
from fitscribe.errors import InvalidValueError
from fitscribe.search import MODEL_VERSION_ATTRIBUTES, REGISTERED_MODEL_ATTRIBUTES, Comparison

from . import tables as t
from .connection import in_chunks
from .search import compare, compile_filter, keyed_exists

__all__ = ["read_model_versions", "read_registered_models", "latest_versions_query", "search_query",
           "record_event", "read_events"]

_rm, _mv, _ra = t.registered_models.c, t.model_versions.c, t.registry_audit.c
_COLUMN_NAMES = {"version_number": "version", "creation_timestamp": "creation_time",
                 "last_updated_timestamp": "last_updated_time"}
"""The columns of the searchable attributes not named as the attribute."""


# -- hydration ---------------------------------------------------------------------------------------
def read_model_versions(conn: sa.Connection, query: sa.Select[Any]) -> list[ModelVersion]:
    """Run ``query`` (selecting ``model_versions`` rows) and return the versions with tags and aliases."""
    rows = conn.execute(query).all()
    tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
    mvt, rma = t.model_version_tags.c, t.registered_model_aliases.c
    for chunk in in_chunks(sorted({(r.name, r.version) for r in rows})):
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
        ModelVersion(r.name, r.version, r.creation_time, r.last_updated_time, r.description, r.source, r.run_id,
                     r.status, r.current_stage, tags[(r.name, r.version)], aliases[(r.name, r.version)], r.user_id,
                     r.run_link)
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
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    aliases: dict[str, dict[str, int]] = defaultdict(dict)
    latest: dict[str, list[ModelVersion]] = defaultdict(list)
    rmt, rma = t.registered_model_tags.c, t.registered_model_aliases.c
    for chunk in in_chunks([r.name for r in rows]):
        for name, key, value in conn.execute(sa.select(rmt.name, rmt.key, rmt.value).where(rmt.name.in_(chunk))):
            tags[name][key] = value
        for name, alias, version in conn.execute(
            sa.select(rma.name, rma.alias, rma.version).where(rma.name.in_(chunk)).order_by(rma.alias)
        ):
            aliases[name][alias] = version
        for version in read_model_versions(conn, latest_versions_query(chunk)):
            latest[version.name].append(version)
    return [
        RegisteredModel(r.name, r.creation_time, r.last_updated_time, r.description, latest[r.name], tags[r.name],
                        aliases[r.name])
        for r in rows
    ]


# -- search ------------------------------------------------------------------------------------------
def search_query(versions: bool, filter_string: str | None, order_by: Sequence[str] | None) -> sa.Select[Any]:
    """Return the SELECT of a search of model versions (``versions``) or registered models.

    The default order is by name, then newest version.

    Raises:
        InvalidValueError: The filter or order_by is malformed or names an unknown field.
    """
    from fitscribe.search import parse_order_by, parse_registry_filter

    attributes = MODEL_VERSION_ATTRIBUTES if versions else REGISTERED_MODEL_ATTRIBUTES
    table = t.model_versions if versions else t.registered_models
    query = sa.select(table)
    expr = parse_registry_filter(filter_string, attributes)
    if expr is not None:
        query = query.where(compile_filter(expr, lambda cmp: _condition(cmp, versions)))
    seen: set[str] = set()
    orders = []
    for order in parse_order_by(order_by, attributes=attributes):
        if order.key in seen:
            raise InvalidValueError(f"order_by names {order.key!r} twice; give each field once.")
        seen.add(order.key)
        column = table.c[_COLUMN_NAMES.get(order.key, order.key)]
        orders.append(column.asc() if order.ascending else column.desc())
    tiebreaks = (_mv.name.asc(), _mv.version.desc()) if versions else (_rm.name.asc(),)
    return query.order_by(*orders, *tiebreaks)


def _condition(cmp: Comparison, versions: bool) -> Any:
    if cmp.entity == "tag" and versions:
        mvt = t.model_version_tags
        return keyed_exists(mvt, sa.and_(mvt.c.name == _mv.name, mvt.c.version == _mv.version), cmp)
    if cmp.entity == "tag":
        return keyed_exists(t.registered_model_tags, t.registered_model_tags.c.name == _rm.name, cmp)
    value = cmp.value
    if isinstance(value, float) and value.is_integer():  # numbers parse as floats: versions, times are ints
        value = int(value)
    table = t.model_versions if versions else t.registered_models
    return compare(table.c[_COLUMN_NAMES.get(cmp.key, cmp.key)], cmp.op, value)


# -- audit trail -------------------------------------------------------------------------------------
def record_event(conn: sa.Connection, action: str, name: str, version: int | None = None, *,
                 key: str | None = None, old: Any = None, new: Any = None, comment: str | None = None,
                 now: int | None = None) -> None:
    """Append one audit row (who: :func:`fitscribe._actor.current_actor`) in ``conn``'s transaction.

    ``old`` and ``new`` are stored as text (None stays NULL), so a failed change, rolled back with
    its transaction, leaves no row.
    """
    from fitscribe._actor import current_actor

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
