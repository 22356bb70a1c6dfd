"""Benchmark: LMService.Complete through the server vs the same request sent straight to the mock.

    make bench-lm            # or: .venv/bin/python -m bench.lm_gateway --calls 2000 --concurrency 64

Starts the mock LM (``python -m tests.mocklm``) and the dspy-grpc server (cache off, so every call
goes upstream) as subprocesses, then measures:

* per-call latency, one call at a time: a direct aiohttp POST to the mock (the HTTP client the
  server's providers use) vs Complete over gRPC; the
  overhead is the difference of the two at p50 and p99 (worker, limiter, breaker, router, usage
  accounting, gRPC and protobuf on both sides);
* throughput with ``--concurrency`` calls in flight (64 by default), both ways, in calls/s.

Everything runs on this machine (2 cores here): client, server and mock compete for the CPUs, so
the figures are an upper bound on the overhead a real deployment would see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
from dspy_grpc.v1 import lm_pb2, lm_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hi"}]

CONFIG = """
[cache]
enabled = false

[[models]]
alias = "mock"
provider = "openai"
model = "mock-model"
base_url = "{base_url}"
max_retries = 0
"""


async def _start(cmd: list[str], ready: str, env: dict[str, str] | None = None):
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, cwd=ROOT,
    )
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError(f"{' '.join(cmd[:3])} exited before it was ready")
        if line.startswith(ready):
            return process, line.split()[-1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(call, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return latencies


async def throughput(call, n: int, concurrency: int) -> float:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    mock, base_url = await _start(
        [sys.executable, "-m", "tests.mocklm", "--port", "0", "--latency-ms", str(args.latency_ms)], "MOCKLM READY"
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG.format(base_url=base_url))
        server, address = await _start(
            [sys.executable, "-m", "dspy_grpc_server", "serve", "--config", str(config), "--port", "0",
             "--database-url", f"sqlite+aiosqlite:///{tmp}/bench.db", "--log-level", "WARNING"],
            "dspy-grpc listening on",
        )
        try:
            body = {"model": "mock-model", "messages": MESSAGES}
            request = lm_pb2.CompleteRequest(model="mock", messages=[lm_pb2.LMMessage(**m) for m in MESSAGES])
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            async with grpc.aio.insecure_channel(address) as channel:
                stub = lm_pb2_grpc.LMServiceStub(channel)

                async def direct() -> None:
                    async with session.post(f"{base_url}/chat/completions", json=body) as response:
                        response.raise_for_status()
                        await response.json()

                async def service() -> None:
                    await stub.Complete(request, timeout=30)

                for call in (direct, service):  # warm up connections and code paths
                    await throughput(call, 200, 8)
                direct_lat = await sequential(direct, args.calls // 2)
                service_lat = await sequential(service, args.calls // 2)
                direct_rate = await throughput(direct, args.calls, args.concurrency)
                service_rate = await throughput(service, args.calls, args.concurrency)
            await session.close()
        finally:
            for process in (server, mock):
                process.terminate()
                await process.wait()

    ms = 1000.0
    print(f"mock latency {args.latency_ms:g} ms; {args.calls // 2} sequential calls each way, "
          f"{args.calls} calls at {args.concurrency} in flight")
    print(f"{'':24}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in (("direct aiohttp -> mock", direct_lat), ("Complete via server", service_lat)):
        print(f"{name:24}{percentile(values, 0.5) * ms:10.3f}{percentile(values, 0.99) * ms:10.3f}"
              f"{statistics.fmean(values) * ms:10.3f}")
    print(f"{'overhead per call':24}{(percentile(service_lat, 0.5) - percentile(direct_lat, 0.5)) * ms:10.3f}"
          f"{(percentile(service_lat, 0.99) - percentile(direct_lat, 0.99)) * ms:10.3f}"
          f"{(statistics.fmean(service_lat) - statistics.fmean(direct_lat)) * ms:10.3f}")
    print(f"calls/s at {args.concurrency} in flight: direct {direct_rate:,.0f}, via server {service_rate:,.0f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lm_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls for the throughput runs (half that sequential)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight for the throughput runs")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency the mock adds to every completion")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
