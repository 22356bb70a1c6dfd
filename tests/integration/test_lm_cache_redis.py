"""The response cache on a real redis-server (the ``redis_url`` fixture: a private one on a free loopback
port): answers are shared between servers and survive a restart."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as redis
from dspy_grpc.v1 import lm_pb2, lm_pb2_grpc

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.cache import REDIS_NAMESPACE
from tests.conftest import mock_model_config
from tests.integration.test_lm_service import complete_request
from tests.services import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


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
