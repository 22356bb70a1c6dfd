"""OptimizationService: translation between requests and :class:`~..app.optimizations.Optimizations`."""

from __future__ import annotations

import grpc
from dspy_grpc.v1 import optimization_pb2, optimization_pb2_grpc

from ..app.optimizations import Optimizations
from ..core.errors import invalid
from .optimize_convert import candidate_to_proto, optimization_request, optimization_to_proto, resource_id


class OptimizationService(optimization_pb2_grpc.OptimizationServiceServicer):
    def __init__(self, optimizations: Optimizations) -> None:
        self._optimizations = optimizations

    async def CreateOptimization(
        self, request: optimization_pb2.CreateOptimizationRequest, context: grpc.aio.ServicerContext
    ):
        if not request.HasField("optimization"):
            raise invalid("optimization", "is required")
        record = await self._optimizations.create(request.optimization_id, optimization_request(request.optimization))
        return optimization_to_proto(record)

    async def GetOptimization(self, request: optimization_pb2.GetOptimizationRequest, context: grpc.aio.ServicerContext):
        return optimization_to_proto(await self._optimizations.get(resource_id("optimization", request.name, "name")))

    async def ListOptimizations(
        self, request: optimization_pb2.ListOptimizationsRequest, context: grpc.aio.ServicerContext
    ):
        records, token = await self._optimizations.list(page_size=request.page_size, page_token=request.page_token)
        return optimization_pb2.ListOptimizationsResponse(
            optimizations=[optimization_to_proto(r) for r in records], next_page_token=token
        )

    async def CancelOptimization(
        self, request: optimization_pb2.CancelOptimizationRequest, context: grpc.aio.ServicerContext
    ):
        return optimization_to_proto(
            await self._optimizations.cancel(resource_id("optimization", request.name, "name"))
        )

    async def WatchOptimization(
        self, request: optimization_pb2.WatchOptimizationRequest, context: grpc.aio.ServicerContext
    ):
        job_id = resource_id("optimization", request.name, "name")
        async for record, _events in self._optimizations.watch(job_id):
            yield optimization_pb2.WatchOptimizationResponse(optimization=optimization_to_proto(record))

    async def ListOptimizationCandidates(
        self, request: optimization_pb2.ListOptimizationCandidatesRequest, context: grpc.aio.ServicerContext
    ):
        candidates, token = await self._optimizations.candidates(
            resource_id("optimization", request.parent, "parent"), page_size=request.page_size,
            page_token=request.page_token,
        )
        return optimization_pb2.ListOptimizationCandidatesResponse(
            candidates=[candidate_to_proto(c) for c in candidates], next_page_token=token
        )
