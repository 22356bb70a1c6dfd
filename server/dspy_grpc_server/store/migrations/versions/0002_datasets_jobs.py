"""Datasets of examples; evaluation and optimization jobs with their persisted progress.

Revision ID: 0002_datasets_jobs
Revises: 0001_programs
Create Date: 2026-11-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_datasets_jobs"
down_revision: str | None = "0001_programs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOB_FK = dict(refcolumns=["jobs.job_id", "jobs.kind"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.String(63), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("input_keys", sa.JSON(), nullable=False),
        sa.Column("example_count", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_datasets"),
    )
    op.create_table(
        "dataset_examples",
        sa.Column("dataset_id", sa.String(63), nullable=False),
        sa.Column("example_index", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("input_keys", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.dataset_id"],
            name="fk_dataset_examples_dataset_id_datasets", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "example_index", name="pk_dataset_examples"),
    )
    op.create_table(
        "dataset_appends",
        sa.Column("dataset_id", sa.String(63), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("first_index", sa.Integer(), nullable=False),
        sa.Column("appended_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.dataset_id"],
            name="fk_dataset_appends_dataset_id_datasets", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "request_id", name="pk_dataset_appends"),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "kind", name="pk_jobs"),
    )
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("example_index", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id", "kind"], name="fk_job_results_job_id_jobs", **_JOB_FK),
        sa.PrimaryKeyConstraint("job_id", "kind", "scope", "example_index", name="pk_job_results"),
    )
    op.create_table(
        "job_candidates",
        sa.Column("job_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("candidate_index", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id", "kind"], name="fk_job_candidates_job_id_jobs", **_JOB_FK),
        sa.PrimaryKeyConstraint("job_id", "kind", "candidate_index", name="pk_job_candidates"),
    )
    op.create_table(
        "job_lm_calls",
        sa.Column("job_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("call_key", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id", "kind"], name="fk_job_lm_calls_job_id_jobs", **_JOB_FK),
        sa.PrimaryKeyConstraint("job_id", "kind", "call_key", name="pk_job_lm_calls"),
    )


def downgrade() -> None:
    for table in ("job_lm_calls", "job_candidates", "job_results", "jobs",
                  "dataset_appends", "dataset_examples", "datasets"):
        op.drop_table(table)
