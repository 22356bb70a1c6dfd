"""Installing the OpenTelemetry SDK for one application, from the config's [telemetry] table.

Nothing is exported by default: spans are only recorded when an exporter is attached (OTLP from
``telemetry.otlp_endpoint``, or one added in-process with :meth:`TelemetrySetup.add_span_exporter`),
and metrics only go to the OTLP endpoint and/or the Prometheus reader when those are configured.
The SDK providers belong to this application (they are not installed globally), so several servers
in one process keep their telemetry apart.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import metadata

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from ..core import telemetry
from .config import Config

log = logging.getLogger("dspy_grpc_server.app")


def _version() -> str:
    try:
        return metadata.version("dspy-grpc-server")
    except metadata.PackageNotFoundError:
        return "0"


class TelemetrySetup:
    """The SDK providers of one application and the :class:`~..core.telemetry.Telemetry` facade
    that the code records into (:attr:`telemetry`)."""

    def __init__(self, config: Config) -> None:
        self._resource = Resource.create(
            {"service.name": config.telemetry_service_name, "service.version": _version()}
        )
        self.tracer_provider: TracerProvider | None = None
        #: The reader the Prometheus endpoint collects from (``None`` unless enabled).
        self.prometheus_reader: InMemoryMetricReader | None = None
        readers: list[MetricReader] = []
        if config.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            self._tracing().add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.otlp_endpoint)))
            readers.append(PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=config.otlp_endpoint),
                export_interval_millis=config.metrics_export_interval_s * 1000,
            ))
            log.info("exporting telemetry over OTLP to %s", telemetry.safe_url(config.otlp_endpoint))
        if config.prometheus_enabled:
            self.prometheus_reader = InMemoryMetricReader()
            readers.append(self.prometheus_reader)
        self.meter_provider = MeterProvider(metric_readers=readers, resource=self._resource) if readers else None
        self.telemetry = telemetry.Telemetry(
            self.tracer_provider, self.meter_provider, capture_content=config.telemetry_capture_content
        )

    def _tracing(self) -> TracerProvider:
        if self.tracer_provider is None:
            self.tracer_provider = TracerProvider(resource=self._resource)
        return self.tracer_provider

    def add_span_exporter(self, exporter: SpanExporter, *, batch: bool = False) -> None:
        """Also send every span to ``exporter`` (for embedding and tests; e.g. an in-memory one)."""

        provider = self._tracing()
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        if hasattr(self, "telemetry"):
            self.telemetry.set_tracer_provider(provider)

    async def aclose(self) -> None:
        """Flush and shut down the providers (exporting what is still buffered)."""

        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                await asyncio.to_thread(provider.shutdown)
