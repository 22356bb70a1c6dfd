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

Leases: a replica runs a job only after claiming it (:meth:`JobStore.claim`, a compare-and-swap on
the job's ``fence`` that works on SQLite and PostgreSQL alike), which makes it the ``owner`` until
``lease_expires`` and hands it a :class:`Lease` carrying the new fencing token. The holder renews the
lease (:meth:`JobStore.renew`); once it expires any replica may claim the job. Every write a job
makes -- progress, results, candidates, LM calls, the final state, its program revision -- runs in a
transaction that first checks the token on the job row (and so locks that row until commit): a
stale holder's write raises :class:`LeaseLost` and changes nothing. On PostgreSQL each such
transaction also announces the job on the change feed (topic ``job``, see :mod:`.changes`; a
``NOTIFY`` delivered at commit), which watchers and the owner on every replica listen to.
"""

from __future__ import annotations

import asyncio
import functools
import json

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dspy_grpc_server.core.errors import AlreadyExists, FailedPrecondition, NotFound, invalid
from dspy_grpc_server.store.changes import CHANNEL
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.programs import _translated_errors
from dspy_grpc_server.store.schema import job_candidates, job_lm_calls, job_results, jobs

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
UNFINISHED = (QUEUED, RUNNING)

#: The change-feed topic of a job (key ``<kind>/<job_id>``; see :mod:`.changes`).
JOB_TOPIC = "job"
#: The origin job announcements carry: the store, not any one replica, so every replica hears them.
_ANNOUNCER = "jobs"
#: Reason of a job not resumed again because its owner kept dying while running it.
JOB_QUARANTINED = "JOB_QUARANTINED"


@dataclass(frozen=True)
class Lease:
    """The right to run one job: held by ``owner`` as long as the job's fence is still ``fence``."""

    kind: str
    job_id: str
    owner: str
    fence: int


class LeaseLost(Exception):
    """The job is no longer this holder's (taken over, cancelled or finished): stop, write nothing."""


@dataclass(frozen=True)
class Claimable:
    """An unfinished job nobody holds a live lease on (as read by :meth:`JobStore.claimable`)."""

    kind: str
    job_id: str
    fence: int


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
    owner: str | None = None
    owner_deaths: int = 0
    fence: int = 0

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED


def _now() -> datetime:
    return datetime.now(UTC)


def _record(row: Any) -> JobRecord:
    return JobRecord(
        kind=row.kind, job_id=row.job_id, state=row.state, spec=row.spec, progress=row.progress or {},
        result=row.result, error=row.error, create_time=row.create_time, start_time=row.start_time,
        end_time=row.end_time, owner=row.owner, owner_deaths=row.owner_deaths, fence=row.fence,
    )


async def _insert_ignoring_duplicates(session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(table).on_conflict_do_nothing(), list(rows))


async def _announce(session: AsyncSession, kind: str, job_id: str) -> None:
    """Tell every replica (at commit) that the job changed: a change-feed message sent by PostgreSQL
    ``NOTIFY`` inside the writing transaction. Nothing on SQLite: the job host tells its own process,
    and the processes of one ``serve`` over the host change feed (see :attr:`JobStore.announces_changes`)."""

    if session.bind.dialect.name == "postgresql":
        payload = json.dumps({"o": _ANNOUNCER, "t": JOB_TOPIC, "k": f"{kind}/{job_id}"}, separators=(",", ":"))
        await session.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


async def _fenced(session: AsyncSession, lease: Lease, *, reserve_results: int = 0) -> int:
    """Inside a write transaction: check that ``lease`` still holds, locking the job row until commit
    (so a claim by another replica waits for this write, or this write sees the claim). Reserves
    ``reserve_results`` result sequence numbers; returns the last one. Raises :class:`LeaseLost`."""

    row = (
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.kind == lease.kind, jobs.c.job_id == lease.job_id, jobs.c.fence == lease.fence,
                   jobs.c.owner == lease.owner, jobs.c.state == RUNNING)
            .values(result_seq=jobs.c.result_seq + reserve_results)
            .returning(jobs.c.result_seq)
        )
    ).one_or_none()
    if row is None:
        raise LeaseLost(f"{lease.kind}s/{lease.job_id}")
    await _announce(session, lease.kind, lease.job_id)
    return int(row.result_seq)


