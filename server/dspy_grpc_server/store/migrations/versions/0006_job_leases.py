"""Leased jobs: an owner, a lease expiry and a fencing token per job; ordered per-job results.

Revision ID: 0006_job_leases
Revises: 0007_shared_state (written as 0006 in parallel with 0007; chained after it when merged)
Create Date: 2026-12-06 00:00:00

``owner`` is the replica running the job (NULL when none), ``lease_expires`` when another replica
may take it over, ``fence`` the token every write of the holder is checked against (raised by each
claim), ``owner_deaths`` how many times in a row its owner died while running it (poison jobs), and
``result_seq`` the last sequence number given to one of its results (``job_results.seq``: the order
results were committed, which watchers on any replica follow).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_job_leases"
down_revision: str | None = "0007_shared_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("owner", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("owner_deaths", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("result_seq", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("job_results", sa.Column("seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_results") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("jobs") as batch:
        for column in ("result_seq", "owner_deaths", "fence", "lease_expires", "owner"):
            batch.drop_column(column)
