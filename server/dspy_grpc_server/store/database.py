"""Opening the database: engine, session factory and schema migrations.

Two back ends are supported:

* SQLite through ``aiosqlite`` (the embedded default), e.g. ``sqlite+aiosqlite:///var/dspy-grpc.db``.
  The parent directory is created if missing; every connection runs in WAL mode (synchronous
  NORMAL) with foreign keys enforced and a busy timeout, so concurrent writers wait for each other instead of failing at once.
  ``sqlite+aiosqlite://`` (no path) or ``:memory:`` gives a private in-memory database.
* PostgreSQL through ``asyncpg``, e.g. ``postgresql+asyncpg://user:pass@host/db``.

URLs without a driver (``sqlite:///x.db``, ``postgresql://...``, ``postgres://...``) are given the
async driver automatically. :meth:`Database.open` brings the schema to the newest Alembic revision
before returning, so an application never talks to an outdated schema; running it again on an
up-to-date database changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from ..core.errors import Unavailable

logger = logging.getLogger(__name__)

#: The Alembic environment shipped inside the package (works from an installed wheel).
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: How long (milliseconds) an SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Seconds to wait for a PostgreSQL connection before the call fails with UNAVAILABLE.
PG_CONNECT_TIMEOUT_S = 5.0

#: PostgreSQL ends a session that sits this long (ms) inside a transaction without sending anything:
#: a replica frozen mid-transaction (a long pause, a partition) would otherwise keep its row locks --
#: e.g. on a job another replica must take over -- for as long as its connection lives. Our
#: transactions never wait on anything but the database, so a healthy replica never comes near it.
PG_IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000

# Arbitrary constant key for pg_advisory_xact_lock: serialises migrations of concurrently
# starting server replicas that share one PostgreSQL database.
_PG_MIGRATION_LOCK_KEY = 0x6473_7079_6772_7063  # "dspygrpc"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and make sure it names an async driver we support.

    Raises ``ValueError`` for other databases (this is a configuration error, found at start-up).
    """

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite+aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        if parsed.drivername != "postgresql+asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
        )
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this package."""

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the store ships at least one migration"
    return head


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (not a bug in a query)."""

    if isinstance(error, (OSError, TimeoutError, ConnectionError)):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error, InterfaceError):
            return True
        text = str(error.orig).lower() if error.orig is not None else ""
        if isinstance(error, OperationalError) and any(
            hint in text for hint in ("locked", "unable to open", "connection", "terminat", "shutting down")
        ):
            return True
        orig = error.orig
        return isinstance(getattr(orig, "__cause__", None), (OSError, ConnectionError))
    name = type(error).__name__
    return name in ("CannotConnectNowError", "ConnectionDoesNotExistError", "InterfaceError",
                    "ConnectionFailureError", "AdminShutdownError")


def describe(error: BaseException) -> str:
    """A short, password-free description of a connection failure."""

    orig = getattr(error, "orig", None) or error
    text = str(orig).splitlines()[0] if str(orig) else ""
    return f"{type(orig).__name__}: {text}"[:200] if text else type(orig).__name__


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still survives a killed process (a commit is in the WAL before it
        # returns); only an OS crash or power loss can drop the newest commits. It spares an fsync
        # per commit, which durable jobs (one group commit per batch of LM calls) pay constantly.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


class Database:
    """An open database: the async engine plus :attr:`sessions`, a session factory.

    Create it with :meth:`Database.open` and release it with :meth:`close`. Stores share one
    ``Database`` and open a short session (one transaction) per operation::

        db = await Database.open("sqlite+aiosqlite:///data/dspy-grpc.db")
        async with db.sessions() as session, session.begin():
            ...
        await db.close()
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[AsyncSession]:
        """A session (objects stay usable after commit). When the database cannot be reached, or the
        connection breaks, the error becomes :class:`Unavailable` (reason ``DATABASE_UNAVAILABLE``):
        the caller may retry, and the pool reconnects by itself once the database is back."""

        try:
            async with self._sessions() as session:
                yield session
        except Unavailable:
            raise
        except Exception as error:
            if not is_unreachable(error):
                raise
            logger.warning("database unreachable: %s", describe(error))
            raise Unavailable(
                f"the database is unreachable ({describe(error)}); retry later",
                reason="DATABASE_UNAVAILABLE", metadata={"backend": self.dialect}, retry_after=1.0,
            ) from error

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""

        return self.engine.dialect.name

    @classmethod
    async def open(cls, url: str | URL, *, migrate: bool = True, echo: bool = False) -> Database:
        """Connect to ``url`` and (unless ``migrate=False``) migrate the schema to the newest revision.

        For an SQLite file the parent directory is created first. Raises ``ValueError`` for an
        unsupported URL; connection and migration errors propagate after the engine is disposed.
        """

        parsed = normalize_url(url)
        options: dict[str, Any] = {"echo": echo}
        if parsed.get_backend_name() == "sqlite":
            if _is_sqlite_memory(parsed):
                # One shared connection, or every checkout would see a different empty database.
                options["poolclass"] = StaticPool
            else:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            options["pool_pre_ping"] = True
            # Fail fast (UNAVAILABLE) when the server cannot be reached rather than hang for a minute.
            options["connect_args"] = {
                "timeout": PG_CONNECT_TIMEOUT_S,
                "server_settings": {"idle_in_transaction_session_timeout": str(PG_IDLE_IN_TRANSACTION_TIMEOUT_MS)},
            }

        engine = create_async_engine(parsed, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _configure_sqlite)

        database = cls(engine)
        if migrate:
            try:
                await database.migrate()
            except BaseException:
                await engine.dispose()
                raise
        return database

    async def migrate(self) -> None:
        """Apply every pending Alembic migration (a no-op when the schema is already at head)."""

        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)
        logger.info("database schema at revision %s", await self.schema_revision())

    async def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or ``None`` before the first migration."""

        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def close(self) -> None:
        """Close every pooled connection. The object must not be used afterwards."""

        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
