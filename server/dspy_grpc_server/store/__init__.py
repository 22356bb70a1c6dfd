"""Persistence: SQLAlchemy 2 async on SQLite (aiosqlite) or PostgreSQL (asyncpg), migrated by Alembic.

* :class:`Database` -- open a URL, migrate to the newest schema, hand out sessions.
* :class:`ProgramStore` / :class:`ProgramRecord` -- programs with immutable revisions.
* :mod:`~dspy_grpc_server.store.paging` -- page-size and page-token rules shared by every listing.
"""

from __future__ import annotations

from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.programs import ProgramRecord, ProgramStore

__all__ = ["Database", "ProgramRecord", "ProgramStore"]
