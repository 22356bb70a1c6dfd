"""Durable jobs (evaluations, optimizations) and everything they finish along the way.

A job row holds the request (``spec``, plain JSON owned by the app layer), its ``state``, a
``progress`` snapshot, and once finished a ``result`` or an ``error``. Next to it, written as the
job goes and never rewritten:

* results -- per-example outcomes, keyed by ``(scope, example_index)``;
* candidates -- candidate programs of an optimization, keyed by their index;
* LM calls -- every finished LM call, keyed by a hash of the request, so that a resumed job
  replays it instead of calling the LM again.

Writing a key that already exists keeps the first value (a resumed job may finish the same thing
twice; the first write wins, so nothing is duplicated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dspy_grpc_server.core.errors import AlreadyExists, NotFound, invalid
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.programs import _translated_errors
from dspy_grpc_server.store.schema import job_candidates, job_lm_calls, job_results, jobs

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
UNFINISHED = (QUEUED, RUNNING)


@dataclass(frozen=True)
class JobRecord:
    kind: str
    job_id: str
    state: str
    spec: Mapping[str, Any]
    progress: Mapping[str, Any]
    result: Mapping[str, Any] | None
    error: Mapping[str, Any] | None
    create_time: datetime
    start_time: datetime | None
    end_time: datetime | None

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED


def _now() -> datetime:
    return datetime.now(UTC)


def _record(row: Any) -> JobRecord:
    return JobRecord(
        kind=row.kind, job_id=row.job_id, state=row.state, spec=row.spec, progress=row.progress or {},
        result=row.result, error=row.error, create_time=row.create_time, start_time=row.start_time,
        end_time=row.end_time,
    )


async def _insert_ignoring_duplicates(session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(table).on_conflict_do_nothing(), list(rows))


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---------------------------------------------------------------- jobs

    async def create(self, kind: str, job_id: str, spec: Mapping[str, Any], progress: Mapping[str, Any]) -> JobRecord:
        now = _now()
        async with _translated_errors(), self._db.sessions() as session:
            try:
                async with session.begin():
                    await session.execute(
                        sa.insert(jobs).values(
                            job_id=job_id, kind=kind, state=QUEUED, spec=dict(spec), progress=dict(progress),
                            create_time=now,
                        )
                    )
            except IntegrityError:
                raise AlreadyExists(
                    f"'{kind}s/{job_id}' already exists", reason="JOB_EXISTS", metadata={"name": f"{kind}s/{job_id}"}
                ) from None
        return JobRecord(kind, job_id, QUEUED, dict(spec), dict(progress), None, None, now, None, None)

    async def get(self, kind: str, job_id: str) -> JobRecord:
        async with _translated_errors(), self._db.sessions() as session:
            row = (
                await session.execute(sa.select(jobs).where(jobs.c.kind == kind, jobs.c.job_id == job_id))
            ).one_or_none()
        if row is None:
            raise NotFound(
                f"'{kind}s/{job_id}' not found", reason=f"{kind.upper()}_NOT_FOUND", metadata={"name": f"{kind}s/{job_id}"}
            )
        return _record(row)

    async def list(self, kind: str, *, page_size: int = 0, page_token: str = "") -> tuple[list[JobRecord], str]:
        """Newest first."""

        size = normalize_page_size(page_size)
        scope = f"{kind}s"
        after = decode_page_token(page_token, scope)
        query = sa.select(jobs).where(jobs.c.kind == kind)
        if after is not None:
            if not (isinstance(after, list) and len(after) == 2 and all(isinstance(x, str) for x in after)):
                raise invalid("page_token", "is not a page token returned by this listing")
            when = datetime.fromisoformat(after[0])
            query = query.where(
                sa.or_(jobs.c.create_time < when, sa.and_(jobs.c.create_time == when, jobs.c.job_id < after[1]))
            )
        query = query.order_by(jobs.c.create_time.desc(), jobs.c.job_id.desc()).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [_record(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            last = records[-1]
            token = encode_page_token(scope, [last.create_time.isoformat(), last.job_id])
        return records, token

    async def unfinished(self) -> list[JobRecord]:
        """Jobs that were queued or running (e.g. when the server last stopped), oldest first."""

        async with _translated_errors(), self._db.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(jobs).where(jobs.c.state.in_(UNFINISHED)).order_by(jobs.c.create_time)
                )
            ).all()
        return [_record(row) for row in rows]

    async def transition(
        self, kind: str, job_id: str, *, to: str, when: Iterable[str], result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None, progress: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move the job to state ``to`` if it is in one of ``when``; False if it was not."""

        values: dict[str, Any] = {"state": to}
        if to == RUNNING:
            values["start_time"] = _now()
        elif to not in UNFINISHED:
            values["end_time"] = _now()
        if result is not None:
            values["result"] = dict(result)
        if error is not None:
            values["error"] = dict(error)
        if progress is not None:
            values["progress"] = dict(progress)
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            changed = await session.execute(
                sa.update(jobs)
                .where(jobs.c.kind == kind, jobs.c.job_id == job_id, jobs.c.state.in_(list(when)))
                .values(**values)
            )
            return changed.rowcount == 1

    async def save_progress(self, kind: str, job_id: str, progress: Mapping[str, Any]) -> None:
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await session.execute(
                sa.update(jobs).where(jobs.c.kind == kind, jobs.c.job_id == job_id).values(progress=dict(progress))
            )

    # ---------------------------------------------------------------- per-example results

    async def put_results(self, kind: str, job_id: str, scope: str, results: Mapping[int, Mapping[str, Any]]) -> None:
        rows = [
            {"job_id": job_id, "kind": kind, "scope": scope, "example_index": index, "data": dict(data)}
            for index, data in results.items()
        ]
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _insert_ignoring_duplicates(session, job_results, rows)

    async def results(self, kind: str, job_id: str, scope: str) -> dict[int, dict[str, Any]]:
        query = sa.select(job_results.c.example_index, job_results.c.data).where(
            job_results.c.kind == kind, job_results.c.job_id == job_id, job_results.c.scope == scope
        )
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return {row.example_index: row.data for row in rows}

    async def results_page(
        self, kind: str, job_id: str, scope: str, *, page_size: int, page_token: str, after: int | None = None
    ) -> tuple[list[tuple[int, dict[str, Any]]], str]:
        size = normalize_page_size(page_size)
        token_scope = f"{kind}s/{job_id}/results"
        cursor = decode_page_token(page_token, token_scope)
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)):
            raise invalid("page_token", "is not a page token returned by this listing")
        if cursor is None:
            cursor = after
        query = sa.select(job_results.c.example_index, job_results.c.data).where(
            job_results.c.kind == kind, job_results.c.job_id == job_id, job_results.c.scope == scope
        )
        if cursor is not None:
            query = query.where(job_results.c.example_index > cursor)
        query = query.order_by(job_results.c.example_index).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [(row.example_index, row.data) for row in rows[:size]]
        return items, encode_page_token(token_scope, items[-1][0]) if len(rows) > size else ""

    # ---------------------------------------------------------------- candidates

    async def put_candidate(self, kind: str, job_id: str, index: int, data: Mapping[str, Any]) -> None:
        row = {"job_id": job_id, "kind": kind, "candidate_index": index, "data": dict(data)}
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _insert_ignoring_duplicates(session, job_candidates, [row])

    async def candidates_page(
        self, kind: str, job_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[tuple[int, dict[str, Any]]], str]:
        size = normalize_page_size(page_size)
        token_scope = f"{kind}s/{job_id}/candidates"
        cursor = decode_page_token(page_token, token_scope)
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)):
            raise invalid("page_token", "is not a page token returned by this listing")
        query = sa.select(job_candidates.c.candidate_index, job_candidates.c.data).where(
            job_candidates.c.kind == kind, job_candidates.c.job_id == job_id
        )
        if cursor is not None:
            query = query.where(job_candidates.c.candidate_index > cursor)
        query = query.order_by(job_candidates.c.candidate_index).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [(row.candidate_index, row.data) for row in rows[:size]]
        return items, encode_page_token(token_scope, items[-1][0]) if len(rows) > size else ""

    # ---------------------------------------------------------------- LM calls

    async def lm_calls(self, kind: str, job_id: str) -> dict[str, dict[str, Any]]:
        query = sa.select(job_lm_calls.c.call_key, job_lm_calls.c.response).where(
            job_lm_calls.c.kind == kind, job_lm_calls.c.job_id == job_id
        )
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return {row.call_key: row.response for row in rows}

    async def put_lm_calls(self, kind: str, job_id: str, calls: Mapping[str, Mapping[str, Any]]) -> None:
        rows = [
            {"job_id": job_id, "kind": kind, "call_key": key, "response": dict(response)}
            for key, response in calls.items()
        ]
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _insert_ignoring_duplicates(session, job_lm_calls, rows)
