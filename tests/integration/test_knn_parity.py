"""KNNFewShot against dspy 3.4.1 itself: with the same embeddings (the mock's, through a
``dspy.Embedder`` wrapping a call to it) and the same LM, DSPy's compiled program and ours embed the
same texts, pick the same neighbours and send byte-identical final prompts."""

from __future__ import annotations

import asyncio
import os

import dspy
import grpc
import httpx
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, job_pb2
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.modules.knn import as_float32
from tests.conftest import MOCK_KEY, mock_model_config
from tests.integration.job_helpers import (
    create_dataset,
    create_optimization,
    create_program,
    exact_match,
    wait_optimization,
)
from tests.mocklm import operations
from tests.mocklm.embeddings import hashed_embedding

pytestmark = pytest.mark.asyncio(loop_scope="session")

K = 3
BOOTSTRAP = {"max_bootstrapped_demos": 2, "max_labeled_demos": 3}
# "Kindly." repeated gives the examples of one operation different lengths, so no two have the same
# similarity to a query: the neighbours and their order do not hang on how a sort breaks ties.
ROWS = [dict(row, question=row["question"] + " Kindly." * (i % 4 + 1))
        for i, row in enumerate(operations.examples(12))]
QUESTIONS = [row["question"] for row in operations.examples(6, start=40)]


def _text(question: str) -> str:
    return f"question: {question}"


async def test_the_parity_data_has_no_ties():
    vectors = [as_float32(hashed_embedding(_text(row["question"]))) for row in ROWS]
    for question in QUESTIONS:
        query = as_float32(hashed_embedding(_text(question)))
        scores = sorted((sum(a * b for a, b in zip(v, query)) for v in vectors), reverse=True)
        assert all(scores[i] - scores[i + 1] > 1e-5 for i in range(K)), (question, scores)


def _dspy_answers(base_url: str) -> list[str]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM("openai/mock-model", api_base=base_url, api_key=MOCK_KEY, num_retries=0, cache=False)

    def vectors(texts: list[str]) -> list[list[float]]:
        answer = httpx.post(f"{base_url}/embeddings", json={"model": "mock-embedding", "input": list(texts)})
        answer.raise_for_status()
        return [item["embedding"] for item in answer.json()["data"]]

    trainset = [dspy.Example(**row).with_inputs("question") for row in ROWS]
    with dspy.context(lm=lm):
        optimizer = dspy.KNNFewShot(K, trainset, vectorizer=dspy.Embedder(vectors, caching=False), **BOOTSTRAP)
        program = optimizer.compile(dspy.Predict("question -> answer"))
        return [program(question=question).answer for question in QUESTIONS]


def _final_prompts(mock_lm) -> dict[str, list[dict]]:
    """The last chat request about each question (its answer; the teacher's requests are about the
    neighbours)."""

    out = {}
    for request in mock_lm.completion_requests:
        for question in QUESTIONS:
            if question in request.last_user_text:
                out[question] = request.messages
    return out


async def test_knn_few_shot_matches_dspy(server_factory, mock_lm):
    operations.install(mock_lm)
    embed = mock_model_config(mock_lm.base_url, "mock-embed", model="mock-embedding", kind="embedding")
    running = await server_factory(models=(mock_model_config(mock_lm.base_url), embed, BUILTIN_DUMMY))

    reference_answers = await asyncio.to_thread(_dspy_answers, mock_lm.base_url)
    reference_embedded = [r.json["input"] for r in mock_lm.embedding_requests]
    reference_prompts = _final_prompts(mock_lm)
    mock_lm.requests.clear()

    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_dataset(channel, "knn-parity", ROWS)
        await create_program(channel, "knn-parity")
        created = await create_optimization(channel, {
            "program": "programs/knn-parity", "dataset": "datasets/knn-parity", "metric": exact_match(),
            "knn_few_shot": {"k": K, "embedding_model": "mock-embed", **BOOTSTRAP}})
        done = await wait_optimization(channel, created.name)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
        answers = []
        for question in QUESTIONS:
            request = json_format.ParseDict({"program": done.result.program_revision,
                                             "inputs": {"question": question}}, inference_pb2.PredictRequest())
            response = await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request)
            answers.append(json_format.MessageToDict(response.prediction.outputs)["answer"])

    embedded = [r.json["input"] for r in mock_lm.embedding_requests]
    assert embedded == reference_embedded  # the trainset in one batch, then one query per call
    assert embedded[0] == [_text(row["question"]) for row in ROWS]
    assert _final_prompts(mock_lm) == reference_prompts and len(reference_prompts) == len(QUESTIONS)
    assert answers == reference_answers
    assert answers == [operations.question(*operations.operation_of(q)).get("answer") for q in QUESTIONS]
