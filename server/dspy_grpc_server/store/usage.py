"""The persisted usage ledger: LM calls, tokens and cost per UTC day, program, API key and model.

The provider layer adds to it in batches (:meth:`UsageLedgerStore.add`, one upsert per row) and reads
totals back for budgets (:meth:`UsageLedgerStore.spent_usd`). Rows are added to, never replaced, so
several server replicas may share one database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .database import Database
from .schema import usage_ledger

_COUNTERS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "estimated_calls", "cost_usd")


class _Key(Protocol):
    day: date
    program_id: str
    api_key_id: str
    model: str


@dataclass(frozen=True)
class UsageRow:
    """One ledger row."""

    day: date
    program_id: str
    api_key_id: str
    model: str
    calls: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    estimated_calls: int
    cost_usd: float


class UsageLedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self) -> Any:
        return (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(usage_ledger)

    async def add(self, rows: Mapping[_Key, Any]) -> None:
        """Add each row's counters (objects with the attributes of :class:`UsageRow`) to the stored ones."""

        if not rows:
            return
        async with self._db.sessions() as session, session.begin():
            for key, totals in rows.items():
                values = {"day": key.day, "program_id": key.program_id, "api_key_id": key.api_key_id,
                          "model": key.model, **{name: getattr(totals, name) for name in _COUNTERS}}
                insert = self._insert().values(**values)
                await session.execute(insert.on_conflict_do_update(
                    index_elements=["day", "program_id", "api_key_id", "model"],
                    set_={name: getattr(usage_ledger.c, name) + getattr(insert.excluded, name) for name in _COUNTERS},
                ))

    async def spent_usd(self, *, program_id: str | None = None, api_key_id: str | None = None,
                        since: date | None = None) -> float:
        """Total cost for a program and/or API key, on or after ``since`` (every day when None)."""

        query = sa.select(sa.func.coalesce(sa.func.sum(usage_ledger.c.cost_usd), 0.0))
        if program_id is not None:
            query = query.where(usage_ledger.c.program_id == program_id)
        if api_key_id is not None:
            query = query.where(usage_ledger.c.api_key_id == api_key_id)
        if since is not None:
            query = query.where(usage_ledger.c.day >= since)
        async with self._db.sessions() as session:
            return float((await session.execute(query)).scalar_one())

    async def rows(self, *, program_id: str | None = None, since: date | None = None) -> list[UsageRow]:
        """Ledger rows, oldest day first (optionally for one program / from a day on)."""

        query = sa.select(usage_ledger).order_by(
            usage_ledger.c.day, usage_ledger.c.program_id, usage_ledger.c.api_key_id, usage_ledger.c.model
        )
        if program_id is not None:
            query = query.where(usage_ledger.c.program_id == program_id)
        if since is not None:
            query = query.where(usage_ledger.c.day >= since)
        async with self._db.sessions() as session:
            return [UsageRow(**row._mapping) for row in (await session.execute(query)).all()]

    async def summarize(self, query: UsageQuery) -> list[UsageSummary]:
        """Ledger rows matching ``query``'s filters, summed per period bucket and grouped dimension;
        oldest period first, then by program, API key and model."""

        grouped = [getattr(usage_ledger.c, column) for column in query.columns()]
        sums = [sa.func.sum(getattr(usage_ledger.c, name)).label(name) for name in _COUNTERS]
        select = sa.select(usage_ledger.c.day, *grouped, *sums).group_by(usage_ledger.c.day, *grouped)
        for column, values in (("program_id", query.program_ids), ("api_key_id", query.api_key_ids),
                               ("model", query.models)):
            if values:
                select = select.where(getattr(usage_ledger.c, column).in_(values))
        if query.start_day is not None:
            select = select.where(usage_ledger.c.day >= query.start_day)
        if query.end_day is not None:
            select = select.where(usage_ledger.c.day <= query.end_day)
        async with self._db.sessions() as session:
            found = (await session.execute(select)).all()
        buckets: dict[tuple[str, str, str, str], UsageSummary] = {}
        for row in found:
            values = row._mapping
            key = (query.bucket(values["day"]), values.get("program_id", ""), values.get("api_key_id", ""),
                   values.get("model", ""))
            summary = buckets.get(key)
            if summary is None:
                summary = buckets[key] = UsageSummary(*key)
            summary.add(values)
        return [buckets[key] for key in sorted(buckets)]


@dataclass(frozen=True)
class UsageQuery:
    """Which ledger rows to sum (empty filters match everything; days are inclusive) and how:
    ``period`` is ``"total"``, ``"day"`` or ``"month"``; ``group_by`` names the dimensions kept
    apart (``"program"``, ``"api_key"``, ``"model"``)."""

    program_ids: tuple[str, ...] = ()
    api_key_ids: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    start_day: date | None = None
    end_day: date | None = None
    period: str = "total"
    group_by: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        return [column for dimension, column in DIMENSION_COLUMNS.items() if dimension in self.group_by]

    def bucket(self, day: date) -> str:
        if self.period == "day":
            return day.isoformat()
        if self.period == "month":
            return day.isoformat()[:7]
        return ""


#: Dimension name -> ledger column, in the order rows are sorted by.
DIMENSION_COLUMNS = {"program": "program_id", "api_key": "api_key_id", "model": "model"}


@dataclass
class UsageSummary:
    """Summed ledger counters of one period bucket (``"YYYY-MM-DD"``, ``"YYYY-MM"`` or ``""``) and
    one combination of grouped dimensions (``""`` for a dimension not grouped by)."""

    period: str
    program_id: str
    api_key_id: str
    model: str
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_calls: int = 0
    cost_usd: float = 0.0

    def add(self, counters: Mapping[str, Any]) -> None:
        """Add ``counters`` (PostgreSQL sums integers as ``Decimal``: kept as ``int``, cost as ``float``)."""

        for name in _COUNTERS:
            value = counters[name] or 0
            setattr(self, name, getattr(self, name) + (float(value) if name == "cost_usd" else int(value)))
