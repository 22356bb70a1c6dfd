"""Usage accounting: every LM call is added up per (day, program, API key, model) and written to a
persistent ledger in batches. Budgets are enforced separately, in the shared store (:mod:`.budgets`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple, Protocol

from .attribution import Attribution
from .types import Usage

log = logging.getLogger("dspy_grpc_server.lm.usage")


class LedgerKey(NamedTuple):
    """Where a call's usage adds up (one per call: a tuple, cheap to build and hash)."""

    day: date
    program_id: str
    api_key_id: str
    model: str


@dataclass
class LedgerTotals:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_calls: int = 0
    cost_usd: float = 0.0

    def add(self, other: LedgerTotals) -> None:
        self.calls += other.calls
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.estimated_calls += other.estimated_calls
        self.cost_usd += other.cost_usd


class UsageLedger(Protocol):
    """Where usage is persisted (implemented by the store layer)."""

    async def add(self, rows: Mapping[LedgerKey, LedgerTotals]) -> None:
        """Add these totals to the stored ones (one transaction)."""

    async def spent_usd(self, *, program_id: str | None = None, api_key_id: str | None = None,
                        since: date | None = None) -> float:
        """The cost recorded for a program or API key on or after ``since`` (all days when None)."""


def window_start(period: str, today: date) -> date | None:
    """The first day of the budget period containing ``today`` (None for ``total``)."""

    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    return None


def utc_today() -> date:
    return datetime.now(UTC).date()


class UsageRecorder:
    def __init__(self, ledger: UsageLedger | None, *, today: Callable[[], date] = utc_today) -> None:
        self._ledger = ledger
        self._today = today
        self._pending: dict[LedgerKey, LedgerTotals] = {}
        #: One flush at a time: a flush that finds nothing pending still waits for the write of one
        #: in progress, so whoever asked (a usage query) then reads every call recorded before it.
        self._flushing = asyncio.Lock()

    # ------------------------------------------------------------------ recording

    def record(self, model: str, usage: Usage, cost_usd: float, *, cache_hit: bool, who: Attribution) -> None:
        key = LedgerKey(self._today(), who.program_id, who.api_key_id, model)
        totals = self._pending.get(key)
        if totals is None:
            totals = self._pending[key] = LedgerTotals()
        if cache_hit:
            totals.cache_hits += 1
        else:
            totals.calls += 1
        totals.prompt_tokens += usage.prompt_tokens
        totals.completion_tokens += usage.completion_tokens
        totals.estimated_calls += usage.estimated
        totals.cost_usd += cost_usd

    async def flush(self) -> None:
        """Write what was recorded since the last flush (kept for the next one if writing fails)."""

        if self._ledger is None:
            self._pending.clear()  # nowhere to write
            return
        async with self._flushing:
            if not self._pending:
                return
            rows, self._pending = self._pending, {}
            try:
                await self._ledger.add(rows)
            except Exception:  # noqa: BLE001 - keep the rows for the next attempt
                log.exception("writing the usage ledger failed; will retry")
                for key, totals in rows.items():
                    self._pending.setdefault(key, LedgerTotals()).add(totals)

    async def run_flusher(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled, then once more (a supervised child)."""

        try:
            while True:
                await asyncio.sleep(interval_s)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())
