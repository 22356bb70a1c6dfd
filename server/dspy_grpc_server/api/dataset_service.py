"""DatasetService: translation between requests and :class:`~..app.datasets.Datasets`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc
from google.protobuf import empty_pb2

from ..app.datasets import MAX_APPEND_EXAMPLES, Datasets
from ..core.errors import invalid
from .convert import example_from_proto, example_to_proto
from .optimize_convert import dataset_to_proto, part_from_proto, resource_id, split_from_proto


class DatasetService(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self, datasets: Datasets) -> None:
        self._datasets = datasets

    async def CreateDataset(self, request: dataset_pb2.CreateDatasetRequest, context: grpc.aio.ServicerContext):
        dataset = request.dataset
        created = await self._datasets.create(
            request.dataset_id, display_name=dataset.display_name, description=dataset.description,
            labels=dict(dataset.labels), input_keys=list(dataset.input_keys),
        )
        return dataset_to_proto(created)

    async def GetDataset(self, request: dataset_pb2.GetDatasetRequest, context: grpc.aio.ServicerContext):
        return dataset_to_proto(await self._datasets.get(resource_id("dataset", request.name, "name")))

    async def ListDatasets(self, request: dataset_pb2.ListDatasetsRequest, context: grpc.aio.ServicerContext):
        records, token = await self._datasets.list(page_size=request.page_size, page_token=request.page_token)
        return dataset_pb2.ListDatasetsResponse(datasets=[dataset_to_proto(r) for r in records], next_page_token=token)

    async def DeleteDataset(self, request: dataset_pb2.DeleteDatasetRequest, context: grpc.aio.ServicerContext):
        await self._datasets.delete(resource_id("dataset", request.name, "name"))
        return empty_pb2.Empty()

    async def AppendExamples(
        self, request_iterator: AsyncIterator[dataset_pb2.AppendExamplesRequest], context: grpc.aio.ServicerContext
    ):
        dataset_name = request_id = ""
        examples = []
        async for message in request_iterator:
            if not dataset_name:
                dataset_name, request_id = message.dataset, message.request_id
                if not dataset_name:
                    raise invalid("dataset", "is required in the first message")
            elif message.dataset and message.dataset != dataset_name:
                raise invalid("dataset", "must not change within one stream")
            elif message.request_id and message.request_id != request_id:
                raise invalid("request_id", "must not change within one stream")
            examples.extend([example_from_proto(example, f"examples[{len(examples) + i}]")
                             for i, example in enumerate(message.examples)])
            if len(examples) > MAX_APPEND_EXAMPLES:  # refused as soon as the stream goes over, not at its end
                raise invalid("examples", f"one stream appends at most {MAX_APPEND_EXAMPLES} examples")
        if not dataset_name:
            raise invalid("dataset", "is required: the stream sent no message")
        outcome = await self._datasets.append(resource_id("dataset", dataset_name, "dataset"), request_id, examples)
        return dataset_pb2.AppendExamplesResponse(
            appended_count=outcome.appended_count, first_index=outcome.first_index,
            example_count=outcome.example_count, replayed=outcome.replayed,
        )

    async def ListExamples(self, request: dataset_pb2.ListExamplesRequest, context: grpc.aio.ServicerContext):
        split = split_from_proto(request, "split")
        part = part_from_proto(request.part, "part")
        if part and split is None:
            raise invalid("split", "is required when part is set")
        items, token = await self._datasets.list_examples(
            resource_id("dataset", request.parent, "parent"), page_size=request.page_size,
            page_token=request.page_token, split=split, part=part,
        )
        return dataset_pb2.ListExamplesResponse(
            examples=[dataset_pb2.DatasetExample(index=i, example=example_to_proto(e)) for i, e in items],
            next_page_token=token,
        )
