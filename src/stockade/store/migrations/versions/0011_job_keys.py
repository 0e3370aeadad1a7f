"""Concurrency keys, unique keys and dependencies across submits.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:30:00.000000

Jobs get the columns of :mod:`stockade.store.gates`: a concurrency key and
its limit, a unique key and while it holds, the jobs a job waits on (and
whether any outcome will do), whether it still waits on them, and whether
some job waits on it. ``job_deps`` lists each dependency, found by the job
that ends. Jobs stored before this revision have none of these. The claim index
leaves out held jobs (``run_after`` at 1e15), so that jobs waiting on a key
or on other jobs are never walked past by a claim.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("concurrency_key", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("concurrency_limit", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("unique_key", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("unique_while", sa.String(8), nullable=True))
    op.add_column("jobs", sa.Column("after_ids", sa.Text(), nullable=True))
    for name in ("after_any", "deps_pending", "followers"):
        op.add_column(
            "jobs", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    keyed = sa.text("concurrency_key IS NOT NULL")
    op.create_index(
        "ix_jobs_concurrency", "jobs", ["concurrency_key", "created_at"],
        sqlite_where=keyed, postgresql_where=keyed,
    )  # fmt: skip
    unique = sa.text("unique_key IS NOT NULL")
    op.create_index(
        "ix_jobs_unique", "jobs", ["unique_key"], sqlite_where=unique, postgresql_where=unique
    )
    op.create_table(
        "job_deps",
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("after_id", sa.String(40), primary_key=True),
    )
    op.create_index("ix_job_deps_after", "job_deps", ["after_id"])
    _claim_index("state = 'queued' AND run_after < 1000000000000000.0")


def _claim_index(where: str) -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_claim", "jobs", [sa.literal_column("priority DESC"), "created_at"],
        unique=False, sqlite_where=sa.text(where), postgresql_where=sa.text(where),
    )  # fmt: skip


def downgrade() -> None:
    _claim_index("state = 'queued'")
    op.drop_index("ix_job_deps_after", table_name="job_deps")
    op.drop_table("job_deps")
    op.drop_index("ix_jobs_unique", table_name="jobs")
    op.drop_index("ix_jobs_concurrency", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "followers", "deps_pending", "after_any", "after_ids", "unique_while", "unique_key",
            "concurrency_limit", "concurrency_key",
        ):  # fmt: skip
            batch.drop_column(name)
