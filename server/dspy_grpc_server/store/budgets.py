"""Budgets and their spend, shared by every replica of the server, in integer micro-dollars.

Tables (migration 0007): ``budgets`` holds the budgets created through the API (those in the config
file are not stored); ``budget_windows`` holds, per budget and period window (the UTC day, the first
day of the UTC month, or 1970-01-01 for ``total``), what was spent and what calls in flight hold
reserved; ``budget_reservations`` lists those reservations, each with an expiry.

A call is admitted by :meth:`BudgetStore.reserve`: one conditional ``UPDATE`` that adds the call's
estimated cost to ``reserved_micros`` only while ``spent + reserved`` is below the limit and leaves
room for the estimate -- atomic on PostgreSQL (row lock) and on SQLite (one writer), so replicas can
never admit more than the budget holds in reservations. :meth:`BudgetStore.settle` moves the
reservation into ``spent_micros`` with the real cost. A reservation whose replica died is released by
:meth:`BudgetStore.release_expired` (any replica runs it periodically).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core.errors import Aborted, AlreadyExists, NotFound, invalid
from ..core.money import usd_to_micros
from .database import Database
from .paging import decode_page_token, encode_page_token, normalize_page_size
from .schema import budget_reservations, budget_windows, budgets, usage_ledger

#: The window of ``total`` budgets.
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class BudgetRecord:
    budget_id: str
    program_id: str
    api_key_id: str
    period: str
    limit_micros: int
    create_time: datetime
    update_time: datetime
    etag: str


@dataclass(frozen=True)
class WindowSpend:
    spent_micros: int
    reserved_micros: int


def _record(row: Any) -> BudgetRecord:
    return BudgetRecord(row.budget_id, row.program_id, row.api_key_id, row.period, int(row.limit_micros),
                        row.create_time, row.update_time, row.etag)


def _now() -> datetime:
    return datetime.now(UTC)


class BudgetStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: Windows this process knows exist (their rows are only ever removed with their budget).
        self._windows: set[tuple[str, date]] = set()

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(table)

    # ------------------------------------------------------------------ budgets as resources

    async def create(self, budget_id: str, *, program_id: str, api_key_id: str, period: str,
                     limit_micros: int) -> BudgetRecord:
        now = _now()
        values = dict(budget_id=budget_id, program_id=program_id, api_key_id=api_key_id, period=period,
                      limit_micros=limit_micros, create_time=now, update_time=now, etag=secrets.token_hex(10))
        try:
            async with self._db.sessions() as session, session.begin():
                await session.execute(sa.insert(budgets).values(**values))
                # A re-created id starts from what its subject spent (the ledger), not from old windows.
                await session.execute(sa.delete(budget_windows).where(budget_windows.c.budget_id == budget_id))
        except IntegrityError:
            raise AlreadyExists(f"budgets/{budget_id} already exists", reason="BUDGET_ALREADY_EXISTS",
                                metadata={"budget_id": budget_id}) from None
        return BudgetRecord(**values)

    async def get(self, budget_id: str) -> BudgetRecord:
        async with self._db.sessions() as session:
            row = (await session.execute(sa.select(budgets).where(budgets.c.budget_id == budget_id))).first()
        if row is None:
            raise _not_found(budget_id)
        return _record(row)

    async def list_all(self) -> list[BudgetRecord]:
        async with self._db.sessions() as session:
            rows = (await session.execute(sa.select(budgets).order_by(budgets.c.budget_id))).all()
        return [_record(row) for row in rows]

    async def update(self, budget_id: str, *, limit_micros: int | None, period: str | None, etag: str
                     ) -> BudgetRecord:
        changes: dict[str, Any] = {"update_time": _now(), "etag": secrets.token_hex(10)}
        if limit_micros is not None:
            changes["limit_micros"] = limit_micros
        if period is not None:
            changes["period"] = period
        condition = budgets.c.budget_id == budget_id
        async with self._db.sessions() as session, session.begin():
            row = (await session.execute(sa.select(budgets).where(condition))).first()
            if row is None:
                raise _not_found(budget_id)
            if etag and etag != row.etag:
                raise _etag_mismatch(budget_id)
            result = await session.execute(sa.update(budgets).where(condition, budgets.c.etag == row.etag)
                                           .values(**changes))
            if result.rowcount != 1:
                raise Aborted(f"budgets/{budget_id} changed meanwhile; read it again",
                              reason="CONCURRENT_MODIFICATION", metadata={"budget_id": budget_id})
        return await self.get(budget_id)

    async def delete(self, budget_id: str, *, etag: str = "") -> None:
        async with self._db.sessions() as session, session.begin():
            row = (await session.execute(sa.select(budgets.c.etag).where(budgets.c.budget_id == budget_id))).first()
            if row is None:
                raise _not_found(budget_id)
            if etag and etag != row.etag:
                raise _etag_mismatch(budget_id)
            await session.execute(sa.delete(budgets).where(budgets.c.budget_id == budget_id))
            await session.execute(sa.delete(budget_windows).where(budget_windows.c.budget_id == budget_id))
            await session.execute(sa.delete(budget_reservations).where(budget_reservations.c.budget_id == budget_id))

    # ------------------------------------------------------------------ spend

    async def _seed(self, window: date, *, program_id: str, api_key_id: str) -> int:
        """What the usage ledger recorded for a budget's subject in a window (micro-dollars)."""

        spent = sa.select(sa.func.coalesce(sa.func.sum(usage_ledger.c.cost_usd), 0.0))
        spent = spent.where(usage_ledger.c.program_id == program_id) if program_id else \
            spent.where(usage_ledger.c.api_key_id == api_key_id)
        if window != EPOCH:
            spent = spent.where(usage_ledger.c.day >= window)
        async with self._db.sessions() as session:
            return usd_to_micros(float((await session.execute(spent)).scalar_one()))

    async def _ensure_window(self, budget_id: str, window: date, *, program_id: str, api_key_id: str) -> None:
        """Create the window row (once), starting from what the usage ledger recorded for the subject.

        Every write transaction here begins with its write, so that SQLite takes the write lock
        first (waiting for other writers) instead of failing to upgrade a read."""

        if (budget_id, window) in self._windows:
            return
        seeded = await self._seed(window, program_id=program_id, api_key_id=api_key_id)
        async with self._db.sessions() as session, session.begin():
            await session.execute(self._insert(budget_windows).values(
                budget_id=budget_id, window_start=window, spent_micros=seeded, reserved_micros=0,
            ).on_conflict_do_nothing(index_elements=["budget_id", "window_start"]))
        self._windows.add((budget_id, window))

    async def reserve(self, budget_id: str, window: date, *, limit_micros: int, estimate_micros: int,
                      program_id: str, api_key_id: str, hold_s: float) -> tuple[str | None, WindowSpend]:
        """Reserve ``estimate_micros`` if the budget has room: (reservation id, spend) when admitted,
        (None, spend) when refused."""

        key = sa.and_(budget_windows.c.budget_id == budget_id, budget_windows.c.window_start == window)
        total = budget_windows.c.spent_micros + budget_windows.c.reserved_micros
        for _ in range(2):
            await self._ensure_window(budget_id, window, program_id=program_id, api_key_id=api_key_id)
            async with self._db.sessions() as session, session.begin():
                admitted = await session.execute(
                    sa.update(budget_windows)
                    .where(key, total < limit_micros, total + estimate_micros <= limit_micros)
                    .values(reserved_micros=budget_windows.c.reserved_micros + estimate_micros)
                )
                row = (await session.execute(sa.select(budget_windows.c.spent_micros,
                                                       budget_windows.c.reserved_micros).where(key))).first()
                if row is None:  # the budget was deleted and created again elsewhere: make its window anew
                    self._windows.discard((budget_id, window))
                    continue
                spend = WindowSpend(int(row.spent_micros), int(row.reserved_micros))
                if admitted.rowcount != 1:
                    return None, spend
                reservation_id = secrets.token_hex(16)
                await session.execute(sa.insert(budget_reservations).values(
                    reservation_id=reservation_id, budget_id=budget_id, window_start=window,
                    amount_micros=estimate_micros, expire_time=_now() + timedelta(seconds=hold_s)))
            return reservation_id, spend
        raise Aborted(f"budgets/{budget_id} keeps being deleted and created again; retry",
                      reason="CONCURRENT_MODIFICATION", metadata={"budget_id": budget_id})

    async def settle(self, reservation_id: str, cost_micros: int) -> None:
        """Replace a reservation by what the call really cost (a released reservation: cost only)."""

        async with self._db.sessions() as session, session.begin():
            row = (await session.execute(
                sa.delete(budget_reservations).where(budget_reservations.c.reservation_id == reservation_id)
                .returning(budget_reservations.c.budget_id, budget_reservations.c.window_start,
                           budget_reservations.c.amount_micros))).first()
            if row is None:
                return  # released after expiry (or the budget is gone): nothing reserved any more
            await session.execute(
                sa.update(budget_windows)
                .where(budget_windows.c.budget_id == row.budget_id, budget_windows.c.window_start == row.window_start)
                .values(reserved_micros=budget_windows.c.reserved_micros - row.amount_micros,
                        spent_micros=budget_windows.c.spent_micros + cost_micros))

    async def release_expired(self) -> int:
        """Give back the reservations whose calls can no longer be running; returns how many."""

        async with self._db.sessions() as session, session.begin():
            rows = (await session.execute(
                sa.delete(budget_reservations).where(budget_reservations.c.expire_time < _now())
                .returning(budget_reservations.c.budget_id, budget_reservations.c.window_start,
                           budget_reservations.c.amount_micros))).all()
            for row in rows:
                await session.execute(
                    sa.update(budget_windows)
                    .where(budget_windows.c.budget_id == row.budget_id,
                           budget_windows.c.window_start == row.window_start)
                    .values(reserved_micros=budget_windows.c.reserved_micros - row.amount_micros))
        return len(rows)

    async def spend(self, budget_id: str, window: date, *, program_id: str, api_key_id: str) -> WindowSpend:
        """What a budget spent and holds reserved in a window."""

        for _ in range(2):
            await self._ensure_window(budget_id, window, program_id=program_id, api_key_id=api_key_id)
            async with self._db.sessions() as session:
                row = (await session.execute(sa.select(budget_windows.c.spent_micros, budget_windows.c.reserved_micros)
                                             .where(budget_windows.c.budget_id == budget_id,
                                                    budget_windows.c.window_start == window))).first()
            if row is not None:
                return WindowSpend(int(row.spent_micros), int(row.reserved_micros))
            self._windows.discard((budget_id, window))
        return WindowSpend(0, 0)


def _not_found(budget_id: str) -> NotFound:
    return NotFound(f"budgets/{budget_id} does not exist", reason="BUDGET_NOT_FOUND",
                    metadata={"budget_id": budget_id})


def _etag_mismatch(budget_id: str) -> Aborted:
    return Aborted(f"budgets/{budget_id} has changed: its etag no longer matches", reason="ETAG_MISMATCH",
                   metadata={"budget_id": budget_id})


def page(records: list[Any], *, page_size: int, page_token: str, scope: str = "budgets") -> tuple[list[Any], str]:
    """One page of an in-memory listing sorted by id (budgets are few: config plus stored)."""

    size = normalize_page_size(page_size)
    offset = decode_page_token(page_token, scope) or 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid("page_token", "is not a page token returned by this listing")
    chunk = records[offset:offset + size]
    return chunk, encode_page_token(scope, offset + size) if offset + size < len(records) else ""
