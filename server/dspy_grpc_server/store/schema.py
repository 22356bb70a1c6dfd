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
