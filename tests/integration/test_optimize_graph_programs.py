"""Optimizers on programs with several named predictors: a two-step graph ("draft" then "verify") that
scores only when both of its predictors were optimized, and a ReAct agent."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc, job_pb2, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.integration.job_helpers import (
    create_dataset,
    create_optimization,
    evaluate_program,
    exact_match,
    wait_optimization,
)
from tests.mocklm import arithmetic

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: DSPy: draft = ChainOfThought("question -> answer"); verify = Predict("question, draft -> answer").
TWO_STEP = {"graph": {
    "steps": [
        {"name": "draft", "module": {"chain_of_thought": {"predictor": {
            "signature": {"text": "question -> answer"}, "lm": {"model": "mock"}}}},
         "inputs": {"question": "inputs.question"}},
        {"name": "verify", "module": {"predict": {"predictor": {
            "signature": {"text": "question, draft -> answer"}, "lm": {"model": "mock"}}}},
         "inputs": {"question": "inputs.question", "draft": "draft.answer"}},
    ],
    "outputs": {"answer": "verify.answer"},
}}


async def create_two_step(channel, program_id: str) -> None:
    request = json_format.ParseDict({"program_id": program_id, "program": {"module": TWO_STEP}},
                                    program_pb2.CreateProgramRequest())
    await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(request)


async def get_program(channel, name: str) -> program_pb2.Program:
    return await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(program_pb2.GetProgramRequest(name=name))


@pytest.fixture
async def datasets(channel, mock_lm):
    arithmetic.install(mock_lm)
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    try:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/graph-train"))
    except grpc.aio.AioRpcError:
        await create_dataset(channel, "graph-train", arithmetic.examples(8))
        await create_dataset(channel, "graph-dev", arithmetic.examples(6, start=50))


async def _optimize(channel, program_id: str, optimizer: dict) -> job_pb2.JobState:
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/graph-train", "metric": exact_match(),
        "prompt_lm": {"model": "mock"}, **optimizer,
    })
    done = await wait_optimization(channel, created.name, timeout=120)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    return done


@pytest.mark.parametrize(
    ("program_id", "optimizer"),
    [
        ("graph-labeled", {"labeled_few_shot": {"k": 2}}),
        ("graph-bootstrap", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 2}}),
        ("graph-random", {"random_search": {"num_candidate_programs": 2, "max_bootstrapped_demos": 2,
                                            "max_labeled_demos": 2}}),
        ("graph-copro", {"copro": {"breadth": 2, "depth": 2}}),
        ("graph-mipro", {"mipro_v2": {"num_candidates": 2, "num_trials": 6, "max_bootstrapped_demos": 0,
                                      "max_labeled_demos": 0, "minibatch": False}}),
    ],
)
async def test_each_optimizer_improves_a_two_step_graph(channel, datasets, program_id, optimizer):
    await create_two_step(channel, program_id)
    before = await evaluate_program(channel, f"programs/{program_id}", "datasets/graph-dev")
    done = await _optimize(channel, program_id, optimizer)
    after = await evaluate_program(channel, done.result.program_revision, "datasets/graph-dev")
    # The verify step answers only when it knows the task and the draft is right: both predictors
    # must have been given demos or instructions.
    assert before == 0.0 and after == 100.0
    steps = (await get_program(channel, done.result.program_revision)).module.graph.steps
    draft, verify = steps[0].module.chain_of_thought.predictor, steps[1].module.predict.predictor
    good = arithmetic.GOOD_INSTRUCTION
    assert draft.demos or draft.signature.instructions == good
    assert verify.demos or verify.signature.instructions == good


async def test_each_predictor_is_bootstrapped_from_the_whole_programs_trace(channel, datasets):
    await create_two_step(channel, "graph-traces")
    done = await _optimize(channel, "graph-traces", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2,
                                                                            "max_labeled_demos": 2}})
    steps = (await get_program(channel, done.result.program_revision)).module.graph.steps
    draft = steps[0].module.chain_of_thought.predictor.demos
    verify = steps[1].module.predict.predictor.demos
    rows = arithmetic.examples(8)
    assert [d.augmented for d in draft] == [True, True] and [d.augmented for d in verify] == [True, True]
    for index, (d, v) in enumerate(zip(draft, verify, strict=True)):
        d, v = dict(d.data), dict(v.data)
        # One run of the program gave both demos: the draft step's answer is the verify step's input.
        assert d == {"question": rows[index]["question"], "reasoning": "Adding the numbers.",
                     "answer": rows[index]["answer"]}
        assert v == {"question": rows[index]["question"], "draft": rows[index]["answer"],
                     "answer": rows[index]["answer"]}


async def test_react_predictors_get_demos_by_name(channel, datasets):
    request = json_format.ParseDict({"program_id": "graph-react", "program": {"module": {"react": {
        "predictor": {"signature": {"text": "question -> answer"}, "lm": {"model": "mock"}},
        "tools": [{"name": "calculator", "builtin": "calculator"}], "max_iters": 3,
        "react": {"instructions": "Use the calculator."}}}}}, program_pb2.CreateProgramRequest())
    await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(request)
    done = await _optimize(channel, "graph-react", {"labeled_few_shot": {"k": 3}})
    react = (await get_program(channel, done.result.program_revision)).module.react
    assert len(react.react.demos) == 3 and len(react.extract.demos) == 3
    assert react.react.instructions == "Use the calculator."
    questions = {row["question"] for row in arithmetic.examples(8)}
    assert all(dict(d.data)["question"] in questions for d in [*react.react.demos, *react.extract.demos])
    assert not react.predictor.demos
