"""Queues and labels: where a job waits and what worker it needs.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:30:00.000000

A job names a queue (``jobs.queue``, ``default`` for every job before this
revision) and may require worker labels (``jobs.labels``, a JSON object,
``jsonb`` on PostgreSQL for the claim's containment test; NULL: none). A
worker records the queues it serves (NULL: every queue), the labels it
offers and its version. ``ix_jobs_claim_queue`` is the claim order within
one queue, for workers that serve one; like ``ix_jobs_claim`` it holds only
claimable rows (queued, not held by a key or by other jobs: revision 0011).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LABELS = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
WORKER_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "queues": sa.JSON(),
    "labels": sa.JSON(),
    "version": sa.String(length=64),
}


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("queue", sa.String(length=64), nullable=False, server_default="default")
    )
    op.add_column("jobs", sa.Column("labels", LABELS, nullable=True))
    queued = sa.text("state = 'queued' AND run_after < 1000000000000000.0")
    op.create_index(
        "ix_jobs_claim_queue",
        "jobs",
        ["queue", sa.literal_column("priority DESC"), "created_at"],
        unique=False,
        sqlite_where=queued,
        postgresql_where=queued,
    )
    for name, type_ in WORKER_COLUMNS.items():
        op.add_column("workers", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    op.drop_index("ix_jobs_claim_queue", table_name="jobs")
    with op.batch_alter_table("workers") as batch:
        for name in WORKER_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("labels")
        batch.drop_column("queue")
