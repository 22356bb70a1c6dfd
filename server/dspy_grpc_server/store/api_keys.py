"""Stored API keys: public id, name, scopes and a salted hash of the secret — never the secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from dspy_grpc_server.core.errors import NotFound
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.schema import api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    salt: str
    secret_hash: str
    create_time: datetime
    revoke_time: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None


def _record(row: sa.Row) -> ApiKeyRecord:
    return ApiKeyRecord(row.key_id, row.name, tuple(row.scopes), row.salt, row.secret_hash, row.create_time,
                        row.revoke_time)


class ApiKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def insert(self, record: ApiKeyRecord) -> None:
        async with self._db.sessions() as session, session.begin():
            await session.execute(sa.insert(api_keys).values(
                key_id=record.key_id, name=record.name, scopes=list(record.scopes), salt=record.salt,
                secret_hash=record.secret_hash, create_time=record.create_time, revoke_time=record.revoke_time,
            ))

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self._db.sessions() as session:
            row = (await session.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).first()
        return _record(row) if row else None

    async def list(self) -> list[ApiKeyRecord]:
        """Every key, oldest first (revoked ones included)."""

        async with self._db.sessions() as session:
            rows = (await session.execute(
                sa.select(api_keys).order_by(api_keys.c.create_time, api_keys.c.key_id))).all()
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        """Mark the key revoked (idempotent); unknown id -> :class:`NotFound` (``API_KEY_NOT_FOUND``)."""

        async with self._db.sessions() as session, session.begin():
            await session.execute(
                sa.update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoke_time.is_(None))
                .values(revoke_time=datetime.now(UTC))
            )
            row = (await session.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}", reason="API_KEY_NOT_FOUND", metadata={"key_id": key_id})
        return _record(row)
