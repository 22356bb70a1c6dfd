"""Every number a caller sets has an upper (and lower) bound checked at create time, and a job's
planned work is admitted or refused before it starts (RESOURCE_EXHAUSTED, the cap in ErrorInfo)."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    lm_pb2,
    lm_pb2_grpc,
    optimization_pb2,
    optimization_pb2_grpc,
)
from google.protobuf import json_format

from dspy_grpc_server.core.bounds import Limits
from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import create_dataset, create_evaluation, create_optimization, create_program
from tests.mocklm import arithmetic

pytestmark = pytest.mark.asyncio(loop_scope="session")

INT32_MAX = 2**31 - 1


@pytest.fixture
async def data(channel, mock_lm):
    arithmetic.install(mock_lm)
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    try:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/bounds"))
    except grpc.aio.AioRpcError:
        await create_dataset(channel, "bounds", arithmetic.examples(8))
        await create_program(channel, "bounds")


def optimization(**body) -> dict:
    return {"program": "programs/bounds", "dataset": "datasets/bounds", "metric": {"exact_match": {"field": "answer"}},
            "prompt_lm": {"model": "mock"}, **body}


#: (optimizer body, the field that must be named) -- the issue's poison budgets and each other bound.
OUT_OF_BOUNDS = [
    ({"mipro_v2": {"num_candidates": INT32_MAX, "num_trials": 3}}, "mipro_v2.num_candidates"),
    ({"mipro_v2": {"num_candidates": 3, "num_trials": INT32_MAX}}, "mipro_v2.num_trials"),
    ({"mipro_v2": {"seed": -1}}, "mipro_v2.seed"),
    ({"mipro_v2": {"seed": 2**32}}, "mipro_v2.seed"),
    ({"mipro_v2": {"minibatch_size": INT32_MAX}}, "mipro_v2.minibatch_size"),
    ({"mipro_v2": {"minibatch_full_eval_steps": 0}}, "mipro_v2.minibatch_full_eval_steps"),
    ({"mipro_v2": {"view_data_batch_size": INT32_MAX}}, "mipro_v2.view_data_batch_size"),
    ({"mipro_v2": {"init_temperature": 7.5}}, "mipro_v2.init_temperature"),
    ({"mipro_v2": {"max_bootstrapped_demos": INT32_MAX}}, "mipro_v2.max_bootstrapped_demos"),
    ({"copro": {"breadth": INT32_MAX}}, "copro.breadth"),
    ({"copro": {"depth": INT32_MAX}}, "copro.depth"),
    ({"copro": {"init_temperature": -1}}, "copro.init_temperature"),
    ({"random_search": {"num_candidate_programs": INT32_MAX}}, "random_search.num_candidate_programs"),
    ({"random_search": {"num_candidate_programs": -1}}, "random_search.num_candidate_programs"),
    ({"random_search": {"stop_at_score": "NaN"}}, "random_search.stop_at_score"),
    ({"bootstrap_few_shot": {"max_labeled_demos": INT32_MAX}}, "bootstrap_few_shot.max_labeled_demos"),
    ({"bootstrap_few_shot": {"max_rounds": INT32_MAX}}, "bootstrap_few_shot.max_rounds"),
    ({"bootstrap_few_shot": {"metric_threshold": "Infinity"}}, "bootstrap_few_shot.metric_threshold"),
    ({"labeled_few_shot": {"k": INT32_MAX}}, "labeled_few_shot.k"),
    ({"labeled_few_shot": {"k": -1}}, "labeled_few_shot.k"),
    ({"knn_few_shot": {"k": INT32_MAX, "embedding_model": "mock"}}, "knn_few_shot.k"),
    ({"labeled_few_shot": {}, "num_threads": INT32_MAX}, "num_threads"),
    ({"labeled_few_shot": {}, "max_errors": INT32_MAX}, "max_errors"),
    ({"labeled_few_shot": {}, "split": {"seed": -1, "dev_fraction": 0.5}}, "split.seed"),
    ({"labeled_few_shot": {}, "task_lm": {"model": "mock", "options": {"temperature": 9}}}, "task_lm.options.temperature"),
    ({"ensemble": {"programs": ["programs/bounds"], "seed": 2**40}}, "ensemble.seed"),
]


@pytest.mark.parametrize(("body", "field"), OUT_OF_BOUNDS, ids=[f for _, f in OUT_OF_BOUNDS])
async def test_an_out_of_bounds_optimization_is_refused_naming_the_field(channel, data, body, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create_optimization(channel, optimization(**body))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert f"optimization.{field}" in error_details(caught.value)["violations"], error_details(caught.value)


@pytest.mark.parametrize(("body", "field"), [
    ({"num_threads": INT32_MAX}, "evaluation.num_threads"),
    ({"failure_score": "NaN"}, "evaluation.failure_score"),
    ({"lm": {"model": "mock", "options": {"max_tokens": 0}}}, "evaluation.lm.options.max_tokens"),
    ({"metric": {"numeric": {"field": "answer", "abs_tolerance": -1}}}, "evaluation.metric.numeric.abs_tolerance"),
])
async def test_an_out_of_bounds_evaluation_is_refused_naming_the_field(channel, data, body, field):
    request = {"program": "programs/bounds", "dataset": "datasets/bounds",
               "metric": {"exact_match": {"field": "answer"}}, **body}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create_evaluation(channel, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"], error_details(caught.value)


PREDICTOR = {"signature": {"text": "question -> answer"}, "lm": {"model": "dummy"}}


@pytest.mark.parametrize(("body", "field"), [
    ({"module": {"bestOfN": {"module": {"predict": {"predictor": PREDICTOR}}, "n": INT32_MAX,
                             "reward": {"exactMatch": {"field": "answer", "values": ["x"]}}}}}, "module.best_of_n.n"),
    ({"module": {"react": {"predictor": PREDICTOR, "maxIters": INT32_MAX}}}, "module.react.max_iters"),
    ({"module": {"parallel": {"module": {"predict": {"predictor": PREDICTOR}}, "numThreads": INT32_MAX}}},
     "module.parallel.num_threads"),
    ({"module": {"multiChainComparison": {"predictor": PREDICTOR, "m": INT32_MAX}}}, "module.multi_chain_comparison.m"),
    ({"module": {"predict": {"predictor": {**PREDICTOR, "lm": {"model": "dummy", "options": {"topP": 2}}}}}},
     "module.predict.predictor.lm.options.top_p"),
    ({"module": {"predict": {"predictor": PREDICTOR}}, "lm": {"model": "dummy", "options": {"seed": "-5"}}},
     "lm.options.seed"),
])
async def test_an_out_of_bounds_module_is_refused_naming_the_field(channel, body, field):
    request = json_format.ParseDict({**body, "inputs": {"question": "q"}}, inference_pb2.PredictRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"], error_details(caught.value)


@pytest.mark.parametrize(("body", "field"), [({"n": 65}, "n"), ({"options": {"maxTokens": 0}}, "options.max_tokens"),
                                             ({"options": {"temperature": -0.5}}, "options.temperature")])
async def test_out_of_bounds_lm_options_are_refused(channel, body, field):
    request = json_format.ParseDict({"model": "mock", "messages": [{"role": "user", "content": "hi"}], **body},
                                    lm_pb2.CompleteRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lm_pb2_grpc.LMServiceStub(channel).Complete(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]


async def test_a_job_planning_more_lm_calls_than_the_cap_is_refused_with_the_cap_in_metadata(server_factory, mock_lm):
    arithmetic.install(mock_lm)
    small = await server_factory(limits=Limits(max_job_lm_calls=20))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small.port}") as channel:
        await create_dataset(channel, "big", arithmetic.examples(30))
        await create_dataset(channel, "small", arithmetic.examples(10))
        await create_program(channel, "adder")
        evaluation = {"program": "programs/adder", "metric": {"exact_match": {"field": "answer"}}}
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create_evaluation(channel, {**evaluation, "dataset": "datasets/big"})
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_details(caught.value)
        assert details["reason"] == "JOB_TOO_LARGE"
        assert details["metadata"]["max_job_lm_calls"] == "20" and details["metadata"]["planned_lm_calls"] == "30"
        # Within the cap: admitted.
        admitted = await create_evaluation(channel, {**evaluation, "dataset": "datasets/small"})
        assert admitted.progress.lm_calls_planned == 10
        # An optimizer's budget counts too: 4 COPRO candidates per round x 3 rounds x 10 examples.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create_optimization(channel, {**evaluation, "dataset": "datasets/small",
                                                "copro": {"breadth": 4, "depth": 3}})
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(caught.value)["metadata"]["field"] == "optimization.copro"


async def test_the_config_raises_the_server_wide_bounds(server_factory, mock_lm):
    arithmetic.install(mock_lm)
    raised = await server_factory(limits=Limits(max_candidates=500))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{raised.port}") as channel:
        await create_dataset(channel, "train", arithmetic.examples(4))
        await create_program(channel, "adder")
        body = {"program": "programs/adder", "dataset": "datasets/train",
                "metric": {"exact_match": {"field": "answer"}}, "random_search": {"num_candidate_programs": 100}}
        created = await create_optimization(channel, body)
        await optimization_pb2_grpc.OptimizationServiceStub(channel).CancelOptimization(
            optimization_pb2.CancelOptimizationRequest(name=created.name))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create_optimization(channel, {**body, "random_search": {"num_candidate_programs": 501}})
        assert "optimization.random_search.num_candidate_programs" in error_details(caught.value)["violations"]


async def test_a_dataset_listing_page_size_above_the_maximum_is_clamped(channel, data):
    page = await dataset_pb2_grpc.DatasetServiceStub(channel).ListExamples(
        dataset_pb2.ListExamplesRequest(parent="datasets/bounds", page_size=INT32_MAX))
    assert len(page.examples) == 8 and not page.next_page_token


async def test_an_append_stream_and_a_dataset_are_bounded(server_factory):
    from dspy_grpc.v1 import dataset_pb2_grpc

    small = await server_factory(limits=Limits(max_dataset_examples=5))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small.port}") as channel:
        await create_dataset(channel, "capped", arithmetic.examples(4))
        stub = dataset_pb2_grpc.DatasetServiceStub(channel)

        async def append(count: int, request_id: str):
            request = dataset_pb2.AppendExamplesRequest(dataset="datasets/capped", request_id=request_id)
            json_format.ParseDict({"examples": [{"data": row} for row in arithmetic.examples(count)]}, request)
            return await stub.AppendExamples(iter([request]), timeout=10)

        assert (await append(1, "one")).example_count == 5
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await append(1, "two")
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(caught.value)["metadata"]["max_dataset_examples"] == "5"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await append(10_001, "many")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "examples" in error_details(caught.value)["violations"]


@pytest.mark.parametrize("seconds", [2**62, 86_401, -1])
async def test_a_run_tool_timeout_is_bounded(channel, seconds):
    from google.protobuf import duration_pb2

    start = inference_pb2.RunStart(request=json_format.ParseDict(
        {"module": {"predict": {"predictor": PREDICTOR}}, "inputs": {"question": "q"}}, inference_pb2.PredictRequest()),
        tool_timeout=duration_pb2.Duration(seconds=seconds))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in inference_pb2_grpc.InferenceServiceStub(channel).Run(
                iter([inference_pb2.RunRequest(start=start)]), timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start.tool_timeout" in error_details(caught.value)["violations"]
