"""UsageLedgerStore.summarize against real databases: SQLite, and a fresh database on a private
PostgreSQL server (the ``postgres_url`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from dspy_grpc_server.lm.usage import LedgerKey, LedgerTotals
from dspy_grpc_server.store import Database
from dspy_grpc_server.store.usage import UsageLedgerStore, UsageQuery, UsageSummary

ROWS = {
    LedgerKey(date(2026, 1, 30), "qa", "k1", "m"): LedgerTotals(1, 0, 10, 2, 0, 0.5),
    LedgerKey(date(2026, 2, 1), "qa", "k2", "m"): LedgerTotals(2, 1, 20, 4, 0, 0.25),
    LedgerKey(date(2026, 2, 1), "", "", "m2"): LedgerTotals(1, 0, 5, 1, 1, 0.125),
}


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UsageLedgerStore]:
    url = (f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    database = await Database.open(url)
    store = UsageLedgerStore(database)
    await store.add(ROWS)
    try:
        yield store
    finally:
        await database.close()


async def test_month_buckets_grouped_by_program_and_model(store: UsageLedgerStore) -> None:
    got = await store.summarize(UsageQuery(period="month", group_by=("program", "model")))
    assert got == [
        UsageSummary("2026-01", "qa", "", "m", 1, 0, 10, 2, 0, 0.5),
        UsageSummary("2026-02", "", "", "m2", 1, 0, 5, 1, 1, 0.125),
        UsageSummary("2026-02", "qa", "", "m", 2, 1, 20, 4, 0, 0.25),
    ]
    assert all(type(row.prompt_tokens) is int and type(row.cost_usd) is float for row in got)


async def test_filters_and_day_range(store: UsageLedgerStore) -> None:
    got = await store.summarize(UsageQuery(program_ids=("qa",), api_key_ids=("k2",), start_day=date(2026, 2, 1),
                                           end_day=date(2026, 2, 1), period="day", group_by=("api_key",)))
    assert got == [UsageSummary("2026-02-01", "", "k2", "", 2, 1, 20, 4, 0, 0.25)]
    assert await store.summarize(UsageQuery(end_day=date(2026, 1, 29))) == []
