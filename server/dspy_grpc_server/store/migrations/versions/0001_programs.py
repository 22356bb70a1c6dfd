"""Programs and their immutable revisions.

Revision ID: 0001_programs
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001_programs"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("latest_revision", sa.Integer(), nullable=False),
        sa.Column("active_revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", name="pk_programs"),
    )
    op.create_table(
        "program_revisions",
        sa.Column("program_id", sa.String(63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.program_id"],
            name="fk_program_revisions_program_id_programs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "revision", name="pk_program_revisions"),
    )


def downgrade() -> None:
    op.drop_table("program_revisions")
    op.drop_table("programs")
