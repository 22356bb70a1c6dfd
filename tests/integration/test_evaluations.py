"""EvaluationService over gRPC against the mock LM: scores, per-example results, watch, cancel, bad input."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc, job_pb2
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import (
    create_dataset,
    create_evaluation,
    create_program,
    evaluate_program,
    exact_match,
    wait_evaluation,
)
from tests.mocklm import arithmetic
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def task(mock_lm):
    arithmetic.install(mock_lm)
    return mock_lm


async def test_score_follows_the_prompt_and_results_are_listed(channel, task):
    rows = arithmetic.examples(6)
    await create_dataset(channel, "eval-basic", rows)
    await create_program(channel, "adder-zero")
    await create_program(channel, "adder-demo", demos=arithmetic.examples(1, start=100))
    assert await evaluate_program(channel, "programs/adder-zero", "datasets/eval-basic") == 0.0
    assert await evaluate_program(channel, "programs/adder-demo", "datasets/eval-basic") == 100.0

    created = await create_evaluation(channel, {
        "program": "programs/adder-zero", "dataset": "datasets/eval-basic",
        "metric": {"weighted": {"terms": [
            {"weight": 3, "metric": exact_match()},
            {"weight": 1, "metric": {"contains": {"field": "answer", "label_field": "answer"}}},
        ]}},
    })
    assert created.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    assert created.program_revision == "programs/adder-zero@r0001"
    done = await wait_evaluation(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED and done.score == 0.0
    assert done.progress.examples_done == 6 and done.progress.lm_calls_done == 6

    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    results = await stub.ListEvaluationResults(evaluation_pb2.ListEvaluationResultsRequest(parent=created.name))
    assert [r.example_index for r in results.results] == list(range(6))
    assert json_format.MessageToDict(results.results[0].prediction) == {"answer": "I do not know"}


async def test_partial_scores_average_as_dspy_does(channel, task):
    # Token F1 of "I do not know" against "know the answer": DSPy's f1_score, averaged and rounded.
    await create_dataset(channel, "eval-f1", [
        {"question": arithmetic.question(1, 2), "answer": "I know"},
        {"question": arithmetic.question(2, 2), "answer": "no idea"},
        {"question": arithmetic.question(3, 2), "answer": "I do not know"},
    ])
    await create_program(channel, "adder-f1")
    from dspy.evaluate.metrics import f1_score

    expected = round(100 * sum(f1_score("I do not know", a) for a in ("I know", "no idea", "I do not know")) / 3, 2)
    score = await evaluate_program(channel, "programs/adder-f1", "datasets/eval-f1", {"token_f1": {}})
    assert score == expected


async def test_watch_streams_results_until_the_end(channel, task):
    task.latency_s = 0.02
    await create_dataset(channel, "eval-watch", arithmetic.examples(8))
    await create_program(channel, "adder-watch", demos=arithmetic.examples(1, start=100))
    created = await create_evaluation(channel, {"program": "programs/adder-watch", "dataset": "datasets/eval-watch",
                                                "metric": exact_match(), "num_threads": 2})
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    seen, last = [], None
    async for message in stub.WatchEvaluation(evaluation_pb2.WatchEvaluationRequest(name=created.name)):
        seen.extend(r.example_index for r in message.results)
        last = message.evaluation
    assert last.state == job_pb2.JOB_STATE_SUCCEEDED and last.score == 100.0
    assert len(seen) == len(set(seen)) and set(seen) <= set(range(8)) and seen


async def test_failed_examples_score_failure_score_and_max_errors_stops_the_job(channel, mock_lm):
    await create_dataset(channel, "eval-errors", arithmetic.examples(4))
    await create_program(channel, "adder-errors")
    mock_lm.default_reply = MockReply.error(400, "bad request")
    created = await create_evaluation(channel, {"program": "programs/adder-errors", "dataset": "datasets/eval-errors",
                                                "metric": exact_match(), "failure_score": 0.5, "max_errors": 10})
    done = await wait_evaluation(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_SUCCEEDED and done.score == 50.0 and done.error_count == 4

    created = await create_evaluation(channel, {"program": "programs/adder-errors", "dataset": "datasets/eval-errors",
                                                "metric": exact_match(), "max_errors": 2, "num_threads": 1})
    done = await wait_evaluation(channel, created.name)
    assert done.state == job_pb2.JOB_STATE_FAILED
    assert done.error.reason == "TOO_MANY_ERRORS" and done.error.code == "FAILED_PRECONDITION"


async def test_cancel_stops_the_lm_calls(channel, mock_lm):
    await create_dataset(channel, "eval-cancel", arithmetic.examples(20))
    await create_program(channel, "adder-cancel")
    mock_lm.default_reply = MockReply(text=arithmetic.reply_text, delay_s=0.3)
    created = await create_evaluation(channel, {"program": "programs/adder-cancel", "dataset": "datasets/eval-cancel",
                                                "metric": exact_match(), "num_threads": 2})
    while len(mock_lm.completion_requests) < 2:
        await asyncio.sleep(0.01)
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    cancelled = await stub.CancelEvaluation(evaluation_pb2.CancelEvaluationRequest(name=created.name))
    assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
    sent = len(mock_lm.completion_requests)
    await asyncio.sleep(0.5)
    assert len(mock_lm.completion_requests) == sent <= 4
    again = await stub.GetEvaluation(evaluation_pb2.GetEvaluationRequest(name=created.name))
    assert again.state == job_pb2.JOB_STATE_CANCELLED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": "datasets/eval-empty"}, "evaluation.dataset"),
        ({"metric": {"exact_match": {"field": "nope"}}}, "evaluation.metric.exact_match.field"),
        ({"metric": {"exact_match": {"label_field": "nope"}}}, "evaluation.metric.exact_match.label_field"),
        ({"metric": {}}, "evaluation.metric"),
        ({"num_threads": -1}, "evaluation.num_threads"),
        ({"max_errors": 0}, "evaluation.max_errors"),
        ({"part": "SPLIT_PART_DEV"}, "evaluation.split"),
        ({"metric": {"lm_judge": {}}}, "evaluation.metric.lm_judge.inputs[ground_truth]"),
    ],
)
async def test_bad_input_is_rejected_at_create_time(channel, body, field):
    from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc

    datasets = dataset_pb2_grpc.DatasetServiceStub(channel)
    for dataset_id, rows in (("eval-empty", []), ("eval-ok", arithmetic.examples(2))):
        try:
            await datasets.GetDataset(dataset_pb2.GetDatasetRequest(name=f"datasets/{dataset_id}"))
        except grpc.aio.AioRpcError:
            await create_dataset(channel, dataset_id, rows)
    try:
        await create_program(channel, "adder-bad")
    except grpc.aio.AioRpcError:
        pass
    request = {"program": "programs/adder-bad", "dataset": "datasets/eval-ok", "metric": exact_match(), **body}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_evaluation(channel, request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(err.value)["violations"], error_details(err.value)
    listed = await evaluation_pb2_grpc.EvaluationServiceStub(channel).ListEvaluations(
        evaluation_pb2.ListEvaluationsRequest(page_size=1000))
    assert all(e.program != "programs/adder-bad" for e in listed.evaluations)


async def test_evaluations_are_listed_newest_first_across_pages(channel, task):
    await create_dataset(channel, "eval-list", arithmetic.examples(1))
    await create_program(channel, "adder-list")
    names = []
    for _ in range(3):
        created = await create_evaluation(channel, {"program": "programs/adder-list", "dataset": "datasets/eval-list",
                                                    "metric": exact_match()})
        names.append(created.name)
        await wait_evaluation(channel, created.name)
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    listed, token = [], ""
    while True:
        page = await stub.ListEvaluations(evaluation_pb2.ListEvaluationsRequest(page_size=2, page_token=token))
        listed += [e.name for e in page.evaluations]
        token = page.next_page_token
        if not token:
            break
    assert len(listed) == len(set(listed))
    mine = [name for name in listed if name in names]
    assert mine == list(reversed(names))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListEvaluations(evaluation_pb2.ListEvaluationsRequest(page_token="bogus"))
    assert "page_token" in error_details(err.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetEvaluation(evaluation_pb2.GetEvaluationRequest(name="evaluations/none-such"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and error_details(err.value)["reason"] == "EVALUATION_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_evaluation(channel, {"program": "programs/adder-list", "dataset": "datasets/eval-list",
                                          "metric": exact_match()}, evaluation_id=names[0].split("/")[1])
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_an_lm_judge_scores_through_a_chain_of_thought_predictor(channel, task):
    await create_dataset(channel, "eval-judge", arithmetic.examples(3))
    await create_program(channel, "adder-judge", demos=arithmetic.examples(1, start=100))
    score = await evaluate_program(channel, "programs/adder-judge", "datasets/eval-judge", {"lm_judge": {
        "signature": {"text": "question, response -> correct: bool"},
        "inputs": {"question": "example.question", "response": "prediction.answer"},
        "score_fields": ["correct"],
    }})
    assert score == 100.0
    judged = [r for r in task.completion_requests if "`correct`" in r.messages[0]["content"]]
    assert len(judged) == 3 and all("`reasoning`" in r.messages[0]["content"] for r in judged)
