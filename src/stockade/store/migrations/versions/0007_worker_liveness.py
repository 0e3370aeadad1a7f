"""What tells whether a registered worker still runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:40:00.000000

A worker started with the ``--name`` of a live one took over that worker's
running jobs. A worker row now keeps the host's boot id and its process's
start time (with the host name and pid it had), and the lease its
heartbeats keep to, so a starting worker can tell a live holder of its name
(refused) from a dead one (its jobs recovered at once). Rows written before
this revision have none of them and are judged by their heartbeat.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)
COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "boot_id": sa.String(length=64),
    "pid_start": sa.BigInteger(),
    "lease": TIME,
}


def upgrade() -> None:
    for name, type_ in COLUMNS.items():
        op.add_column("workers", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
