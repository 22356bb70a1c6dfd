"""Quarantined program inputs.

Revision ID: 0005_quarantine
Revises: 0004_usage_ledger
Create Date: 2025-01-03 00:00:00

(Numbered in the order the issues were planned; chained after the newest migration that existed
when it was written. It only adds one table.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_quarantine"
down_revision: str | None = "0004_usage_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_inputs",
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("revision_id", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.program_id"],
            name="fk_quarantined_inputs_program_id_programs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "input_hash", name="pk_quarantined_inputs"),
    )


def downgrade() -> None:
    op.drop_table("quarantined_inputs")
