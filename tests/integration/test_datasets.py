"""DatasetService over gRPC: create/get/list/delete, streamed idempotent appends, paging and splits."""

from __future__ import annotations

import random

import grpc
import pytest
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import create_dataset, example

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _append(dataset: str, request_id: str, rows: list[dict], **example_args) -> dataset_pb2.AppendExamplesRequest:
    return json_format.ParseDict(
        {"dataset": dataset, "request_id": request_id, "examples": [example(r, **example_args) for r in rows]},
        dataset_pb2.AppendExamplesRequest(),
    )


async def _all_examples(stub, parent: str, **extra) -> list[dataset_pb2.DatasetExample]:
    out, token = [], ""
    while True:
        page = await stub.ListExamples(dataset_pb2.ListExamplesRequest(parent=parent, page_size=3, page_token=token,
                                                                        **extra))
        out.extend(page.examples)
        token = page.next_page_token
        if not token:
            return out


async def test_create_append_list_and_delete(channel):
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(7)]
    appended = await create_dataset(channel, "qa-basic", rows, batch=3)
    assert (appended.appended_count, appended.first_index, appended.example_count) == (7, 0, 7)

    dataset = await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/qa-basic"))
    assert dataset.example_count == 7 and list(dataset.input_keys) == ["question"]
    listed = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest())
    assert "datasets/qa-basic" in [d.name for d in listed.datasets]

    examples = await _all_examples(stub, "datasets/qa-basic")
    assert [e.index for e in examples] == list(range(7))
    assert json_format.MessageToDict(examples[3].example.data) == rows[3]
    assert list(examples[3].example.input_keys) == ["question"]

    await stub.DeleteDataset(dataset_pb2.DeleteDatasetRequest(name="datasets/qa-basic"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/qa-basic"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err.value)["reason"] == "DATASET_NOT_FOUND"


async def test_append_is_idempotent_per_request_id(channel):
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await create_dataset(channel, "qa-idem", [{"question": "q0", "answer": "a0"}])
    rows = [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]
    first = await stub.AppendExamples(iter([_append("datasets/qa-idem", "req-1", rows)]))
    again = await stub.AppendExamples(iter([_append("datasets/qa-idem", "req-1", rows)]))
    assert (first.appended_count, first.first_index, first.replayed) == (2, 1, False)
    assert (again.appended_count, again.first_index, again.replayed) == (2, 1, True)
    dataset = await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/qa-idem"))
    assert dataset.example_count == 3


async def test_a_bad_example_appends_nothing(channel):
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await create_dataset(channel, "qa-bad", [{"question": "q0", "answer": "a0"}])
    good = _append("datasets/qa-bad", "req-2", [{"question": "q1", "answer": "a1"}])
    bad = _append("", "", [{"answer": "no question"}], input_keys=["question"])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AppendExamples(iter([good, bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "examples[1].input_keys" in error_details(err.value)["violations"]
    dataset = await stub.GetDataset(dataset_pb2.GetDatasetRequest(name="datasets/qa-bad"))
    assert dataset.example_count == 1

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AppendExamples(iter([_append("datasets/qa-bad", "", [{"question": "x"}])]))
    assert "request_id" in error_details(err.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AppendExamples(iter([_append("datasets/missing", "r", [{"question": "x"}])]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_seeded_splits_are_disjoint_deterministic_and_match_python_random(channel):
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await create_dataset(channel, "qa-split", [{"question": f"q{i}", "answer": str(i)} for i in range(20)])
    split = dataset_pb2.DatasetSplit(seed=7, dev_fraction=0.25)
    train = await _all_examples(stub, "datasets/qa-split", split=split, part=dataset_pb2.SPLIT_PART_TRAIN)
    dev = await _all_examples(stub, "datasets/qa-split", split=split, part=dataset_pb2.SPLIT_PART_DEV)
    order = list(range(20))
    random.Random(7).shuffle(order)
    assert [e.index for e in dev] == sorted(order[:5])
    assert [e.index for e in train] == sorted(order[5:])

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListExamples(dataset_pb2.ListExamplesRequest(
            parent="datasets/qa-split", split=dataset_pb2.DatasetSplit(seed=1, dev_fraction=1.5),
            part=dataset_pb2.SPLIT_PART_DEV))
    assert "split.dev_fraction" in error_details(err.value)["violations"]
