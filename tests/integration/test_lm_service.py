"""LMService through a real server on loopback, against the real mock LM servers (OpenAI and
Anthropic protocols) with fault injection: retries, fail-over, circuit breaker, limits, cache,
coalescing, budgets, supervision and streaming."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, lm_pb2, lm_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.config import BudgetConfig, DeploymentConfig, ModelConfig
from dspy_grpc_server.store.usage import UsageLedgerStore
from tests.conftest import MOCK_KEY, MOCK_KEY_ENV, mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.mocklm import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

HELLO = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hi"}]


def complete_request(model: str = "mock", messages=None, **fields) -> lm_pb2.CompleteRequest:
    return json_format.ParseDict({"model": model, "messages": messages or HELLO, **fields}, lm_pb2.CompleteRequest())


def stream_request(model: str = "mock", messages=None, **fields) -> lm_pb2.StreamCompleteRequest:
    return json_format.ParseDict({"model": model, "messages": messages or HELLO, **fields},
                                 lm_pb2.StreamCompleteRequest())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start(server_factory, *models: ModelConfig, **overrides):
    running = await server_factory(models=(*models, BUILTIN_DUMMY), **overrides)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    return running, channel, lm_pb2_grpc.LMServiceStub(channel)


async def status_of(stub, model: str) -> lm_pb2.ModelStatus:
    return (await stub.GetProviderStatus(lm_pb2.GetProviderStatusRequest(model=model))).models[0]


async def until(predicate, *, timeout: float = 10.0) -> None:
    """Poll ``predicate`` (async) until it holds; fail if it never does."""

    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
async def lm(server_factory, mock_lm):
    running, channel, stub = await start(
        server_factory, mock_model_config(mock_lm.base_url, input_price_per_1m=1.0, output_price_per_1m=2.0)
    )
    async with channel:
        yield stub


# ---------------------------------------------------------------------------------------- Complete


async def test_complete_returns_choices_usage_cost_and_sends_the_exact_request(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="hi", usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}))
    response = await lm.Complete(complete_request(
        options={"temperature": 0.5, "stop": ["END"]}, n=1, rollout_id=7,
        response_format={"type": "json_object"}), timeout=10)
    assert [c.text for c in response.choices] == ["hi"]
    assert response.choices[0].finish_reason == "stop"
    assert response.deployment == "mock/0" and response.model == "mock-model" and not response.cache_hit
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1000, 500)
    assert response.usage.cost_usd == pytest.approx(0.002)  # 1000 * $1/1M + 500 * $2/1M
    assert mock_lm.last_request.json == {
        "model": "mock-model", "messages": HELLO, "temperature": 0.5, "stop": ["END"],
        "response_format": {"type": "json_object"},
    }  # rollout_id and the cache policy are never sent
    assert mock_lm.last_request.headers["authorization"] == f"Bearer {MOCK_KEY}"


async def test_openai_tool_calls_round_trip(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="", tool_calls=({"name": "weather", "arguments": {"city": "Paris"}},)))
    tool = {"name": "weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    response = await lm.Complete(complete_request(tools=[tool], tool_choice="weather"), timeout=10)
    call = response.choices[0].tool_calls[0]
    assert (call.name, call.arguments, response.choices[0].finish_reason) == ("weather", '{"city": "Paris"}',
                                                                            "tool_calls")
    sent = mock_lm.last_request.json
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


@pytest.mark.parametrize(("fields", "field"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"n": -1}, "n"),
    ({"tool_choice": "nope"}, "tool_choice"),
    ({"model": ""}, "model"),
])
async def test_bad_requests_name_the_field(lm, fields, field):
    request = json_format.ParseDict({"model": "mock", "messages": HELLO, **fields}, lm_pb2.CompleteRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]


async def test_unknown_model_is_not_found(lm):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(complete_request("nope"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_details(caught.value)["reason"] == "MODEL_NOT_FOUND"


async def test_list_models_pages_and_hides_endpoints(lm, mock_lm):
    first = await lm.ListModels(lm_pb2.ListModelsRequest(page_size=1))
    assert [m.alias for m in first.models] == ["mock"] and first.next_page_token
    second = await lm.ListModels(lm_pb2.ListModelsRequest(page_size=1, page_token=first.next_page_token))
    assert [m.alias for m in second.models] == ["dummy"] and not second.next_page_token
    deployment = first.models[0].deployments[0]
    assert (deployment.name, deployment.provider, deployment.model) == ("mock/0", "openai", "mock-model")
    assert mock_lm.base_url not in str(first)


# ---------------------------------------------------------------------------------------- cache


async def test_cache_hits_bypass_and_refresh_are_visible_in_status(lm, mock_lm):
    first = await lm.Complete(complete_request(), timeout=10)
    second = await lm.Complete(complete_request(), timeout=10)
    assert not first.cache_hit and second.cache_hit
    assert second.choices[0].text == first.choices[0].text
    assert second.usage.total_tokens == 0 and second.usage.cost_usd == 0 and not second.deployment
    assert len(mock_lm.completion_requests) == 1

    await lm.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
    mock_lm.enqueue("fresh")
    refreshed = await lm.Complete(complete_request(options={"cache": "CACHE_POLICY_REFRESH"}), timeout=10)
    assert refreshed.choices[0].text == "fresh" and not refreshed.cache_hit
    assert (await lm.Complete(complete_request(), timeout=10)).choices[0].text == "fresh"
    assert len(mock_lm.completion_requests) == 3
    # A different rollout id is a different cache entry.
    assert not (await lm.Complete(complete_request(rollout_id=1), timeout=10)).cache_hit

    cache = (await status_of(lm, "mock")).cache
    assert cache.backend == "memory"
    assert (cache.hits, cache.misses, cache.coalesced) == (2, 3, 0)  # bypass is not counted
    assert cache.hit_ratio == pytest.approx(2 / 5)


async def test_the_memory_cache_keeps_the_most_recently_used_entries_until_their_ttl(server_factory, mock_lm):
    running, channel, stub = await start(server_factory, mock_model_config(mock_lm.base_url),
                                         cache_max_entries=2, cache_ttl_s=0.5)
    async with channel:
        def asking(text: str) -> lm_pb2.CompleteRequest:
            return complete_request(messages=[{"role": "user", "content": text}])

        for text in ("a", "b", "a", "c"):  # "a" used again, so "b" is the least recently used
            await stub.Complete(asking(text), timeout=10)
        assert len(mock_lm.completion_requests) == 3
        assert (await stub.Complete(asking("a"), timeout=10)).cache_hit
        assert (await stub.Complete(asking("c"), timeout=10)).cache_hit
        assert not (await stub.Complete(asking("b"), timeout=10)).cache_hit  # evicted
        await asyncio.sleep(0.7)
        assert not (await stub.Complete(asking("b"), timeout=10)).cache_hit  # expired


async def test_identical_concurrent_requests_share_one_upstream_call(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="shared", delay_s=0.3))
    responses = await asyncio.gather(*(lm.Complete(complete_request(), timeout=10) for _ in range(5)))
    assert {r.choices[0].text for r in responses} == {"shared"}
    assert len(mock_lm.completion_requests) == 1
    assert sorted(r.cache_hit for r in responses) == [False, True, True, True, True]
    cache = (await status_of(lm, "mock")).cache
    assert (cache.misses, cache.coalesced) == (1, 4)


# ---------------------------------------------------------------------------------------- faults


async def test_server_errors_are_retried_then_succeed(lm, mock_lm):
    mock_lm.enqueue(MockReply.error(502), "recovered")
    response = await lm.Complete(complete_request(), timeout=10)
    assert response.choices[0].text == "recovered"
    deployment = (await status_of(lm, "mock")).deployments[0]
    assert (deployment.retries, deployment.failures) == (1, 1)
    assert deployment.recent_errors[0].reason == "PROVIDER_UNAVAILABLE"


async def test_persistent_server_errors_end_unavailable(lm, mock_lm):
    mock_lm.enqueue(MockReply.error(503, "overloaded"), MockReply.error(503, "overloaded"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(complete_request(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert error_details(caught.value)["reason"] == "PROVIDER_UNAVAILABLE"
    assert MOCK_KEY not in caught.value.details()


async def test_rate_limit_retry_after_is_honoured_within_the_deadline(lm, mock_lm):
    mock_lm.enqueue(MockReply.error(429, retry_after="0.1"), "after the wait")
    assert (await lm.Complete(complete_request(), timeout=10)).choices[0].text == "after the wait"


async def test_rate_limit_longer_than_the_deadline_is_refused_at_once_with_retry_info(lm, mock_lm):
    mock_lm.enqueue(MockReply.error(429, "slow down", retry_after=30))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(complete_request(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error_details(caught.value)
    assert details["reason"] == "PROVIDER_RATE_LIMITED" and details["retry_delay"] == 30
    assert len(mock_lm.completion_requests) == 1
    # The deployment now cools down: the next call is refused without calling the provider.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await lm.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=5)
    assert error_details(again.value)["reason"] == "LM_CAPACITY_EXHAUSTED"
    assert len(mock_lm.completion_requests) == 1
    assert (await status_of(lm, "mock")).deployments[0].cooldown.seconds > 20


async def test_slow_provider_ends_in_deadline_exceeded(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="too late", delay_s=3))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(complete_request(), timeout=1.5)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # The server gives up a little before the caller's deadline, so its typed error arrives.
    assert error_details(caught.value)["reason"] in ("PROVIDER_TIMEOUT", "DEADLINE_EXCEEDED")


async def test_malformed_json_is_a_bad_response(lm, mock_lm):
    mock_lm.enqueue(MockReply(malformed=True))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm.Complete(complete_request(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)["reason"] == "PROVIDER_BAD_RESPONSE"


async def test_stream_cut_midway_ends_the_stream_with_unavailable(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="one two three four", cut_after_chunks=2))
    deltas = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for event in lm.StreamComplete(stream_request(), timeout=10):
            deltas.append(event.text_delta)
    assert deltas == ["one ", "two "]
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert len(mock_lm.completion_requests) == 1  # no retry once output was sent


# ---------------------------------------------------------------------------------------- streaming


async def test_stream_complete_sends_deltas_then_the_whole_completion(lm, mock_lm):
    mock_lm.enqueue(MockReply(text="one two three", usage={"prompt_tokens": 4, "completion_tokens": 3,
                                                            "total_tokens": 7}))
    events = [e async for e in lm.StreamComplete(stream_request(), timeout=10)]
    assert [e.text_delta for e in events[:-1]] == ["one ", "two ", "three"]
    done = events[-1].done
    assert done.choices[0].text == "one two three" and done.usage.total_tokens == 7
    assert done.deployment == "mock/0" and not done.cache_hit
    # The streamed answer was cached: the same request now arrives as a single cached event.
    cached = [e async for e in lm.StreamComplete(stream_request(), timeout=10)]
    assert len(cached) == 1 and cached[0].done.cache_hit and cached[0].done.choices[0].text == "one two three"


async def test_cancelling_stream_complete_closes_the_upstream_stream(lm, mock_lm):
    mock_lm.enqueue(MockReply(text=" ".join(f"w{i}" for i in range(100)), chunk_delay_s=0.05))
    call = lm.StreamComplete(stream_request(), timeout=30)
    first = await call.read()
    assert first.text_delta == "w0 "
    call.cancel()
    await until(lambda: _async(mock_lm.stream_disconnects == 1))
    status = (await status_of(lm, "mock")).deployments[0]
    assert status.in_flight == 0


async def _async(value):
    """``value`` as an awaitable, for :func:`until` conditions that need no RPC."""

    return value


async def test_stream_complete_streams_one_choice_only(lm):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in lm.StreamComplete(stream_request(n=2), timeout=10):
            pass
    assert "n" in error_details(caught.value)["violations"]


# ---------------------------------------------------------------------------------------- breaker, fail-over


async def test_breaker_opens_after_failures_and_recovers_after_a_probe(server_factory, mock_lm):
    model = mock_model_config(mock_lm.base_url, max_retries=0, breaker_failures=2, breaker_reset_s=0.5)
    running, channel, stub = await start(server_factory, model)
    async with channel:
        mock_lm.enqueue(MockReply.error(500), MockReply.error(500))
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        details = error_details(refused.value)
        assert details["reason"] == "CIRCUIT_OPEN" and details["retry_delay"] is not None
        assert len(mock_lm.completion_requests) == 2  # refused without calling the provider
        status = (await status_of(stub, "mock")).deployments[0]
        assert status.breaker_state == lm_pb2.BREAKER_STATE_OPEN and status.breaker_opened == 1

        async def half_open():
            return (await status_of(stub, "mock")).deployments[0].breaker_state == lm_pb2.BREAKER_STATE_HALF_OPEN

        await until(half_open)
        response = await stub.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
        assert response.choices[0].text == "mock reply to: Say hi"
        status = (await status_of(stub, "mock")).deployments[0]
        assert status.breaker_state == lm_pb2.BREAKER_STATE_CLOSED and status.consecutive_failures == 0


async def test_failing_deployment_fails_over_to_the_next_one(server_factory, mock_lm):
    dead = DeploymentConfig(provider="openai", model="m", name="dead", base_url=f"http://127.0.0.1:{closed_port()}/v1",
                            max_retries=0, weight=1000.0)
    alive = DeploymentConfig(provider="openai", model="mock-model", name="alive", base_url=mock_lm.base_url,
                             api_key_env=MOCK_KEY_ENV, weight=0.001)
    model = ModelConfig(alias="pool", deployments=(dead, alive), routing="weighted")
    running, channel, stub = await start(server_factory, model)
    async with channel:
        response = await stub.Complete(complete_request("pool"), timeout=10)
        assert response.deployment == "alive"
        deployments = {d.name: d for d in (await status_of(stub, "pool")).deployments}
        assert deployments["dead"].failures >= 1 and deployments["alive"].successes == 1


async def test_fallback_model_answers_when_every_deployment_fails(server_factory, mock_lm):
    primary = ModelConfig.single("primary", DeploymentConfig(
        provider="openai", model="m", base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0),
        fallbacks=("mock",))
    running, channel, stub = await start(server_factory, primary, mock_model_config(mock_lm.base_url))
    async with channel:
        response = await stub.Complete(complete_request("primary"), timeout=10)
    assert response.deployment == "mock/0"


async def test_in_flight_limit_refuses_once_the_deadline_would_pass(server_factory, mock_lm):
    model = mock_model_config(mock_lm.base_url, max_in_flight=1)
    running, channel, stub = await start(server_factory, model)
    async with channel:
        mock_lm.add_rule("slow", MockReply(text="slow", delay_s=1.5))
        slow = asyncio.ensure_future(stub.Complete(complete_request(messages=[{"role": "user", "content": "slow"}]),
                                                   timeout=10))
        await until(lambda: _async(len(mock_lm.completion_requests) == 1))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Complete(complete_request(), timeout=0.5)
        assert caught.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert (await slow).choices[0].text == "slow"
        assert len(mock_lm.completion_requests) == 1


async def test_requests_per_minute_limit_refuses_with_retry_info(server_factory, mock_lm):
    running, channel, stub = await start(server_factory, mock_model_config(mock_lm.base_url, rpm=1))
    async with channel:
        await stub.Complete(complete_request(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Complete(complete_request(rollout_id=2), timeout=5)
        details = error_details(caught.value)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details["reason"] == "LM_CAPACITY_EXHAUSTED" and details["retry_delay"] > 5
        status = (await status_of(stub, "mock")).deployments[0]
        assert status.HasField("requests_headroom") and status.requests_headroom == 0
    assert len(mock_lm.completion_requests) == 1


# ---------------------------------------------------------------------------------------- supervision


async def test_a_killed_worker_is_restarted_and_serves_again(server_factory, mock_lm):
    running, channel, stub = await start(server_factory, mock_model_config(mock_lm.base_url))
    async with channel:
        await stub.Complete(complete_request(), timeout=10)
        child = running.app.registry.supervisor.child("deployment:mock/0")
        child.task.cancel()  # the fault: the worker task dies

        async def restarted():
            deployment = (await status_of(stub, "mock")).deployments[0]
            return deployment.restarts == 1 and deployment.serving

        await until(restarted)
        response = await stub.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
        assert response.choices[0].text == "mock reply to: Say hi"


async def test_a_call_under_way_when_its_worker_dies_fails_as_unavailable_and_the_next_one_is_served(
        server_factory, mock_lm):
    running, channel, stub = await start(server_factory, mock_model_config(mock_lm.base_url, max_retries=0))
    async with channel:
        gate = mock_lm.hold_replies_after(0)
        call = asyncio.ensure_future(stub.Complete(complete_request(), timeout=10))
        async def reached_the_provider():
            return bool(mock_lm.completion_requests)

        await until(reached_the_provider)
        running.app.registry.supervisor.child("deployment:mock/0").task.cancel()  # the worker dies
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        gate.set()
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_details(caught.value)["reason"] == "WORKER_UNAVAILABLE"
        # The call's task was not cancelled with it: the server answered it, and serves the next one.
        response = await stub.Complete(complete_request(options={"cache": "CACHE_POLICY_BYPASS"}), timeout=10)
        assert response.choices[0].text == "mock reply to: Say hi"


# ---------------------------------------------------------------------------------------- budgets and ledger


PRICED = {"input_price_per_1m": 1_000_000.0, "output_price_per_1m": 0.0}  # $1 per prompt token


async def create_program(channel, program_id: str, model: str) -> None:
    await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict({
        "program_id": program_id,
        "program": {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"},
                                                         "lm": {"model": model}}}}},
    }, program_pb2.CreateProgramRequest()), timeout=10)


async def predict(channel, program: str, question: str):
    request = json_format.ParseDict({"program": program, "inputs": {"question": question}},
                                    inference_pb2.PredictRequest())
    return await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=10)


async def test_program_budget_refuses_calls_once_spent_and_survives_a_restart(server_factory, mock_lm, tmp_path):
    budget = BudgetConfig(limit_usd=5.0, program="qa", period="day")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'budget.db'}"
    model = mock_model_config(mock_lm.base_url, **PRICED)
    running, channel, _ = await start(server_factory, model, budgets=(budget,), database_url=database_url,
                                      usage_flush_interval_s=0.05)
    async with channel:
        await create_program(channel, "qa", "mock")
        await create_program(channel, "other", "mock")
        await predict(channel, "programs/qa", "first")  # costs more than $5: allowed, then the budget is spent
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await predict(channel, "programs/qa", "second")
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_details(caught.value)
        assert details["reason"] == "BUDGET_EXCEEDED" and details["metadata"]["budget"] == "program:qa/day"
        assert "program:qa/day" in caught.value.details()
        await predict(channel, "programs/other", "second")  # other programs are not limited
    assert len(mock_lm.completion_requests) == 2

    ledger = UsageLedgerStore(running.app.database)

    async def flushed():
        return {row.program_id for row in await ledger.rows()} == {"qa", "other"}

    await until(flushed)
    row = (await ledger.rows(program_id="qa"))[0]
    assert (row.model, row.calls, row.api_key_id) == ("mock", 1, "")
    assert row.cost_usd == row.prompt_tokens > 5

    # A server started on the same database knows what was spent today.
    second, channel2, _ = await start(server_factory, model, budgets=(budget,), database_url=database_url)
    async with channel2:
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await predict(channel2, "programs/qa", "third")
    assert error_details(again.value)["reason"] == "BUDGET_EXCEEDED"
    assert len(mock_lm.completion_requests) == 2


async def test_api_key_budget_applies_to_the_authenticated_caller(server_factory, mock_lm):
    model = mock_model_config(mock_lm.base_url, **PRICED)
    running = await server_factory(models=(model, BUILTIN_DUMMY), auth_enabled=True)
    record, secret = await running.app.api_keys.create("team", "infer")
    key_id = record.key_id
    await running.stop(grace=0)
    budget = BudgetConfig(limit_usd=1.0, api_key=key_id)
    running, channel, stub = await start(server_factory, model, auth_enabled=True, budgets=(budget,),
                                         database_url=running.app.config.database_url)
    metadata = (("authorization", f"Bearer {secret}"),)
    async with channel:
        await stub.Complete(complete_request(), timeout=10, metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Complete(complete_request(rollout_id=1), timeout=10, metadata=metadata)
    assert error_details(caught.value)["metadata"]["budget"] == f"api_key:{key_id}/day"


# ---------------------------------------------------------------------------------------- Anthropic


@pytest.fixture
async def claude(server_factory, mock_lm):
    deployment = DeploymentConfig(provider="anthropic", model="claude-mock", base_url=mock_lm.base_url,
                                  api_key_env=MOCK_KEY_ENV)
    running, channel, stub = await start(server_factory, ModelConfig.single("claude", deployment, cache="bypass"))
    async with channel:
        yield stub


async def test_anthropic_maps_system_messages_and_answers(claude, mock_lm):
    mock_lm.enqueue(MockReply(text="Hello!", usage={"input_tokens": 9, "output_tokens": 2}))
    response = await claude.Complete(complete_request("claude", options={"stop": ["END"], "temperature": 0}),
                                     timeout=10)
    assert response.choices[0].text == "Hello!" and response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (9, 2)
    sent = mock_lm.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == MOCK_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json["system"] == "Be terse."
    assert sent.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}]
    assert sent.json["stop_sequences"] == ["END"] and sent.json["max_tokens"] == 4096


async def test_anthropic_streaming_events_become_deltas(claude, mock_lm):
    mock_lm.enqueue(MockReply(text="alpha beta gamma"))
    events = [e async for e in claude.StreamComplete(stream_request("claude"), timeout=10)]
    assert "".join(e.text_delta for e in events[:-1]) == "alpha beta gamma"
    done = events[-1].done
    assert done.choices[0].text == "alpha beta gamma" and done.usage.completion_tokens > 0
    assert not done.usage.estimated


async def test_anthropic_tool_use_round_trip(claude, mock_lm):
    mock_lm.enqueue(MockReply(text="Let me check.", tool_calls=({"name": "weather", "arguments": {"city": "Oslo"}},)))
    tool = {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    response = await claude.Complete(complete_request("claude", tools=[tool], tool_choice="required"), timeout=10)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.text == "Let me check."
    call = choice.tool_calls[0]
    assert (call.name, call.arguments) == ("weather", '{"city": "Oslo"}')
    sent = mock_lm.last_request.json
    assert sent["tools"] == [{"name": "weather", "description": "", "input_schema": tool["parameters"]}]
    assert sent["tool_choice"] == {"type": "any"}

    # The tool's result goes back as tool_use / tool_result blocks.
    conversation = [*HELLO, {"role": "assistant", "content": "Let me check.",
                             "tool_calls": [{"id": call.id, "name": "weather", "arguments": call.arguments}]},
                    {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}]
    mock_lm.enqueue("It is sunny in Oslo.")
    response = await claude.Complete(complete_request("claude", messages=conversation, tools=[tool]), timeout=10)
    assert response.choices[0].text == "It is sunny in Oslo."
    turns = mock_lm.last_request.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][1] == {"type": "tool_use", "id": call.id, "name": "weather", "input": {"city": "Oslo"}}
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}]


async def test_anthropic_streamed_tool_use_and_overload(claude, mock_lm):
    mock_lm.enqueue(MockReply(text="ok", tool_calls=({"name": "lookup", "arguments": {"q": "x"}},)))
    events = [e async for e in claude.StreamComplete(stream_request("claude"), timeout=10)]
    call = events[-1].done.choices[0].tool_calls[0]
    assert (call.name, call.arguments) == ("lookup", '{"q": "x"}')
    mock_lm.enqueue(MockReply.error(529, "Overloaded"), MockReply.error(529, "Overloaded"),
                    MockReply.error(529, "Overloaded"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await claude.Complete(complete_request("claude"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE and "Overloaded" in caught.value.details()


# ---------------------------------------------------------------------------------------- Embed


@pytest.fixture
async def embedder(server_factory, mock_lm):
    embed = mock_model_config(mock_lm.base_url, "vectors", model="mock-embedding", kind="embedding",
                              input_price_per_1m=1.0)
    running, channel, stub = await start(server_factory, embed, mock_model_config(mock_lm.base_url))
    async with channel:
        yield stub


async def test_embed_returns_one_vector_per_text_in_order_and_caches_them(embedder, mock_lm):
    from tests.mocklm.embeddings import hashed_embedding

    texts = ["the cat sat", "a dog barked", "the cat sat again"]
    response = await embedder.Embed(lm_pb2.EmbedRequest(model="vectors", texts=texts), timeout=10)
    assert [list(e.values) for e in response.embeddings] == [
        pytest.approx(hashed_embedding(text), abs=1e-6) for text in texts]
    assert response.usage.prompt_tokens > 0 and response.usage.cost_usd > 0 and not response.cache_hit
    assert response.deployment and response.model == "mock-embedding"
    (request,) = mock_lm.embedding_requests
    assert request.json["input"] == texts and request.json["model"] == "mock-embedding"

    again = await embedder.Embed(lm_pb2.EmbedRequest(model="vectors", texts=texts), timeout=10)
    assert again.cache_hit and again.usage.prompt_tokens == 0
    assert [list(e.values) for e in again.embeddings] == [list(e.values) for e in response.embeddings]
    assert len(mock_lm.embedding_requests) == 1


async def test_embed_retries_provider_errors_like_complete(embedder, mock_lm):
    mock_lm.enqueue(MockReply.error(503))
    response = await embedder.Embed(lm_pb2.EmbedRequest(model="vectors", texts=["retried text"]), timeout=10)
    assert len(response.embeddings) == 1 and len(mock_lm.embedding_requests) == 2


@pytest.mark.parametrize(("texts", "field"), [([], "texts"), (["ok", ""], "texts[1]"), (["x"] * 2049, "texts")])
async def test_bad_embed_requests_name_the_field(embedder, mock_lm, texts, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.Embed(lm_pb2.EmbedRequest(model="vectors", texts=texts), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]
    assert not mock_lm.embedding_requests


async def test_chat_and_embedding_models_are_not_interchangeable(embedder, mock_lm):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.Embed(lm_pb2.EmbedRequest(model="mock", texts=["hi"]), timeout=10)
    details = error_details(caught.value)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details["reason"] == "NOT_AN_EMBEDDING_MODEL" and "model" in details["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.Complete(complete_request("vectors"), timeout=10)
    details = error_details(caught.value)
    assert details["reason"] == "NOT_A_CHAT_MODEL" and "model" in details["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.Embed(lm_pb2.EmbedRequest(model="nope", texts=["hi"]), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert not mock_lm.embedding_requests and not mock_lm.completion_requests
