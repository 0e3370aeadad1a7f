"""Alembic environment: migrations run on the connection stockade hands over."""

from __future__ import annotations

from alembic import context

from stockade.store.migrate import VERSION_TABLE
from stockade.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
