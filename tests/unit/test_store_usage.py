"""The usage ledger table: upserts add up, totals per program / key / period."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dspy_grpc_server.lm.usage import LedgerKey, LedgerTotals
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.usage import UsageLedgerStore

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_ledger_adds_up_rows_and_sums_cost(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger = UsageLedgerStore(db)
        yesterday, today = date(2026, 11, 22), date(2026, 11, 23)
        qa = LedgerKey(today, "qa", "k1", "gpt")
        await ledger.add({qa: LedgerTotals(calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.5),
                          LedgerKey(yesterday, "qa", "", "gpt"): LedgerTotals(calls=2, cost_usd=1.0)})
        await ledger.add({qa: LedgerTotals(calls=1, cache_hits=3, prompt_tokens=1, estimated_calls=1, cost_usd=0.25)})
        rows = await ledger.rows(program_id="qa", since=today)
        assert len(rows) == 1
        row = rows[0]
        assert (row.calls, row.cache_hits, row.prompt_tokens, row.completion_tokens, row.estimated_calls) == (
            2, 3, 11, 5, 1)
        assert row.cost_usd == pytest.approx(0.75)
        assert await ledger.spent_usd(program_id="qa") == pytest.approx(1.75)
        assert await ledger.spent_usd(program_id="qa", since=today) == pytest.approx(0.75)
        assert await ledger.spent_usd(api_key_id="k1") == pytest.approx(0.75)
        assert await ledger.spent_usd(program_id="nobody") == 0.0
    finally:
        await db.close()
