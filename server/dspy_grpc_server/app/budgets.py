"""Budgets as resources (BudgetService) and the store behind the LM layer's budget checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..core.errors import AlreadyExists, FailedPrecondition, invalid
from ..core.names import validate_program_id, validate_resource_id
from ..lm.budgets import Budget, BudgetBook, Spend
from ..lm.config import BUDGET_PERIODS
from ..store.budgets import BudgetRecord, BudgetStore, page
from ..store.changes import ChangeFeed

#: The change-feed topic of budgets (created, updated, deleted).
BUDGET_TOPIC = "budget"
#: The shape of an API key id (the public part of "dgk_{key_id}_{secret}").
API_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: The largest limit a budget may have: $1e9 in micro-dollars.
MAX_LIMIT_MICROS = 10**15


def _budget(record: BudgetRecord) -> Budget:
    return Budget(record.budget_id, record.program_id, record.api_key_id, record.period, record.limit_micros,
                  "api", f"budgets/{record.budget_id}", record.create_time, record.update_time, record.etag)


class StoredBudgets:
    """:class:`~dspy_grpc_server.lm.budgets.BudgetBackend` on the shared store."""

    def __init__(self, store: BudgetStore) -> None:
        self._store = store

    async def list_stored(self) -> Sequence[Budget]:
        return [_budget(record) for record in await self._store.list_all()]

    async def reserve(self, budget: Budget, window: date, *, estimate_micros: int, hold_s: float
                      ) -> tuple[str | None, Spend]:
        reservation, spend = await self._store.reserve(
            budget.budget_id, window, limit_micros=budget.limit_micros, estimate_micros=estimate_micros,
            program_id=budget.program_id, api_key_id=budget.api_key_id, hold_s=hold_s)
        return reservation, Spend(spend.spent_micros, spend.reserved_micros)

    async def settle(self, reservation_id: str, cost_micros: int) -> None:
        await self._store.settle(reservation_id, cost_micros)

    async def release_expired(self) -> int:
        return await self._store.release_expired()

    async def spend(self, budget: Budget, window: date) -> Spend:
        spend = await self._store.spend(budget.budget_id, window, program_id=budget.program_id,
                                        api_key_id=budget.api_key_id)
        return Spend(spend.spent_micros, spend.reserved_micros)


@dataclass(frozen=True)
class BudgetView:
    """A budget and its spend in the current period."""

    budget: Budget
    spend: Spend
    period_start: date


class Budgets:
    """Create/read/update/delete budgets; every change reaches every replica's budget book."""

    def __init__(self, book: BudgetBook, store: BudgetStore, changes: ChangeFeed) -> None:
        self._book = book
        self._store = store
        self._changes = changes
        changes.subscribe(self._on_change)

    def _on_change(self, topic: str, _key: str) -> None:
        if topic in (BUDGET_TOPIC, "*"):
            self._book.forget()

    async def _view(self, budget: Budget) -> BudgetView:
        return BudgetView(budget, await self._book.spend(budget), budget.window(self._book.today()))

    def _configured(self, budget_id: str) -> Budget | None:
        return next((b for b in self._book.configured if b.budget_id == budget_id), None)

    async def create(self, budget_id: str, *, program_id: str, api_key_id: str, period: str,
                     limit_micros: int) -> BudgetView:
        validate_resource_id(budget_id, field="budget_id")
        if budget_id.startswith("config-") or self._configured(budget_id) is not None:
            raise AlreadyExists(f"budgets/{budget_id}: ids starting with \"config-\" belong to config budgets",
                                reason="BUDGET_ALREADY_EXISTS", metadata={"budget_id": budget_id})
        if bool(program_id) == bool(api_key_id):
            raise invalid("budget.program", "set exactly one of program and api_key_id")
        if program_id:
            validate_program_id(program_id, field="budget.program")
        if api_key_id and API_KEY_ID.fullmatch(api_key_id) is None:
            raise invalid("budget.api_key_id", "must be an API key id: 1-32 letters, digits, '-' or '_'")
        _check_period(period)
        _check_limit(limit_micros)
        record = await self._store.create(budget_id, program_id=program_id, api_key_id=api_key_id, period=period,
                                          limit_micros=limit_micros)
        await self._changes.publish(BUDGET_TOPIC, budget_id)
        return await self._view(_budget(record))

    async def get(self, budget_id: str) -> BudgetView:
        configured = self._configured(budget_id)
        if configured is not None:
            return await self._view(configured)
        return await self._view(_budget(await self._store.get(budget_id)))

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[BudgetView], str]:
        every = sorted(self._book.configured + tuple(_budget(r) for r in await self._store.list_all()),
                       key=lambda b: b.budget_id)
        chunk, token = page(every, page_size=page_size, page_token=page_token)
        return [await self._view(budget) for budget in chunk], token

    async def update(self, budget_id: str, *, limit_micros: int | None, period: str | None, etag: str
                     ) -> BudgetView:
        self._refuse_config(budget_id)
        if period is not None:
            _check_period(period)
        if limit_micros is not None:
            _check_limit(limit_micros)
        record = await self._store.update(budget_id, limit_micros=limit_micros, period=period, etag=etag)
        await self._changes.publish(BUDGET_TOPIC, budget_id)
        return await self._view(_budget(record))

    async def delete(self, budget_id: str, *, etag: str) -> None:
        self._refuse_config(budget_id)
        await self._store.delete(budget_id, etag=etag)
        await self._changes.publish(BUDGET_TOPIC, budget_id)

    def _refuse_config(self, budget_id: str) -> None:
        if self._configured(budget_id) is not None:
            raise FailedPrecondition(
                f"budgets/{budget_id} is defined in the server's config file; change it there",
                reason="BUDGET_FROM_CONFIG", metadata={"budget_id": budget_id})


def _check_period(period: str) -> None:
    if period not in BUDGET_PERIODS:
        raise invalid("budget.period", f"must be one of {', '.join(BUDGET_PERIODS)}")


def _check_limit(limit_micros: int) -> None:
    if not 0 <= limit_micros <= MAX_LIMIT_MICROS:
        raise invalid("budget.limit_micros", f"must be between 0 and {MAX_LIMIT_MICROS} (micro-dollars)")
