"""Compile parsed run and experiment filters and orderings (:mod:`fitscribe.search`) to SQLAlchemy.

Every user value becomes a bound parameter. Metrics, params and tags are tested with correlated
``EXISTS`` subqueries on their primary keys ``(run_uuid, key)``, so a run lacking the key never
matches (except ``IS NULL``), as in MLflow. Metric tests read ``latest_metrics``; NaN is stored as
NULL there (so only ``!=`` matches it) and infinities as +-max double (so ordering stays right).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

import sqlalchemy as sa

from fitscribe.entities import ViewType
from fitscribe.errors import InvalidValueError
from fitscribe.search import And, Comparison, Expr, OrderBy, Or

from . import tables as t

__all__ = ["filter_clause", "compile_filter", "keyed_exists", "order_by_clauses", "default_order", "compare",
           "experiment_query"]

_RUN_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": t.runs.c.run_uuid,
    "run_name": t.runs.c.name,
    "status": t.runs.c.status,
    "user_id": t.runs.c.user_id,
    "artifact_uri": t.runs.c.artifact_uri,
    "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "LIKE": lambda column, value: column.like(value),
    "ILIKE": lambda column, value: column.ilike(value),
    "IN": lambda column, value: column.in_(list(value)),
    "NOT IN": lambda column, value: column.not_in(list(value)),
    "IS NULL": lambda column, _: column.is_(None),
    "IS NOT NULL": lambda column, _: column.is_not(None),
}


def compare(column: Any, op: str, value: Any) -> Any:
    """Return ``column <op> value`` as a SQL expression (LIKE is case-sensitive on every database)."""
    build = _OPERATORS.get(op)
    if build is None:
        raise InvalidValueError(f"The comparison {op!r} is not supported.")
    return build(column, value)


def filter_clause(expr: Expr | None) -> Any:
    """Return the WHERE condition on ``runs`` for a parsed filter, or None for no filter."""
    if expr is None:
        return None
    return compile_filter(expr, _run_comparison)


def compile_filter(expr: Expr, leaf: Callable[[Comparison], Any]) -> Any:
    """Return the SQL condition for a filter tree, compiling each comparison with ``leaf``."""
    if isinstance(expr, And):
        return sa.and_(*(compile_filter(item, leaf) for item in expr.items))
    if isinstance(expr, Or):
        return sa.or_(*(compile_filter(item, leaf) for item in expr.items))
    return leaf(expr)


def _run_comparison(cmp: Comparison) -> Any:
    if cmp.entity == "attribute":
        return compare(_RUN_COLUMNS[cmp.key], cmp.op, cmp.value)
    if cmp.entity == "metric":
        return _metric_condition(cmp)
    if cmp.entity in ("param", "tag"):
        table = t.params if cmp.entity == "param" else t.tags
        return keyed_exists(table, table.c.run_uuid == t.runs.c.run_uuid, cmp)
    if cmp.entity == "dataset":
        return _dataset_condition(cmp)
    raise InvalidValueError(f"Runs cannot be filtered on {cmp.entity} {cmp.key!r}.")


def keyed_exists(table: sa.Table, owner: Any, cmp: Comparison, condition: Callable[[], Any] | None = None) -> Any:
    """EXISTS a row of ``table`` (tags, params, metrics) of the owner (``owner`` correlates it) with
    the comparison's key and a ``value`` meeting it (or ``condition()``); NOT EXISTS for IS NULL."""
    base = sa.exists().where(owner, table.c.key == cmp.key)
    if cmp.op == "IS NULL":
        return sa.not_(base)
    if cmp.op == "IS NOT NULL":
        return base
    return base.where(condition() if condition is not None else compare(table.c.value, cmp.op, cmp.value))


def _metric_condition(cmp: Comparison) -> Any:
    lm = t.latest_metrics.c
    column = {None: lm.value, "min": lm.min_value, "max": lm.max_value}[cmp.aggregate]

    def condition() -> Any:
        if cmp.op == "=":
            # a stored +-inf is clamped to +-max double: only a finite point may equal a number
            return sa.and_(column == cmp.value, lm.special == t.SPECIAL_FINITE) if cmp.aggregate is None else column == cmp.value
        if cmp.op == "!=":
            return sa.or_(column != cmp.value, column.is_(None))  # NaN differs from every number
        return compare(column, cmp.op, cmp.value)

    return keyed_exists(t.latest_metrics, lm.run_uuid == t.runs.c.run_uuid, cmp, condition)


