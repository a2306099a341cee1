"""poll_runs: the progress of a running poll (done of total symbols, added, failed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("symbols_total", "symbols_done", "sessions_added", "symbols_failed")


def upgrade() -> None:
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
