"""Optimizers against dspy 3.4.1 itself: the same task on the same mock LM must give the same demos,
instructions and scores."""

from __future__ import annotations

import asyncio
import os
import re

import dspy
import pytest
from dspy.evaluate import answer_exact_match
from dspy_grpc.v1 import optimization_pb2, optimization_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.conftest import MOCK_KEY
from tests.integration.job_helpers import create_dataset, create_optimization, create_program, wait_optimization
from tests.mocklm import arithmetic

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = arithmetic.examples(8)


def _dspy_compile(base_url: str, optimizer, student=None, **compile_args):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    lm = dspy.LM("openai/mock-model", api_base=base_url, api_key=MOCK_KEY, num_retries=0)
    trainset = [dspy.Example(**row).with_inputs("question") for row in ROWS]
    with dspy.context(lm=lm):
        if callable(optimizer) and not hasattr(optimizer, "compile"):
            optimizer = optimizer()
        return optimizer.compile(student or dspy.Predict("question -> answer"), trainset=trainset, **compile_args)


def _pairs(demos) -> list[dict]:
    return [{k: v for k, v in dict(d).items() if k in ("question", "answer", "augmented")} for d in demos]


async def _ours(channel, program_id: str, optimizer: dict) -> tuple[optimization_pb2.Optimization, program_pb2.Program]:
    await create_program(channel, program_id)
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/parity", "metric": {"exact_match": {}},
        "num_threads": 4, **optimizer,
    })
    done = await wait_optimization(channel, created.name)
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    return done, revision


@pytest.fixture
async def task(channel, mock_lm):
    arithmetic.install(mock_lm)
    from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc

    try:
        await dataset_pb2_grpc.DatasetServiceStub(channel).GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/parity"))
    except Exception:  # noqa: BLE001 - first use in this server
        await create_dataset(channel, "parity", ROWS)
    return mock_lm


async def test_labeled_few_shot_picks_dspys_demos(channel, task):
    _, revision = await _ours(channel, "parity-labeled", {"labeled_few_shot": {"k": 3}})
    reference = dspy.LabeledFewShot(k=3).compile(
        dspy.Predict("question -> answer"), trainset=[dspy.Example(**r).with_inputs("question") for r in ROWS])
    ours = [json_format.MessageToDict(d.data) for d in revision.module.predict.predictor.demos]
    assert ours == [dict(d) for d in reference.predictors()[0].demos]


async def test_random_search_matches_dspy(channel, task):
    settings = {"num_candidate_programs": 3, "max_bootstrapped_demos": 2, "max_labeled_demos": 3}
    done, revision = await _ours(channel, "parity-random", {"random_search": settings})
    candidates = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name))

    optimizer = dspy.BootstrapFewShotWithRandomSearch(
        metric=answer_exact_match, num_threads=4, num_candidate_programs=3, max_bootstrapped_demos=2,
        max_labeled_demos=3)
    reference = await asyncio.to_thread(_dspy_compile, task.base_url, optimizer)

    ours = [{**json_format.MessageToDict(d.data), **({"augmented": True} if d.augmented else {})}
            for d in revision.module.predict.predictor.demos]
    assert ours == _pairs(reference.predictors()[0].demos)
    assert done.result.best_score == reference.candidate_programs[0]["score"]
    assert sorted(c.score for c in candidates.candidates) == sorted(c["score"] for c in reference.candidate_programs)


async def test_copro_matches_dspy(channel, task):
    done, revision = await _ours(channel, "parity-copro", {"copro": {"breadth": 3, "depth": 2},
                                                           "prompt_lm": {"model": "mock"}})
    optimizer = dspy.COPRO(metric=answer_exact_match, breadth=3, depth=2)
    reference = await asyncio.to_thread(_dspy_compile, task.base_url, optimizer,
                                        eval_kwargs={"num_threads": 4, "display_progress": False})
    signature = revision.module.predict.predictor.signature
    assert signature.instructions == reference.predictors()[0].signature.instructions
    assert done.result.best_score == reference.candidate_programs[0]["score"]


