"""Durable jobs: a server killed with SIGKILL mid-optimization resumes the job on restart, repeats no
finished LM call, duplicates nothing, and ends with the result of an uninterrupted run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    evaluation_pb2,
    evaluation_pb2_grpc,
    job_pb2,
    optimization_pb2,
    optimization_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from tests.integration.job_helpers import (
    create_dataset,
    create_evaluation,
    create_optimization,
    create_program,
    exact_match,
    wait_evaluation,
)
from tests.mocklm import arithmetic, reflection

pytestmark = pytest.mark.asyncio(loop_scope="session")

THREADS = 2
OPTIMIZATION = {
    "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "random_search": {"num_candidate_programs": 2, "max_bootstrapped_demos": 2, "max_labeled_demos": 2},
}
#: MIPROv2 scores trials ahead of their turn (and cancels nothing it needs): killed mid-way, it too
#: must resume to the same result without repeating finished calls.
MIPRO = {
    "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "prompt_lm": {"model": "mock"},
    "mipro_v2": {"num_candidates": 3, "num_trials": 12, "minibatch_size": 3, "minibatch_full_eval_steps": 2},
}

#: KNNFewShot with a dev split: the job embeds the trainset, then every dev example embeds its
#: question and bootstraps from its neighbours -- all of it journaled.
KNN = {
    "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "split": {"seed": 3, "dev_fraction": 0.5}, "knn_few_shot": {"k": 3, "embedding_model": "embed"},
}


#: GEPA: reflective minibatches, reflection-LM proposals (JSON) and full valset evaluations, all on
#: the gepa engine's thread -- journaled like everything else.
GEPA = {
    "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "gepa": {"max_metric_calls": 60, "reflection_lm": {"model": "mock"}},
}


#: SIMBA: sampled runs on rollout ids, demo and rule strategies, the final validation.
SIMBA = {
    "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "prompt_lm": {"model": "mock"}, "simba": {"bsize": 4, "num_candidates": 2, "max_steps": 3, "max_demos": 2},
}


async def start_server(workdir: Path, mock_base_url: str) -> tuple[asyncio.subprocess.Process, int]:
    workdir.mkdir(exist_ok=True)
    config = workdir / "dspy-grpc.toml"
    config.write_text(
        "[[models]]\n"
        'alias = "mock"\nprovider = "openai"\nmodel = "mock-model"\n'
        f'base_url = "{mock_base_url}"\napi_key_env = "MOCK_KEY"\n'
        "[[models]]\n"
        'alias = "embed"\nprovider = "openai"\nmodel = "mock-embedding"\nkind = "embedding"\n'
        f'base_url = "{mock_base_url}"\napi_key_env = "MOCK_KEY"\n'
    )
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - the child process owns it
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0", "--config", str(config),
        "--database-url", f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}",
        stdout=asyncio.subprocess.PIPE, stderr=log, env={**os.environ, "MOCK_KEY": "sk-resume-test"},
    )
    log.close()
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
        assert line, "server exited before listening: " + (workdir / "server.log").read_text()[-2000:]
        if line.startswith("dspy-grpc listening on"):
            return process, int(line.rsplit(":", 1)[1])


async def stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if process.returncode is None:
        process.send_signal(sig)
        await asyncio.wait_for(process.wait(), 60)


def request_keys(mock_lm) -> list[str]:
    """Every LM request sent (completions and embeddings) in the order they arrived, as comparable text."""

    return [json.dumps(r.json, sort_keys=True) for r in mock_lm.requests
            if r.path.endswith(("/chat/completions", "/embeddings"))]


async def get(channel, name: str) -> optimization_pb2.Optimization:
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    return await stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=name))


async def wait_until(channel, name: str, done, timeout: float = 60) -> optimization_pb2.Optimization:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await get(channel, name)
        if done(job):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.01)


async def outcome(channel, name: str) -> dict:
    """Everything the job produced: result, candidates, the program's revisions, the dataset."""

    job = await get(channel, name)
    candidates = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=name))
    revisions = await program_pb2_grpc.ProgramServiceStub(channel).ListProgramRevisions(
        program_pb2.ListProgramRevisionsRequest(name="programs/adder"))
    dataset = await dataset_pb2_grpc.DatasetServiceStub(channel).GetDataset(
        dataset_pb2.GetDatasetRequest(name="datasets/train"))
    return {
        "state": job.state,
        "result": json_format.MessageToDict(job.result),
        "candidates": [json_format.MessageToDict(c) for c in candidates.candidates],
        "revisions": [(r.revision_id, json_format.MessageToDict(r.module)) for r in revisions.programs],
        "examples": dataset.example_count,
    }


