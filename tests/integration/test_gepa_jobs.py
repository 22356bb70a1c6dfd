"""GEPA as an optimization job: Watch shows the metric-call budget, the Pareto frontier and the parent
reflected on; ListOptimizationCandidates shows the lineage; `auto` budgets are DSPy's."""

from __future__ import annotations

import asyncio

import dspy
import pytest
from dspy_grpc.v1 import job_pb2, optimization_pb2, optimization_pb2_grpc, program_pb2, program_pb2_grpc

from tests.integration.job_helpers import create_dataset, create_optimization, create_program, exact_match
from tests.mocklm import arithmetic, reflection

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = arithmetic.examples(8)


@pytest.fixture
async def data(channel, mock_lm):
    reflection.install(mock_lm)
    from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc

    try:
        await dataset_pb2_grpc.DatasetServiceStub(channel).GetDataset(
            dataset_pb2.GetDatasetRequest(name="datasets/gepa-jobs"))
    except Exception:  # noqa: BLE001 - first use in this server
        await create_dataset(channel, "gepa-jobs", ROWS)
    return mock_lm


async def test_watch_follows_a_gepa_run_and_candidates_show_their_lineage(channel, data):
    data.latency_s = 0.005
    await create_program(channel, "gepa-watch")
    created = await create_optimization(channel, {
        "program": "programs/gepa-watch", "dataset": "datasets/gepa-jobs", "metric": exact_match(), "num_threads": 2,
        "gepa": {"max_metric_calls": 40, "reflection_lm": {"model": "mock"}},
    })
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    seen = [m.optimization async for m in stub.WatchOptimization(
        optimization_pb2.WatchOptimizationRequest(name=created.name))]
    last = seen[-1]
    assert last.state == job_pb2.JOB_STATE_SUCCEEDED, last.error
    progress = [o.progress for o in seen]
    assert all(p.metric_calls_budget == 40 for p in progress if p.metric_calls_budget)
    used = [p.metric_calls_used for p in progress]
    assert used == sorted(used)
    final = last.progress
    assert final.metric_calls_budget == 40 and 40 <= final.metric_calls_used <= 40 + len(ROWS)
    assert final.pareto_front_size == 2  # candidate 2 is best everywhere; candidate 1 ties it on half
    assert final.parent_candidate.startswith("candidate ") and final.best_score == 100.0

    listed = await stub.ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=created.name))
    seed, first, second = listed.candidates[:3]
    assert (seed.label, list(seed.parents), list(seed.changed_predictors)) == ("seed", [], [])
    assert list(seed.instance_scores) == [0.0] * len(ROWS)
    assert list(first.parents) == [0] and list(first.changed_predictors) == ["self"]  # DSPy names a bare Predict "self"
    assert list(first.instance_scores) == [0.0, 1.0] * 4  # the partial instruction: even first numbers
    assert list(second.parents) == [1] and second.score == 100.0
    assert second.module.predict.predictor.signature.instructions == reflection.GOOD_INSTRUCTION
    assert last.result.best_candidate == 2 and last.result.best_score == 100.0
    revision = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=last.result.program_revision))
    assert revision.module.predict.predictor.signature.instructions == reflection.GOOD_INSTRUCTION
    # The run's settings read back as given, the reflection LM included.
    assert last.gepa.max_metric_calls == 40 and last.gepa.reflection_lm.model == "mock"


@pytest.mark.parametrize("auto", ["light", "medium"])
async def test_auto_budgets_are_dspys(channel, data, auto):
    await create_program(channel, f"gepa-auto-{auto}")
    created = await create_optimization(channel, {
        "program": f"programs/gepa-auto-{auto}", "dataset": "datasets/gepa-jobs", "metric": exact_match(),
        "gepa": {"auto": auto, "reflection_lm": {"model": "mock"}},
    })
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    while True:
        job = await stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=created.name))
        if job.progress.metric_calls_budget or job.state != job_pb2.JOB_STATE_RUNNING and job.end_time.seconds:
            break
        await asyncio.sleep(0.01)
    await stub.CancelOptimization(optimization_pb2.CancelOptimizationRequest(name=created.name))
    reference = dspy.GEPA(metric=lambda *args: 0.0, auto=auto, reflection_lm=dspy.LM("openai/x"))
    expected = reference.auto_budget(num_preds=1, num_candidates={"light": 6, "medium": 12}[auto],
                                     valset_size=len(ROWS))
    assert job.progress.metric_calls_budget == expected
