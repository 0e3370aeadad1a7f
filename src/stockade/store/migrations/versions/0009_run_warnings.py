"""Warnings of a pipeline run: problems that did not fail it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:30:00.000000

A slot's sandbox that could not be taken down at the end of a run (a mount
left, a cgroup that would not go) no longer goes unsaid: the run records
each such problem as a line of ``runs.warnings`` (a JSON list; ``NULL``
for none), and ``stockade runs`` shows them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("warnings")
