"""DummyLM: scripted answers, rules, rendering in DSPy's formats, exhaustion."""

from __future__ import annotations

import json

import dspy
import pytest

from dspy_grpc_server.core.errors import FailedPrecondition
from dspy_grpc_server.lm import DummyLM, DummyResponse, DummyRule, DummySpec, LMOptions, LMRequest


def ask(text: str, **options) -> LMRequest:
    return LMRequest(
        ({"role": "system", "content": "be brief"}, {"role": "user", "content": text}),
        LMOptions(**options),
    )


async def test_responses_are_consumed_in_order_then_exhausted() -> None:
    lm = DummyLM.from_values(["first", "second"])
    assert (await lm.complete(ask("a"))).text == "first"
    assert (await lm.complete(ask("b"))).text == "second"
    with pytest.raises(FailedPrecondition) as caught:
        await lm.complete(ask("c"))
    assert caught.value.reason == "DUMMY_LM_EXHAUSTED"
    assert "2 scripted responses are used up" in caught.value.message


async def test_fresh_starts_the_script_again() -> None:
    lm = DummyLM.from_values(["only"])
    await lm.complete(ask("a"))
    assert lm.remaining == 0
    again = lm.fresh()
    assert again.remaining == 1
    assert (await again.complete(ask("a"))).text == "only"


async def test_rules_match_the_last_user_message_first_match_wins() -> None:
    spec = DummySpec(
        rules=(
            DummyRule("sky", DummyResponse(text="blue")),
            DummyRule("sky at night", DummyResponse(text="black")),
            DummyRule("grass", DummyResponse(text="green")),
        )
    )
    lm = DummyLM(spec)
    assert (await lm.complete(ask("colour of the sky at night?"))).text == "blue"
    assert (await lm.complete(ask("and grass?"))).text == "green"
    # The system prompt mentions nothing, but only the last user message counts.
    request = LMRequest(({"role": "user", "content": "sky"}, {"role": "user", "content": "sea"}))
    with pytest.raises(FailedPrecondition) as caught:
        await lm.complete(request)
    assert caught.value.reason == "DUMMY_LM_EXHAUSTED"
    assert "no rule matched" in caught.value.message


async def test_rules_read_text_parts_of_multimodal_content() -> None:
    lm = DummyLM.from_values(rules={"cat": "a cat"})
    request = LMRequest(
        ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}},
                                      {"type": "text", "text": "is this a cat?"}]},)
    )
    assert (await lm.complete(request)).text == "a cat"


async def test_fields_render_in_chat_adapter_markers() -> None:
    lm = DummyLM.from_values([{"answer": "Paris", "confidence": 0.9, "tags": ["a", "é"]}])
    text = (await lm.complete(ask("capital?"))).text
    assert text == (
        "[[ ## answer ## ]]\nParis\n\n"
        "[[ ## confidence ## ]]\n0.9\n\n"
        '[[ ## tags ## ]]\n["a", "é"]\n\n'
        "[[ ## completed ## ]]"
    )


async def test_fields_render_as_json_when_response_format_is_set() -> None:
    lm = DummyLM.from_values([{"answer": "Paris", "n": 2}])
    text = (await lm.complete(ask("capital?", response_format={"type": "json_object"}))).text
    assert json.loads(text) == {"answer": "Paris", "n": 2}


async def test_rendered_fields_parse_with_dspy_chat_adapter() -> None:
    signature = dspy.Signature("question -> answer, score: float, ok: bool")
    lm = DummyLM.from_values([{"answer": "yes", "score": 0.5, "ok": False}])
    messages = dspy.ChatAdapter().format(signature, demos=[], inputs={"question": "q?"})
    text = (await lm.complete(LMRequest(tuple(messages)))).text
    assert dspy.ChatAdapter().parse(signature, text) == {"answer": "yes", "score": 0.5, "ok": False}


async def test_one_response_per_choice_and_usage_estimates() -> None:
    lm = DummyLM.from_values(["one", "two", "three"])
    response = await lm.complete(ask("hello there", n=2))
    assert response.texts == ("one", "two")
    assert response.finish_reasons == ("stop", "stop")
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens == 2
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert lm.remaining == 1


async def test_auto_mode_fills_output_fields_of_a_dspy_prompt() -> None:
    signature = dspy.Signature("question, context: list[str] -> answer, n: int, kind: Literal['x', 'y']")
    messages = dspy.ChatAdapter().format(signature, demos=[], inputs={"question": "Why?", "context": ["c"]})
    lm = DummyLM(DummySpec(auto=True))
    text = (await lm.complete(LMRequest(tuple(messages)))).text
    assert dspy.ChatAdapter().parse(signature, text) == {"answer": "dummy answer for: Why?", "n": 0, "kind": "x"}


async def test_auto_mode_on_a_plain_conversation_echoes() -> None:
    lm = DummyLM(DummySpec(auto=True))
    assert (await lm.complete(ask("hello"))).text == "dummy reply to: hello"


async def test_empty_spec_fails_with_a_clear_message() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await DummyLM(DummySpec(), name="scripted").complete(ask("x"))
    assert caught.value.reason == "DUMMY_LM_EXHAUSTED"
    assert "scripted" in caught.value.message and "no scripted responses or rules" in caught.value.message


async def test_stream_yields_the_whole_text() -> None:
    lm = DummyLM.from_values(["streamed"])
    assert [d async for d in lm.stream(ask("x"))] == ["streamed"]


def test_dummy_response_needs_exactly_one_of_text_or_fields() -> None:
    with pytest.raises(ValueError):
        DummyResponse()
    with pytest.raises(ValueError):
        DummyResponse(text="a", fields={"b": 1})
    assert DummyResponse.of({"a": 1}).fields == {"a": 1}