def _whole(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A write that, when its caller is cancelled, still runs to its end (commit or rollback) before
    the cancellation goes on: a transaction cut off half-way could keep its connection -- and on
    SQLite the database's write lock -- busy."""

    @functools.wraps(method)
    async def whole(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.ensure_future(method(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.gather(task, return_exceptions=True)
            raise

    return whole


#: A check run inside another store's write transaction (e.g. a program revision written by a job).
Guard = Callable[[AsyncSession], Awaitable[None]]


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        return self._db

    @property
    def announces_changes(self) -> bool:
        """Whether writes announce the job on the change feed themselves (PostgreSQL's NOTIFY)."""

        return self._db.dialect == "postgresql"

    @staticmethod
    def guard(lease: Lease) -> Guard:
        """A guard refusing (with :class:`LeaseLost`) a write made in another store by a stale holder."""

        async def check(session: AsyncSession) -> None:
            await _fenced(session, lease)

        return check

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

    @_whole
    async def cancel(self, kind: str, job_id: str) -> bool:
        """Move a queued or running job to CANCELLED, whoever holds it (its owner stops when it sees
        the change); False if it had already finished."""

        values = {"state": CANCELLED, "end_time": _now(), "owner": None, "lease_expires": None}
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            changed = await session.execute(
                sa.update(jobs)
                .where(jobs.c.kind == kind, jobs.c.job_id == job_id, jobs.c.state.in_(UNFINISHED))
                .values(**values)
            )
            if changed.rowcount == 1:
                await _announce(session, kind, job_id)
            return changed.rowcount == 1

    @_whole
    async def finish(
        self, lease: Lease, *, to: str, result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None, progress: Mapping[str, Any] | None = None,
    ) -> None:
        """The holder ends the job (SUCCEEDED or FAILED) and gives up its lease; :class:`LeaseLost`
        if it no longer holds it (nothing is written then)."""

        values: dict[str, Any] = {"state": to, "end_time": _now(), "owner": None, "lease_expires": None,
                                  "owner_deaths": 0}
        if result is not None:
            values["result"] = dict(result)
        if error is not None:
            values["error"] = dict(error)
        if progress is not None:
            values["progress"] = dict(progress)
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _fenced(session, lease)
            await session.execute(
                sa.update(jobs).where(jobs.c.kind == lease.kind, jobs.c.job_id == lease.job_id).values(**values)
            )

    @_whole
    async def save_progress(self, lease: Lease, progress: Mapping[str, Any]) -> None:
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _fenced(session, lease)
            await session.execute(
                sa.update(jobs).where(jobs.c.kind == lease.kind, jobs.c.job_id == lease.job_id)
                .values(progress=dict(progress))
            )

    # ---------------------------------------------------------------- leases

    async def claimable(self, *, now: datetime | None = None, include_live: bool = False) -> list[Claimable]:
        """Unfinished jobs that nobody holds a live lease on (with ``include_live``, every unfinished
        job: what a single-process SQLite server resumes at start), oldest first."""

        query = sa.select(jobs.c.kind, jobs.c.job_id, jobs.c.fence).where(jobs.c.state.in_(UNFINISHED))
        if not include_live:
            query = query.where(sa.or_(jobs.c.owner.is_(None), jobs.c.lease_expires < (now or _now())))
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query.order_by(jobs.c.create_time))).all()
        return [Claimable(row.kind, row.job_id, row.fence) for row in rows]

    @_whole
    async def claim(
        self, job: Claimable, *, owner: str, lease_s: float, max_owner_deaths: int, include_live: bool = False,
    ) -> Lease | JobRecord | None:
        """Take the job if it is still as :meth:`claimable` saw it (compare-and-swap on its fence).

        Returns the new :class:`Lease`; or, when its owner has now died ``max_owner_deaths`` times in
        a row while running it (0: never), the job record after ending it FAILED with reason
        ``JOB_QUARANTINED``; or None when another replica changed it first."""

        now = _now()
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            query = sa.select(jobs.c.state, jobs.c.owner, jobs.c.lease_expires, jobs.c.owner_deaths).where(
                jobs.c.kind == job.kind, jobs.c.job_id == job.job_id, jobs.c.fence == job.fence,
                jobs.c.state.in_(UNFINISHED),
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = (await session.execute(query)).one_or_none()
            if row is None:
                return None
            held = row.owner is not None and row.lease_expires is not None and row.lease_expires >= now
            if held and not include_live:
                return None
            # An owner recorded on a running job that nobody released: that owner died running it.
            deaths = row.owner_deaths + (1 if row.owner is not None and row.state == RUNNING else 0)
            values: dict[str, Any] = {"fence": job.fence + 1, "owner_deaths": deaths}
            quarantined = 0 < max_owner_deaths <= deaths
            if quarantined:
                values.update(
                    state=FAILED, end_time=now, owner=None, lease_expires=None,
                    error={"error_class": "FailedPrecondition", "reason": JOB_QUARANTINED,
                           "message": f"not resumed again: its server died {deaths} times in a row while running "
                                      "it; retry it explicitly (JobAdminService.RetryJob) once the cause is fixed"},
                )
            else:
                values.update(state=RUNNING, owner=owner, lease_expires=now + timedelta(seconds=lease_s),
                              start_time=sa.func.coalesce(jobs.c.start_time, now))
            swapped = await session.execute(
                sa.update(jobs).where(jobs.c.kind == job.kind, jobs.c.job_id == job.job_id,
                                      jobs.c.fence == job.fence).values(**values)
            )
            if swapped.rowcount != 1:
                return None
            await _announce(session, job.kind, job.job_id)
        if quarantined:
            return await self.get(job.kind, job.job_id)
        return Lease(job.kind, job.job_id, owner, job.fence + 1)

    @_whole
    async def renew(self, lease: Lease, lease_s: float) -> bool:
        """Extend the lease; False when it no longer holds (the holder must stop)."""

        async with _translated_errors(), self._db.sessions() as session, session.begin():
            changed = await session.execute(
                sa.update(jobs)
                .where(jobs.c.kind == lease.kind, jobs.c.job_id == lease.job_id, jobs.c.fence == lease.fence,
                       jobs.c.owner == lease.owner, jobs.c.state == RUNNING)
                .values(lease_expires=_now() + timedelta(seconds=lease_s))
            )
            return changed.rowcount == 1

    @_whole
    async def release(self, lease: Lease) -> None:
        """Give the job back unfinished (a graceful stop): any replica may claim it at once, and
        this stop does not count as a death of its owner."""

        async with _translated_errors(), self._db.sessions() as session, session.begin():
            changed = await session.execute(
                sa.update(jobs)
                .where(jobs.c.kind == lease.kind, jobs.c.job_id == lease.job_id, jobs.c.fence == lease.fence,
                       jobs.c.owner == lease.owner)
                .values(owner=None, lease_expires=None, owner_deaths=0)
            )
            if changed.rowcount == 1:
                await _announce(session, lease.kind, lease.job_id)

    async def quarantined(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[JobRecord], str]:
        """Jobs ended FAILED with reason JOB_QUARANTINED, newest first."""

        size = normalize_page_size(page_size)
        after = decode_page_token(page_token, "quarantined-jobs")
        query = sa.select(jobs).where(jobs.c.state == FAILED, jobs.c.owner_deaths > 0)
        if after is not None:
            if not (isinstance(after, list) and len(after) == 3 and all(isinstance(x, str) for x in after)):
                raise invalid("page_token", "is not a page token returned by this listing")
            query = query.where(sa.tuple_(jobs.c.kind, jobs.c.job_id) > sa.tuple_(after[1], after[2]))
        query = query.order_by(jobs.c.kind, jobs.c.job_id)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [r for r in (_record(row) for row in rows) if (r.error or {}).get("reason") == JOB_QUARANTINED]
        page = records[:size]
        token = ""
        if len(records) > size:
            token = encode_page_token("quarantined-jobs", ["", page[-1].kind, page[-1].job_id])
        return page, token

    @_whole
    async def retry(self, kind: str, job_id: str) -> JobRecord:
        """Queue a quarantined job again (its owner-death count starts over); FailedPrecondition for
        any other job."""

        await self.get(kind, job_id)
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            row = (await session.execute(
                sa.select(jobs.c.state, jobs.c.error, jobs.c.fence).where(jobs.c.kind == kind, jobs.c.job_id == job_id)
            )).one()
            if row.state != FAILED or (row.error or {}).get("reason") != JOB_QUARANTINED:
                raise FailedPrecondition(
                    f"'{kind}s/{job_id}' is not quarantined (state {row.state})", reason="JOB_NOT_QUARANTINED",
                    metadata={"name": f"{kind}s/{job_id}"},
                )
            await session.execute(
                sa.update(jobs).where(jobs.c.kind == kind, jobs.c.job_id == job_id, jobs.c.fence == row.fence)
                .values(state=QUEUED, error=None, end_time=None, owner=None, lease_expires=None, owner_deaths=0,
                        fence=row.fence + 1)
            )
            await _announce(session, kind, job_id)
        return await self.get(kind, job_id)

    # ---------------------------------------------------------------- per-example results

    @_whole
    async def put_results(self, lease: Lease, scope: str, results: Mapping[int, Mapping[str, Any]]) -> None:
        """Store results (first write wins), numbered in commit order (``seq``) for watchers."""

        async with _translated_errors(), self._db.sessions() as session, session.begin():
            have = set((await session.execute(
                sa.select(job_results.c.example_index).where(
                    job_results.c.kind == lease.kind, job_results.c.job_id == lease.job_id,
                    job_results.c.scope == scope, job_results.c.example_index.in_(list(results)))
            )).scalars())
            fresh = {index: data for index, data in results.items() if index not in have}
            last = await _fenced(session, lease, reserve_results=len(fresh))
            first = last - len(fresh) + 1
            rows = [
                {"job_id": lease.job_id, "kind": lease.kind, "scope": scope, "example_index": index,
                 "data": dict(data), "seq": first + offset}
                for offset, (index, data) in enumerate(sorted(fresh.items()))
            ]
            await _insert_ignoring_duplicates(session, job_results, rows)

    async def results_since(
        self, kind: str, job_id: str, scope: str, after_seq: int
    ) -> list[tuple[int, int, dict[str, Any]]]:
        """Results committed after sequence number ``after_seq``: (seq, example_index, data), in order."""

        query = sa.select(job_results.c.seq, job_results.c.example_index, job_results.c.data).where(
            job_results.c.kind == kind, job_results.c.job_id == job_id, job_results.c.scope == scope,
            job_results.c.seq > after_seq,
        ).order_by(job_results.c.seq)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [(row.seq, row.example_index, row.data) for row in rows]

    async def last_result_seq(self, kind: str, job_id: str) -> int:
        async with _translated_errors(), self._db.sessions() as session:
            value = (await session.execute(
                sa.select(jobs.c.result_seq).where(jobs.c.kind == kind, jobs.c.job_id == job_id)
            )).scalar_one_or_none()
        return int(value or 0)

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

    @_whole
    async def put_candidate(self, lease: Lease, index: int, data: Mapping[str, Any]) -> None:
        row = {"job_id": lease.job_id, "kind": lease.kind, "candidate_index": index, "data": dict(data)}
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _fenced(session, lease)
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

    @_whole
    async def put_lm_calls(self, lease: Lease, calls: Mapping[str, Mapping[str, Any]]) -> None:
        rows = [
            {"job_id": lease.job_id, "kind": lease.kind, "call_key": key, "response": dict(response)}
            for key, response in calls.items()
        ]
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            await _fenced(session, lease)
            await _insert_ignoring_duplicates(session, job_lm_calls, rows)
