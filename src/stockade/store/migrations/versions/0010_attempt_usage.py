"""What an attempt used, as columns the metrics aggregate.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:50:00.000000

Every attempt's result record holds its ``usage`` (JSON); ``/metrics``
histograms per task read two of its figures on every scrape. Read out of the
JSON they cost 40 times the duration histogram on SQLite (0.5 s for 20,000
attempts; 0.06 s from columns), so the finish writes them as columns too:
``cpu_seconds`` (user + system) and ``memory_bytes`` (the cgroup's peak where
measured, else the largest resident set). Attempts recorded before this
revision have NULL in both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attempts", sa.Column("cpu_seconds", sa.Float(precision=53), nullable=True))
    op.add_column("attempts", sa.Column("memory_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("memory_bytes")
        batch.drop_column("cpu_seconds")
