"""Model registry: registered models, model versions, their tags, and aliases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.tables import LongText, Str

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CASCADE = {"ondelete": "CASCADE", "onupdate": "CASCADE"}


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", Str(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", LongText, nullable=True),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_registered_models"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("name", Str(256), nullable=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name="pk_registered_model_tags"),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_registered_model_tags_name_registered_models", **_CASCADE
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", Str(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", LongText, nullable=True),
        sa.Column("user_id", Str(256), nullable=True),
        sa.Column("current_stage", Str(20), nullable=False),
        sa.Column("source", LongText, nullable=False),
        sa.Column("run_id", Str(64), nullable=True),
        sa.Column("run_link", LongText, nullable=True),
        sa.Column("status", Str(20), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_model_versions_name_registered_models", **_CASCADE
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("name", Str(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "key", name="pk_model_version_tags"),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["model_versions.name", "model_versions.version"],
            name="fk_model_version_tags_name_model_versions", **_CASCADE,
        ),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("name", Str(256), nullable=False),
        sa.Column("alias", Str(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_registered_model_aliases"),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["model_versions.name", "model_versions.version"],
            name="fk_registered_model_aliases_name_model_versions", **_CASCADE,
        ),
    )
    op.create_index(
        "ix_registered_model_aliases_name_version", "registered_model_aliases", ["name", "version"]
    )


def downgrade() -> None:
    for name in (
        "registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(name)
