"""KNNFewShot over gRPC: embedding models through the provider layer, the KNNFewShot optimization
job, and programs that bootstrap demos from the nearest training examples on every call."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    job_pb2,
    lm_pb2,
    lm_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import (
    create_dataset,
    create_optimization,
    create_program,
    evaluate_program,
    exact_match,
    wait_optimization,
)
from tests.mocklm import MockReply, operations
from tests.mocklm.embeddings import hashed_embedding

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRAIN = operations.examples(12)
DEV = operations.examples(9, start=50)


@pytest.fixture
async def knn_channel(server_factory, mock_lm):
    operations.install(mock_lm)
    embed = mock_model_config(mock_lm.base_url, "mock-embed", model="mock-embedding", kind="embedding")
    running = await server_factory(models=(mock_model_config(mock_lm.base_url), embed, BUILTIN_DUMMY))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_dataset(channel, "knn-train", TRAIN)
        await create_dataset(channel, "knn-dev", DEV)
        yield channel


def _text(row: dict) -> str:
    return f"question: {row['question']}"


async def _knn(channel, program_id: str, **settings) -> job_pb2.JobState:
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/knn-train", "metric": exact_match(),
        "knn_few_shot": {"k": 3, "embedding_model": "mock-embed", **settings},
    })
    return await wait_optimization(channel, created.name)


async def _predict(channel, program: str, question: str) -> inference_pb2.PredictResponse:
    request = json_format.ParseDict({"program": program, "inputs": {"question": question}},
                                    inference_pb2.PredictRequest())
    return await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request)


async def test_knn_few_shot_raises_the_dev_score_where_random_demos_do_not(knn_channel, mock_lm):
    channel = knn_channel
    await create_program(channel, "knn-qa")
    before = await evaluate_program(channel, "programs/knn-qa", "datasets/knn-dev")
    labeled = await create_optimization(channel, {
        "program": "programs/knn-qa", "dataset": "datasets/knn-train", "metric": exact_match(),
        "labeled_few_shot": {"k": 3}})
    labeled = await wait_optimization(channel, labeled.name)
    random_demos = await evaluate_program(channel, labeled.result.program_revision, "datasets/knn-dev")

    mock_lm.requests.clear()
    done = await _knn(channel, "knn-qa")
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    # The job embeds the training examples once, in one batch, as DSPy words them.
    (request,) = mock_lm.embedding_requests
    assert request.json["input"] == [_text(row) for row in TRAIN] and request.json["model"] == "mock-embedding"
    assert not mock_lm.completion_requests  # no split: the job itself runs nothing

    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    knn = revision.module.knn_few_shot
    assert knn.k == 3 and knn.embedding_model == "mock-embed"
    assert [f.name for f in knn.module.predict.predictor.signature.fields] == ["question", "answer"]
    assert [json_format.MessageToDict(item.example.data) for item in knn.examples] == TRAIN
    for item, row in zip(knn.examples, TRAIN, strict=True):
        assert list(item.embedding) == pytest.approx(hashed_embedding(_text(row)), abs=1e-6)

    mock_lm.requests.clear()
    after = await evaluate_program(channel, done.result.program_revision, "datasets/knn-dev")
    assert before == 0.0 and random_demos < 100.0 and after == 100.0
    # Serving embeds only the query: one text per dev example.
    assert sorted(r.json["input"][0] for r in mock_lm.embedding_requests) == sorted(_text(row) for row in DEV)
    assert all(len(r.json["input"]) == 1 for r in mock_lm.embedding_requests)


async def test_each_call_bootstraps_demos_from_its_nearest_examples(knn_channel, mock_lm):
    channel = knn_channel
    await create_program(channel, "knn-call")
    done = await _knn(channel, "knn-call", max_bootstrapped_demos=2, max_labeled_demos=3)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error

    row = operations.question("subtract", 77, 5)
    mock_lm.requests.clear()
    mock_lm.enqueue(MockReply.error(503))  # the embeddings call is retried like a completion
    response = await _predict(channel, done.result.program_revision, row["question"])
    assert json_format.MessageToDict(response.prediction.outputs) == {"answer": "72"}
    assert len(mock_lm.embedding_requests) == 2
    usage = {u.model: u for u in response.prediction.usage}
    assert usage["mock-embed"].calls == 1 and usage["mock-embed"].prompt_tokens > 0
    # The teacher ran on the 2 nearest neighbours (each with the other two as labeled demos) -- enough
    # for max_bootstrapped_demos -- then the answer: 2 bootstrapped demos and 1 labeled, all subtractions.
    chats = mock_lm.completion_requests
    assert len(chats) == 3
    final = chats[-1].messages
    demo_questions = [m["content"] for m in final[1:-1] if m["role"] == "user"]
    assert len(demo_questions) == 3
    assert all(operations.operation_of(q)[0] == "subtract" for q in demo_questions)
    assert [m["content"] for m in final[1:-1] if m["role"] == "assistant"][0].startswith("[[ ## answer ## ]]")


async def test_embedding_models_are_listed_and_refuse_chat(knn_channel, mock_lm):
    channel = knn_channel
    models = await lm_pb2_grpc.LMServiceStub(channel).ListModels(lm_pb2.ListModelsRequest())
    kinds = {m.alias: m.kind for m in models.models}
    assert kinds["mock-embed"] == "embedding" and kinds["mock"] == "chat"

    request = json_format.ParseDict({
        "module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
        "inputs": {"question": "hi"}, "lm": {"model": "mock-embed"}}, inference_pb2.PredictRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(caught.value)
    assert details["reason"] == "NOT_A_CHAT_MODEL" and "lm.model" in details["violations"]
    assert not mock_lm.requests


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"k": 0}, "optimization.knn_few_shot.k"),
        ({"embedding_model": ""}, "optimization.knn_few_shot.embedding_model"),
        ({"embedding_model": "nope"}, "optimization.knn_few_shot.embedding_model"),
        ({"embedding_model": "mock"}, "optimization.knn_few_shot.embedding_model"),
        ({"max_rounds": 0}, "optimization.knn_few_shot.max_rounds"),
        ({"dataset": "datasets/knn-empty"}, "optimization.dataset"),
    ],
)
async def test_bad_knn_optimizations_are_rejected_at_create_time(knn_channel, settings, field):
    channel = knn_channel
    await create_program(channel, "knn-bad")
    await create_dataset(channel, "knn-empty", [])
    dataset = settings.pop("dataset", "datasets/knn-train")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create_optimization(channel, {
            "program": "programs/knn-bad", "dataset": dataset, "metric": exact_match(),
            "knn_few_shot": {"k": 3, "embedding_model": "mock-embed", **settings}})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]


def _knn_module(**changes) -> dict:
    body = {
        "module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}, "lm": {"model": "mock"}}}},
        "k": 2, "embedding_model": "mock-embed",
        "examples": [{"example": {"data": row, "input_keys": ["question"]},
                      "embedding": hashed_embedding(_text(row))} for row in TRAIN[:4]],
    }
    body.update(changes)
    return {"knn_few_shot": body}


@pytest.mark.parametrize(
    ("module", "field"),
    [
        (_knn_module(k=0), "program.module.knn_few_shot.k"),
        (_knn_module(examples=[]), "program.module.knn_few_shot.examples"),
        (_knn_module(embedding_model=""), "program.module.knn_few_shot.embedding_model"),
        (_knn_module(module={"graph": {}}), "program.module.knn_few_shot.module"),
        (_knn_module(examples=[{"example": {"data": TRAIN[0], "input_keys": ["question"]}, "embedding": [1.0]},
                               {"example": {"data": TRAIN[1], "input_keys": ["question"]}, "embedding": [1.0, 0.0]}]),
         "program.module.knn_few_shot.examples[1].embedding"),
        (_knn_module(examples=[{"example": {"data": TRAIN[0], "input_keys": ["answer"]}, "embedding": [1.0]}]),
         "program.module.knn_few_shot.examples[0].example.input_keys"),
    ],
)
async def test_bad_knn_modules_are_rejected_when_the_program_is_created(knn_channel, module, field):
    request = json_format.ParseDict({"program_id": "knn-inline", "program": {"module": module}},
                                    program_pb2.CreateProgramRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await program_pb2_grpc.ProgramServiceStub(knn_channel).CreateProgram(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]


async def test_an_inline_knn_module_runs_and_round_trips(knn_channel, mock_lm):
    request = json_format.ParseDict({"program_id": "knn-stored", "program": {"module": _knn_module()}},
                                    program_pb2.CreateProgramRequest())
    created = await program_pb2_grpc.ProgramServiceStub(knn_channel).CreateProgram(request)
    assert json_format.MessageToDict(created.module)["knnFewShot"]["k"] == 2
    row = TRAIN[6]  # an addition; TRAIN[:4] holds two additions (its 2 nearest) and two others
    response = await _predict(knn_channel, "programs/knn-stored", row["question"])
    assert json_format.MessageToDict(response.prediction.outputs) == {"answer": row["answer"]}


async def test_the_per_call_bootstrap_keeps_only_teacher_runs_passing_its_metric(knn_channel, mock_lm):
    channel = knn_channel
    await create_program(channel, "knn-metric")
    # No answer contains its own question, so no teacher run passes: every neighbour is tried and
    # the call answers with labeled demos only.
    never = {"contains": {"field": "answer", "label_field": "question"}}
    done = await _knn(channel, "knn-metric", max_bootstrapped_demos=2, max_labeled_demos=3, bootstrap_metric=never)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    row = operations.question("subtract", 77, 5)
    mock_lm.requests.clear()
    response = await _predict(channel, done.result.program_revision, row["question"])
    assert json_format.MessageToDict(response.prediction.outputs) == {"answer": "72"}
    chats = mock_lm.completion_requests
    assert len(chats) == 4  # the teacher on each of the 3 neighbours, then the answer
    final = chats[-1].messages
    assert len([m for m in final[1:-1] if m["role"] == "user"]) == 3

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _knn(channel, "knn-metric", bootstrap_metric={"contains": {"field": "answer", "label_field": "nope"}})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "optimization.knn_few_shot.bootstrap_metric.contains.label_field" in error_details(caught.value)["violations"]
