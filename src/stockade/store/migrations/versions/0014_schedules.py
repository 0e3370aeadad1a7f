"""Cron schedules and store-wide settings (the retention policy).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:30:00.000000

``schedules`` holds each schedule of the config with the job its ticks
submit and ``next_at``, the first tick not submitted yet: a pass submits a
tick and moves ``next_at`` on in one transaction, conditioned on the value
it read, so a tick is submitted once however many processes race.
``settings`` holds values the config sets for every process of a store
(``retention``), so that a worker started without the config applies them.
Retention finds the jobs it deletes, oldest end first, by
``ix_jobs_finished`` (revision 0012).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("catch_up", sa.String(length=8), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("next_at", _Time, nullable=False),
        sa.Column("last_at", _Time, nullable=True),
        sa.Column("last_job", sa.String(length=40), nullable=True),
        sa.Column("skipped", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_schedules_next", "schedules", ["next_at"], unique=False)
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_schedules_next", table_name="schedules")
    op.drop_table("schedules")
