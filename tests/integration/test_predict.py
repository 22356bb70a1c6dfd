"""InferenceService.Predict through gRPC against a real server and the mock OpenAI-compatible LM."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, lm_pb2, lm_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.conftest import MOCK_KEY
from tests.integration.grpc_helpers import error_details
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

COT = {"chainOfThought": {"predictor": {"signature": {"text": "question -> answer"}}}}


def predict_request(body: dict) -> inference_pb2.PredictRequest:
    return json_format.ParseDict(body, inference_pb2.PredictRequest())


async def test_chain_of_thought_through_the_openai_provider(channel, mock_lm):
    mock_lm.enqueue("[[ ## reasoning ## ]]\nFrance's capital is Paris.\n\n[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]")
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.Predict(
        predict_request({"module": COT, "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"},
                         "includeTrace": True}),
        timeout=10,
    )
    prediction = response.prediction
    assert dict(prediction.outputs) == {"reasoning": "France's capital is Paris.", "answer": "Paris"}
    sent = mock_lm.last_request
    assert sent.headers["authorization"] == f"Bearer {MOCK_KEY}"
    assert sent.json["model"] == "mock-model"
    messages = sent.messages
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "`reasoning`" in messages[0]["content"] and "[[ ## answer ## ]]" in messages[0]["content"]
    assert "[[ ## question ## ]]\nCapital of France?" in messages[1]["content"]
    assert prediction.usage[0].model and prediction.usage[0].calls == 1 and prediction.usage[0].total_tokens > 0
    assert [step.predictor for step in prediction.trace] == ["predict"]
    assert prediction.trace[0].adapter == "chat"


async def test_stored_program_runs_its_active_revision(channel):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    program = json_format.ParseDict(
        {"module": {"predict": {"predictor": {
            "signature": {"text": "question -> answer"},
            "lm": {"dummy": {"rules": [{"contains": "sky", "response": {"fields": {"answer": "blue"}}}]}},
        }}}},
        program_pb2.Program(),
    )
    await programs.CreateProgram(program_pb2.CreateProgramRequest(program_id="colors", program=program))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    for _ in range(2):  # a scripted LM starts afresh for every request
        response = await stub.Predict(
            predict_request({"program": "programs/colors", "inputs": {"question": "What colour is the sky?"}})
        )
        assert response.prediction.outputs["answer"] == "blue"
        assert response.prediction.program == "programs/colors"
        assert response.prediction.revision_id == "r0001"


async def test_unknown_program_is_not_found(channel):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"program": "programs/nope", "inputs": {"question": "?"}}))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"module": COT, "inputs": {}, "lm": {"model": "dummy"}}, "inputs.question"),
        ({"module": COT, "inputs": {"question": "x", "extra": 1}, "lm": {"model": "dummy"}}, "inputs.extra"),
        ({"module": {"predict": {"predictor": {"signature": {"text": "count: int -> answer"}}}},
          "inputs": {"count": "many"}, "lm": {"model": "dummy"}}, "inputs.count"),
        ({"module": {"predict": {"predictor": {"signature": {"text": "question answer"}}}},
          "inputs": {"question": "x"}, "lm": {"model": "dummy"}}, "module.predict.predictor.signature.text"),
        ({"inputs": {"question": "x"}}, "target"),
        ({"module": COT, "inputs": {"question": "x"}, "lm": {"model": "no-such-model"}}, "lm.model"),
        ({"module": {"predict": {"predictor": {"signature": {"fields": [
            {"name": "question", "role": "FIELD_ROLE_INPUT"},
            {"name": "mood", "role": "FIELD_ROLE_OUTPUT", "type": {
                "kind": "TYPE_KIND_ENUM", "name": "Mood", "values": ["happy", "sad"], "member_names": ["HAPPY"]}}]}}}},
          "inputs": {"question": "x"}, "lm": {"model": "dummy"}},
         "module.predict.predictor.signature.fields[1].type.member_names"),
    ],
)
async def test_bad_requests_name_the_field(channel, body, field):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request(body))
    assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    details = error_details(caught.value)
    assert field in details["violations"], details


async def test_provider_rate_limit_maps_to_resource_exhausted_with_retry_info(channel, mock_lm):
    for _ in range(3):
        mock_lm.enqueue(MockReply.error(429, "slow down", retry_after=7))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": COT, "inputs": {"question": "x"}, "lm": {"model": "mock"}}),
                           timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error_details(caught.value)
    assert details["reason"] == "PROVIDER_RATE_LIMITED"
    assert details["retry_delay"] == pytest.approx(7, abs=1)
    assert MOCK_KEY not in caught.value.details()


async def test_provider_outage_maps_to_unavailable(channel, mock_lm):
    for _ in range(3):
        mock_lm.enqueue(MockReply.error(503, "overloaded"))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": COT, "inputs": {"question": "x"}, "lm": {"model": "mock"}}),
                           timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(caught.value)["reason"] == "PROVIDER_UNAVAILABLE"


async def test_client_deadline_reaches_the_provider_call(channel, mock_lm):
    mock_lm.enqueue(MockReply(text="[[ ## answer ## ]]\nlate", delay_s=3))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": COT, "inputs": {"question": "x"}, "lm": {"model": "mock"}}),
                           timeout=1.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server gives up a little before the caller's deadline, so its typed error arrives.
    assert error_details(caught.value)["reason"] in ("PROVIDER_TIMEOUT", "DEADLINE_EXCEEDED")


async def test_unparseable_completion_is_a_typed_parse_error(channel, mock_lm):
    mock_lm.enqueue("no markers here", "still not json")  # chat fails, the JSON fallback fails too
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": COT, "inputs": {"question": "x"}, "lm": {"model": "mock"}}))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(caught.value)
    assert details["reason"] == "PARSE_ERROR"
    assert details["metadata"]["adapter"] == "JSONAdapter"  # DSPy's adapter class name
    assert details["metadata"]["completion"] == "still not json"
    assert len(mock_lm.completion_requests) == 2


async def test_oversized_request_is_refused(server_factory):
    small = await server_factory(max_message_bytes=4096)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small.port}") as chan:
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Predict(predict_request({"module": COT, "inputs": {"question": "x" * 10_000},
                                                "lm": {"model": "dummy"}}))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_chat_parse_failure_falls_back_to_json_and_says_so(channel, mock_lm):
    mock_lm.enqueue("I think the answer is Paris.", '{"reasoning": "Known fact.", "answer": "Paris"}')
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.Predict(
        predict_request({"module": COT, "inputs": {"question": "Capital?"}, "lm": {"model": "mock"}})
    )
    prediction = response.prediction
    assert dict(prediction.outputs) == {"reasoning": "Known fact.", "answer": "Paris"}
    (fallback,) = prediction.adapter_fallbacks
    assert (fallback.predictor, fallback.from_adapter, fallback.to_adapter) == ("predict", "chat", "json")
    assert prediction.usage[0].calls == 2
    second = mock_lm.completion_requests[1].json
    assert second["response_format"]["type"] == "json_schema"


async def test_two_step_adapter_uses_the_extraction_lm(channel, mock_lm):
    mock_lm.enqueue("Paris is the capital of France, as everyone knows.")
    module = {"predict": {"predictor": {
        "signature": {"text": "question -> answer"},
        "adapter": "ADAPTER_KIND_TWO_STEP",
        "lm": {"model": "mock"},
        "extractionLm": {"dummy": {"responses": [{"fields": {"answer": "Paris"}}]}},
    }}}
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.Predict(predict_request({"module": module, "inputs": {"question": "Capital?"},
                                                   "includeTrace": True}))
    assert response.prediction.outputs["answer"] == "Paris"
    assert {u.model for u in response.prediction.usage} == {"mock-model", "dummy"}
    assert response.prediction.trace[0].adapter == "two_step"
    main_prompt = mock_lm.last_request.messages
    assert "[[ ##" not in main_prompt[-1]["content"]  # the main LM answers in free form


async def test_two_step_without_extraction_lm_is_invalid(channel):
    module = {"predict": {"predictor": {"signature": {"text": "q -> a"}, "adapter": "ADAPTER_KIND_TWO_STEP"}}}
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": module, "inputs": {"q": "x"}, "lm": {"model": "dummy"}}))
    assert "module.predict.predictor.extraction_lm" in error_details(caught.value)["violations"]


async def test_json_adapter_without_schema_support_asks_for_json_object(server_factory, mock_lm):
    from dspy_grpc_server.app.config import BUILTIN_DUMMY
    from tests.conftest import mock_model_config

    plain = mock_model_config(mock_lm.base_url, alias="plain", model="plain-model", supports_json_schema=False)
    running = await server_factory(models=(plain, BUILTIN_DUMMY))
    mock_lm.enqueue('{"answer": "42"}')
    module = {"predict": {"predictor": {"signature": {"text": "question -> answer"}, "adapter": "ADAPTER_KIND_JSON"}}}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        response = await stub.Predict(predict_request({"module": module, "inputs": {"question": "?"},
                                                       "lm": {"model": "plain"}}))
    assert response.prediction.outputs["answer"] == "42"
    assert mock_lm.last_request.json["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("question -> answer: Foo", "Foo"),
        ("question -> answer: list[str", "list[str"),
        ("question, question -> answer", "question"),
        ("question -> question", "question"),
    ],
)
async def test_malformed_string_signatures_point_at_the_offending_part(channel, text, expected):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    module = {"predict": {"predictor": {"signature": {"text": text}}}}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Predict(predict_request({"module": module, "inputs": {"question": "x"}, "lm": {"model": "dummy"}}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = error_details(caught.value)["violations"]
    (field, description), = violations.items()
    assert field.startswith("module.predict.predictor.signature")
    assert expected in description


async def test_the_request_id_comes_back_with_the_answer_the_error_and_the_stream(channel):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    body = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
            "inputs": {"question": "Hi?"}, "lm": {"model": "dummy"}}
    # A unary call: in its trailing metadata (sent with the answer, in the call's one last batch).
    call = stub.Predict(predict_request(body), metadata=(("x-request-id", "mine-1"),), timeout=10)
    assert (await call).prediction.outputs["answer"]
    assert ("x-request-id", "mine-1") in tuple(await call.trailing_metadata())
    # A failed unary call: there too, and in ErrorInfo's metadata.
    call = stub.Predict(predict_request({"program": "programs/none-such", "inputs": {"q": "x"}}),
                        metadata=(("x-request-id", "mine-2"),), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert ("x-request-id", "mine-2") in tuple(caught.value.trailing_metadata())
    assert error_details(caught.value)["metadata"]["request_id"] == "mine-2"
    # Without one, the server makes one up.
    call = stub.Predict(predict_request(body), timeout=10)
    await call
    made_up = dict(await call.trailing_metadata())["x-request-id"]
    assert len(made_up) == 32 and int(made_up, 16) >= 0
    # A stream: in its headers, before the first message.
    stream = stub.StreamPredict(json_format.ParseDict(body, inference_pb2.StreamPredictRequest()), metadata=(("x-request-id", "mine-3"),), timeout=10)
    assert ("x-request-id", "mine-3") in tuple(await stream.initial_metadata())
    assert [event async for event in stream]


async def test_repeated_cache_hits_answer_alike_and_only_while_the_cache_holds_the_answer(server_factory, mock_lm):
    """After a call was answered from the LM cache, an identical one asks the cache for that answer
    without rendering the prompt again (modules.predictor's recall): same prediction, same bookkeeping,
    and a new upstream call once the cache has dropped the answer."""

    running = await server_factory(cache_max_entries=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        module = {"predict": {"predictor": {"signature": {"text": "question -> answer"}, "lm": {"model": "mock"}}}}
        await program_pb2_grpc.ProgramServiceStub(chan).CreateProgram(json_format.ParseDict(
            {"programId": "recall", "program": {"module": module}}, program_pb2.CreateProgramRequest()))
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        lm = lm_pb2_grpc.LMServiceStub(chan)

        async def ask(question: str) -> inference_pb2.PredictResponse:
            return await stub.Predict(predict_request({"program": "programs/recall", "inputs": {"question": question}}),
                                      timeout=10)

        first, *hits = [await ask("Capital of France?") for _ in range(4)]
        assert len(mock_lm.completion_requests) == 1
        assert first.prediction.usage[0].total_tokens > 0
        # The first hit ran in full; the later ones were recalled: all alike, and counted as hits.
        assert hits[0] == hits[1] == hits[2]
        assert hits[0].prediction.outputs == first.prediction.outputs
        assert [(u.calls, u.total_tokens) for u in hits[2].prediction.usage] == [(1, 0)]
        status = await lm.GetProviderStatus(lm_pb2.GetProviderStatusRequest(model="mock"))
        assert (status.models[0].cache.hits, status.models[0].cache.misses) == (3, 1)

        await ask("Capital of Italy?")  # the cache holds one answer: France's is dropped
        again = await ask("Capital of France?")
        assert len(mock_lm.completion_requests) == 3  # asked upstream again, not recalled
        assert again.prediction.outputs == first.prediction.outputs
        assert again.prediction.usage[0].total_tokens > 0


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
async def test_a_number_json_cannot_carry_in_the_inputs_is_invalid_naming_the_field(channel, number):
    request = inference_pb2.PredictRequest(module=json_format.ParseDict(COT, inference_pb2.PredictRequest().module))
    request.inputs["question"] = number
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(caught.value)["violations"]) == ["inputs"]
