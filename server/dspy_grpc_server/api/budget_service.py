"""BudgetService: translation between requests and :class:`~..app.budgets.Budgets`."""

from __future__ import annotations

import re

import grpc
from dspy_grpc.v1 import budget_pb2, budget_pb2_grpc
from google.protobuf import empty_pb2

from ..app.budgets import BudgetView
from ..app.budgets import Budgets
from ..core.errors import invalid

UPDATABLE = ("limit_micros", "period")
BUDGET_NAME = re.compile(r"^budgets/([^/]+)$")
PROGRAM_NAME = re.compile(r"^programs/([^/@]+)$")

_PERIODS = {
    budget_pb2.BUDGET_PERIOD_DAY: "day",
    budget_pb2.BUDGET_PERIOD_MONTH: "month",
    budget_pb2.BUDGET_PERIOD_TOTAL: "total",
}
_PERIOD_ENUMS = {name: number for number, name in _PERIODS.items()}


def budget_id_of(name: str, field: str) -> str:
    match = BUDGET_NAME.match(name)
    if match is None:
        raise invalid(field, "must be \"budgets/{budget}\"")
    return match.group(1)


def _period(value: int, field: str) -> str:
    if value == budget_pb2.BUDGET_PERIOD_UNSPECIFIED:
        return "day"
    if value not in _PERIODS:
        raise invalid(field, "must be DAY, MONTH or TOTAL")
    return _PERIODS[value]


def budget_to_proto(view: BudgetView) -> budget_pb2.Budget:
    budget, spend = view.budget, view.spend
    message = budget_pb2.Budget(
        name=budget.name,
        program=f"programs/{budget.program_id}" if budget.program_id else "",
        api_key_id=budget.api_key_id,
        period=_PERIOD_ENUMS[budget.period],
        limit_micros=budget.limit_micros,
        spent_micros=spend.spent_micros,
        reserved_micros=spend.reserved_micros,
        remaining_micros=max(0, budget.limit_micros - spend.spent_micros - spend.reserved_micros),
        source=budget_pb2.BUDGET_SOURCE_CONFIG if budget.source == "config" else budget_pb2.BUDGET_SOURCE_API,
        period_start_date=view.period_start.isoformat(),
        etag=budget.etag,
    )
    if budget.create_time is not None:
        message.create_time.FromDatetime(budget.create_time)
    if budget.update_time is not None:
        message.update_time.FromDatetime(budget.update_time)
    return message


class BudgetService(budget_pb2_grpc.BudgetServiceServicer):
    def __init__(self, budgets: Budgets) -> None:
        self._budgets = budgets

    async def CreateBudget(self, request: budget_pb2.CreateBudgetRequest, context: grpc.aio.ServicerContext):
        if not request.HasField("budget"):
            raise invalid("budget", "is required")
        budget = request.budget
        program_id = ""
        if budget.program:
            match = PROGRAM_NAME.match(budget.program)
            if match is None:
                raise invalid("budget.program", "must be \"programs/{program}\"")
            program_id = match.group(1)
        created = await self._budgets.create(
            request.budget_id, program_id=program_id, api_key_id=budget.api_key_id,
            period=_period(budget.period, "budget.period"), limit_micros=budget.limit_micros,
        )
        return budget_to_proto(created)

    async def GetBudget(self, request: budget_pb2.GetBudgetRequest, context: grpc.aio.ServicerContext):
        return budget_to_proto(await self._budgets.get(budget_id_of(request.name, "name")))

    async def ListBudgets(self, request: budget_pb2.ListBudgetsRequest, context: grpc.aio.ServicerContext):
        views, token = await self._budgets.list(page_size=request.page_size, page_token=request.page_token)
        return budget_pb2.ListBudgetsResponse(budgets=[budget_to_proto(v) for v in views], next_page_token=token)

    async def UpdateBudget(self, request: budget_pb2.UpdateBudgetRequest, context: grpc.aio.ServicerContext):
        if not request.HasField("budget"):
            raise invalid("budget", "is required")
        budget = request.budget
        budget_id = budget_id_of(budget.name, "budget.name")
        paths = list(request.update_mask.paths)
        if not paths or paths == ["*"]:
            paths = list(UPDATABLE)
        for index, path in enumerate(paths):
            if path not in UPDATABLE:
                raise invalid(f"update_mask.paths[{index}]", f"{path!r} cannot be updated; use {', '.join(UPDATABLE)}")
        updated = await self._budgets.update(
            budget_id,
            limit_micros=budget.limit_micros if "limit_micros" in paths else None,
            period=_period(budget.period, "budget.period") if "period" in paths else None,
            etag=budget.etag,
        )
        return budget_to_proto(updated)

    async def DeleteBudget(self, request: budget_pb2.DeleteBudgetRequest, context: grpc.aio.ServicerContext):
        await self._budgets.delete(budget_id_of(request.name, "name"), etag=request.etag)
        return empty_pb2.Empty()
