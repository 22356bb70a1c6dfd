"""Helpers for dataset, evaluation and optimization tests: resources over gRPC, waiting for jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

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

TERMINAL = (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED)


def example(row: dict, input_keys: Sequence[str] = ()) -> dict:
    out: dict = {"data": row}
    if input_keys:
        out["input_keys"] = list(input_keys)
    return out


async def create_dataset(channel, dataset_id: str, rows: Sequence[dict], *, input_keys=("question",),
                         batch: int = 50) -> dataset_pb2.AppendExamplesResponse:
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await stub.CreateDataset(dataset_pb2.CreateDatasetRequest(
        dataset_id=dataset_id, dataset=dataset_pb2.Dataset(input_keys=list(input_keys))))
    request_id = uuid.uuid4().hex
    messages = [
        json_format.ParseDict({"dataset": f"datasets/{dataset_id}", "request_id": request_id,
                               "examples": [example(r) for r in rows[i:i + batch]]},
                              dataset_pb2.AppendExamplesRequest())
        for i in range(0, len(rows), batch)
    ]
    if not messages:
        return dataset_pb2.AppendExamplesResponse()
    return await stub.AppendExamples(iter(messages))


async def create_program(channel, program_id: str, *, signature: str = "question -> answer", kind: str = "predict",
                         model: str = "mock", demos: Sequence[dict] = (), instructions: str = "") -> program_pb2.Program:
    predictor: dict = {"signature": {"text": signature}, "lm": {"model": model}}
    if instructions:
        predictor["signature"]["instructions"] = instructions
    if demos:
        predictor["demos"] = [{"data": d} for d in demos]
    request = json_format.ParseDict(
        {"program_id": program_id, "program": {"module": {kind: {"predictor": predictor}}}},
        program_pb2.CreateProgramRequest(),
    )
    return await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(request)


def exact_match(field: str = "answer") -> dict:
    return {"exact_match": {"field": field}}


async def create_evaluation(channel, body: dict, evaluation_id: str = "") -> evaluation_pb2.Evaluation:
    request = evaluation_pb2.CreateEvaluationRequest(evaluation_id=evaluation_id)
    json_format.ParseDict(body, request.evaluation)
    return await evaluation_pb2_grpc.EvaluationServiceStub(channel).CreateEvaluation(request)


async def create_optimization(channel, body: dict, optimization_id: str = "") -> optimization_pb2.Optimization:
    request = optimization_pb2.CreateOptimizationRequest(optimization_id=optimization_id)
    json_format.ParseDict(body, request.optimization)
    return await optimization_pb2_grpc.OptimizationServiceStub(channel).CreateOptimization(request)


async def wait_evaluation(channel, name: str, timeout: float = 60) -> evaluation_pb2.Evaluation:
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    return await _wait(lambda: stub.GetEvaluation(evaluation_pb2.GetEvaluationRequest(name=name)), timeout)


async def wait_optimization(channel, name: str, timeout: float = 60) -> optimization_pb2.Optimization:
    stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
    return await _wait(lambda: stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=name)), timeout)


async def _wait(get, timeout: float):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await get()
        if job.state in TERMINAL:
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job still {job.state} after {timeout}s"
        await asyncio.sleep(0.02)


async def evaluate_program(channel, program: str, dataset: str, metric: dict | None = None) -> float:
    """Run an evaluation to the end and return its score (0-100)."""

    created = await create_evaluation(channel, {"program": program, "dataset": dataset,
                                                "metric": metric or exact_match()})
    done = await wait_evaluation(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
    return done.score
