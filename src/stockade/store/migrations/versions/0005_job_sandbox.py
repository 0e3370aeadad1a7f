"""A job's sandbox travels with it; a worker says which sandboxes it runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:40:00.000000

``jobs.sandbox_need`` holds the backend the job's task declares, as one bit
(0: none declared, the claiming worker's default), so a claim can take only
the jobs its worker can run as declared. Jobs queued before this revision
keep 0: they were submitted without the requirement and run as before.
``workers.sandboxes`` lists the backends a worker offers, so a queued job
that no live worker can run can say why it waits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("sandbox_need", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("workers", sa.Column("sandboxes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("sandboxes")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("sandbox_need")
