"""dspy.Ensemble over gRPC: the `ensemble` module kind and the Ensemble optimizer job.

Three "voter" programs each get a different third of the questions wrong (each in its own way), so
every one scores about 67% while their majority is always right."""

from __future__ import annotations

import json
import re

import dspy
import grpc
import pytest
from dspy_grpc.v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    job_pb2,
    optimization_pb2,
    optimization_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import (
    create_dataset,
    create_optimization,
    create_program,
    evaluate_program,
    exact_match,
    wait_optimization,
)
from tests.mocklm import arithmetic
from tests.mocklm.auto_answer import last_user_text, text_of
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

VOTER = re.compile(r"You are voter (\d)\.")
#: Three questions for each residue of the sum modulo 3: every voter is wrong on exactly a third.
ROWS = [row for k in range(3) for row in [r for r in arithmetic.examples(30) if int(r["answer"]) % 3 == k][:3]]


def voter_reply(request) -> str:
    """Voter k answers wrong (sum + 1 + k) when the sum is k modulo 3, right otherwise."""

    messages = (request.json or {}).get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    found = arithmetic.QUESTION.search(last_user_text(messages))
    voter = VOTER.search(system)
    if found is None or voter is None:
        return "[[ ## answer ## ]]\nno idea\n\n[[ ## completed ## ]]"
    total, k = int(found.group(1)) + int(found.group(2)), int(voter.group(1))
    answer = total + 1 + k if total % 3 == k else total
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


def voter_module(k: int) -> dict:
    return {"predict": {"predictor": {"signature": {"text": "question -> answer", "instructions": f"You are voter {k}."},
                                      "lm": {"model": "mock"}}}}


@pytest.fixture
async def voters(channel, mock_lm):
    mock_lm.default_reply = MockReply(text=voter_reply)
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    try:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/votes"))
    except grpc.aio.AioRpcError:
        await create_dataset(channel, "votes", ROWS)
        for k in range(3):
            await create_program(channel, f"voter-{k}", instructions=f"You are voter {k}.")
        await create_program(channel, "voters", instructions="You are voter 0.")
        await create_program(channel, "other-signature", signature="query -> answer")
    return mock_lm


async def _ensemble_job(channel, body: dict, **extra) -> optimization_pb2.Optimization:
    created = await create_optimization(channel, {"program": "programs/voters", "ensemble": body, **extra})
    done = await wait_optimization(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    return done


async def test_the_majority_of_an_ensemble_beats_every_program(channel, voters):
    members = [await evaluate_program(channel, f"programs/voter-{k}", "datasets/votes") for k in range(3)]
    assert members == [66.67, 66.67, 66.67]

    done = await _ensemble_job(
        channel, {"programs": [f"programs/voter-{k}@r0001" for k in range(3)], "reduce": "ENSEMBLE_REDUCE_MAJORITY"},
        dataset="datasets/votes", metric=exact_match())
    revision = done.result.program_revision
    assert revision == "programs/voters@r0002" and done.result.best_score == 100.0

    listed = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=done.name))
    assert [c.label for c in listed.candidates] == ["programs[0]", "programs[1]", "programs[2]", "ensemble"]
    assert [c.score for c in listed.candidates] == [*members, 100.0] and done.result.best_candidate == 3

    # The new revision is an ordinary program: evaluated on its own it beats every member.
    assert await evaluate_program(channel, revision, "datasets/votes") == 100.0 > max(members)
    program = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
        program_pb2.GetProgramRequest(name=revision))
    ensemble = program.module.ensemble
    assert ensemble.reduce == 2 and len(ensemble.programs) == 3  # ENSEMBLE_REDUCE_MAJORITY
    assert [p.predict.predictor.signature.instructions for p in ensemble.programs] == [
        f"You are voter {k}." for k in range(3)]
    # The job shows the exact revisions it combined.
    assert list(done.ensemble.programs) == [f"programs/voter-{k}@r0001" for k in range(3)]


async def test_an_ensemble_without_data_only_writes_the_revision(channel, voters):
    before = len(voters.completion_requests)
    done = await _ensemble_job(channel, {"programs": ["programs/voter-0", "programs/voter-1"]})
    assert not done.result.HasField("best_score") and len(voters.completion_requests) == before
    assert list(done.ensemble.programs) == ["programs/voter-0@r0001", "programs/voter-1@r0001"]


async def _predict(channel, module: dict, question: str, **extra) -> inference_pb2.PredictResponse:
    request = json_format.ParseDict({"module": module, "inputs": {"question": question}, **extra},
                                    inference_pb2.PredictRequest())
    return await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request)


async def test_reduce_none_returns_every_programs_outputs(channel, voters):
    row = next(r for r in ROWS if int(r["answer"]) % 3 == 1)
    response = await _predict(channel, {"ensemble": {"programs": [voter_module(k) for k in range(3)]}},
                              row["question"], include_trace=True)
    outputs = json_format.MessageToDict(response.prediction.outputs)
    total = int(row["answer"])
    assert outputs == {"completions": [{"answer": str(total)}, {"answer": str(total + 2)}, {"answer": str(total)}]}
    assert sorted(step.predictor for step in response.prediction.trace) == ["programs[0]", "programs[1]", "programs[2]"]


