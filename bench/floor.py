"""What no Python gRPC server can go below on this machine: the round trip of a bare grpc.aio server
that does nothing, and a bare aiohttp POST to the mock LM.

    .venv/bin/python -m bench.floor serve [--delay-ms N]   # a bare grpc.aio server; prints its port
    .venv/bin/python -m bench.floor serve --empty-dspy-grpc --config F   # dspy-grpc doing no work

The bare server has the health service and answers ``dspy_grpc.v1.InferenceService/Predict`` with an
empty reply without decoding the request, after ``--delay-ms`` (as if it waited for an LM).
``bench.predict`` starts that server and measures both round trips with the same client it uses
for the real server, so its figures can be read against them; ``bench.load`` drives its Predict
with ghz.

``--empty-dspy-grpc`` serves dspy-grpc itself -- its interceptor, server options, event loop and GC
settings, as ``dspy-grpc serve`` runs them in one process -- with ``InferenceService.Predict``
answering an empty reply at once: what a call costs here before any program work (``bench.load``
reports it beside the real Predict). It prints the server's usual "listening on" line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class _Healthy(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):  # noqa: N802 - gRPC method name
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _bare_predict(delay_s: float) -> grpc.GenericRpcHandler:
    async def predict(request: bytes, context) -> bytes:
        if delay_s:
            await asyncio.sleep(delay_s)
        return b""

    handler = grpc.unary_unary_rpc_method_handler(predict)  # no (de)serializers: raw bytes
    return grpc.method_handlers_generic_handler("dspy_grpc.v1.InferenceService", {"Predict": handler})


async def serve(delay_s: float = 0.0) -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Healthy(), server)
    server.add_generic_rpc_handlers((_bare_predict(delay_s),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"BARE GRPC READY {port}", flush=True)
    await server.wait_for_termination()


async def grpc_round_trips(port: int, calls: int) -> list[float]:
    """Sequential unary calls to the bare server, in seconds each."""

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        for _ in range(50):
            await stub.Check(request, timeout=30)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await stub.Check(request, timeout=30)
            latencies.append(time.perf_counter() - started)
        return latencies


async def http_round_trips(base_url: str, calls: int) -> list[float]:
    """Sequential chat completion POSTs straight to the mock LM, in seconds each."""

    async with aiohttp.ClientSession() as session:
        latencies = []
        for i in range(calls + 50):
            body = {"model": "mock-model", "messages": [{"role": "user", "content": f"Floor {i}?"}]}
            started = time.perf_counter()
            async with session.post(f"{base_url}/chat/completions", json=body) as response:
                response.raise_for_status()
                await response.read()
            if i >= 50:
                latencies.append(time.perf_counter() - started)
        return latencies


def serve_empty_dspy_grpc(config_path: str) -> None:
    from dspy_grpc.v1 import inference_pb2

    from dspy_grpc_server.api import server
    from dspy_grpc_server.api.inference_service import InferenceService
    from dspy_grpc_server.app.config import load_config
    from dspy_grpc_server.app.event_loop import run_serving

    async def predict(self, request, context):  # noqa: ANN001 - the servicer's signature
        return inference_pb2.PredictResponse()

    InferenceService.Predict = predict  # a measurement of everything but the work
    run_serving(server.serve(load_config(config_path)))


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit(__doc__)
    parser = argparse.ArgumentParser(prog="python -m bench.floor serve")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait this long before answering Predict")
    parser.add_argument("--empty-dspy-grpc", action="store_true",
                        help="serve dspy-grpc itself with Predict answering an empty reply (needs --config)")
    parser.add_argument("--config", help="the server config for --empty-dspy-grpc")
    args = parser.parse_args(sys.argv[2:])
    if args.empty_dspy_grpc:
        serve_empty_dspy_grpc(args.config)
    else:
        asyncio.run(serve(args.delay_ms / 1000))
