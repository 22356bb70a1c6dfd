"""The OpenAI-compatible provider behind LMRegistry, against the real mock LM server on 127.0.0.1.

Each test builds a registry (workers under their supervisor, cache off unless the test is about it)
and calls the alias's LM the way the modules layer does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import dspy
import httpx
import pytest

from dspy_grpc_server.core.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ProviderError,
    ResourceExhausted,
    Unavailable,
)
from contextlib import asynccontextmanager

from dspy_grpc_server.lm import (
    DeploymentConfig,
    LMOptions,
    LMRegistry,
    LMRequest,
    ModelConfig,
    RetryPolicy,
    Usage,
)
from tests.mocklm import MockLMServer, MockReply

pytestmark = pytest.mark.integration

SECRET = "sk-test-0123456789abcdef"
MESSAGES = ({"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi"})
FAST_RETRIES = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.05)


def model_config(base_url: str, *, alias: str = "mock", model: str = "mock-model", **settings) -> ModelConfig:
    deployment_fields = {"base_url", "api_key_env", "timeout_s", "max_retries"}
    deployment = DeploymentConfig(provider="openai", model=model, base_url=base_url,
                                  **{"api_key_env": "MOCK_KEY",
                                     **{k: v for k, v in settings.items() if k in deployment_fields}})
    return ModelConfig.single(alias, deployment, **{k: v for k, v in settings.items() if k not in deployment_fields})


@asynccontextmanager
async def make_lm(base_url: str, *, environ=None, **settings):
    """The LM of a one-deployment model at ``base_url`` (cache off, fast retries)."""

    registry = LMRegistry([model_config(base_url, **settings)], cache=None, retry_policy=FAST_RETRIES,
                          environ={"MOCK_KEY": SECRET} if environ is None else environ)
    await registry.start()
    try:
        yield registry.get(settings.get("alias", "mock"))
    finally:
        await registry.aclose()


@pytest.fixture
async def lm(mock_lm: MockLMServer):
    async with make_lm(mock_lm.base_url, temperature=0.3, max_tokens=50) as model:
        yield model


def assert_secret_absent(error: Exception) -> None:
    assert SECRET not in str(error)
    assert SECRET not in repr(error.__dict__)


# ---------------------------------------------------------------------------------------- success


async def test_completion_returns_text_usage_and_sends_the_exact_request(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="hi there", usage={"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}))
    response = await lm.complete(LMRequest(MESSAGES, LMOptions(temperature=0.0, stop=("END",), seed=7)))

    assert response.texts == ("hi there",)
    assert response.usage == Usage(11, 2, 13)
    assert response.model == "mock-model"
    assert response.finish_reasons == ("stop",)
    assert response.response_id.startswith("chatcmpl-mock-")

    sent = mock_lm.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.json == {
        "model": "mock-model",
        "messages": [dict(m) for m in MESSAGES],
        "temperature": 0.0,  # the request's option wins over the configured 0.3
        "max_tokens": 50,  # the configured default fills the gap
        "stop": ["END"],
        "seed": 7,
    }


async def test_several_choices(lm, mock_lm) -> None:
    mock_lm.enqueue("same")
    response = await lm.complete(LMRequest(MESSAGES, LMOptions(n=3)))
    assert response.texts == ("same", "same", "same")
    assert mock_lm.last_request.json["n"] == 3


async def test_no_authorization_header_without_a_key(mock_lm) -> None:
    async with make_lm(mock_lm.base_url, api_key_env="") as model:
        await model.complete(LMRequest(MESSAGES))
    assert "authorization" not in mock_lm.last_request.headers


async def test_missing_key_variable_is_a_failed_precondition(mock_lm) -> None:
    async with make_lm(mock_lm.base_url, api_key_env="NOT_SET_ANYWHERE", environ={}) as model:
        with pytest.raises(FailedPrecondition) as caught:
            await model.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_NOT_CONFIGURED"
    assert "NOT_SET_ANYWHERE" in caught.value.message
    assert mock_lm.requests == []


async def test_mock_answers_dspy_chat_adapter_prompts_without_a_script(lm) -> None:
    signature = dspy.Signature("question, context: list[str] -> answer, confidence: float")
    messages = dspy.ChatAdapter().format(signature, demos=[], inputs={"question": "Why?", "context": ["a"]})
    text = (await lm.complete(LMRequest(tuple(messages)))).text
    assert dspy.ChatAdapter().parse(signature, text) == {"answer": "mock answer for: Why?", "confidence": 0.0}


async def test_mock_answers_dspy_json_adapter_prompts_with_json(lm) -> None:
    signature = dspy.Signature("question -> answer, ok: bool")
    messages = dspy.JSONAdapter().format(signature, demos=[], inputs={"question": "Really?"})
    text = (await lm.complete(LMRequest(tuple(messages)))).text
    assert json.loads(text) == {"answer": "mock answer for: Really?", "ok": True}


async def test_mock_rules_and_callable_replies(lm, mock_lm) -> None:
    mock_lm.add_rule("weather", "sunny", times=1)
    mock_lm.add_rule("Say", lambda req: f"echo {req.last_user_text}")
    assert (await lm.complete(LMRequest(({"role": "user", "content": "weather?"},)))).text == "sunny"
    assert (await lm.complete(LMRequest(({"role": "user", "content": "weather?"},)))).text == "mock reply to: weather?"
    assert (await lm.complete(LMRequest(MESSAGES))).text == "echo Say hi"


async def test_mock_lists_models(mock_lm) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{mock_lm.base_url}/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["mock-model"]


# ---------------------------------------------------------------------------------------- faults


async def test_server_errors_are_retried_then_succeed(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(500), MockReply.error(503), "finally")
    assert (await lm.complete(LMRequest(MESSAGES))).text == "finally"
    assert len(mock_lm.completion_requests) == 3


async def test_persistent_server_errors_become_unavailable(lm, mock_lm) -> None:
    mock_lm.enqueue(*(MockReply.error(503, "overloaded") for _ in range(5)))
    with pytest.raises(Unavailable) as caught:
        await lm.complete(LMRequest(MESSAGES))
    error = caught.value
    assert error.reason == "PROVIDER_UNAVAILABLE"
    assert error.metadata["model"] == "mock-model" and error.metadata["status"] == "503"
    assert "overloaded" in error.message
    assert len(mock_lm.completion_requests) == 3  # first attempt + max_retries
    assert_secret_absent(error)


async def test_rate_limit_honours_retry_after(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(429, retry_after="0.05"), "after the wait")
    assert (await lm.complete(LMRequest(MESSAGES))).text == "after the wait"
    assert len(mock_lm.completion_requests) == 2


async def test_rate_limit_beyond_the_budget_is_not_waited_for(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(429, "slow down", retry_after=30))
    with pytest.raises(ResourceExhausted) as caught:
        await lm.complete(LMRequest(MESSAGES), timeout=2.0)
    assert caught.value.reason == "PROVIDER_RATE_LIMITED"
    assert caught.value.retry_after == 30.0
    assert len(mock_lm.completion_requests) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_are_not_retried_and_hide_the_key(mock_lm, status: int) -> None:
    mock_lm.enqueue(MockReply.error(status, f"Incorrect API key provided: {SECRET}"))
    async with make_lm(mock_lm.base_url) as model:
        with pytest.raises(ProviderError) as caught:
            await model.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_AUTH_FAILED"
    assert caught.value.metadata["status"] == str(status)
    assert len(mock_lm.completion_requests) == 1
    assert_secret_absent(caught.value)


async def test_wrong_key_is_rejected_by_a_key_checking_server(mock_lm) -> None:
    mock_lm.api_key = "sk-the-right-one"
    async with make_lm(mock_lm.base_url) as model:
        with pytest.raises(ProviderError) as caught:
            await model.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_AUTH_FAILED"
    assert mock_lm.last_request.headers["authorization"] == f"Bearer {SECRET}"


async def test_other_client_errors_carry_the_provider_message_without_the_key(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(400, f"max_tokens too large (key {SECRET})"))
    with pytest.raises(ProviderError) as caught:
        await lm.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_REJECTED"
    assert "max_tokens too large" in caught.value.message
    assert "***" in caught.value.message
    assert_secret_absent(caught.value)
    assert len(mock_lm.completion_requests) == 1


async def test_malformed_json_is_a_bad_response(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(malformed=True))
    with pytest.raises(ProviderError) as caught:
        await lm.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_BAD_RESPONSE"


async def test_slow_provider_hits_the_caller_deadline(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="too late", delay_s=2.0))
    with pytest.raises(DeadlineExceeded) as caught:
        await lm.complete(LMRequest(MESSAGES), timeout=0.2)
    assert caught.value.reason == "PROVIDER_TIMEOUT"
    assert len(mock_lm.completion_requests) == 1  # timeouts are not retried


async def test_slow_provider_hits_the_configured_timeout(mock_lm) -> None:
    # timeout_s leaves the mock time to record each attempt even on a loaded machine.
    mock_lm.enqueue(*(MockReply(text="too late", delay_s=3.0) for _ in range(2)))
    async with make_lm(mock_lm.base_url, timeout_s=0.5, max_retries=1) as model:
        with pytest.raises(DeadlineExceeded) as caught:
            await model.complete(LMRequest(MESSAGES), timeout=30)
    assert caught.value.reason == "PROVIDER_TIMEOUT"
    assert len(mock_lm.completion_requests) == 2  # each attempt is bounded by timeout_s; one retry


async def test_retries_stop_at_the_deadline(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(503, retry_after=5), "never reached")
    with pytest.raises(Unavailable):
        await lm.complete(LMRequest(MESSAGES), timeout=0.5)
    assert len(mock_lm.completion_requests) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_provider_is_unavailable() -> None:
    async with make_lm(f"http://127.0.0.1:{closed_port()}/v1", model="m") as model:
        with pytest.raises(Unavailable) as caught:
            await model.complete(LMRequest(MESSAGES))
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert caught.value.metadata["model"] == "m"


async def test_cancelling_the_caller_cancels_the_call(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="slow", delay_s=5))
    task = asyncio.create_task(lm.complete(LMRequest(MESSAGES)))
    while not mock_lm.completion_requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------------------------------- streaming


async def test_stream_yields_deltas_that_join_to_the_text(lm, mock_lm) -> None:
    mock_lm.enqueue("one two three four")
    deltas = [d async for d in lm.stream(LMRequest(MESSAGES))]
    assert len(deltas) == 4
    assert "".join(deltas) == "one two three four"
    sent = mock_lm.last_request.json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_chunks_end_with_usage(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="a b", usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
    chunks = [c async for c in lm.stream_chunks(LMRequest(MESSAGES))]
    assert chunks[-1].usage == Usage(5, 2, 7)
    assert chunks[-1].finish_reason == "stop"
    assert "".join(c.text for c in chunks) == "a b"


async def test_stream_cut_midway_is_unavailable(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="one two three four", cut_after_chunks=2))
    received: list[str] = []
    with pytest.raises(Unavailable) as caught:
        async for delta in lm.stream(LMRequest(MESSAGES)):
            received.append(delta)
    assert received == ["one ", "two "]
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"


async def test_stream_retries_before_the_first_delta(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply.error(503), "recovered")
    assert [d async for d in lm.stream(LMRequest(MESSAGES))] == ["recovered"]
    assert len(mock_lm.completion_requests) == 2


async def test_stream_auth_failure(mock_lm) -> None:
    mock_lm.api_key = "sk-other"
    async with make_lm(mock_lm.base_url) as model:
        with pytest.raises(ProviderError) as caught:
            async for _ in model.stream(LMRequest(MESSAGES)):
                pass
    assert caught.value.reason == "PROVIDER_AUTH_FAILED"
    assert_secret_absent(caught.value)


async def test_slow_stream_hits_the_deadline(lm, mock_lm) -> None:
    mock_lm.enqueue(MockReply(text="late", delay_s=2.0))
    with pytest.raises(DeadlineExceeded):
        async for _ in lm.stream(LMRequest(MESSAGES), timeout=0.2):
            pass


# ---------------------------------------------------------------------------------------- registry


async def test_registry_resolves_aliases_lazily_and_caches(mock_lm) -> None:
    registry = LMRegistry(
        [
            model_config(mock_lm.base_url, alias="fast"),
            ModelConfig.single("offline", DeploymentConfig(provider="dummy", model="dummy")),
        ],
        environ={"MOCK_KEY": SECRET},
    )
    await registry.start()
    try:
        assert registry.aliases() == ["fast", "offline"]
        fast = registry.get("fast")
        assert registry.get("fast") is fast
        assert (await fast.complete(LMRequest(MESSAGES))).text == "mock reply to: Say hi"
        assert mock_lm.last_request.headers["authorization"] == f"Bearer {SECRET}"
        offline = registry.get("offline")
        assert (await offline.complete(LMRequest(MESSAGES))).text == "dummy reply to: Say hi"
        with pytest.raises(NotFound) as caught:
            registry.get("nope")
        assert caught.value.reason == "MODEL_NOT_FOUND"
        assert caught.value.violations[0].field == "lm.model"
    finally:
        await registry.aclose()


def test_registry_rejects_duplicate_aliases() -> None:
    dummy = DeploymentConfig(provider="dummy", model="d")
    with pytest.raises(InvalidArgument) as caught:
        LMRegistry([ModelConfig.single("a", dummy), ModelConfig.single("a", dummy)])
    assert caught.value.violations[0].field == "models[1].alias"


# ---------------------------------------------------------------------------------------- subprocess


async def test_mock_runs_as_a_subprocess() -> None:
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.mocklm", "--port", "0", "--latency-ms", "1",
        cwd=root, stdout=subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode().strip()
        assert line.startswith("MOCKLM READY http://127.0.0.1:")
        base_url = line.split()[-1]
        async with make_lm(base_url, api_key_env="") as model:
            assert (await model.complete(LMRequest(MESSAGES))).text == "mock reply to: Say hi"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_stopping_a_stream_early_releases_it(lm, mock_lm) -> None:
    mock_lm.enqueue("one two three four")
    stream = lm.stream(LMRequest(MESSAGES))
    assert await anext(stream) == "one "
    await stream.aclose()
    # The shared connection pool still works afterwards.
    mock_lm.enqueue("again")
    assert (await lm.complete(LMRequest(MESSAGES))).text == "again"
