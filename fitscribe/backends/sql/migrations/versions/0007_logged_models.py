"""MLflow 3 logged models in the tracking database: ``logged_models``, ``logged_model_tags``, ``logged_model_params``.

Before, a tracking server kept them as JSON files in its artifact destination; the server copies
those into these tables the first time it serves logged models (fitscribe/server/logged_models.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.tables import LongText, Str

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", Str(36), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", Str(500), nullable=False),
        sa.Column("artifact_location", LongText, nullable=False),
        sa.Column("creation_timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("lifecycle_stage", Str(32), nullable=False),
        sa.Column("model_type", Str(500), nullable=True),
        sa.Column("source_run_id", Str(32), nullable=True),
        sa.Column("status_message", LongText, nullable=True),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE",
                                name="fk_logged_models_experiment_id_experiments"),
    )
    op.create_index("ix_logged_models_experiment_id_creation_timestamp_ms", "logged_models",
                    ["experiment_id", "creation_timestamp_ms"])
    for table, key, value in (("logged_model_tags", "tag_key", "tag_value"),
                              ("logged_model_params", "param_key", "param_value")):
        op.create_table(
            table,
            sa.Column("model_id", Str(36), nullable=False),
            sa.Column(key, Str(255), nullable=False),
            sa.Column(value, LongText, nullable=False),
            sa.PrimaryKeyConstraint("model_id", key, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE",
                                    name=f"fk_{table}_model_id_logged_models"),
        )


def downgrade() -> None:
    op.drop_table("logged_model_params")
    op.drop_table("logged_model_tags")
    op.drop_table("logged_models")
