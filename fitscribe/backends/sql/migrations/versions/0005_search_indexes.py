"""Indexes for searching large experiments: metric min/max sorts and run counts.

``ix_latest_metrics_key_min_value`` and ``ix_latest_metrics_key_max_value`` let a search sorted by
``min(metrics.x)`` or ``max(metrics.x)`` read runs in index order with its LIMIT, as
``ix_latest_metrics_key_value`` does for the last value; ``ix_runs_experiment_id_lifecycle_stage``
makes ``count_runs`` an index-only count.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = [
    ("ix_latest_metrics_key_min_value", "latest_metrics", ["key", "min_value"]),
    ("ix_latest_metrics_key_max_value", "latest_metrics", ["key", "max_value"]),
    ("ix_runs_experiment_id_lifecycle_stage", "runs", ["experiment_id", "lifecycle_stage"]),
]


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
