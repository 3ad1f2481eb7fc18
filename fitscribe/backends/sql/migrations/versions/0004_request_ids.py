"""Request ids of applied log-batch requests, so a retried request is not applied twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fitscribe.backends.sql.tables import Str

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_ids",
        sa.Column("request_id", Str(64), nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_request_ids"),
    )
    op.create_index("ix_request_ids_created_time", "request_ids", ["created_time"])


def downgrade() -> None:
    op.drop_index("ix_request_ids_created_time", table_name="request_ids")
    op.drop_table("request_ids")