async def setup(channel, optimization: dict) -> str:
    await create_dataset(channel, "train", arithmetic.examples(10))
    await create_program(channel, "adder")
    created = await create_optimization(channel, optimization, optimization_id="resume")
    return created.name


@pytest.mark.parametrize(
    ("optimization", "kill_after", "in_flight"),
    # KNN: each dev example's bootstrap runs its k=3 teacher runs at once.
    [(OPTIMIZATION, 20, THREADS), (MIPRO, 20, THREADS), (KNN, 8, THREADS * 3), (GEPA, 12, THREADS), (SIMBA, 20, THREADS)],
    ids=["random_search", "mipro_v2", "knn_few_shot", "gepa", "simba"],
)
async def test_a_killed_job_resumes_without_repeating_finished_lm_calls(tmp_path, mock_lm, optimization, kill_after,
                                                                      in_flight):
    # The arithmetic task, plus GEPA's reflection LM and SIMBA's varied samples and rules.
    reflection.install(mock_lm, sampling_luck=optimization is SIMBA)
    mock_lm.latency_s = 0.03

    # The reference: an uninterrupted run.
    process, port = await start_server(tmp_path / "reference", mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            name = await setup(channel, optimization)
            await wait_until(channel, name, lambda job: job.state == job_pb2.JOB_STATE_SUCCEEDED)
            expected = await outcome(channel, name)
    finally:
        await stop(process)
    reference_calls = request_keys(mock_lm)
    mock_lm.requests.clear()

    # The same job, killed with SIGKILL part-way through, then restarted on the same database.
    # The mock answers a few calls past the kill point and holds the rest back, so the job is still
    # running when it is killed however fast the machine runs it.
    workdir = tmp_path / "killed"
    held = mock_lm.hold_replies_after(kill_after + in_flight)
    process, port = await start_server(workdir, mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            name = await setup(channel, optimization)
            progress = await wait_until(channel, name, lambda job: job.progress.lm_calls_done >= kill_after)
            assert progress.state == job_pb2.JOB_STATE_RUNNING
    finally:
        await stop(process, signal.SIGKILL)
        held.set()
        mock_lm.gate = None
    before_kill = request_keys(mock_lm)
    assert len(before_kill) < len(reference_calls)

    process, port = await start_server(workdir, mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_until(channel, name, lambda job: job.state == job_pb2.JOB_STATE_SUCCEEDED)
            got = await outcome(channel, name)
    finally:
        await stop(process)
    after_restart = request_keys(mock_lm)[len(before_kill):]

    assert got == expected
    assert [revision for revision, _ in got["revisions"]] == ["r0002", "r0001"]
    indices = [c.get("index", 0) for c in got["candidates"]]
    assert indices == list(range(len(indices))) and got["examples"] == 10
    if optimization is OPTIMIZATION:
        assert len(indices) == 5  # zero-shot, labeled, unshuffled and two shuffled bootstraps
    # Only calls that were in flight when the server died were sent again. Counted per request body
    # against the uninterrupted run, which may itself send one body more than once (SIMBA samples
    # identical programs on the same example).
    repeated = Counter(before_kill) + Counter(after_restart) - Counter(reference_calls)
    assert sum(repeated.values()) <= in_flight, repeated
    assert len(before_kill) + len(after_restart) <= len(reference_calls) + in_flight + 2


async def test_a_resumed_evaluation_counts_the_lm_calls_finished_before_the_kill(tmp_path, mock_lm):
    """job.proto: ``lm_calls_done`` counts replayed calls too -- after a restart it is the whole job's count."""

    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.03
    workdir = tmp_path / "evaluation"
    held = mock_lm.hold_replies_after(12)  # the evaluation is still running when it is killed
    process, port = await start_server(workdir, mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await create_dataset(channel, "train", arithmetic.examples(30))
            await create_program(channel, "adder")
            created = await create_evaluation(channel, {
                "program": "programs/adder", "dataset": "datasets/train", "metric": exact_match(), "num_threads": 2,
            }, evaluation_id="resume")
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            while (await stub.GetEvaluation(evaluation_pb2.GetEvaluationRequest(name=created.name))
                   ).progress.lm_calls_done < 10:
                await asyncio.sleep(0.01)
    finally:
        await stop(process, signal.SIGKILL)
        held.set()
        mock_lm.gate = None
    made_before = len(request_keys(mock_lm))
    assert made_before < 30

    process, port = await start_server(workdir, mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            job = await wait_evaluation(channel, created.name)
    finally:
        await stop(process)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.error_count == 0
    assert len(request_keys(mock_lm)) - made_before < 30  # the restart did not start over
    assert job.progress.lm_calls_done == 30 and job.progress.lm_calls_planned == 30
    assert job.progress.examples_done == job.progress.examples_total == 30
