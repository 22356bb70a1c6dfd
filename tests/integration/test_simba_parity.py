"""SIMBA against dspy 3.4.1 on the same scripted mock LM: the same rule prompts reach the prompt model
(all but the program's code, which DSPy shows as Python source), the same demos and rules are added,
the finalists score the same and the final program is the same. The task improves: demos and rules
both make it answer."""

from __future__ import annotations

import asyncio
import os
import re

import dspy
import pytest
from dspy_grpc.v1 import job_pb2, optimization_pb2, optimization_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.modules.metrics import normalize_text
from tests.conftest import MOCK_KEY
from tests.integration.job_helpers import create_dataset, create_optimization, create_program, wait_optimization
from tests.integration.test_gepa_parity import TWO_STEP, TwoStep
from tests.mocklm import arithmetic, reflection

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = arithmetic.examples(8)
SETTINGS = {"bsize": 4, "num_candidates": 3, "max_steps": 3, "max_demos": 2}
PROGRAM_CODE = re.compile(r"\[\[ ## program_code ## \]\]\n.*?\n\n(?=\[\[ ## modules_defn ## \]\])", re.DOTALL)


def feedback_metric(gold, pred, trace=None):
    """Our exact-match metric's score and feedback, written as a DSPy metric."""

    got, expected = pred.answer, gold.answer
    if normalize_text(str(got)) == normalize_text(str(expected)):
        return dspy.Prediction(score=1.0, feedback=f"The answer {got} is correct (expected {expected}).")
    return dspy.Prediction(score=0.0, feedback=f"The answer {got} is incorrect: the expected answer is {expected}.")


def _dspy_simba(base_url: str, student):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM("openai/mock-model", api_base=base_url, api_key=MOCK_KEY, num_retries=0, cache=False)
    trainset = [dspy.Example(**row).with_inputs("question") for row in ROWS]
    optimizer = dspy.SIMBA(metric=feedback_metric, num_threads=4, **SETTINGS)
    with dspy.context(lm=lm):
        return optimizer.compile(student, trainset=trainset, seed=0)


def _rule_prompts(requests) -> list[list[dict]]:
    prompts = []
    for r in requests:
        if "`module_advice`" in (r.messages[0].get("content") or ""):
            prompts.append([{**m, "content": PROGRAM_CODE.sub("", m["content"])} for m in r.messages])
    return prompts


def _demos(predictor) -> list[dict]:
    return [{**json_format.MessageToDict(d.data), **({"augmented": True} if d.augmented else {})}
            for d in predictor.demos]


def _predictors(module) -> dict:
    if module.WhichOneof("module") == "predict":
        return {"self": module.predict.predictor}
    return {step.name: step.module.predict.predictor for step in module.graph.steps}


@pytest.mark.parametrize("program", ["single", "two_step"])
async def test_simba_matches_dspy(channel, mock_lm, program):
    reflection.install(mock_lm, sampling_luck=True)
    program_id = f"simba-parity-{program.replace('_', '-')}"
    await create_dataset(channel, program_id, ROWS)
    if program == "single":
        await create_program(channel, program_id)
    else:
        await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict(
            {"program_id": program_id, "program": {"module": TWO_STEP}}, program_pb2.CreateProgramRequest()))
    mock_lm.requests.clear()
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": f"datasets/{program_id}", "metric": {"exact_match": {}},
        "num_threads": 4, "task_lm": {"model": "mock"}, "prompt_lm": {"model": "mock"}, "simba": SETTINGS,
    })
    done = await wait_optimization(channel, created.name, timeout=120)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    ours_rules = _rule_prompts(mock_lm.completion_requests)
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    listed = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name))

    mock_lm.requests.clear()
    student = dspy.Predict("question -> answer") if program == "single" else TwoStep()
    reference = await asyncio.to_thread(_dspy_simba, mock_lm.base_url, student)
    theirs_rules = _rule_prompts(mock_lm.completion_requests)

    assert sorted(map(str, ours_rules)) == sorted(map(str, theirs_rules))  # rules are written concurrently
    assert ours_rules, "no rule was written: the task should exercise both strategies"
    ours = _predictors(revision.module)
    theirs = dict(reference.named_predictors())
    assert list(ours) == list(theirs)
    for name, predictor in ours.items():
        assert predictor.signature.instructions == theirs[name].signature.instructions
        assert _demos(predictor) == [dict(d) for d in theirs[name].demos]
    assert sorted((c.score for c in listed.candidates), reverse=True) == [
        round(100 * c["score"], 2) for c in reference.candidate_programs]
    assert done.result.best_score == round(100 * reference.candidate_programs[0]["score"], 2)
    assert done.result.best_score > [c.score for c in listed.candidates if c.label == "baseline"][0]
