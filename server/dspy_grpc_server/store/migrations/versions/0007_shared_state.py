"""State shared by server replicas: quarantine failure windows, budgets, their spend and reservations.

Revision ID: 0007_shared_state
Revises: 0005_quarantine
Create Date: 2026-12-06 00:00:00

(Numbered in the order the issues were planned; chained after the newest migration that existed
when it was written. It only adds tables.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_shared_state"
down_revision: str | None = "0005_quarantine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantine_failures",
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("failure_id", sa.String(32), nullable=False),
        sa.Column("failure_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.program_id"],
            name="fk_quarantine_failures_program_id_programs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "input_hash", "failure_id", name="pk_quarantine_failures"),
    )
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(63), nullable=False),
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("api_key_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name="pk_budgets"),
    )
    op.create_table(
        "budget_windows",
        sa.Column("budget_id", sa.String(63), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
        sa.Column("reserved_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "window_start", name="pk_budget_windows"),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("reservation_id", sa.String(32), nullable=False),
        sa.Column("budget_id", sa.String(63), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", name="pk_budget_reservations"),
    )


def downgrade() -> None:
    op.drop_table("budget_reservations")
    op.drop_table("budget_windows")
    op.drop_table("budgets")
    op.drop_table("quarantine_failures")
