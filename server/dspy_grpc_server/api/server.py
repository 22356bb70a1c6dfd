"""The gRPC server: services, health, reflection, limits, keepalive and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..app.application import Application
from ..app.config import Config
from .inference_service import InferenceService
from .interceptors import ErrorMappingInterceptor
from .program_service import ProgramService

log = logging.getLogger("dspy_grpc_server.api")

SERVICE_NAMES = (
    program_pb2.DESCRIPTOR.services_by_name["ProgramService"].full_name,
    inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
)


def _options(config: Config) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.keepalive_time_ms", int(config.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.so_reuseport", 0),
    ]


class RunningServer:
    """A started server; :attr:`port` is the bound port (useful when the config asked for 0)."""

    def __init__(self, server: grpc.aio.Server, app: Application, health_servicer: health.aio.HealthServicer, port: int):
        self.server = server
        self.app = app
        self.health = health_servicer
        self.port = port

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let in-flight ones finish within ``grace`` seconds, then close."""

        grace = self.app.config.grace_period_s if grace is None else grace
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
        await self.app.aclose()


async def start_server(config: Config) -> RunningServer:
    app = await Application.start(config)
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()], options=_options(config))
    program_pb2_grpc.add_ProgramServiceServicer_to_server(ProgramService(app.programs), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InferenceService(app.inference), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        await app.aclose()
        raise OSError(f"could not bind {config.host}:{config.port}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving on %s:%d", config.host, port)
    return RunningServer(server, app, health_servicer, port)


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""

    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"dspy-grpc listening on {config.host}:{running.port}", flush=True)
    await stop.wait()
    log.info("shutting down: draining in-flight calls for up to %.1fs", config.grace_period_s)
    await running.stop()
