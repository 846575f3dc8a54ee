"""Alembic environment: always online, on the connection gateway.core.database.upgrade() gives."""

from __future__ import annotations

from alembic import context

from gateway.core.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the gateway migrations through gateway.core.database.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="gateway_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