async def test_size_samples_programs_reproducibly(channel, voters):
    module = {"ensemble": {"programs": [voter_module(k) for k in range(3)], "size": 2, "seed": 7,
                           "reduce": "ENSEMBLE_REDUCE_MAJORITY"}}

    async def used(question: str) -> list[str]:
        response = await _predict(channel, module, question, include_trace=True)
        return sorted(step.predictor for step in response.prediction.trace)

    samples = {row["question"]: await used(row["question"]) for row in ROWS}
    assert all(len(names) == 2 for names in samples.values())
    assert len({tuple(names) for names in samples.values()}) > 1  # the sample depends on the inputs...
    for question, names in samples.items():  # ... and is the same for the same call
        assert await used(question) == names


async def test_the_ensemble_exports_to_dspys_ensembled_program(channel, voters):
    done = await _ensemble_job(channel, {"programs": [f"programs/voter-{k}" for k in range(3)],
                                         "reduce": "ENSEMBLE_REDUCE_MAJORITY"})
    exported = await program_pb2_grpc.ProgramServiceStub(channel).ExportDspyProgram(
        program_pb2.ExportDspyProgramRequest(name=done.result.program_revision))
    assert list(exported.predictors) == ["programs[0]", "programs[1]", "programs[2]"]
    ensembled = dspy.Ensemble(reduce_fn=dspy.majority).compile([dspy.Predict("question -> answer") for _ in range(3)])
    ensembled.load_state(json.loads(exported.dspy_json))
    assert [p.signature.instructions for p in ensembled.predictors()] == [f"You are voter {k}." for k in range(3)]


@pytest.mark.parametrize(
    ("body", "extra", "field"),
    [
        ({"programs": []}, {}, "optimization.ensemble.programs"),
        ({"programs": ["programs/voter-0", "programs/voter-1@r0009"]}, {}, "optimization.ensemble.programs[1]"),
        ({"programs": ["programs/no-such-program"]}, {}, "optimization.ensemble.programs[0]"),
        ({"programs": ["voter-0"]}, {}, "optimization.ensemble.programs[0]"),
        ({"programs": ["programs/voter-0", "programs/voter-1"], "size": 3}, {}, "optimization.ensemble.size"),
        ({"programs": ["programs/voter-0", "programs/other-signature"]}, {}, "optimization.ensemble.programs[1]"),
        ({"programs": ["programs/voter-0"], "field": "nope", "reduce": "ENSEMBLE_REDUCE_MAJORITY"}, {},
         "optimization.ensemble.field"),
        ({"programs": ["programs/voter-0"]}, {"dataset": "datasets/votes"}, "optimization.metric"),
        ({"programs": ["programs/voter-0"]}, {"metric": exact_match()}, "optimization.dataset"),
        ({"programs": ["programs/voter-0"]}, {"dataset": "datasets/votes", "metric": exact_match("nope")},
         "optimization.metric.exact_match.field"),
    ],
)
async def test_bad_ensembles_are_rejected_at_create_time(channel, voters, body, extra, field):
    jobs = optimization_pb2_grpc.OptimizationServiceStub(channel)
    before = len((await jobs.ListOptimizations(optimization_pb2.ListOptimizationsRequest())).optimizations)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_optimization(channel, {"program": "programs/voters", "ensemble": body, **extra})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(err.value)["violations"], error_details(err.value)
    assert len((await jobs.ListOptimizations(optimization_pb2.ListOptimizationsRequest())).optimizations) == before


async def test_an_inline_ensemble_with_mismatched_programs_names_the_field(channel, voters):
    other = {"predict": {"predictor": {"signature": {"text": "question: int -> answer"}, "lm": {"model": "mock"}}}}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _predict(channel, {"ensemble": {"programs": [voter_module(0), other]}}, "What is 1 plus 2?")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "module.ensemble.programs[1]" in error_details(err.value)["violations"]


async def test_the_python_client_builds_and_runs_ensembles(server, voters):
    import dspy_grpc

    async with dspy_grpc.AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as client:
        programs = [dspy_grpc.Predict("question -> answer", instructions=f"You are voter {k}.", lm="mock")
                    for k in range(3)]
        row = next(r for r in ROWS if int(r["answer"]) % 3 == 2)
        voted = await dspy_grpc.Ensemble(programs, reduce="majority", client=client).acall(question=row["question"])
        assert voted.answer == row["answer"]
        everyone = await dspy_grpc.Ensemble(programs, client=client).acall(question=row["question"])
        assert [c["answer"] for c in everyone.completions] == [row["answer"], row["answer"], str(int(row["answer"]) + 3)]
        one = await dspy_grpc.Ensemble(programs, size=1, seed=3, client=client).acall(question=row["question"])
        assert len(one.completions) == 1
