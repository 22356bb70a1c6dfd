"""UsageService: translation between requests and :class:`~..app.usage_queries.UsageQueries`."""

from __future__ import annotations

from datetime import date

import grpc
from dspy_grpc.v1 import usage_pb2, usage_pb2_grpc

from ..app.usage_queries import UsageQueries
from ..core.errors import invalid
from ..store.usage import UsageQuery, UsageSummary
from .convert import program_name, program_ref

PERIODS = {
    usage_pb2.USAGE_PERIOD_UNSPECIFIED: "total",
    usage_pb2.USAGE_PERIOD_TOTAL: "total",
    usage_pb2.USAGE_PERIOD_DAY: "day",
    usage_pb2.USAGE_PERIOD_MONTH: "month",
}
DIMENSIONS = {
    usage_pb2.USAGE_DIMENSION_PROGRAM: "program",
    usage_pb2.USAGE_DIMENSION_API_KEY: "api_key",
    usage_pb2.USAGE_DIMENSION_MODEL: "model",
}


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else _bad_day(field, text)
    except ValueError:
        return _bad_day(field, text)


def _bad_day(field: str, text: str) -> date:
    raise invalid(field, f"{text!r} is not a day of the form YYYY-MM-DD")


def _program_id(name: str, index: int) -> str:
    return program_ref(name, f"programs[{index}]", allow_revision=False).program_id if name else ""


def query_from_proto(request: usage_pb2.QueryUsageRequest) -> UsageQuery:
    if request.period not in PERIODS:
        raise invalid("period", f"unknown period {request.period}")
    group_by = []
    for index, dimension in enumerate(request.group_by):
        if dimension not in DIMENSIONS:
            raise invalid(f"group_by[{index}]", f"unknown dimension {dimension}")
        group_by.append(DIMENSIONS[dimension])
    return UsageQuery(
        program_ids=tuple(_program_id(name, index) for index, name in enumerate(request.programs)),
        api_key_ids=tuple(request.api_key_ids),
        models=tuple(request.models),
        start_day=_day(request.start_day, "start_day"),
        end_day=_day(request.end_day, "end_day"),
        period=PERIODS[request.period],
        group_by=tuple(group_by),
    )


def row_to_proto(row: UsageSummary) -> usage_pb2.UsageRow:
    return usage_pb2.UsageRow(
        period=row.period, program=program_name(row.program_id) if row.program_id else "",
        api_key_id=row.api_key_id, model=row.model, calls=row.calls, cache_hits=row.cache_hits,
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
        estimated_calls=row.estimated_calls, cost_usd=row.cost_usd,
    )


class UsageService(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, usage: UsageQueries) -> None:
        self._usage = usage

    async def QueryUsage(self, request, context: grpc.aio.ServicerContext):
        rows, token, total = await self._usage.query(
            query_from_proto(request), page_size=request.page_size, page_token=request.page_token
        )
        return usage_pb2.QueryUsageResponse(
            rows=[row_to_proto(row) for row in rows], next_page_token=token, total=row_to_proto(total)
        )
