"""The model registry's audit trail: ``registry_audit``, one row per registry change.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.tables import BigId, LongText, Str

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_audit",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("user_id", Str(256), nullable=True),
        sa.Column("action", Str(40), nullable=False),
        sa.Column("name", Str(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("key", Str(256), nullable=True),
        sa.Column("old_value", LongText, nullable=True),
        sa.Column("new_value", LongText, nullable=True),
        sa.Column("comment", LongText, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_registry_audit"),
    )
    op.create_index("ix_registry_audit_name_version_id", "registry_audit", ["name", "version", "id"])


def downgrade() -> None:
    op.drop_index("ix_registry_audit_name_version_id", table_name="registry_audit")
    op.drop_table("registry_audit")
