"""Admin use case: reading the usage ledger (calls, tokens and cost per period, program, key, model).

What this process recorded but has not written yet is flushed first, so a query made after a call
returns sees that call. Filters are bounded (:data:`MAX_FILTER_VALUES` values each) and the result
is paged (:data:`DEFAULT_PAGE_SIZE` rows by default, at most :data:`MAX_PAGE_SIZE`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from ..core.errors import invalid
from ..lm.usage import UsageRecorder
from ..store.paging import decode_page_token, encode_page_token, normalize_page_size
from ..store.usage import DIMENSION_COLUMNS, UsageLedgerStore, UsageQuery, UsageSummary

MAX_FILTER_VALUES = 100
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
PERIODS = ("total", "day", "month")


def _check(query: UsageQuery) -> None:
    for field in ("program_ids", "api_key_ids", "models"):
        if len(getattr(query, field)) > MAX_FILTER_VALUES:
            raise invalid(field, f"at most {MAX_FILTER_VALUES} values")
    if query.period not in PERIODS:
        raise invalid("period", f"must be one of {', '.join(PERIODS)}")
    for dimension in query.group_by:
        if dimension not in DIMENSION_COLUMNS:
            raise invalid("group_by", f"unknown dimension {dimension!r}")
    if len(set(query.group_by)) != len(query.group_by):
        raise invalid("group_by", "names a dimension more than once")
    if query.start_day and query.end_day and query.end_day < query.start_day:
        raise invalid("end_day", "is before start_day")


def _scope(query: UsageQuery) -> str:
    """Page tokens belong to one query: its filters, hashed."""

    canonical = json.dumps(asdict(query), default=str, sort_keys=True)
    return "usage:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _total(rows: list[UsageSummary]) -> UsageSummary:
    total = UsageSummary("", "", "", "")
    for row in rows:
        total.add(asdict(row))
    return total


class UsageQueries:
    def __init__(self, recorder: UsageRecorder, store: UsageLedgerStore) -> None:
        self._recorder = recorder
        self._store = store

    async def query(self, query: UsageQuery, *, page_size: int = 0, page_token: str = ""
                    ) -> tuple[list[UsageSummary], str, UsageSummary]:
        """One page of rows, the next page's token ("" on the last) and the total of every row."""

        _check(query)
        size = normalize_page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        scope = _scope(query)
        offset = decode_page_token(page_token, scope) or 0
        if not isinstance(offset, int) or offset < 0:
            raise invalid("page_token", "is not a page token returned by this listing")
        await self._recorder.flush()
        rows = await self._store.summarize(query)
        page = rows[offset:offset + size]
        following = offset + size
        token = encode_page_token(scope, following) if following < len(rows) else ""
        return page, token, _total(rows)
