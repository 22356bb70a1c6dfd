"""With Redis configured, a deployment's limits hold across replicas, and identical concurrent cache
misses on different replicas make one upstream call."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dspy_grpc.v1 import lm_pb2_grpc

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.integration.test_lm_service import complete_request
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def two_replicas(server_factory, **shared):
    first, second = await server_factory(**shared), await server_factory(**shared)
    return (grpc.aio.insecure_channel(f"127.0.0.1:{first.port}"),
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}"))


async def test_identical_misses_on_two_replicas_make_one_upstream_call(server_factory, mock_lm, redis_url):
    mock_lm.default_reply = MockReply(text="the one answer", delay_s=0.3)
    a, b = await two_replicas(server_factory, cache_redis_url=redis_url)
    async with a, b:
        request = complete_request(messages=[{"role": "user", "content": "same question everywhere"}])
        answers = await asyncio.gather(*(lm_pb2_grpc.LMServiceStub(channel).Complete(request, timeout=10)
                                         for channel in (a, b, a, b)))
    assert {answer.choices[0].text for answer in answers} == {"the one answer"}
    assert len(mock_lm.completion_requests) == 1
    assert sum(answer.cache_hit for answer in answers) == 3


async def test_max_in_flight_is_global_with_redis(server_factory, mock_lm, redis_url):
    mock_lm.default_reply = MockReply(text="slow", delay_s=0.15)
    model = mock_model_config(mock_lm.base_url, max_in_flight=2)
    a, b = await two_replicas(server_factory, models=(model, BUILTIN_DUMMY), cache_redis_url=redis_url,
                              cache_enabled=False)
    async with a, b:
        calls = [lm_pb2_grpc.LMServiceStub(a if i % 2 else b).Complete(
            complete_request(messages=[{"role": "user", "content": f"question {i}"}]), timeout=30) for i in range(8)]
        answers = await asyncio.gather(*calls)
    assert len(answers) == 8 and len(mock_lm.completion_requests) == 8
    assert mock_lm.max_completions_in_flight == 2  # never 4 (2 per replica)


async def test_rpm_is_global_with_redis(server_factory, mock_lm, redis_url):
    model = mock_model_config(mock_lm.base_url, rpm=3)
    a, b = await two_replicas(server_factory, models=(model, BUILTIN_DUMMY), cache_redis_url=redis_url,
                              cache_enabled=False)
    outcomes = []
    async with a, b:
        for i in range(5):
            try:
                # A short deadline: a call that would have to wait for the bucket is refused at once.
                await lm_pb2_grpc.LMServiceStub(a if i % 2 else b).Complete(
                    complete_request(messages=[{"role": "user", "content": f"rpm {i}"}]), timeout=2)
                outcomes.append("ok")
            except grpc.aio.AioRpcError as error:
                outcomes.append(error_details(error)["reason"])
    assert outcomes == ["ok"] * 3 + ["LM_CAPACITY_EXHAUSTED"] * 2
    assert len(mock_lm.completion_requests) == 3


async def test_without_redis_limits_are_per_replica(server_factory, mock_lm):
    mock_lm.default_reply = MockReply(text="slow", delay_s=0.15)
    model = mock_model_config(mock_lm.base_url, max_in_flight=1)
    a, b = await two_replicas(server_factory, models=(model, BUILTIN_DUMMY), cache_enabled=False)
    async with a, b:
        calls = [lm_pb2_grpc.LMServiceStub(a if i % 2 else b).Complete(
            complete_request(messages=[{"role": "user", "content": f"local {i}"}]), timeout=30) for i in range(6)]
        await asyncio.gather(*calls)
    assert mock_lm.max_completions_in_flight <= 2  # one per replica
