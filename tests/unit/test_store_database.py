"""Opening databases: URL handling, SQLite connection settings and Alembic migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from dspy_grpc_server.store.database import Database, head_revision, normalize_url
from dspy_grpc_server.store.schema import metadata



def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_open_creates_the_parent_directory_and_migrates_to_head(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "store.db"
    db = await Database.open(_sqlite_url(path))
    try:
        assert path.exists()
        assert await db.schema_revision() == head_revision()
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"programs", "program_revisions", "alembic_version"} <= tables
    finally:
        await db.close()


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = await Database.open(_sqlite_url(tmp_path / "store.db"))
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() > 0
    finally:
        await db.close()


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "store.db")
    first = await Database.open(url)
    async with first.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO programs (program_id, create_time, update_time, etag, latest_revision,"
                " active_revision) VALUES ('kept', '2025-01-01 00:00:00', '2025-01-01 00:00:00',"
                " 'e', 1, 1)"
            )
        )
    await first.migrate()  # again, on the same engine
    await first.close()

    second = await Database.open(url)  # and again, from a fresh engine
    try:
        async with second.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            kept = (await conn.execute(text("SELECT program_id FROM programs"))).scalars().all()
        assert [row[0] for row in versions] == [head_revision()]
        assert kept == ["kept"]
    finally:
        await second.close()


async def test_migrations_produce_exactly_the_declared_schema(tmp_path: Path) -> None:
    db = await Database.open(_sqlite_url(tmp_path / "store.db"))
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
        assert diff == []
    finally:
        await db.close()


async def test_open_without_migrating_leaves_the_schema_alone(tmp_path: Path) -> None:
    db = await Database.open(_sqlite_url(tmp_path / "store.db"), migrate=False)
    try:
        assert await db.schema_revision() is None
    finally:
        await db.close()


async def test_in_memory_sqlite_keeps_one_database_across_sessions() -> None:
    db = await Database.open("sqlite+aiosqlite://")
    try:
        assert await db.schema_revision() == head_revision()
        async with db.sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM programs"))).scalar() == 0
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_the_async_driver(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_unsupported_databases_are_rejected_without_leaking_passwords() -> None:
    with pytest.raises(ValueError) as caught:
        normalize_url("mysql://user:secret@host/db")
    assert "secret" not in str(caught.value)


async def test_postgres_migrations_are_idempotent(postgres_url: str) -> None:
    first = await Database.open(postgres_url)
    await first.close()
    second = await Database.open(postgres_url)
    try:
        assert second.dialect == "postgresql"
        assert await second.schema_revision() == head_revision()
        async with second.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
        assert diff == []
    finally:
        await second.close()
