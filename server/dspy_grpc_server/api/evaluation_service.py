"""EvaluationService: translation between requests and :class:`~..app.evaluations.Evaluations`."""

from __future__ import annotations

import grpc
from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc

from ..app.evaluations import Evaluations
from ..core.errors import invalid
from .optimize_convert import evaluation_request, evaluation_result_to_proto, evaluation_to_proto, resource_id


class EvaluationService(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, evaluations: Evaluations) -> None:
        self._evaluations = evaluations

    async def CreateEvaluation(self, request: evaluation_pb2.CreateEvaluationRequest, context: grpc.aio.ServicerContext):
        if not request.HasField("evaluation"):
            raise invalid("evaluation", "is required")
        record = await self._evaluations.create(request.evaluation_id, evaluation_request(request.evaluation))
        return evaluation_to_proto(record)

    async def GetEvaluation(self, request: evaluation_pb2.GetEvaluationRequest, context: grpc.aio.ServicerContext):
        return evaluation_to_proto(await self._evaluations.get(resource_id("evaluation", request.name, "name")))

    async def ListEvaluations(self, request: evaluation_pb2.ListEvaluationsRequest, context: grpc.aio.ServicerContext):
        records, token = await self._evaluations.list(page_size=request.page_size, page_token=request.page_token)
        return evaluation_pb2.ListEvaluationsResponse(
            evaluations=[evaluation_to_proto(r) for r in records], next_page_token=token
        )

    async def CancelEvaluation(self, request: evaluation_pb2.CancelEvaluationRequest, context: grpc.aio.ServicerContext):
        return evaluation_to_proto(await self._evaluations.cancel(resource_id("evaluation", request.name, "name")))

    async def WatchEvaluation(self, request: evaluation_pb2.WatchEvaluationRequest, context: grpc.aio.ServicerContext):
        job_id = resource_id("evaluation", request.name, "name")
        async for record, events in self._evaluations.watch_results(job_id):
            yield evaluation_pb2.WatchEvaluationResponse(
                evaluation=evaluation_to_proto(record), results=[evaluation_result_to_proto(e) for e in events]
            )

    async def ListEvaluationResults(
        self, request: evaluation_pb2.ListEvaluationResultsRequest, context: grpc.aio.ServicerContext
    ):
        results, token = await self._evaluations.results(
            resource_id("evaluation", request.parent, "parent"), page_size=request.page_size,
            page_token=request.page_token,
        )
        return evaluation_pb2.ListEvaluationResultsResponse(
            results=[evaluation_result_to_proto(r) for r in results], next_page_token=token
        )
