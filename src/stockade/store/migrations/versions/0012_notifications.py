"""The outbox of job-end notifications; an index of when jobs ended.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 14:30:00.000000

A job whose frozen spec has ``notify`` entries gets one ``notifications``
row per entry its end matches, written in the transaction that records the
end; workers claim the due rows (a lease and a token) and send them, so a
crash loses none and no two senders hold one row at a time.

``ix_jobs_finished`` serves the dashboard's chart of the last hour's ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)
IN_FLIGHT = "state IN ('pending', 'sending')"
FINISHED = "finished_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due", TIME, nullable=False),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_expires", TIME, nullable=True),
        sa.Column("token", sa.String(length=32), nullable=True),
        sa.Column("history", sa.JSON(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_job", "notifications", ["job_id", "id"], unique=False)
    op.create_index(
        "ix_notifications_due", "notifications", ["due"], unique=False,
        sqlite_where=sa.text(IN_FLIGHT), postgresql_where=sa.text(IN_FLIGHT),
    )  # fmt: skip
    op.create_index(
        "ix_jobs_finished", "jobs", ["finished_at"], unique=False,
        sqlite_where=sa.text(FINISHED), postgresql_where=sa.text(FINISHED),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_jobs_finished", table_name="jobs")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_job", table_name="notifications")
    op.drop_table("notifications")
