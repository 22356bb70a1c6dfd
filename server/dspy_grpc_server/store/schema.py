"""The relational schema, as SQLAlchemy Core tables.

This module is the *target* of the Alembic migrations in ``store/migrations/versions``: every schema
change is a new migration revision plus the matching edit here (a unit test checks that both agree).

Tables
------
``programs``
    One row per program: its id, timestamps, the current ``etag``, the per-program revision counter
    (``latest_revision``) and the revision callers see by default (``active_revision``).
``program_revisions``
    Immutable snapshots of a program's content (display name, description, labels, spec). The
    primary key ``(program_id, revision)`` guarantees that a revision number is never issued twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned as a timezone-aware UTC ``datetime``.

    SQLite has no time zones, so the value is stored there as naive UTC; PostgreSQL uses
    ``timestamp with time zone``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


programs = sa.Table(
    "programs",
    metadata,
    sa.Column("program_id", sa.String(63), primary_key=True),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("update_time", UTCDateTime(), nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("latest_revision", sa.Integer(), nullable=False),
    sa.Column("active_revision", sa.Integer(), nullable=False),
)

program_revisions = sa.Table(
    "program_revisions",
    metadata,
    sa.Column(
        "program_id",
        sa.String(63),
        sa.ForeignKey("programs.program_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("revision", sa.Integer(), primary_key=True),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
)

# ------------------------------------------------------------------ datasets and jobs (0004)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("input_keys", sa.JSON(), nullable=False),
    sa.Column("example_count", sa.Integer(), nullable=False),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("update_time", UTCDateTime(), nullable=False),
)

dataset_examples = sa.Table(
    "dataset_examples",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(63),
        sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("example_index", sa.Integer(), primary_key=True),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("input_keys", sa.JSON(), nullable=False),
)

#: One row per successful AppendExamples stream: makes a repeated request id a no-op.
dataset_appends = sa.Table(
    "dataset_appends",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(63),
        sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("first_index", sa.Integer(), nullable=False),
    sa.Column("appended_count", sa.Integer(), nullable=False),
)

#: Evaluation and optimization jobs: the request (``spec``), where they are, and the outcome.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("progress", sa.JSON(), nullable=False),
    sa.Column("result", sa.JSON(), nullable=True),
    sa.Column("error", sa.JSON(), nullable=True),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("start_time", UTCDateTime(), nullable=True),
    sa.Column("end_time", UTCDateTime(), nullable=True),
    # Leases (0006): the replica running the job, until when, and the fencing token of its claim.
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lease_expires", UTCDateTime(), nullable=True),
    sa.Column("fence", sa.Integer(), nullable=False, server_default="0"),
    #: Times in a row the job's owner died while running it (a poison job is not resumed again).
    sa.Column("owner_deaths", sa.Integer(), nullable=False, server_default="0"),
    #: The last ``job_results.seq`` given out.
    sa.Column("result_seq", sa.Integer(), nullable=False, server_default="0"),
)

#: Per-example outcomes of a job, keyed by a scope (e.g. the evaluation, or a candidate) and index.
job_results = sa.Table(
    "job_results",
    metadata,
    sa.Column("job_id", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("example_index", sa.Integer(), primary_key=True),
    sa.Column("data", sa.JSON(), nullable=False),
    #: Commit order within the job (0006; NULL for rows written before): what watchers follow.
    sa.Column("seq", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["job_id", "kind"], ["jobs.job_id", "jobs.kind"], ondelete="CASCADE"),
)

#: Candidate programs an optimization evaluated, in proposal order.
job_candidates = sa.Table(
    "job_candidates",
    metadata,
    sa.Column("job_id", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("candidate_index", sa.Integer(), primary_key=True),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["job_id", "kind"], ["jobs.job_id", "jobs.kind"], ondelete="CASCADE"),
)

#: Every LM call a job finished, keyed by a hash of the request: replayed instead of repeated.
job_lm_calls = sa.Table(
    "job_lm_calls",
    metadata,
    sa.Column("job_id", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("call_key", sa.String(64), primary_key=True),
    sa.Column("response", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["job_id", "kind"], ["jobs.job_id", "jobs.kind"], ondelete="CASCADE"),
)

#: API keys for authenticating callers. Only a salted SHA-256 of each key's secret is stored; the
#: ``key_id`` is the public part of the key (``dgk_<key_id>_<secret>``) used to find the row.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("revoke_time", UTCDateTime(), nullable=True),
)

#: LM usage per UTC day, program, API key and model alias (empty strings: inline module / no key).
#: Rows are added to (upserted) by the usage recorder's periodic flush.
usage_ledger = sa.Table(
    "usage_ledger",
    metadata,
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("program_id", sa.String(63), primary_key=True),
    sa.Column("api_key_id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("calls", sa.Integer(), nullable=False),
    sa.Column("cache_hits", sa.Integer(), nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
    sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
    sa.Column("estimated_calls", sa.Integer(), nullable=False),
    sa.Column("cost_usd", sa.Float(), nullable=False),
)

#: Inputs a program keeps failing on (0003): calls with them are refused until an admin clears them.
quarantined_inputs = sa.Table(
    "quarantined_inputs",
    metadata,
    sa.Column(
        "program_id",
        sa.String(63),
        sa.ForeignKey("programs.program_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("input_hash", sa.String(64), primary_key=True),
    sa.Column("inputs", sa.JSON(), nullable=False),
    sa.Column("revision_id", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("failure_count", sa.Integer(), nullable=False),
    sa.Column("create_time", UTCDateTime(), nullable=False),
)

# ------------------------------------------------------------------ shared state across replicas (0007)

#: Recent failures of one input of a program (0007): the quarantine's sliding window, shared by replicas.
quarantine_failures = sa.Table(
    "quarantine_failures",
    metadata,
    sa.Column(
        "program_id",
        sa.String(63),
        sa.ForeignKey("programs.program_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("input_hash", sa.String(64), primary_key=True),
    sa.Column("failure_id", sa.String(32), primary_key=True),
    sa.Column("failure_time", UTCDateTime(), nullable=False),
)

#: Budgets created through BudgetService (0007); budgets from the config file are not stored here.
budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("budget_id", sa.String(63), primary_key=True),
    sa.Column("program_id", sa.String(63), nullable=False),
    sa.Column("api_key_id", sa.String(64), nullable=False),
    sa.Column("period", sa.String(8), nullable=False),
    sa.Column("limit_micros", sa.BigInteger(), nullable=False),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("update_time", UTCDateTime(), nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
)

#: What each budget (stored or configured) spent and holds reserved per period, in micro-dollars.
budget_windows = sa.Table(
    "budget_windows",
    metadata,
    sa.Column("budget_id", sa.String(63), primary_key=True),
    sa.Column("window_start", sa.Date(), primary_key=True),
    sa.Column("spent_micros", sa.BigInteger(), nullable=False),
    sa.Column("reserved_micros", sa.BigInteger(), nullable=False),
)

#: Reservations of calls in flight: released by the replica that made them, or after they expire.
budget_reservations = sa.Table(
    "budget_reservations",
    metadata,
    sa.Column("reservation_id", sa.String(32), primary_key=True),
    sa.Column("budget_id", sa.String(63), nullable=False),
    sa.Column("window_start", sa.Date(), nullable=False),
    sa.Column("amount_micros", sa.BigInteger(), nullable=False),
    sa.Column("expire_time", UTCDateTime(), nullable=False),
)


# ------------------------------------------------------------------ corpora (0009)

#: Corpora of documents (``corpora/{corpus_id}``) with their BM25 settings.
corpora = sa.Table(
    "corpora",
    metadata,
    sa.Column("corpus_id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("bm25", sa.JSON(), nullable=False),
    sa.Column("embedding_model", sa.String(128), nullable=False),
    sa.Column("document_count", sa.Integer(), nullable=False),
    sa.Column("create_time", UTCDateTime(), nullable=False),
    sa.Column("update_time", UTCDateTime(), nullable=False),
)

#: Documents, numbered from 0 in append order, each with the BM25 tokens of its text (and its vector).
corpus_documents = sa.Table(
    "corpus_documents",
    metadata,
    sa.Column(
        "corpus_id",
        sa.String(63),
        sa.ForeignKey("corpora.corpus_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("document_index", sa.Integer(), primary_key=True),
    sa.Column("document_id", sa.String(256), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("doc_metadata", sa.JSON(), nullable=False),
    #: The BM25 tokens, separated by single spaces (a token never holds whitespace).
    sa.Column("tokens", sa.Text(), nullable=False),
    #: float32 little-endian, when the corpus has an embedding model.
    sa.Column("embedding", sa.LargeBinary(), nullable=True),
    sa.UniqueConstraint("corpus_id", "document_id", name="uq_corpus_documents_corpus_id_document_id"),
)

#: One row per successful AppendDocuments stream: makes a repeated request id a no-op.
corpus_appends = sa.Table(
    "corpus_appends",
    metadata,
    sa.Column(
        "corpus_id",
        sa.String(63),
        sa.ForeignKey("corpora.corpus_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("first_index", sa.Integer(), nullable=False),
    sa.Column("appended_count", sa.Integer(), nullable=False),
)