@pytest.mark.parametrize("settings", [
    {"auto": "light"},
    {"num_candidates": 3, "num_trials": 4, "minibatch_size": 3, "minibatch_full_eval_steps": 2},
    # Past optuna's random start-up trials: TPE draws, with full evaluations in between.
    {"num_candidates": 3, "num_trials": 14, "minibatch_size": 3, "minibatch_full_eval_steps": 2},
])
async def test_mipro_v2_matches_dspy(channel, task, settings):
    program_id = "parity-mipro-" + ("auto" if "auto" in settings else f"manual-{settings['num_trials']}")
    done, revision = await _ours(channel, program_id, {"mipro_v2": settings, "prompt_lm": {"model": "mock"}})
    candidates = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name))

    auto = settings.get("auto")
    def optimizer():
        return dspy.MIPROv2(metric=answer_exact_match, num_threads=4, auto=auto,
                            num_candidates=settings.get("num_candidates"))
    compile_args = {} if auto else {"num_trials": settings["num_trials"], "minibatch_size": settings["minibatch_size"],
                                    "minibatch_full_eval_steps": settings["minibatch_full_eval_steps"]}
    reference = await asyncio.to_thread(_dspy_compile, task.base_url, optimizer, **compile_args)

    predictor = revision.module.predict.predictor
    ours = [{**json_format.MessageToDict(d.data), **({"augmented": True} if d.augmented else {})}
            for d in predictor.demos]
    assert ours == _pairs(reference.predictors()[0].demos)
    assert predictor.signature.instructions == reference.predictors()[0].signature.instructions
    assert done.result.best_score == reference.score
    full = [c.score for c in candidates.candidates if "minibatch" not in c.label]
    assert sorted(full) == sorted(c["score"] for c in reference.candidate_programs)
    # Trial by trial: the same parameters (demos, instruction), minibatch and score, in DSPy's order.
    assert _our_trials(candidates.candidates) == _dspy_trials(reference.trial_logs)


def _our_trials(candidates) -> dict[tuple[int, str], tuple]:
    trials = {}
    for candidate in candidates:
        if candidate.label == "default program":
            key = (1, "full_eval")
        elif found := re.fullmatch(r"full evaluation after trial (\d+)", candidate.label):
            key = (int(found.group(1)) + 1, "full_eval")
        else:
            found = re.fullmatch(r"trial (\d+)( \(minibatch\))?", candidate.label)
            key = (int(found.group(1)), "mb" if found.group(2) else "full_eval")
        predictor = candidate.module.predict.predictor
        demos = [{**json_format.MessageToDict(d.data), **({"augmented": True} if d.augmented else {})}
                 for d in predictor.demos]
        # The stored program leaves its instructions empty: DSPy shows the default ones.
        instructions = predictor.signature.instructions or "Given the fields `question`, produce the fields `answer`."
        trials[key] = (instructions, demos, candidate.score)
    return trials


def _dspy_trials(trial_logs: dict) -> dict[tuple[int, str], tuple]:
    trials = {}
    for number, log in trial_logs.items():
        for kind in ("mb", "full_eval"):
            if f"{kind}_program" in log:
                predictor = log[f"{kind}_program"].predictors()[0]
                trials[(number, kind)] = (predictor.signature.instructions, _pairs(predictor.demos),
                                          log[f"{kind}_score"])
    return trials


async def test_bootstrap_on_a_two_step_program_matches_dspy(channel, task):
    from tests.integration.test_optimize_graph_programs import create_two_step

    await create_two_step(channel, "parity-graph")
    created = await create_optimization(channel, {
        "program": "programs/parity-graph", "dataset": "datasets/parity", "metric": {"exact_match": {}},
        "num_threads": 4, "bootstrap_few_shot": {"max_bootstrapped_demos": 3, "max_labeled_demos": 4},
    })
    done = await wait_optimization(channel, created.name)
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))

    class TwoStep(dspy.Module):
        def __init__(self):
            super().__init__()
            self.draft = dspy.ChainOfThought("question -> answer")
            self.verify = dspy.Predict("question, draft -> answer")

        def forward(self, question):
            return self.verify(question=question, draft=self.draft(question=question).answer)

    optimizer = dspy.BootstrapFewShot(metric=answer_exact_match, max_bootstrapped_demos=3, max_labeled_demos=4)
    reference = await asyncio.to_thread(_dspy_compile, task.base_url, optimizer, student=TwoStep())

    steps = revision.module.graph.steps
    ours = {"draft.predict": steps[0].module.chain_of_thought.predictor.demos,
            "verify": steps[1].module.predict.predictor.demos}
    theirs = dict(reference.named_predictors())
    assert list(theirs) == list(ours)
    for name, demos in ours.items():
        mine = [{**json_format.MessageToDict(d.data), **({"augmented": True} if d.augmented else {})} for d in demos]
        assert mine == [dict(d) for d in theirs[name].demos], name
        assert any(d.augmented for d in demos)
