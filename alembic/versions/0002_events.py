"""events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:15:40.490514
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retracted_by", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_events_symbol_session", ["symbol", "session"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_symbol_session")
        batch_op.drop_index("ix_events_created")

    op.drop_table("events")
