"""OptimizationService over gRPC: each optimizer raises the metric on a task where demos matter."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dspy_grpc.v1 import job_pb2, optimization_pb2, optimization_pb2_grpc, program_pb2, program_pb2_grpc

from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import (
    create_dataset,
    create_optimization,
    create_program,
    evaluate_program,
    exact_match,
    wait_optimization,
)
from tests.mocklm import arithmetic, reflection

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def task(mock_lm):
    reflection.install(mock_lm)  # the arithmetic task, plus GEPA's reflection LM
    return mock_lm


async def _optimize(channel, program_id: str, optimizer: dict, *, dataset: str = "datasets/opt-train",
                    **extra) -> optimization_pb2.Optimization:
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": dataset, "metric": exact_match(), **optimizer, **extra,
    })
    done = await wait_optimization(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    return done


@pytest.fixture
async def datasets(channel, task):
    from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc

    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    try:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/opt-train"))
    except grpc.aio.AioRpcError:
        await create_dataset(channel, "opt-train", arithmetic.examples(8))
        await create_dataset(channel, "opt-dev", arithmetic.examples(6, start=50))


@pytest.mark.parametrize(
    ("program_id", "optimizer"),
    [
        ("opt-labeled", {"labeled_few_shot": {"k": 2}}),
        ("opt-bootstrap", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 3}}),
        ("opt-random", {"random_search": {"num_candidate_programs": 2, "max_bootstrapped_demos": 2,
                                          "max_labeled_demos": 2}}),
        ("opt-copro", {"copro": {"breadth": 2, "depth": 2}, "prompt_lm": {"model": "mock"}}),
        ("opt-mipro", {"mipro_v2": {"auto": "light"}}),
        ("opt-mipro-zeroshot", {"mipro_v2": {"num_candidates": 2, "num_trials": 2, "max_bootstrapped_demos": 0,
                                             "minibatch_size": 3, "minibatch_full_eval_steps": 1,
                                             "max_labeled_demos": 0}}),
    ],
)
async def test_each_optimizer_raises_the_metric(channel, datasets, program_id, optimizer):
    await create_program(channel, program_id)
    before = await evaluate_program(channel, f"programs/{program_id}", "datasets/opt-dev")
    done = await _optimize(channel, program_id, optimizer)
    assert done.result.program_revision == f"programs/{program_id}@r0002"
    after = await evaluate_program(channel, done.result.program_revision, "datasets/opt-dev")
    assert before == 0.0 and after == 100.0

    # Not activated unless asked: the program still runs r0001 by default.
    program = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=f"programs/{program_id}"))
    assert program.active_revision_id == "r0001" and not done.result.activated


async def test_bootstrapped_demos_are_the_teachers_traces(channel, datasets):
    await create_program(channel, "opt-traces", kind="chain_of_thought")
    done = await _optimize(channel, "opt-traces", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2,
                                                                          "max_labeled_demos": 2}})
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    demos = revision.module.chain_of_thought.predictor.demos
    assert [d.augmented for d in demos] == [True, True]
    rows = arithmetic.examples(8)
    first = dict(demos[0].data)
    assert first["question"] == rows[0]["question"] and first["answer"] == rows[0]["answer"]
    assert first["reasoning"] == "Adding the numbers."


async def test_random_search_records_its_candidates_and_activates_when_asked(channel, datasets):
    await create_program(channel, "opt-cands")
    done = await _optimize(channel, "opt-cands", {"random_search": {"num_candidate_programs": 1,
                                                                    "max_bootstrapped_demos": 1}},
                           split={"seed": 3, "dev_fraction": 0.5}, activate=True)
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    listed = await stub.ListOptimizationCandidates(optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name))
    assert [c.label for c in listed.candidates] == ["zero-shot", "labeled", "bootstrap (unshuffled)", "seed 0"]
    assert [c.score for c in listed.candidates] == [0.0, 100.0, 100.0, 100.0]
    assert done.result.best_candidate == 1 and done.result.best_score == 100.0
    assert done.progress.best_score == 100.0 and done.progress.lm_calls_done > 0
    program = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name="programs/opt-cands"))
    assert program.active_revision_id == "r0002" and done.result.activated


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": "datasets/opt-empty"}, "optimization.dataset"),
        ({"metric": {"exact_match": {"field": "nope"}}}, "optimization.metric.exact_match.field"),
        ({"random_search": {"num_candidate_programs": 2, "max_bootstrapped_demos": 0}},
         "optimization.random_search.max_bootstrapped_demos"),
        ({"bootstrap_few_shot": {"max_rounds": 0}}, "optimization.bootstrap_few_shot.max_rounds"),
        ({"bootstrap_few_shot": {"max_bootstrapped_demos": 0, "max_labeled_demos": 0}},
         "optimization.bootstrap_few_shot.max_bootstrapped_demos"),
        ({"labeled_few_shot": {}, "split": {"seed": 1, "dev_fraction": 0.01}}, "optimization.split.dev_fraction"),
        ({}, "optimization.optimizer"),
        ({"copro": {"breadth": 1}}, "optimization.copro.breadth"),
        ({"copro": {"depth": 0}}, "optimization.copro.depth"),
        ({"mipro_v2": {"num_candidates": 3, "num_trials": 0}}, "optimization.mipro_v2.num_trials"),
        ({"mipro_v2": {"auto": "light", "num_trials": 3}}, "optimization.mipro_v2.auto"),
        ({"mipro_v2": {"auto": "extreme"}}, "optimization.mipro_v2.auto"),
        ({"mipro_v2": {"num_candidates": 2, "num_trials": 2, "minibatch_size": 50}},
         "optimization.mipro_v2.minibatch_size"),
        ({"gepa": {"reflection_lm": {"model": "mock"}}}, "optimization.gepa.auto"),
        ({"gepa": {"auto": "light", "max_metric_calls": 10, "reflection_lm": {"model": "mock"}}},
         "optimization.gepa.auto"),
        ({"gepa": {"auto": "extreme", "reflection_lm": {"model": "mock"}}}, "optimization.gepa.auto"),
        ({"gepa": {"max_metric_calls": 100001, "reflection_lm": {"model": "mock"}}},
         "optimization.gepa.max_metric_calls"),
        ({"gepa": {"max_full_evals": 0, "reflection_lm": {"model": "mock"}}}, "optimization.gepa.max_full_evals"),
        ({"gepa": {"max_metric_calls": 10}}, "optimization.gepa.reflection_lm"),
        ({"gepa": {"max_metric_calls": 10, "reflection_lm": {"model": "nope"}}},
         "optimization.gepa.reflection_lm.model"),
        ({"gepa": {"max_metric_calls": 10, "reflection_lm": {"model": "mock"}, "reflection_minibatch_size": 101}},
         "optimization.gepa.reflection_minibatch_size"),
        ({"gepa": {"max_metric_calls": 10, "reflection_lm": {"model": "mock"}, "component_selector": "some"}},
         "optimization.gepa.component_selector"),
        ({"gepa": {"max_metric_calls": 10, "reflection_lm": {"model": "mock"},
                   "candidate_selection_strategy": "best"}}, "optimization.gepa.candidate_selection_strategy"),
        ({"simba": {"bsize": 1000}}, "optimization.simba.bsize"),
        ({"simba": {"bsize": 2, "num_candidates": 0}}, "optimization.simba.num_candidates"),
        ({"simba": {"bsize": 2, "max_steps": 101}}, "optimization.simba.max_steps"),
        ({"simba": {"bsize": 2, "max_demos": -1}}, "optimization.simba.max_demos"),
        ({"simba": {"bsize": 2, "temperature_for_sampling": 0}}, "optimization.simba.temperature_for_sampling"),
        ({"simba": {"bsize": 8, "num_candidates": 64, "max_steps": 100}}, "optimization.simba.max_steps"),
    ],
)
async def test_bad_input_is_rejected_at_create_time(channel, datasets, body, field):
    try:
        await create_dataset(channel, "opt-empty", [])
        await create_program(channel, "opt-bad")
    except grpc.aio.AioRpcError:
        pass
    request = {"program": "programs/opt-bad", "dataset": "datasets/opt-train", "metric": exact_match(), **body}
    if not any(key in body for key in ("labeled_few_shot", "bootstrap_few_shot", "random_search", "copro",
                                       "mipro_v2", "gepa", "simba")) and body:
        request["labeled_few_shot"] = {}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_optimization(channel, request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(err.value)["violations"], error_details(err.value)


async def test_watch_streams_progress_until_the_result(channel, datasets, task):
    task.latency_s = 0.01
    await create_program(channel, "opt-watch")
    created = await create_optimization(channel, {
        "program": "programs/opt-watch", "dataset": "datasets/opt-train", "metric": exact_match(), "num_threads": 2,
        "random_search": {"num_candidate_programs": 1, "max_bootstrapped_demos": 1},
    })
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    seen = []
    async for message in stub.WatchOptimization(optimization_pb2.WatchOptimizationRequest(name=created.name)):
        seen.append(message.optimization)
    last = seen[-1]
    assert last.state == job_pb2.JOB_STATE_SUCCEEDED and last.result.program_revision == "programs/opt-watch@r0002"
    running = [o for o in seen if o.state == job_pb2.JOB_STATE_RUNNING and o.progress.phase == "search"]
    assert running, [o.progress for o in seen]
    assert all(o.progress.lm_calls_planned >= o.progress.lm_calls_done for o in running)
    assert any(o.progress.current_candidate for o in running)
    done = [o.progress.lm_calls_done for o in seen]
    assert done == sorted(done) and done[-1] > 0


@pytest.mark.parametrize(("program_id", "settings", "phase"), [
    ("opt-cancel", {"num_threads": 1, "random_search": {"num_candidate_programs": 4}}, ""),
    # Cancelled while trials run ahead of their turn: none of them may go on calling the LM.
    ("opt-cancel-mipro", {"num_threads": 2, "prompt_lm": {"model": "mock"}, "mipro_v2": {
        "num_candidates": 3, "num_trials": 12, "minibatch_size": 3, "minibatch_full_eval_steps": 2}}, "search"),
    # Cancelled while the gepa engine's thread is reflecting: it stops at its next step.
    ("opt-cancel-gepa", {"num_threads": 2, "gepa": {"max_metric_calls": 200, "reflection_lm": {"model": "mock"}}},
     "reflect"),
    ("opt-cancel-simba", {"num_threads": 2, "simba": {"bsize": 4, "num_candidates": 3, "max_steps": 20}}, "step"),
])
async def test_cancelling_an_optimization_writes_no_revision(channel, datasets, task, program_id, settings, phase):
    task.latency_s = 0.05
    await create_program(channel, program_id)
    created = await create_optimization(channel, {
        "program": f"programs/{program_id}", "dataset": "datasets/opt-train", "metric": exact_match(), **settings,
    })
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    while True:
        progress = (await stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=created.name))).progress
        if progress.lm_calls_done and progress.phase.startswith(phase):
            break
        await asyncio.sleep(0.01)
    cancelled = await stub.CancelOptimization(optimization_pb2.CancelOptimizationRequest(name=created.name))
    assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
    sent = len(task.completion_requests)
    await asyncio.sleep(0.3)
    assert len(task.completion_requests) == sent
    revisions = await program_pb2_grpc.ProgramServiceStub(channel).ListProgramRevisions(
        program_pb2.ListProgramRevisionsRequest(name=f"programs/{program_id}"))
    assert [r.revision_id for r in revisions.programs] == ["r0001"]


async def test_the_teacher_runs_on_its_own_lm(channel, datasets, task):
    await create_program(channel, "opt-teacher")
    before = len(task.completion_requests)
    done = await _optimize(channel, "opt-teacher", {"bootstrap_few_shot": {"max_bootstrapped_demos": 2,
                                                                           "max_labeled_demos": 2}},
                           teacher_lm={"model": "dummy"})
    # The built-in dummy model answers placeholders: no trace passes the metric, so only labeled
    # demos are kept, and the mock (the program's own LM) was never asked.
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=done.result.program_revision))
    demos = revision.module.predict.predictor.demos
    assert len(demos) == 2 and not any(d.augmented for d in demos)
    assert len(task.completion_requests) == before
