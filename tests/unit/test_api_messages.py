"""Response messages the api layer builds in place (LMService.Complete's answer, StreamPredict's
events) against the form they replace (parts built as messages of their own and copied in): the
same messages for every shape."""

from __future__ import annotations

import pytest
from dspy_grpc.v1 import inference_pb2, lm_pb2

from dspy_grpc_server.api.lm_service import complete_response
from dspy_grpc_server.api.stream_convert import event_to_proto
from dspy_grpc_server.modules.events import FieldDelta, ModuleFinished, ModuleStarted
from dspy_grpc_server.lm.types import LMResponse, ToolCall, Usage


def reference_complete_response(response: LMResponse) -> lm_pb2.CompleteResponse:
    usage = lm_pb2.LMUsage() if response.usage is None else lm_pb2.LMUsage(
        prompt_tokens=response.usage.prompt_tokens, completion_tokens=response.usage.completion_tokens,
        total_tokens=response.usage.total_tokens, estimated=response.usage.estimated, cost_usd=response.cost_usd)
    choices = [
        lm_pb2.CompletionChoice(
            index=index, text=text,
            finish_reason=response.finish_reasons[index] if index < len(response.finish_reasons) else "",
            tool_calls=[lm_pb2.LMToolCall(id=c.id, name=c.name, arguments=c.arguments)
                        for c in response.tool_calls[index]] if index < len(response.tool_calls) else [],
        )
        for index, text in enumerate(response.texts)
    ]
    return lm_pb2.CompleteResponse(choices=choices, usage=usage, model=response.model,
                                   deployment=response.deployment, cache_hit=response.cache_hit,
                                   response_id=response.response_id)


RESPONSES = [
    LMResponse(texts=("Hello!",), usage=Usage(5, 2, 7), model="mock-model", finish_reasons=("stop",),
               response_id="r1", cost_usd=0.25, deployment="d0"),
    LMResponse(texts=(), usage=Usage(), model="m"),
    LMResponse(texts=("a", "b", ""), usage=Usage(1, 2, 3, estimated=True), model="m", finish_reasons=("stop",),
               tool_calls=((ToolCall("c1", "search", '{"q": "x"}'), ToolCall("c2", "calc")), ()), cache_hit=True),
    LMResponse(texts=("x",), usage=None, model="m", cost_usd=1.5),  # type: ignore[arg-type] - a provider without usage
]


@pytest.mark.parametrize("response", RESPONSES)
def test_complete_response_is_the_message_it_was(response: LMResponse) -> None:
    ours, theirs = complete_response(response), reference_complete_response(response)
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    assert ours.HasField("usage")


def _same(ours, theirs) -> None:
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


@pytest.mark.parametrize("delta", [FieldDelta("predict", "answer", "Par"), FieldDelta("", "", "", last=False),
                                   FieldDelta("p", "answer", "", last=True)])
def test_field_delta_events(delta: FieldDelta) -> None:
    _same(event_to_proto(delta), inference_pb2.PredictEvent(field_delta=inference_pb2.FieldDelta(
        predictor=delta.predictor, field=delta.field, text=delta.text, last=delta.last)))


@pytest.mark.parametrize("module, kind", [("predict", "predict"), ("", "")])
def test_module_events(module: str, kind: str) -> None:
    _same(event_to_proto(ModuleStarted(module, kind)),
          inference_pb2.PredictEvent(module_started=inference_pb2.ModuleEvent(module=module, kind=kind)))
    for error in ("", "ParseError"):
        _same(event_to_proto(ModuleFinished(module, kind, error)), inference_pb2.PredictEvent(
            module_finished=inference_pb2.ModuleEvent(module=module, kind=kind, error=error)))
