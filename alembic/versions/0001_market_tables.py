"""market tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:06:16.756436
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "poll_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_runs")),
    )
    op.create_table(
        "symbols",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_symbols")),
    )
    op.create_table(
        "daily_bars",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("open", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("volume", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("instrument", sa.String(length=32), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["symbol"],
            ["symbols.symbol"],
            name=op.f("fk_daily_bars_symbol_symbols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("symbol", "session", name=op.f("pk_daily_bars")),
    )
    op.create_table(
        "poll_results",
        sa.Column("poll_run_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("instrument", sa.String(length=32), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("revised", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["poll_run_id"],
            ["poll_runs.id"],
            name=op.f("fk_poll_results_poll_run_id_poll_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_run_id", "symbol", name=op.f("pk_poll_results")),
    )


def downgrade() -> None:

    op.drop_table("poll_results")
    op.drop_table("daily_bars")
    op.drop_table("symbols")
    op.drop_table("poll_runs")
