"""Pages and counts of ``search_runs`` results, planned so large experiments stay fast.

Sorting by one metric's last value, a param or a tag reads the runs having a value first: a join
on the key's table ordered by the value, with the LIMIT (metrics in ``ix_latest_metrics_key_value``
order; params and tags, long TEXT without an index, sorted whole: still cheaper than a subquery per
run). The runs lacking a value (and NaN metrics, stored as NULL) follow, newest first, read by a
second query only when a page reaches them. The order is exactly that of
:func:`~.search.order_by_clauses`, so offset page tokens stay valid whichever plan serves a page.
MySQL/MariaDB also bound the default order by the page's last start time (:meth:`RunQuery._sorted_ids`).
Other orderings are one query with those ORDER BY terms.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import sqlalchemy as sa

from fitscribe.entities import Run
from fitscribe.search import OrderBy

from . import tables as t
from .search import default_order, order_by_clauses

__all__ = ["RunQuery"]

_FETCH_CHUNK = 5000  # run ids per hydrating query (bound-parameter limits)

Fetch = Callable[[sa.Connection, "sa.Select[Any]"], list[Run]]
"""Run a query selecting ``runs`` rows and return hydrated runs in its order (``reads.read_runs``)."""


class RunQuery:
    """One ``search_runs`` request: the WHERE terms on ``runs`` and the parsed sort keys.

    Args:
        where: Conditions on ``runs`` (experiments, lifecycle stages, the compiled filter).
        orders: Parsed ``order_by`` keys; empty for the default order (newest first).
        dialect: The database dialect name (``sqlite``, ``postgresql``, ``mysql``...).
        keyed: False to read every page with one ORDER BY query (the reference order; tests compare).
    """

    def __init__(self, where: Sequence[Any], orders: Sequence[OrderBy], dialect: str, keyed: bool = True) -> None:
        self.where = list(where)
        self.orders = list(orders)
        self.dialect = dialect
        self.keyed = keyed

    def count(self, conn: sa.Connection) -> int:
        """Return how many runs match (an index-only count when no filter needs other tables)."""
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.runs).where(*self.where)).scalar_one())

    def page(self, conn: sa.Connection, fetch: Fetch, limit: int, offset: int) -> list[Run]:
        """Return up to ``limit`` runs from position ``offset`` of the sorted results, hydrated by ``fetch``."""
        keyed = self._keyed_sort()
        if keyed is None:
            by_start_time = len(self.orders) == 1 and (self.orders[0].entity, self.orders[0].key) == ("attribute", "start_time")
            if self._mysql and self.keyed and (not self.orders or by_start_time):
                ascending = bool(self.orders) and self.orders[0].ascending
                query = sa.select(t.runs.c.run_uuid).where(*self.where)
                ids = self._sorted_ids(conn, query, t.runs.c.start_time, ascending, limit, offset, bound=True)
                return _hydrate(conn, fetch, ids)
            ordering = order_by_clauses(self.orders, self.dialect) if self.orders else default_order()
            return fetch(conn, sa.select(t.runs).where(*self.where).order_by(*ordering).limit(limit).offset(offset))
        table, column_name, key, ascending = keyed
        # an alias, so the filter's own EXISTS on the same table still correlates with runs only
        sort = table.alias("sort_key")
        column = sort.c[column_name]
        joined = sort.join(t.runs, sa.and_(sort.c.run_uuid == t.runs.c.run_uuid, sort.c.key == key))
        having = sa.select(t.runs.c.run_uuid).select_from(joined).where(*self.where, column.is_not(None))
        # MySQL cannot index TEXT values: params and tags are sorted whole there, without a bound
        indexed = table is t.latest_metrics and column_name == "value"
        ids = self._sorted_ids(conn, having, column, ascending, limit, offset, bound=indexed, joined=True)
        if len(ids) < limit:  # the page reaches the runs lacking a value
            if ids or offset == 0:
                with_value = offset + len(ids)
            else:
                with_value = int(conn.execute(having.with_only_columns(sa.func.count())).scalar_one())
            present = sa.exists().where(table.c.run_uuid == t.runs.c.run_uuid, table.c.key == key,
                                        table.c[column_name].is_not(None))
            lacking = sa.select(t.runs.c.run_uuid).where(*self.where, sa.not_(present))
            ids += self._sorted_ids(conn, lacking, t.runs.c.start_time, False, limit - len(ids),
                                    max(0, offset - with_value), bound=True)
        return _hydrate(conn, fetch, ids)

    @property
    def _mysql(self) -> bool:
        return self.dialect in ("mysql", "mariadb")

    def _sorted_ids(self, conn: sa.Connection, query: "sa.Select[Any]", lead: Any, ascending: bool,
                    limit: int, offset: int, bound: bool, joined: bool = False) -> list[str]:
        """Return run ids of ``query`` ordered by ``lead`` (never NULL here), then the default tie-breaks.

        MySQL/MariaDB sort every matching row when the ORDER BY spans two tables or mixes directions.
        With ``bound`` (``lead`` is indexed), the value at the page's last position is read there
        first, in index order (a ``joined`` query joined in FROM order), and bounds the rows the full
        ORDER BY then sorts to those of the page and its ties.
        """
        term = lead.asc() if ascending else lead.desc()
        ordered = query.order_by(term, *default_order())
        if bound and self._mysql:
            first = query.with_only_columns(lead)
            if joined:  # STRAIGHT_JOIN also turns off semi-join plans of EXISTS: only where it helps
                first = first.prefix_with("STRAIGHT_JOIN")
            last = conn.execute(first.order_by(term).limit(1).offset(offset + limit - 1)).first()
            if last is not None:
                ordered = ordered.where(lead <= last[0] if ascending else lead >= last[0])
        return [row[0] for row in conn.execute(ordered.limit(limit).offset(offset))]

    def _keyed_sort(self) -> tuple[sa.Table, str, str, bool] | None:
        """Return (table, value column name, key, ascending) when sorting by one metric, param or tag."""
        if len(self.orders) != 1 or not self.keyed:
            return None
        order = self.orders[0]
        # min/max have no index; a join still helps PostgreSQL (top-N sort), SQLite and MariaDB plan
        # it worse than one query with a subquery per run
        if order.entity == "metric" and (order.aggregate is None or self.dialect == "postgresql"):
            column = {None: "value", "min": "min_value", "max": "max_value"}[order.aggregate]
            return t.latest_metrics, column, order.key, order.ascending
        if order.entity in ("param", "tag"):
            return (t.params if order.entity == "param" else t.tags), "value", order.key, order.ascending
        return None


def _hydrate(conn: sa.Connection, fetch: Fetch, ids: list[str]) -> list[Run]:
    """Return the runs with these ids, in this order (a run deleted meanwhile is left out)."""
    found: dict[str, Run] = {}
    for start in range(0, len(ids), _FETCH_CHUNK):
        chunk = ids[start : start + _FETCH_CHUNK]
        found.update((run.info.run_id, run) for run in fetch(conn, sa.select(t.runs).where(t.runs.c.run_uuid.in_(chunk))))
    return [found[run_id] for run_id in ids if run_id in found]
