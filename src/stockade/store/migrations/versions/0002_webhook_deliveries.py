"""The HTTP service's webhook deliveries, now part of the schema.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:20:00.000000

Servers before this revision created ``webhook_deliveries`` on first use
(``CREATE TABLE IF NOT EXISTS``), so a database may already have the table
and its index: each is created only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "webhook_deliveries"
INDEX = "ix_webhook_deliveries_hook"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(TABLE):
        op.create_table(
            TABLE,
            sa.Column("id", SERIAL, autoincrement=True, nullable=False),
            sa.Column("hook", sa.String(length=200), nullable=False),
            sa.Column("delivery_id", sa.String(length=200), nullable=True),
            sa.Column("event", sa.String(length=200), nullable=True),
            sa.Column("outcome", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.String(length=200), nullable=True),
            sa.Column("status", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.String(length=40), nullable=True),
            sa.Column("time", TIME, nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if INDEX not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(TABLE)}:
        op.create_index(INDEX, TABLE, ["hook", "delivery_id"], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
