"""Alembic environment: always online, on the connection jobs.upgrade() passes in."""

from __future__ import annotations

from alembic import context

from jobs.db import VERSION_TABLE
from jobs.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the job migrations through jobs.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # Our own version table, so the gateway can keep its own migrations in the same database.
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
