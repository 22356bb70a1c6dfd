"""Optimizers on the multi-hop tutorial program (a loop over query -> retrieve -> notes): every
predictor inside the loop is seen once, bootstrapped demos come from the hops' calls, and
BootstrapFewShot and MIPROv2 raise the score on a task where retrieval decides it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc, dataset_pb2, dataset_pb2_grpc, job_pb2, program_pb2
from dspy_grpc.v1 import program_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.job_helpers import create_dataset, create_optimization, evaluate_program, wait_optimization
from tests.mocklm import claims
from tests.retrieval.programs import multihop
from tests.retrieval.wiki import generate

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORPUS = generate(300, seed=77)


def program_module() -> dict:
    """The tutorial's Hop (2 hops, 5 passages each, every predictor on the mock) plus a value step
    joining the found titles into one answer string for exact match."""

    module = multihop("corpora/claims-wiki", num_docs=5, num_hops=2)
    for step in module["graph"]["steps"][0]["module"]["loop"]["body"]["steps"]:
        if "chainOfThought" in step["module"]:
            step["module"]["chainOfThought"]["predictor"]["lm"] = {"model": "mock"}
    module["graph"]["steps"].append({"name": "answer", "module": {"value": {
        "operation": "VALUE_OPERATION_JOIN", "inputs": ["titles"], "separator": ", "}},
        "inputs": {"titles": "unique_titles.value"}})
    module["graph"]["outputs"]["answer"] = "answer.value"
    return module


@pytest_asyncio.fixture(loop_scope="session")
async def channel(server_factory, mock_lm_server) -> AsyncIterator[grpc.aio.Channel]:
    """A server with a second model, "teacher", on the mock (the tutorial's strong teacher LM)."""

    teacher = mock_model_config(mock_lm_server.base_url, alias="teacher", model=claims.TEACHER_MODEL)
    running = await server_factory(models=(mock_model_config(mock_lm_server.base_url), teacher, BUILTIN_DUMMY))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan


@pytest.fixture
async def task(channel, mock_lm):
    claims.install(mock_lm)
    corpora = corpus_pb2_grpc.CorpusServiceStub(channel)
    datasets = dataset_pb2_grpc.DatasetServiceStub(channel)
    try:
        await datasets.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/claims-train"))
    except grpc.aio.AioRpcError:
        await corpora.CreateCorpus(corpus_pb2.CreateCorpusRequest(
            corpus_id="claims-wiki", corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(k1=0.9, b=0.4))))
        await corpora.AppendDocuments(iter([json_format.ParseDict(
            {"corpus": "corpora/claims-wiki", "request_id": "load", "documents": [{"text": t} for t in CORPUS]},
            corpus_pb2.AppendDocumentsRequest())]))
        await create_dataset(channel, "claims-train", claims.examples(CORPUS, 6), input_keys=("claim",))
        await create_dataset(channel, "claims-dev", claims.examples(CORPUS, 6, start=6), input_keys=("claim",))


async def _create(channel, program_id: str) -> None:
    await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict(
        {"program_id": program_id, "program": {"module": program_module()}}, program_pb2.CreateProgramRequest()))


def _body_predictors(program: program_pb2.Program) -> dict:
    body = program.module.graph.steps[0].module.loop.body.steps
    return {step.name: step.module.chain_of_thought.predictor for step in body if step.module.HasField("chain_of_thought")}


@pytest.mark.parametrize(
    ("program_id", "optimizer"),
    [
        ("hop-bootstrap", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 1},
                           "teacher_lm": {"model": "teacher"}}),
        ("hop-mipro", {"mipro_v2": {"num_candidates": 2, "num_trials": 4, "max_bootstrapped_demos": 0,
                                    "max_labeled_demos": 0, "minibatch": False}}),
    ],
)
async def test_optimizers_improve_the_multihop_program(channel, task, program_id, optimizer):
    await _create(channel, program_id)
    before = await evaluate_program(channel, f"programs/{program_id}", "datasets/claims-dev")
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/claims-train", "metric": {"exact_match": {}},
        "prompt_lm": {"model": "mock"}, **optimizer,
    })
    done = await wait_optimization(channel, created.name, timeout=240)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    after = await evaluate_program(channel, done.result.program_revision, "datasets/claims-dev")
    assert before == 0.0 and after == 100.0
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    optimized = await stub.GetProgram(program_pb2.GetProgramRequest(name=done.result.program_revision))
    predictors = _body_predictors(optimized)
    query = predictors["generate_query"]
    assert query.demos or query.signature.instructions == claims.GOOD_INSTRUCTION
    # The loop and its retriever are kept as they were.
    assert optimized.module.graph.steps[0].module.loop.max_iters == 2
    assert optimized.module.graph.steps[0].module.loop.body.steps[1].module.retrieve.corpus == "corpora/claims-wiki"


async def test_bootstrapped_demos_come_from_the_hops(channel, task):
    await _create(channel, "hop-traces")
    created = await create_optimization(channel, {
        "program": "programs/hop-traces", "dataset": "datasets/claims-train", "metric": {"exact_match": {}},
        "bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 1}, "teacher_lm": {"model": "teacher"},
    })
    done = await wait_optimization(channel, created.name, timeout=240)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    predictors = _body_predictors(await stub.GetProgram(program_pb2.GetProgramRequest(
        name=done.result.program_revision)))
    rows = {row["claim"]: row["answer"] for row in claims.examples(CORPUS, 6)}
    for name, outputs in (("generate_query", {"query"}), ("append_notes", {"new_notes", "titles"})):
        augmented = [dict(json_format.MessageToDict(d.data)) for d in predictors[name].demos if d.augmented]
        assert len(augmented) == 2, name
        for demo in augmented:
            assert demo["claim"] in rows and outputs <= set(demo), name
    # An append_notes demo holds the retriever's {text: score} context of its hop and the page it found.
    notes = [dict(json_format.MessageToDict(d.data)) for d in predictors["append_notes"].demos if d.augmented]
    for demo in notes:
        assert isinstance(demo["context"], dict) and demo["titles"] == [rows[demo["claim"]]]
