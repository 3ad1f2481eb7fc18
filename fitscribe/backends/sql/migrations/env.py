"""Alembic environment for fitscribe's SQL store; run through ``fitscribe db upgrade``."""

from __future__ import annotations

from alembic import context

from fitscribe.backends.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
