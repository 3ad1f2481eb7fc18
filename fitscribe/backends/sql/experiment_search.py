"""Experiment search: a filter on ``name``, ``creation_time``, ``last_update_time`` and ``tags.<key>``.

Uses the run filter grammar of :mod:`fitscribe.search` (``name LIKE 'exp%' AND tags.team = 'x'``).
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from fitscribe.entities import ViewType
from fitscribe.errors import InvalidValueError

from . import tables as t
from .search import compile_filter, compare

__all__ = ["experiment_query"]

_ATTRS = {
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
        query = query.where(compile_filter(expr, _condition))
    orders: list[Any] = []
    for order in parse_order_by(order_by, experiments=True):
        column = _column(order.entity, order.key)
        orders.append(column.asc() if order.ascending else column.desc())
    if not orders:
        orders.append(t.experiments.c.creation_time.desc())
    orders.append(t.experiments.c.experiment_id.asc())
    return query.order_by(*orders), decode_page_token(page_token)


def _column(entity: str, key: str) -> Any:
    if entity == "attribute" and key in _ATTRS:
        return _ATTRS[key]
    known = ", ".join(_ATTRS)
    raise InvalidValueError(f"Experiments cannot be sorted by {entity} {key!r}; use one of: {known}.")


def _condition(cmp: Any) -> Any:
    if cmp.entity == "tag":
        et = t.experiment_tags.c
        base = sa.exists().where(et.experiment_id == t.experiments.c.experiment_id, et.key == cmp.key)
        if cmp.op == "IS NULL":
            return sa.not_(base)
        if cmp.op == "IS NOT NULL":
            return base
        return base.where(compare(et.value, cmp.op, cmp.value))
    if cmp.entity == "attribute" and cmp.key == "experiment_id":
        ids = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        try:
            numbers = tuple(int(i) for i in ids) if cmp.value is not None else None
        except ValueError:
            raise InvalidValueError(f"Experiment ids are integers written as strings, e.g. '3'; got {cmp.value!r}.") from None
        value = numbers if isinstance(cmp.value, tuple) else (numbers[0] if numbers else None)
        return compare(_ATTRS["experiment_id"], cmp.op, value)
    if cmp.entity == "attribute" and cmp.key in _ATTRS:
        return compare(_ATTRS[cmp.key], cmp.op, cmp.value)
    raise InvalidValueError(
        f"Experiments can be filtered on name, creation_time, last_update_time and tags.<key>, not {cmp.entity} {cmp.key!r}."
    )


