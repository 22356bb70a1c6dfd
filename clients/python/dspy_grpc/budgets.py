"""Budgets (BudgetService, admin scope): spending limits per program or API key, in exact micro-dollars."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal

from .v1 import budget_pb2

__all__ = ["Budget", "MICROS_PER_USD", "usd_to_micros"]

#: 1 USD in micro-dollars, the unit budgets are counted in.
MICROS_PER_USD = 1_000_000

_PERIODS = {"day": budget_pb2.BUDGET_PERIOD_DAY, "month": budget_pb2.BUDGET_PERIOD_MONTH,
            "total": budget_pb2.BUDGET_PERIOD_TOTAL}
_PERIOD_NAMES = {number: name for name, number in _PERIODS.items()}
_SOURCES = {budget_pb2.BUDGET_SOURCE_CONFIG: "config", budget_pb2.BUDGET_SOURCE_API: "api"}


def usd_to_micros(usd: Decimal | str | int) -> int:
    """An exact USD amount (``Decimal("0.10")``, ``"0.10"``, ``2``) in micro-dollars."""

    micros = Decimal(str(usd)) * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"{usd} USD is not a whole number of micro-dollars")
    return int(micros)


def period_enum(period: str) -> int:
    try:
        return _PERIODS[period]
    except KeyError:
        raise ValueError(f"period must be one of {', '.join(_PERIODS)}, got {period!r}") from None


def _time(stamp) -> _dt.datetime | None:
    return stamp.ToDatetime(tzinfo=_dt.timezone.utc) if stamp.seconds or stamp.nanos else None


@dataclass(frozen=True)
class Budget:
    """A budget and what was spent against it in its current period (all amounts in micro-dollars).

    ``program`` ("programs/qa") or ``api_key_id`` names what it limits; ``period`` is "day", "month"
    or "total"; ``source`` is "config" (the server's config file: read-only) or "api".
    """

    name: str
    period: str
    limit_micros: int
    spent_micros: int
    reserved_micros: int
    remaining_micros: int
    source: str
    period_start: _dt.date
    program: str = ""
    api_key_id: str = ""
    etag: str = ""
    create_time: _dt.datetime | None = None
    update_time: _dt.datetime | None = None
    raw: budget_pb2.Budget = field(default_factory=budget_pb2.Budget, repr=False, compare=False)

    @property
    def budget_id(self) -> str:
        return self.name.removeprefix("budgets/")

    @property
    def limit_usd(self) -> Decimal:
        return Decimal(self.limit_micros) / MICROS_PER_USD

    @property
    def spent_usd(self) -> Decimal:
        return Decimal(self.spent_micros) / MICROS_PER_USD

    @property
    def remaining_usd(self) -> Decimal:
        return Decimal(self.remaining_micros) / MICROS_PER_USD

    @classmethod
    def from_proto(cls, raw: budget_pb2.Budget) -> Budget:
        return cls(
            name=raw.name, period=_PERIOD_NAMES.get(raw.period, "day"), limit_micros=raw.limit_micros,
            spent_micros=raw.spent_micros, reserved_micros=raw.reserved_micros,
            remaining_micros=raw.remaining_micros, source=_SOURCES.get(raw.source, "api"),
            period_start=_dt.date.fromisoformat(raw.period_start_date) if raw.period_start_date else _dt.date(1970, 1, 1),
            program=raw.program, api_key_id=raw.api_key_id, etag=raw.etag, create_time=_time(raw.create_time),
            update_time=_time(raw.update_time), raw=raw,
        )


def budget_name(name: str) -> str:
    """``"team-a"`` or ``"budgets/team-a"`` -> ``"budgets/team-a"``."""

    return name if name.startswith("budgets/") else f"budgets/{name}"


def create_request(budget_id: str, *, limit_usd: Decimal | str | int | None, limit_micros: int | None,
                   program: str, api_key_id: str, period: str) -> budget_pb2.CreateBudgetRequest:
    if (limit_usd is None) == (limit_micros is None):
        raise ValueError("give exactly one of limit_usd and limit_micros")
    micros = usd_to_micros(limit_usd) if limit_usd is not None else int(limit_micros)  # type: ignore[arg-type]
    if program and not program.startswith("programs/"):
        program = f"programs/{program}"
    return budget_pb2.CreateBudgetRequest(budget_id=budget_id, budget=budget_pb2.Budget(
        program=program, api_key_id=api_key_id, period=period_enum(period), limit_micros=micros))


def update_request(name: str, *, limit_usd: Decimal | str | int | None, limit_micros: int | None,
                   period: str | None, etag: str) -> budget_pb2.UpdateBudgetRequest:
    if limit_usd is not None and limit_micros is not None:
        raise ValueError("give at most one of limit_usd and limit_micros")
    budget = budget_pb2.Budget(name=budget_name(name), etag=etag)
    paths = []
    if limit_usd is not None or limit_micros is not None:
        budget.limit_micros = usd_to_micros(limit_usd) if limit_usd is not None else int(limit_micros)  # type: ignore[arg-type]
        paths.append("limit_micros")
    if period is not None:
        budget.period = period_enum(period)
        paths.append("period")
    if not paths:
        raise ValueError("nothing to update: give limit_usd, limit_micros or period")
    request = budget_pb2.UpdateBudgetRequest(budget=budget)
    request.update_mask.paths.extend(paths)
    return request
