"""Usage and cost queries (``UsageService``, admin scope): typed rows and the request builder."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from .v1 import usage_pb2

PERIODS = {"total": usage_pb2.USAGE_PERIOD_TOTAL, "day": usage_pb2.USAGE_PERIOD_DAY,
           "month": usage_pb2.USAGE_PERIOD_MONTH}
DIMENSIONS = {"program": usage_pb2.USAGE_DIMENSION_PROGRAM, "api_key": usage_pb2.USAGE_DIMENSION_API_KEY,
              "model": usage_pb2.USAGE_DIMENSION_MODEL}


@dataclass(frozen=True)
class UsageRow:
    """Usage summed over one period (``"2026-12-06"``, ``"2026-12"`` or ``""`` for the whole range)
    and one value of each grouped dimension (``""`` for the others)."""

    period: str
    program: str
    api_key_id: str
    model: str
    calls: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    estimated_calls: int
    cost_usd: float

    @classmethod
    def from_proto(cls, row: usage_pb2.UsageRow) -> UsageRow:
        return cls(row.period, row.program, row.api_key_id, row.model, row.calls, row.cache_hits,
                   row.prompt_tokens, row.completion_tokens, row.estimated_calls, row.cost_usd)


@dataclass(frozen=True)
class UsageReport:
    """Every row of a usage query (all pages) and their total."""

    rows: list[UsageRow] = field(default_factory=list)
    total: UsageRow | None = None


def _day(value: _dt.date | str | None) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, _dt.date) else value


def query_request(*, period: str, group_by: Iterable[str], programs: Iterable[str], api_key_ids: Iterable[str],
                  models: Iterable[str], start: _dt.date | str | None, end: _dt.date | str | None,
                  page_size: int, page_token: str = "") -> usage_pb2.QueryUsageRequest:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    dimensions = list(group_by)
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"group_by takes {', '.join(DIMENSIONS)}; unknown: {', '.join(unknown)}")
    return usage_pb2.QueryUsageRequest(
        programs=[p if not p or p.startswith("programs/") else f"programs/{p}" for p in programs],
        api_key_ids=list(api_key_ids), models=list(models), start_day=_day(start), end_day=_day(end),
        period=PERIODS[period], group_by=[DIMENSIONS[d] for d in dimensions],
        page_size=page_size, page_token=page_token,
    )
