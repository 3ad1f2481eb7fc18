"""The SQL store's statements, written once with SQLAlchemy Core and compiled per dialect.

Each has a name and a fixed order of parameters, so callers pass plain tuples and either connection
(connection.py) runs it: the construct on PostgreSQL and MySQL/MariaDB, the SQL compiled ahead into
``sqlite_sql.py`` on SQLite. A sequence fills an ``IN`` list (at most ``IN_CHUNK`` items).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import sqlalchemy as sa

from . import tables as t
from .rows import CHUNK_COLUMNS, EXPERIMENT_COLUMNS, LATEST_COLUMNS, RUN_COLUMNS

__all__ = ["VERSION_TABLE", "Statement", "Statements", "statements_for"]

VERSION_TABLE = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))
"""The ``alembic_version`` table as a new database gets it (Alembic's own layout)."""

Statement = tuple[Any, tuple[str, ...]]
"""A construct and the names of its parameters, in the order callers give them."""

_MYSQL = ("mysql", "mariadb")


def _key(name: str) -> Any:
    return sa.bindparam(name)


class Statements:
    """The named statements for one dialect (``sqlite``, ``postgresql``, ``mysql``, ``mariadb``), built once."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._upserts: dict[tuple[str, ...], Any] = {}
        self.named: dict[str, Statement] = {name: build(self) for name, build in _BUILDERS.items()}

    def insert(self, table: sa.Table) -> Any:
        """Return this dialect's INSERT for ``table`` (it has the upsert clauses)."""
        module = "postgresql" if self.dialect == "postgresql" else "mysql" if self.dialect in _MYSQL else "sqlite"
        return importlib.import_module(f"sqlalchemy.dialects.{module}").insert(table)

    def upsert(self, table: sa.Table, update_cols: list[str]) -> Any:
        """Return an INSERT that replaces ``update_cols`` when the primary key exists (built once per table)."""
        key = (table.name, *update_cols)
        stmt = self._upserts.get(key)
        if stmt is None:
            insert = self.insert(table)
            if self.dialect in _MYSQL:
                stmt = insert.on_duplicate_key_update({c: insert.inserted[c] for c in update_cols})
            else:
                keys = [c.name for c in table.primary_key.columns]
                stmt = insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in update_cols})
            self._upserts[key] = stmt
        return stmt

    def insert_ignore(self, table: sa.Table) -> Any:
        """Return an INSERT that skips rows whose primary key exists."""
        insert = self.insert(table)
        return insert.prefix_with("IGNORE") if self.dialect in _MYSQL else insert.on_conflict_do_nothing()

    def latest_upsert(self) -> Any:
        """Return the INSERT that folds a series' newest point and min/max into ``latest_metrics``."""
        lm = t.latest_metrics
        stmt = self.insert(lm)
        new = stmt.inserted if self.dialect in _MYSQL else stmt.excluded
        newer = sa.or_(new.step > lm.c.step, sa.and_(new.step == lm.c.step, new.timestamp >= lm.c.timestamp))

        def pick(col: str) -> Any:
            return sa.case((newer, new[col]), else_=lm.c[col])

        def bound(col: str, cmp: Callable[[Any, Any], Any]) -> Any:
            return sa.case((new[col].is_(None), lm.c[col]), (lm.c[col].is_(None), new[col]),
                           (cmp(new[col], lm.c[col]), new[col]), else_=lm.c[col])

        # Order matters on MySQL, which evaluates assignments left to right on the updated row:
        # min/max first, then value and special, then timestamp, and step last.
        updates = [
            ("min_value", bound("min_value", lambda a, b: a < b)),
            ("max_value", bound("max_value", lambda a, b: a > b)),
            ("value", pick("value")),
            ("special", pick("special")),
            ("timestamp", pick("timestamp")),
            ("step", pick("step")),
        ]
        if self.dialect in _MYSQL:
            return stmt.on_duplicate_key_update(updates)
        return stmt.on_conflict_do_update(index_elements=["run_uuid", "key"], set_=dict(updates))


def _select(table: sa.Table, columns: tuple[str, ...], *where: str, lock: bool = False) -> Statement:
    """SELECT ``columns`` WHERE each ``where`` column equals its parameter (a name ending in ``s``
    after ``__in_``: an IN list)."""
    conditions = []
    names = []
    for spec in where:
        column, _, listed = spec.partition("__in_")
        if listed:
            conditions.append(table.c[column].in_(sa.bindparam(listed, expanding=True)))
            names.append(listed)
        else:
            conditions.append(table.c[column] == _key(column))
            names.append(column)
    query = sa.select(*(table.c[c] for c in columns)).where(*conditions)
    return (query.with_for_update(key_share=True) if lock else query), tuple(names)


def _update(table: sa.Table, columns: tuple[str, ...], where: str) -> Statement:
    """UPDATE ``columns`` (parameters ``new_<column>``) WHERE ``where`` equals the last parameter
    (``where_<column>``)."""
    stmt = table.update().where(table.c[where] == _key(f"where_{where}"))
    return stmt.values({c: _key(f"new_{c}") for c in columns}), (*(f"new_{c}" for c in columns), f"where_{where}")


