"""Budgets: spending limits per program or API key, enforced across every replica in micro-dollars.

A budget comes from the config file (``[[budgets]]``, read-only through the API) or from
BudgetService (stored). Before an LM call, every budget that applies to the caller reserves the
call's estimated cost in the shared store (:class:`BudgetBackend`, implemented by the store layer);
the call is refused with ``RESOURCE_EXHAUSTED`` / ``BUDGET_EXCEEDED`` when a budget has no room left
(``spent + reserved`` at the limit, or too close to it for the estimate). After the call the
reservation is settled with the real cost. Money is counted in integer micro-dollars, each call's cost
rounded up to a whole micro-dollar, so ten calls of exactly $0.01 spend exactly $0.10.

The estimate of a call is the cost of the last call this replica made to the same model (0 before
the first one). How far replicas can overspend together is therefore bounded by the calls already in
flight when the limit is reached, each by what it cost beyond its estimate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from ..core.errors import ResourceExhausted
from ..core.money import micros_text, usd_to_micros
from ..core.shared_reads import SharedReads
from .attribution import Attribution
from .config import BudgetConfig
from .usage import utc_today, window_start

log = logging.getLogger("dspy_grpc_server.lm.budgets")

#: The window key of ``total`` budgets (they have one window, forever).
TOTAL_WINDOW = date(1970, 1, 1)
#: How long after a call's deadline its reservation is released if its replica never settled it.
HOLD_MARGIN_S = 60.0
#: How often each replica releases expired reservations.
JANITOR_INTERVAL_S = 30.0


@dataclass(frozen=True)
class Budget:
    """A budget as enforced: from the config file (``source == "config"``) or the API (``"api"``)."""

    budget_id: str
    program_id: str
    api_key_id: str
    period: str
    limit_micros: int
    source: str
    #: How errors name it: the config form ("program:qa/day") or the resource name.
    label: str
    create_time: datetime | None = None
    update_time: datetime | None = None
    etag: str = ""

    @property
    def name(self) -> str:
        return f"budgets/{self.budget_id}"

    def applies(self, who: Attribution) -> bool:
        if self.program_id:
            return self.program_id == who.program_id
        return self.api_key_id == who.api_key_id

    def window(self, today: date) -> date:
        return window_start(self.period, today) or TOTAL_WINDOW


def config_budget_id(budget: BudgetConfig) -> str:
    """The resource id of a config-file budget, e.g. ``config-program-qa-day``."""

    subject = "".join(c if c.isalnum() else "-" for c in budget.subject.lower())
    return f"config-{budget.scope.replace('_', '-')}-{subject}-{budget.period}"[:63]


def from_config(budget: BudgetConfig) -> Budget:
    return Budget(config_budget_id(budget), budget.program, budget.api_key, budget.period,
                  usd_to_micros(budget.limit_usd, round_up=False), "config", budget.name)


@dataclass(frozen=True)
class Spend:
    spent_micros: int
    reserved_micros: int


class BudgetBackend(Protocol):
    """Where budgets and their spend are kept (implemented by the store layer)."""

    async def list_stored(self) -> Sequence[Budget]: ...

    async def reserve(self, budget: Budget, window: date, *, estimate_micros: int, hold_s: float
                      ) -> tuple[str | None, Spend]: ...

    async def settle(self, reservation_id: str, cost_micros: int) -> None: ...

    async def release_expired(self) -> int: ...

    async def spend(self, budget: Budget, window: date) -> Spend: ...


class Hold:
    """The reservations one call holds; :meth:`settle` exactly once."""

    def __init__(self, book: BudgetBook, reservations: list[str]) -> None:
        self._book = book
        self._reservations = reservations

    async def settle(self, cost_micros: int) -> None:
        reservations, self._reservations = self._reservations, []
        for reservation in reservations:
            try:
                await self._book.backend.settle(reservation, cost_micros)
            except Exception as error:  # noqa: BLE001 - the janitor releases it after expiry
                log.warning("settling a budget reservation failed (%s); it is released when it expires",
                            type(error).__name__)


NO_HOLD_REASON = "BUDGET_EXCEEDED"


class BudgetBook:
    """The budgets every call is checked against, cached for ``refresh_s`` (or until :meth:`forget`)."""

    def __init__(self, configured: Sequence[BudgetConfig], backend: BudgetBackend, *, refresh_s: float = 1.0,
                 today=utc_today) -> None:
        self.configured = tuple(from_config(budget) for budget in configured)
        self.backend = backend
        self._refresh_s = refresh_s
        self.today = today
        self._cached: tuple[tuple[Budget, ...], float] | None = None
        self._last: tuple[Budget, ...] | None = None
        self._epoch = 0
        self._reads: SharedReads[None, tuple[Budget, ...]] = SharedReads()

    def forget(self) -> None:
        """Read the stored budgets again on the next call (a budget changed somewhere)."""

        self._epoch += 1
        self._cached = None

    async def budgets(self) -> tuple[Budget, ...]:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < self._refresh_s:
            return cached[0]
        return await self._reads.read(None, self._epoch, self._read)

    async def _read(self) -> tuple[Budget, ...]:
        epoch = self._epoch
        try:
            every = self.configured + tuple(await self.backend.list_stored())
        except Exception:
            if self._last is None:
                raise
            # The store is unreachable: keep enforcing what was last read (reserving will tell).
            return self._last
        self._last = every
        if epoch == self._epoch:
            self._cached = (every, time.monotonic())
        return every

    async def reserve(self, who: Attribution, *, estimate_micros: int, hold_s: float) -> Hold | None:
        """Reserve the estimate in every budget that applies to ``who``; refuse when one has no room."""

        applicable = [budget for budget in await self.budgets() if budget.applies(who)]
        if not applicable:
            return None
        today = self.today()
        hold = Hold(self, [])
        try:
            for budget in applicable:
                reservation, spend = await self.backend.reserve(
                    budget, budget.window(today), estimate_micros=estimate_micros, hold_s=hold_s)
                if reservation is None:
                    raise _exhausted(budget, spend, estimate_micros)
                hold._reservations.append(reservation)
        except BaseException:
            await asyncio.shield(hold.settle(0))
            raise
        return hold

    async def spend(self, budget: Budget) -> Spend:
        return await self.backend.spend(budget, budget.window(self.today()))

    async def run_janitor(self, interval_s: float = JANITOR_INTERVAL_S) -> None:
        """Release expired reservations every ``interval_s`` (a supervised child)."""

        while True:
            await asyncio.sleep(interval_s)
            try:
                released = await self.backend.release_expired()
            except Exception as error:  # noqa: BLE001 - the store may be down; try again later
                log.warning("releasing expired budget reservations failed: %s", type(error).__name__)
                continue
            if released:
                log.info("released %d budget reservations of calls that never settled", released)


def _exhausted(budget: Budget, spend: Spend, estimate_micros: int) -> ResourceExhausted:
    period = {"day": "today (UTC)", "month": "this month (UTC)", "total": "in total"}[budget.period]
    return ResourceExhausted(
        f"budget {budget.label} is spent: {micros_text(spend.spent_micros)} of "
        f"{micros_text(budget.limit_micros)} USD used {period}, {micros_text(spend.reserved_micros)} USD held "
        f"by calls in flight",
        reason=NO_HOLD_REASON,
        metadata={"budget": budget.label, "budget_name": budget.name, "limit_usd": micros_text(budget.limit_micros),
                  "spent_usd": micros_text(spend.spent_micros), "reserved_usd": micros_text(spend.reserved_micros),
                  "estimate_usd": micros_text(estimate_micros)},
    )