def _dataset_condition(cmp: Comparison) -> Any:
    i, d = t.inputs.c, t.datasets.c
    base = sa.exists().where(i.run_uuid == t.runs.c.run_uuid, d.dataset_uuid == i.dataset_uuid)
    if cmp.key == "context":
        it = t.input_tags.c
        return base.where(
            it.run_uuid == i.run_uuid,
            it.dataset_uuid == i.dataset_uuid,
            it.key == "mlflow.data.context",
            compare(it.value, cmp.op, cmp.value),
        )
    column = d.name if cmp.key == "name" else d.digest
    return base.where(compare(column, cmp.op, cmp.value))


def _sort_expression(order: OrderBy) -> Any:
    if order.entity == "attribute":
        return _RUN_COLUMNS[order.key]
    if order.entity == "metric":
        lm = t.latest_metrics.c
        column = {None: lm.value, "min": lm.min_value, "max": lm.max_value}[order.aggregate]
        return sa.select(column).where(lm.run_uuid == t.runs.c.run_uuid, lm.key == order.key).scalar_subquery()
    if order.entity in ("param", "tag"):
        table = t.params if order.entity == "param" else t.tags
        return sa.select(table.c.value).where(table.c.run_uuid == t.runs.c.run_uuid, table.c.key == order.key).scalar_subquery()
    raise InvalidValueError(f"Runs cannot be sorted by {order.entity} {order.key!r}.")


def order_by_clauses(orders: Sequence[OrderBy], dialect: str) -> list[Any]:
    """Return ORDER BY terms: the user's keys with missing values (and NaN) last in both
    directions, then the tie-breaks ``start_time DESC, run_uuid ASC``."""
    terms: list[Any] = []
    for order in orders:
        expr = _sort_expression(order)
        term = expr.asc() if order.ascending else expr.desc()
        if dialect in ("sqlite", "postgresql"):
            terms.append(term.nulls_last())  # one evaluation of a subquery key per row
        else:  # MySQL/MariaDB have no NULLS LAST
            terms += [sa.case((expr.is_(None), 1), else_=0), term]
    return terms + default_order()


def default_order() -> list[Any]:
    """Return the ordering of a search without order_by: newest first, then by run id."""
    return [t.runs.c.start_time.desc(), t.runs.c.run_uuid.asc()]


# -- experiments ---------------------------------------------------------------------------------------
_EXPERIMENT_COLUMNS = {
    "name": t.experiments.c.name,
    "experiment_id": t.experiments.c.experiment_id,
    "creation_time": t.experiments.c.creation_time,
    "last_update_time": t.experiments.c.last_update_time,
}


def experiment_query(
    view: ViewType, filter_string: str | None, order_by: Sequence[str] | None, page_token: str | None
) -> tuple[sa.Select[Any], int]:
    """Return the SELECT on experiments and the offset for one page.

    Raises:
        InvalidValueError: The filter or order_by is malformed or names an unknown field.
    """
    from fitscribe.search import decode_page_token, parse_experiment_filter, parse_order_by

    query = sa.select(t.experiments).where(t.experiments.c.lifecycle_stage.in_(view.stages()))
    expr = parse_experiment_filter(filter_string)
    if expr is not None:
        query = query.where(compile_filter(expr, _experiment_comparison))
    orders: list[Any] = []
    for order in parse_order_by(order_by, experiments=True):
        column = _EXPERIMENT_COLUMNS.get(order.key) if order.entity == "attribute" else None
        if column is None:
            raise InvalidValueError(f"Experiments cannot be sorted by {order.entity} {order.key!r}; use one of: "
                                    f"{', '.join(_EXPERIMENT_COLUMNS)}.")
        orders.append(column.asc() if order.ascending else column.desc())
    if not orders:
        orders.append(t.experiments.c.creation_time.desc())
    orders.append(t.experiments.c.experiment_id.asc())
    return query.order_by(*orders), decode_page_token(page_token)


def _experiment_comparison(cmp: Comparison) -> Any:
    if cmp.entity == "tag":
        et = t.experiment_tags
        return keyed_exists(et, et.c.experiment_id == t.experiments.c.experiment_id, cmp)
    if cmp.entity == "attribute" and cmp.key == "experiment_id":
        ids = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        try:
            numbers = tuple(int(i) for i in ids) if cmp.value is not None else None
        except ValueError:
            raise InvalidValueError(f"Experiment ids are integers written as strings, e.g. '3'; got {cmp.value!r}.") from None
        value = numbers if isinstance(cmp.value, tuple) else (numbers[0] if numbers else None)
        return compare(_EXPERIMENT_COLUMNS["experiment_id"], cmp.op, value)
    if cmp.entity == "attribute" and cmp.key in _EXPERIMENT_COLUMNS:
        return compare(_EXPERIMENT_COLUMNS[cmp.key], cmp.op, cmp.value)
    raise InvalidValueError(
        f"Experiments can be filtered on name, creation_time, last_update_time and tags.<key>, not {cmp.entity} {cmp.key!r}."
    )
