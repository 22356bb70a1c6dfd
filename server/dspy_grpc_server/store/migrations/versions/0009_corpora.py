"""Corpora of documents with stored BM25 tokens and (optionally) embedding vectors.

Revision ID: 0009_corpora
Revises: 0006_job_leases
Create Date: 2025-01-07 00:00:00

(Numbered in the order the issues were planned; chained after the newest migration that existed
when it was written. It only adds tables.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_corpora"
down_revision: str | None = "0006_job_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corpora",
        sa.Column("corpus_id", sa.String(63), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("bm25", sa.JSON(), nullable=False),
        sa.Column("embedding_model", sa.String(128), nullable=False),
        sa.Column("document_count", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("corpus_id", name="pk_corpora"),
    )
    op.create_table(
        "corpus_documents",
        sa.Column("corpus_id", sa.String(63), nullable=False),
        sa.Column("document_index", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("doc_metadata", sa.JSON(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["corpus_id"], ["corpora.corpus_id"], name="fk_corpus_documents_corpus_id_corpora", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("corpus_id", "document_index", name="pk_corpus_documents"),
        sa.UniqueConstraint("corpus_id", "document_id", name="uq_corpus_documents_corpus_id_document_id"),
    )
    op.create_table(
        "corpus_appends",
        sa.Column("corpus_id", sa.String(63), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("first_index", sa.Integer(), nullable=False),
        sa.Column("appended_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["corpus_id"], ["corpora.corpus_id"], name="fk_corpus_appends_corpus_id_corpora", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("corpus_id", "request_id", name="pk_corpus_appends"),
    )


def downgrade() -> None:
    op.drop_table("corpus_appends")
    op.drop_table("corpus_documents")
    op.drop_table("corpora")
