"""Quarantined program inputs: stored so that a poison input stays refused across restarts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dspy_grpc_server.core.errors import invalid
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.schema import quarantine_failures, quarantined_inputs


@dataclass(frozen=True)
class QuarantineRecord:
    program_id: str
    input_hash: str
    inputs: Mapping[str, Any]
    revision_id: str
    reason: str
    message: str
    failure_count: int
    create_time: datetime


def _record(row: sa.Row[Any]) -> QuarantineRecord:
    create_time = row.create_time if row.create_time.tzinfo else row.create_time.replace(tzinfo=UTC)
    return QuarantineRecord(row.program_id, row.input_hash, dict(row.inputs), row.revision_id, row.reason,
                            row.message, row.failure_count, create_time)


class QuarantineStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, record: QuarantineRecord) -> None:
        """Store (or refresh) a quarantined input. A program deleted meanwhile is ignored."""

        values = dict(
            inputs=dict(record.inputs), revision_id=record.revision_id, reason=record.reason[:64],
            message=record.message, failure_count=record.failure_count, create_time=record.create_time,
        )
        async with self._db.sessions() as session, session.begin():
            updated = await session.execute(
                sa.update(quarantined_inputs)
                .where(quarantined_inputs.c.program_id == record.program_id,
                       quarantined_inputs.c.input_hash == record.input_hash)
                .values(**values)
            )
            if updated.rowcount == 0:
                try:
                    async with session.begin_nested():
                        await session.execute(sa.insert(quarantined_inputs).values(
                            program_id=record.program_id, input_hash=record.input_hash, **values))
                except IntegrityError:
                    pass  # the program is gone (or another writer won): nothing to keep
            await session.execute(sa.delete(quarantine_failures).where(
                quarantine_failures.c.program_id == record.program_id,
                quarantine_failures.c.input_hash == record.input_hash))

    async def count_failure(self, program_id: str, input_hash: str, *, now: datetime, window_s: float) -> int:
        """Record one failure of an input and return how many it had within the last ``window_s``
        seconds, this one included (every replica counts into the same window). A program deleted
        meanwhile counts 0."""

        key = sa.and_(quarantine_failures.c.program_id == program_id, quarantine_failures.c.input_hash == input_hash)
        async with self._db.sessions() as session, session.begin():
            await session.execute(sa.delete(quarantine_failures).where(
                key, quarantine_failures.c.failure_time < now - timedelta(seconds=window_s)))
            try:
                async with session.begin_nested():
                    await session.execute(sa.insert(quarantine_failures).values(
                        program_id=program_id, input_hash=input_hash, failure_id=secrets.token_hex(16),
                        failure_time=now))
            except IntegrityError:
                return 0
            count = (await session.execute(sa.select(sa.func.count()).where(key))).scalar_one()
        return int(count)

    async def hashes(self, program_id: str) -> set[str]:
        """The quarantined input hashes of a program."""

        query = sa.select(quarantined_inputs.c.input_hash).where(quarantined_inputs.c.program_id == program_id)
        async with self._db.sessions() as session:
            return set((await session.execute(query)).scalars())

    async def list(self, program_id: str | None, *, page_size: int = 0, page_token: str = ""
                   ) -> tuple[list[QuarantineRecord], str]:
        """One page, newest first; all programs' when ``program_id`` is None."""

        size = normalize_page_size(page_size)
        scope = f"quarantine/{program_id or '*'}"
        offset = decode_page_token(page_token, scope) or 0
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise invalid("page_token", "is not a page token returned by this listing")
        query = sa.select(quarantined_inputs)
        if program_id is not None:
            query = query.where(quarantined_inputs.c.program_id == program_id)
        query = query.order_by(
            quarantined_inputs.c.create_time.desc(), quarantined_inputs.c.program_id, quarantined_inputs.c.input_hash
        ).offset(offset).limit(size + 1)
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [_record(row) for row in rows[:size]]
        return records, encode_page_token(scope, offset + size) if len(rows) > size else ""

    async def clear(self, program_id: str, input_hash: str | None = None) -> int:
        """Remove one quarantined input, or all of the program's; returns how many were removed."""

        condition = quarantined_inputs.c.program_id == program_id
        failures = quarantine_failures.c.program_id == program_id
        if input_hash is not None:
            condition = sa.and_(condition, quarantined_inputs.c.input_hash == input_hash)
            failures = sa.and_(failures, quarantine_failures.c.input_hash == input_hash)
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(sa.delete(quarantined_inputs).where(condition))
            await session.execute(sa.delete(quarantine_failures).where(failures))
        return int(result.rowcount or 0)


def now() -> datetime:
    return datetime.now(UTC)
