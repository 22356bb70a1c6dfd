"""The usage ledger: LM calls, tokens and cost per day, program, API key and model.

Revision ID: 0004_usage_ledger
Revises: 0003_api_keys
Create Date: 2025-01-02 00:00:00

(Numbered in the order the issues were planned; it is chained after the newest migration that
existed when it was written. It only adds one table, so its position does not matter.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_usage_ledger"
down_revision: str | None = "0003_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_ledger",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("api_key_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("estimated_calls", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "program_id", "api_key_id", "model", name="pk_usage_ledger"),
    )


def downgrade() -> None:
    op.drop_table("usage_ledger")
