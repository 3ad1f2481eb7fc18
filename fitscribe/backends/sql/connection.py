"""The one connection layer the writer runs on: named statements (statements.py) executed with
plain tuples. :class:`SqliteConnection` runs the SQL compiled ahead into ``sqlite_sql.py`` on
``sqlite3`` (the embedded hot path, no SQLAlchemy); :class:`SaConnection` runs the same statements on
SQLAlchemy (the precompiled SQL on SQLite: no per-row processing) and gives its connection (``.sa``)
to code that builds queries. A sequence parameter fills an ``IN`` list (:func:`in_chunks`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union

from . import sqlite_sql as q

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .statements import Statements

__all__ = ["IN_CHUNK", "in_chunks", "Connection", "SqliteConnection", "SaConnection"]

IN_CHUNK = 500
"""The most values one ``IN`` list takes (below every supported database's parameter limit)."""
_EXPANDING = "(__[POSTCOMPILE_"


def in_chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Yield ``values`` in parts of at most :data:`IN_CHUNK` items (nothing for an empty sequence).

    >>> [len(part) for part in in_chunks(range(1201))]
    [500, 500, 201]
    """
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _sql(name: str, args: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """Return a statement's precompiled SQL with one ``?`` per value of each sequence argument."""
    sql = q.SQL[name]
    if _EXPANDING not in sql:
        return sql, tuple(args)
    flat: list[Any] = []
    for arg in args:
        if isinstance(arg, (list, tuple)):
            start = sql.index(_EXPANDING)
            sql = f"{sql[:start]}({', '.join('?' * len(arg))}){sql[sql.index('])', start) + 2:]}"
            flat.extend(arg)
        else:
            flat.append(arg)
    return sql, tuple(flat)


class SqliteConnection:
    """A ``sqlite3`` connection (in autocommit mode: the caller issues BEGIN and COMMIT) running
    the statements precompiled in ``sqlite_sql.py``."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, name: str, args: Sequence[Any] = ()) -> list[Any]:
        """Run a query and return its rows."""
        return self.conn.execute(*_sql(name, args)).fetchall()

    def run(self, name: str, args: Sequence[Any] = ()) -> int:
        """Run a statement once; return the number of rows it changed."""
        return self.conn.execute(*_sql(name, args)).rowcount

    def run_many(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row of parameters (nothing for no rows)."""
        if rows:
            self.conn.executemany(q.SQL[name], rows)

    def insert(self, name: str, args: Sequence[Any]) -> int:
        """Run an INSERT and return the new row's id."""
        return self.conn.execute(q.SQL[name], args).lastrowid or 0

    def table_names(self) -> set[str]:
        """Return the names of the database's tables."""
        return {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def create_tables(self) -> None:
        """Create the tables from the DDL compiled into ``sqlite_sql.py``."""
        for statement in q.SCHEMA:
            self.conn.execute(statement)


class SaConnection:
    """A SQLAlchemy connection (in a transaction begun by the caller) running the statements built
    for its dialect."""

    def __init__(self, conn: sa.Connection, statements: Statements) -> None:
        self.sa = conn
        self.statements = statements
        self.dialect = statements.dialect
        self._precompiled = self.dialect == "sqlite"  # through the DB-API cursor, as sqlite3 runs it

    def _execute(self, name: str, args: Sequence[Any] | list[Sequence[Any]], many: bool = False) -> Any:
        if self._precompiled:
            return self.sa.exec_driver_sql(q.SQL[name], list(args)) if many else self.sa.exec_driver_sql(*_sql(name, args))
        construct, params = self.statements.named[name]
        if many:
            return self.sa.execute(construct, [dict(zip(params, row)) for row in args])
        return self.sa.execute(construct, dict(zip(params, args)))

    def rows(self, name: str, args: Sequence[Any] = ()) -> list[Any]:
        """Run a query and return its rows."""
        return list(self._execute(name, args).all())

    def run(self, name: str, args: Sequence[Any] = ()) -> int:
        """Run a statement once; return the number of rows it changed."""
        return int(self._execute(name, args).rowcount)

    def run_many(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row of parameters (one executemany; nothing for no rows)."""
        if rows:
            self._execute(name, rows, many=True)

    def insert(self, name: str, args: Sequence[Any]) -> int:
        """Run an INSERT and return the new row's generated key."""
        result = self._execute(name, args)
        return int(result.lastrowid if self._precompiled else result.inserted_primary_key[0])

    def table_names(self) -> set[str]:
        """Return the names of the database's tables."""
        import sqlalchemy as sa

        return set(sa.inspect(self.sa).get_table_names())

    def create_tables(self) -> None:
        """Create the tables from ``tables.metadata`` for this dialect."""
        from . import tables as t
        from .statements import VERSION_TABLE

        t.metadata.create_all(self.sa)
        VERSION_TABLE.create(self.sa)


Connection = Union[SqliteConnection, SaConnection]
"""Either connection; the writer runs on both."""
