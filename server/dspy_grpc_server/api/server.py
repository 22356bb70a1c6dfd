"""The gRPC server: services, health, reflection, limits, keepalive and graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

import grpc
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc
from dspy_grpc.v1 import optimization_pb2, optimization_pb2_grpc
from dspy_grpc.v1 import lm_pb2, lm_pb2_grpc
from dspy_grpc.v1 import program_admin_pb2, program_admin_pb2_grpc
from dspy_grpc.v1 import job_admin_pb2, job_admin_pb2_grpc
from dspy_grpc.v1 import budget_pb2, budget_pb2_grpc
from dspy_grpc.v1 import usage_pb2, usage_pb2_grpc
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..app.application import Application, ProcessRole
from ..app.config import Config
from .budget_service import BudgetService
from .corpus_service import CorpusService
from .dataset_service import DatasetService
from .evaluation_service import EvaluationService
from .inference_service import InferenceService
from .lm_service import LMService
from .optimization_service import OptimizationService
from ..ops.servers import OpsServers, start_ops_servers
from .authorization import Authorizer
from .interceptors import CallInterceptor
from .job_admin_service import JobAdminService
from .program_service import ProgramService
from .program_admin_service import ProgramAdminService
from .usage_service import UsageService
from ..app.program_admin import ProgramAdmin

log = logging.getLogger("dspy_grpc_server.api")

SERVICE_NAMES = (
    program_pb2.DESCRIPTOR.services_by_name["ProgramService"].full_name,
    inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
    dataset_pb2.DESCRIPTOR.services_by_name["DatasetService"].full_name,
    evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    optimization_pb2.DESCRIPTOR.services_by_name["OptimizationService"].full_name,
    lm_pb2.DESCRIPTOR.services_by_name["LMService"].full_name,
    program_admin_pb2.DESCRIPTOR.services_by_name["ProgramAdminService"].full_name,
    job_admin_pb2.DESCRIPTOR.services_by_name["JobAdminService"].full_name,
    budget_pb2.DESCRIPTOR.services_by_name["BudgetService"].full_name,
    usage_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name,
    corpus_pb2.DESCRIPTOR.services_by_name["CorpusService"].full_name,
)


#: Collector thresholds while serving (young generation, then how many collections of each
#: generation trigger one of the next).
GC_THRESHOLDS = (10_000, 20, 20)


def _options(config: Config) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.keepalive_time_ms", int(config.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # Several processes (serve --workers N) share the port; one process alone must own it.
        ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
    ]


class RunningServer:
    """A started server; :attr:`port` is the bound port (useful when the config asked for 0)."""

    def __init__(self, server: grpc.aio.Server, app: Application, health_servicer: health.aio.HealthServicer, port: int):
        self.server = server
        self.app = app
        self.health = health_servicer
        self.port = port
        #: "SERVING" until :meth:`stop` begins (shown on the dashboard).
        self.status = "SERVING"
        #: The dashboard and Prometheus side servers (ports are None when off).
        self.ops = OpsServers()

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let in-flight ones finish within ``grace`` seconds, then close."""

        grace = self.app.config.grace_period_s if grace is None else grace
        self.status = "NOT_SERVING"
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
        await self.ops.stop()
        await self.app.aclose()


async def start_server(config: Config, role: ProcessRole = ProcessRole()) -> RunningServer:
    """Start serving (and running jobs, unless ``role`` leaves them to a job-runner process)."""

    app = await Application.start(config, role)
    authorizer = Authorizer(app.api_keys if config.auth_enabled else None,
                            open_health=config.auth_open_health, open_reflection=config.auth_open_reflection)
    server = grpc.aio.server(interceptors=[CallInterceptor(app.telemetry, authorizer)], options=_options(config))
    program_pb2_grpc.add_ProgramServiceServicer_to_server(ProgramService(app.programs), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InferenceService(app.inference), server)
    dataset_pb2_grpc.add_DatasetServiceServicer_to_server(DatasetService(app.datasets), server)
    corpus_pb2_grpc.add_CorpusServiceServicer_to_server(CorpusService(app.corpora), server)
    evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(EvaluationService(app.evaluations), server)
    optimization_pb2_grpc.add_OptimizationServiceServicer_to_server(OptimizationService(app.optimizations), server)
    lm_pb2_grpc.add_LMServiceServicer_to_server(LMService(app.registry, app.live_traffic), server)
    program_admin_pb2_grpc.add_ProgramAdminServiceServicer_to_server(
        ProgramAdminService(ProgramAdmin(app.workers, app.quarantine_store)), server
    )
    job_admin_pb2_grpc.add_JobAdminServiceServicer_to_server(JobAdminService(app.jobs), server)
    budget_pb2_grpc.add_BudgetServiceServicer_to_server(BudgetService(app.budgets), server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(app.usage), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = _add_port(server, config)
    if port == 0:
        await app.aclose()
        raise OSError(f"could not bind {config.host}:{config.port}")
    await server.start()
    await app.start_jobs()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving on %s:%d%s", config.host, port, " (TLS)" if config.tls_cert_file else "")
    running = RunningServer(server, app, health_servicer, port)
    try:
        running.ops = await start_ops_servers(app, authorizer, health=lambda: running.status)
    except BaseException:
        await running.stop(grace=0)
        raise
    return running


def _add_port(server: grpc.aio.Server, config: Config) -> int:
    """Bind the gRPC port: plaintext, TLS, or mutual TLS when a client CA is configured."""

    address = f"{config.host}:{config.port}"
    if not config.tls_cert_file:
        return server.add_insecure_port(address)
    with open(config.tls_key_file, "rb") as key, open(config.tls_cert_file, "rb") as cert:
        pair = (key.read(), cert.read())
    client_ca = None
    if config.tls_client_ca_file:
        with open(config.tls_client_ca_file, "rb") as ca:
            client_ca = ca.read()
    credentials = grpc.ssl_server_credentials([pair], root_certificates=client_ca,
                                              require_client_auth=client_ca is not None)
    return server.add_secure_port(address, credentials)


async def serve(config: Config, role: ProcessRole = ProcessRole()) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""

    running = await start_server(config, role)
    # What is loaded by now (modules, wiring) lives as long as the process: freezing it keeps it out
    # of the collector's full passes, each of which would otherwise stall the event loop ~0.1 s.
    gc.collect()
    gc.freeze()
    # Calls in flight hold thousands of short-lived containers, so the default young-generation
    # threshold (700) ran a collection every dozen calls at 64 in flight, each scanning every
    # in-flight object (~10% of the CPU per call). Reference counting frees almost all of them;
    # the collector only needs to find the rare cycle.
    gc.set_threshold(*GC_THRESHOLDS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # One write, newline included: print() may write the text and its newline separately, and a log
    # line another process of this server writes to the same pipe could land between them.
    sys.stdout.write(f"dspy-grpc listening on {config.host}:{running.port}\n")
    sys.stdout.flush()
    await stop.wait()
    log.info("shutting down: draining in-flight calls for up to %.1fs", config.grace_period_s)
    await running.stop()
