"""Initial schema: experiments, runs, params, tags, metrics with latest/min/max, datasets.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.tables import BigId, Double, LongText, Str

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", Str(500), nullable=False),
        sa.Column("artifact_location", LongText, nullable=False),
        sa.Column("lifecycle_stage", Str(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE",
            name="fk_experiment_tags_experiment_id_experiments",
        ),
    )
    op.create_table(
        "runs",
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", Str(250), nullable=True),
        sa.Column("user_id", Str(256), nullable=False),
        sa.Column("status", Str(20), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("lifecycle_stage", Str(32), nullable=False),
        sa.Column("deleted_time", sa.BigInteger, nullable=True),
        sa.Column("artifact_uri", LongText, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE",
            name="fk_runs_experiment_id_experiments",
        ),
    )
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    for name in ("tags", "params"):
        op.create_table(
            name,
            sa.Column("run_uuid", Str(32), nullable=False),
            sa.Column("key", Str(250), nullable=False),
            sa.Column("value", LongText, nullable=False),
            sa.PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{name}"),
            sa.ForeignKeyConstraint(
                ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name=f"fk_{name}_run_uuid_runs"
            ),
        )
    op.create_table(
        "metrics",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", Double, nullable=True),
        sa.Column("special", sa.SmallInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_metrics_run_uuid_runs"
        ),
    )
    op.create_index("ix_metrics_run_uuid_key_step", "metrics", ["run_uuid", "key", "step", "timestamp"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", Double, nullable=True),
        sa.Column("special", sa.SmallInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("min_value", Double, nullable=True),
        sa.Column("max_value", Double, nullable=True),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_latest_metrics_run_uuid_runs"
        ),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", Str(32), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", Str(500), nullable=False),
        sa.Column("digest", Str(36), nullable=False),
        sa.Column("source_type", Str(36), nullable=False),
        sa.Column("source", LongText, nullable=False),
        sa.Column("schema", LongText, nullable=True),
        sa.Column("profile", LongText, nullable=True),
        sa.PrimaryKeyConstraint("dataset_uuid", name="pk_datasets"),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_id_name_digest"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE",
            name="fk_datasets_experiment_id_experiments",
        ),
    )
    op.create_table(
        "inputs",
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("dataset_uuid", Str(32), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "dataset_uuid", name="pk_inputs"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_inputs_run_uuid_runs"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_uuid"], ["datasets.dataset_uuid"], ondelete="CASCADE",
            name="fk_inputs_dataset_uuid_datasets",
        ),
    )
    op.create_table(
        "input_tags",
        sa.Column("run_uuid", Str(32), nullable=False),
        sa.Column("dataset_uuid", Str(32), nullable=False),
        sa.Column("key", Str(255), nullable=False),
        sa.Column("value", Str(500), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "dataset_uuid", "key", name="pk_input_tags"),
        sa.ForeignKeyConstraint(
            ["run_uuid", "dataset_uuid"], ["inputs.run_uuid", "inputs.dataset_uuid"],
            ondelete="CASCADE", name="fk_input_tags_run_uuid_inputs",
        ),
    )
    op.create_table(
        "journals",
        sa.Column("journal_id", Str(64), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("journal_id", name="pk_journals"),
    )


def downgrade() -> None:
    for name in (
        "journals", "input_tags", "inputs", "datasets", "latest_metrics", "metrics", "params", "tags", "runs",
        "experiment_tags", "experiments",
    ):
        op.drop_table(name)