def _update_run(returning: bool) -> Statement:
    """UPDATE a run's name, status and end time, each only when its ``set_<column>`` parameter is
    true (to ``new_<column>``, maybe NULL); ``returning``: with the new row. (``lifecycle_stage`` is
    indexed: a statement of its own, so ending a run leaves the index alone.)"""
    r = t.runs
    values = {c: sa.case((sa.bindparam(f"set_{c}", type_=sa.Boolean), _key(f"new_{c}")), else_=r.c[c])
              for c in _UPDATABLE_RUN}
    stmt = r.update().where(r.c.run_uuid == _key("where_run_uuid")).values(values)
    params = (*(p for c in _UPDATABLE_RUN for p in (f"set_{c}", f"new_{c}")), "where_run_uuid")
    return (stmt.returning(*(r.c[c] for c in RUN_COLUMNS)) if returning else stmt), params


def _chunks() -> Statement:
    """The packed points of one series in logging order, of the chunks holding a step from
    ``from_step`` to ``to_step``."""
    c = t.metric_chunks.c
    query = sa.select(c.step_blob, c.timestamp_blob, c.value_blob).where(
        c.run_uuid == _key("run_uuid"), c.key == _key("key"), c.max_step >= _key("from_step"), c.min_step <= _key("to_step"))
    return query.order_by(c.id), ("run_uuid", "key", "from_step", "to_step")


_e, _r = t.experiments, t.runs
_UPDATABLE_RUN = ("name", "status", "end_time")  # in table order
_BUILDERS: dict[str, Callable[[Statements], Statement]] = {
    # experiments
    "experiment_by_id": lambda s: _select(_e, EXPERIMENT_COLUMNS, "experiment_id"),
    "experiment_by_name": lambda s: _select(_e, EXPERIMENT_COLUMNS, "name"),
    "experiment_tags": lambda s: _select(t.experiment_tags, ("key", "value"), "experiment_id"),
    "insert_experiment": lambda s: (_e.insert(), ("name", "artifact_location", "lifecycle_stage", "creation_time",
                                                  "last_update_time")),
    "set_artifact_location": lambda s: _update(_e, ("artifact_location",), "experiment_id"),
    "set_experiment_id": lambda s: _update(_e, ("experiment_id",), "experiment_id"),
    "upsert_experiment_tag": lambda s: (s.upsert(t.experiment_tags, ["value"]), ("experiment_id", "key", "value")),
    # runs
    "insert_run": lambda s: (_r.insert(), RUN_COLUMNS),
    "run_stage": lambda s: _select(_r, ("lifecycle_stage",), "run_uuid"),
    "run_stage_locked": lambda s: _select(_r, ("lifecycle_stage",), "run_uuid", lock=True),
    "run_row": lambda s: _select(_r, RUN_COLUMNS, "run_uuid"),
    "update_run": lambda s: _update_run(returning=False),
    "update_run_returning": lambda s: _update_run(returning=True),
    "set_run_lifecycle": lambda s: _update(_r, ("lifecycle_stage", "deleted_time"), "run_uuid"),
    "existing_runs": lambda s: _select(_r, ("run_uuid",), "run_uuid__in_run_ids"),
    # tags, params, metrics
    "tag_value": lambda s: _select(t.tags, ("value",), "run_uuid", "key"),
    "upsert_tag": lambda s: (s.upsert(t.tags, ["value"]), ("run_uuid", "key", "value")),
    "insert_param": lambda s: (s.insert_ignore(t.params), ("run_uuid", "key", "value")),
    "stored_params": lambda s: _select(t.params, ("key", "value"), "run_uuid", "key__in_keys"),
    "insert_chunk": lambda s: (t.metric_chunks.insert(), CHUNK_COLUMNS),
    "metric_chunks": lambda s: _chunks(),
    "run_start_times": lambda s: _select(_r, ("run_uuid", "start_time"), "run_uuid__in_run_ids"),
    "upsert_latest": lambda s: (s.latest_upsert(), LATEST_COLUMNS),
    # metric journals
    "journal_position": lambda s: _select(t.journals, ("position",), "journal_id"),
    "upsert_journal": lambda s: (s.upsert(t.journals, ["position"]), ("journal_id", "position")),
    "delete_journal": lambda s: (t.journals.delete().where(t.journals.c.journal_id == _key("journal_id")),
                                 ("journal_id",)),
    # the schema's revision stamp
    "revision": lambda s: (sa.select(VERSION_TABLE.c.version_num), ()),
    "stamp_revision": lambda s: (VERSION_TABLE.insert(), ("version_num",)),
}


def statements_for(dialect: str) -> Statements:
    """Return the statements for ``dialect`` (build them once per store and keep them)."""
    return Statements(dialect)
