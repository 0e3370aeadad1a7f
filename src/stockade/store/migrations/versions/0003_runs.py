"""Pipeline runs in the store: the ``runs`` and ``run_tests`` tables, and the
columns that tie a job to its run, step and item.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:30:00.000000

Jobs submitted on their own keep ``run_id`` NULL; the columns are nullable
so the upgrade touches no existing row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Float(precision=53)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("tests", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source_run", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_created", "runs", ["created_at"], unique=False)
    op.create_table(
        "run_tests",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("package", sa.String(length=500), nullable=False),
        sa.Column("test", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("elapsed", TIME, nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_tests_run", "run_tests", ["run_id", "status"], unique=False)
    op.add_column("jobs", sa.Column("run_id", sa.String(length=40), nullable=True))
    op.add_column("jobs", sa.Column("step", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("item", sa.String(length=500), nullable=True))
    op.create_index("ix_jobs_run", "jobs", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_run", table_name="jobs")
    op.drop_column("jobs", "item")
    op.drop_column("jobs", "step")
    op.drop_column("jobs", "run_id")
    op.drop_index("ix_run_tests_run", table_name="run_tests")
    op.drop_table("run_tests")
    op.drop_index("ix_runs_created", table_name="runs")
    op.drop_table("runs")
