"""A loopback OTLP/gRPC collector for tests: keeps every span and metric export it receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Collector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.span_exports: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metric_exports: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.received = asyncio.Condition()
        self.endpoint = ""

    async def Export(self, request, context):  # noqa: N802 - both services name their one method Export
        async with self.received:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.span_exports.append(request)
                response = trace_service_pb2.ExportTraceServiceResponse()
            else:
                self.metric_exports.append(request)
                response = metrics_service_pb2.ExportMetricsServiceResponse()
            self.received.notify_all()
        return response

    def spans(self) -> list:
        return [span for export in self.span_exports for resource in export.resource_spans
                for scope in resource.scope_spans for span in scope.spans]

    def gauge_points(self, name: str) -> list[list]:
        """Per metric export: the data points of gauge ``name`` in it."""

        per_export = []
        for export in self.metric_exports:
            points = [point for resource in export.resource_metrics for scope in resource.scope_metrics
                      for metric in scope.metrics if metric.name == name for point in metric.gauge.data_points]
            per_export.append(points)
        return per_export

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self.received:
            await self.received.wait_for(predicate)


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.Export = collector.Export


@asynccontextmanager
async def otlp_collector() -> AsyncIterator[Collector]:
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(collector), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    collector.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield collector
    finally:
        await server.stop(0)
