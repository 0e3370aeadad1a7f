"""Index only the jobs that have a worker or a run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:20:00.000000

``ix_jobs_worker`` and ``ix_jobs_run`` held an entry for every job, most of
them NULL: a queued or finished job has no worker, a job submitted on its
own no run. A state change cannot update a job in place (the state is
indexed), so each of a job's three writes (submit, claim, end) added an
entry to both. Every query through them names a value, which no NULL
matches, so they now hold only the jobs with one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {"ix_jobs_worker": "worker_id", "ix_jobs_run": "run_id"}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="jobs")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name, "jobs", [column], unique=False, sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="jobs")
        op.create_index(name, "jobs", [column], unique=False)
