"""An index for counting runs: ``count_runs`` (the UI's experiments page) reads only the index.

``ix_runs_experiment_id_lifecycle_stage`` on ``runs (experiment_id, lifecycle_stage)``.

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


def upgrade() -> None:
    op.create_index("ix_runs_experiment_id_lifecycle_stage", "runs", ["experiment_id", "lifecycle_stage"])


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_id_lifecycle_stage", table_name="runs")
