"""A forced cancel: kill a running job now, without its grace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:50:00.000000

``stockade cancel --force`` (or a second cancel of a job already being
stopped) sets ``cancel_forced`` next to ``cancel_requested``; the job's
worker then SIGKILLs the job's whole tree at once instead of waiting out
its ``kill_grace``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("cancel_forced", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cancel_forced")
