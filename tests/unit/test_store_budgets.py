"""Budget spend in the store: exact micro-dollars, atomic reservations, expired reservations released,
windows seeded from the usage ledger."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dspy_grpc_server.core.money import micros_text, usd_to_micros
from dspy_grpc_server.lm.usage import LedgerKey, LedgerTotals
from dspy_grpc_server.store.budgets import BudgetStore
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.usage import UsageLedgerStore

TODAY = date(2026, 12, 6)


def test_money_is_exact() -> None:
    assert usd_to_micros(0.01) == 10_000 and sum(usd_to_micros(0.01) for _ in range(10)) == usd_to_micros(0.1)
    assert usd_to_micros(1e-9) == 1  # a cost rounds up to a whole micro-dollar
    assert usd_to_micros(2.5000001, round_up=False) == 2_500_000  # a limit rounds down
    assert micros_text(100_000) == "0.100000" and micros_text(-1) == "-0.000001"


@pytest.mark.asyncio(loop_scope="session")
async def test_reservations_are_atomic_settled_and_released(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'budgets.db'}")
    try:
        store = BudgetStore(db)
        await UsageLedgerStore(db).add({LedgerKey(TODAY, "qa", "", "gpt"): LedgerTotals(calls=1, cost_usd=0.03)})
        reserve = dict(limit_micros=100_000, program_id="qa", api_key_id="", hold_s=600)
        first, spend = await store.reserve("b", TODAY, estimate_micros=40_000, **reserve)
        assert first is not None and (spend.spent_micros, spend.reserved_micros) == (30_000, 40_000)  # seeded
        refused, spend = await store.reserve("b", TODAY, estimate_micros=40_000, **reserve)
        assert refused is None and spend.reserved_micros == 40_000  # 30k + 40k + 40k > 100k
        await store.settle(first, 10_000)
        await store.settle(first, 10_000)  # settling twice changes nothing
        assert await store.spend("b", TODAY, program_id="qa", api_key_id="") == type(spend)(40_000, 0)

        stale, _ = await store.reserve("b", TODAY, estimate_micros=60_000, **{**reserve, "hold_s": -1})
        assert stale is not None
        assert await store.release_expired() == 1
        assert (await store.spend("b", TODAY, program_id="qa", api_key_id="")).reserved_micros == 0
        await store.settle(stale, 60_000)  # released before its replica settled: nothing is held any more
        assert (await store.spend("b", TODAY, program_id="qa", api_key_id="")).spent_micros == 40_000

        last, _ = await store.reserve("b", TODAY, estimate_micros=0, **reserve)
        await store.settle(last, 60_000)  # the call cost more than its estimate: spent reaches the limit
        closed, spend = await store.reserve("b", TODAY, estimate_micros=0, **reserve)
        assert closed is None and spend.spent_micros == 100_000

        # Another replica creates the budget afresh (its windows start over from the ledger): this
        # replica's knowledge of the old window must not get in the way.
        await BudgetStore(db).create("b", program_id="qa", api_key_id="", period="day", limit_micros=100_000)
        again, spend = await store.reserve("b", TODAY, estimate_micros=0, **reserve)
        assert again is not None and (spend.spent_micros, spend.reserved_micros) == (30_000, 0)
    finally:
        await db.close()
