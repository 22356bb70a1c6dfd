"""The response cache on a real redis-server (started here on a free loopback port): answers are
shared between servers and survive a restart. Skipped without the binary, except in CI."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess

import grpc
import pytest
import redis.asyncio as redis
from dspy_grpc.v1 import lm_pb2, lm_pb2_grpc

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.cache import REDIS_NAMESPACE
from tests.conftest import mock_model_config
from tests.integration.test_lm_service import complete_request

pytestmark = pytest.mark.asyncio(loop_scope="session")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def redis_url():
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (CI installs it in .ci/run)")
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    if await client.ping():
                        break
                except redis.ConnectionError:
                    await asyncio.sleep(0.05)
        yield url
    finally:
        await client.aclose()
        process.terminate()
        process.wait(timeout=10)


async def test_redis_cache_is_shared_between_servers(server_factory, mock_lm, redis_url):
    models = (mock_model_config(mock_lm.base_url), BUILTIN_DUMMY)
    first = await server_factory(models=models, cache_redis_url=redis_url)
    second = await server_factory(models=models, cache_redis_url=redis_url)
    mock_lm.enqueue("from the provider")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a, \
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b:
        fresh = await lm_pb2_grpc.LMServiceStub(a).Complete(complete_request(), timeout=10)
        shared = await lm_pb2_grpc.LMServiceStub(b).Complete(complete_request(), timeout=10)
        status = await lm_pb2_grpc.LMServiceStub(b).GetProviderStatus(lm_pb2.GetProviderStatusRequest(model="mock"))
    assert not fresh.cache_hit and shared.cache_hit
    assert shared.choices[0].text == "from the provider" and shared.usage.total_tokens == 0
    assert len(mock_lm.completion_requests) == 1
    assert status.models[0].cache.backend == "redis" and status.models[0].cache.hits == 1

    client = redis.Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{REDIS_NAMESPACE}*")
        assert len(keys) == 1
        assert 0 < await client.ttl(keys[0]) <= 24 * 3600  # entries expire
    finally:
        await client.aclose()


async def test_an_unreachable_redis_is_a_miss_not_a_failure(server_factory, mock_lm):
    url = f"redis://127.0.0.1:{free_port()}/0"
    running = await server_factory(models=(mock_model_config(mock_lm.base_url), BUILTIN_DUMMY), cache_redis_url=url)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        for _ in range(2):
            response = await lm_pb2_grpc.LMServiceStub(channel).Complete(complete_request(), timeout=10)
            assert not response.cache_hit
    assert len(mock_lm.completion_requests) == 2
