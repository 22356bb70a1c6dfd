"""What no Python gRPC server can go below on this machine: the round trip of a bare grpc.aio server
that does nothing, and a bare aiohttp POST to the mock LM.

    .venv/bin/python -m bench.floor serve    # a bare grpc.aio server (health service only); prints its port

``bench.predict`` starts that server and measures both round trips with the same client it uses
for the real server, so its figures can be read against them.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class _Healthy(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):  # noqa: N802 - gRPC method name
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def serve() -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Healthy(), server)
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


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit(__doc__)
    asyncio.run(serve())
