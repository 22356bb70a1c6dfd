"""GEPA against dspy 3.4.1 (and the gepa 0.1.4 engine it pins) on the same scripted mock LM: the same
reflective prompts reach the reflection LM, the same instructions come back, the candidates, their
lineage and valset scores are the same, and so is the final program."""

from __future__ import annotations

import asyncio
import os

import dspy
import pytest
from dspy_grpc.v1 import job_pb2, optimization_pb2, optimization_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.modules.metrics import normalize_text
from tests.conftest import MOCK_KEY
from tests.integration.job_helpers import create_dataset, create_optimization, create_program, wait_optimization
from tests.mocklm import arithmetic, reflection

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = arithmetic.examples(8)


def feedback_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
    """Our exact-match metric's score and feedback, written as a DSPy GEPA metric."""

    got, expected = pred.answer, gold.answer
    if normalize_text(str(got)) == normalize_text(str(expected)):
        return dspy.Prediction(score=1.0, feedback=f"The answer {got} is correct (expected {expected}).")
    return dspy.Prediction(score=0.0, feedback=f"The answer {got} is incorrect: the expected answer is {expected}.")


def _dspy_gepa(base_url: str, student, settings: dict):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM("openai/mock-model", api_base=base_url, api_key=MOCK_KEY, num_retries=0, cache=False)
    reflection_lm = dspy.LM("openai/mock-model", api_base=base_url, api_key=MOCK_KEY, num_retries=0, cache=False)
    trainset = [dspy.Example(**row).with_inputs("question") for row in ROWS]
    optimizer = dspy.GEPA(metric=feedback_metric, reflection_lm=reflection_lm, num_threads=4, track_stats=True,
                          **settings)
    with dspy.context(lm=lm):
        return optimizer.compile(student, trainset=trainset)


class TwoStep(dspy.Module):
    """Draft an answer, then check it: two predictors ("draft", "verify") whose instructions matter."""

    def __init__(self):
        super().__init__()
        self.draft = dspy.Predict("question -> answer")
        self.verify = dspy.Predict("question, draft -> answer")

    def forward(self, question):
        draft = self.draft(question=question).answer
        return self.verify(question=question, draft=draft)


TWO_STEP = {"graph": {
    "steps": [
        {"name": "draft", "module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
         "inputs": {"question": "inputs.question"}},
        {"name": "verify",
         "module": {"predict": {"predictor": {"signature": {"text": "question, draft -> answer"}}}},
         "inputs": {"question": "inputs.question", "draft": "draft.answer"}},
    ],
    "outputs": {"answer": "verify.answer"},
}}


@pytest.fixture
async def task(channel, mock_lm):
    reflection.install(mock_lm)
    from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc

    try:
        await dataset_pb2_grpc.DatasetServiceStub(channel).GetDataset(
            dataset_pb2.GetDatasetRequest(name="datasets/gepa-parity"))
    except Exception:  # noqa: BLE001 - first use in this server
        await create_dataset(channel, "gepa-parity", ROWS)
    return mock_lm


def _reflections(requests) -> list[str]:
    return [r.last_user_text for r in requests if "`new_instruction`" in (r.messages[0].get("content") or "")]


def _theirs(program) -> dict[str, str]:
    """A DSPy program's instructions by predictor name (a bare Predict is "self" there, "predict" here)."""

    return {("predict" if name == "self" else name): p.signature.instructions for name, p in program.named_predictors()}


def _instructions(module) -> dict[str, str]:
    kind = module.WhichOneof("module")
    if kind == "predict":
        return {"predict": module.predict.predictor.signature.instructions}
    return {step.name: step.module.predict.predictor.signature.instructions for step in module.graph.steps}


@pytest.mark.parametrize(("program", "settings"), [
    ("single", {"max_metric_calls": 60}),
    ("single", {"max_metric_calls": 60, "candidate_selection_strategy": "current_best", "use_merge": False}),
    ("two_step", {"max_metric_calls": 80}),
    # Seeds whose runs merge two frontier candidates (a draft-only and a verify-only change).
    ("two_step", {"max_metric_calls": 160, "seed": 1}),
    ("two_step", {"max_metric_calls": 160, "seed": 4}),
])
async def test_gepa_matches_dspy(channel, task, program, settings):
    program_id = f"gepa-{program.replace('_', '-')}-{len(settings)}-{settings['max_metric_calls']}-{settings.get('seed', 0)}"
    if program == "single":
        await create_program(channel, program_id)
    else:
        await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict(
            {"program_id": program_id, "program": {"module": TWO_STEP}}, program_pb2.CreateProgramRequest()))
    task.requests.clear()
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/gepa-parity", "metric": {"exact_match": {}},
        "num_threads": 4, "task_lm": {"model": "mock"}, "gepa": {**settings, "reflection_lm": {"model": "mock"}},
    })
    done = await wait_optimization(channel, created.name, timeout=120)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    ours_reflections = _reflections(task.completion_requests)
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    listed = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name, page_size=100))
    candidates = sorted(listed.candidates, key=lambda c: c.index)

    task.requests.clear()
    student = dspy.Predict("question -> answer") if program == "single" else TwoStep()
    reference = await asyncio.to_thread(_dspy_gepa, task.base_url, student, settings)
    theirs_reflections = _reflections(task.completion_requests)
    details = reference.detailed_results

    # The same reflective prompts (in the same order), hence the same proposals.
    assert ours_reflections == theirs_reflections
    assert len(ours_reflections) >= 2
    # The same candidates, lineage and valset scores.
    assert [_instructions(c.module) for c in candidates] == [_theirs(candidate) for candidate in details.candidates]
    assert [list(c.parents) for c in candidates] == [[p for p in parents if p is not None] for parents in details.parents]
    assert [c.score for c in candidates] == [round(100 * s, 2) for s in details.val_aggregate_scores]
    assert [list(c.instance_scores) for c in candidates] == [
        [scores[i] for i in sorted(scores)] for scores in details.val_subscores
    ]
    # The same final program.
    assert _instructions(revision.module) == _theirs(reference)
    assert done.result.best_candidate == details.best_idx
    assert done.result.best_score == round(100 * details.val_aggregate_scores[details.best_idx], 2)
    assert done.result.best_score > candidates[0].score  # instructions matter on this task
    if settings.get("seed"):
        merges = [c for c in candidates if c.label.startswith("merge")]
        assert merges and all(len(c.parents) == 2 for c in merges)
    assert done.progress.metric_calls_budget == settings["max_metric_calls"]
    assert 0 < done.progress.metric_calls_used <= settings["max_metric_calls"] + len(ROWS)
