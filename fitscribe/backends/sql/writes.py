"""Kept for one caller outside the store (tests/test_journal.py's ``_insert_points`` helper):
``Writer(dialect).metric_points(sqlalchemy_connection, batches)``. The store's one writer is
writer.py; delete this module once that helper uses it (``writer.Writer(SaConnection(...))``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .chunks import Batch
from .connection import SaConnection
from .statements import statements_for
from .writer import Writer as _Writer

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Writer"]


class Writer:
    """``metric_points`` of the one writer on a SQLAlchemy connection of ``dialect``."""

    def __init__(self, dialect: str) -> None:
        self._statements = statements_for(dialect)

    def metric_points(self, conn: sa.Connection, batches: Sequence[Batch]) -> None:
        """Append points and fold them into latest/min/max (writer.Writer.metric_points)."""
        _Writer(SaConnection(conn, self._statements)).metric_points(batches)
