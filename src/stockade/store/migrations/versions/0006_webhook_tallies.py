"""Webhook deliveries counted in ``webhook_tallies``; unverified ones sampled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:40:00.000000

Anyone can post to a webhook, and every post that failed its signature
check wrote a row of ``webhook_deliveries``: unauthenticated, unbounded
writes. Deliveries are now counted per hook and outcome here, and only a
capped sample of the unverified ones keeps a row, marked ``verified`` false
(rows recorded before: those refused with 401 or 503, which is where the
signature check refused them). The counts start from the rows already
recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "webhook_tallies"
DELIVERIES = "webhook_deliveries"
INDEX = "ix_webhook_deliveries_unverified"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("hook", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hook", "outcome"),
    )
    op.execute(
        f"INSERT INTO {TABLE} (hook, outcome, count) "
        f"SELECT hook, outcome, COUNT(*) FROM {DELIVERIES} GROUP BY hook, outcome"
    )
    op.add_column(
        DELIVERIES,
        sa.Column("verified", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.execute(
        sa.text(f"UPDATE {DELIVERIES} SET verified = :no WHERE status IN (401, 503)").bindparams(
            no=False
        )
    )
    where = sa.text("NOT verified")
    op.create_index(
        INDEX, DELIVERIES, ["hook", "id"], unique=False, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name=DELIVERIES)
    with op.batch_alter_table(DELIVERIES) as batch:
        batch.drop_column("verified")
    op.drop_table(TABLE)
