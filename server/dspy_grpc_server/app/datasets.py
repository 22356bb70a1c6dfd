"""Datasets: validate examples, then store them; read them back whole or by split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..core.bounds import Limits
from ..core.errors import FailedPrecondition, ResourceExhausted, invalid
from ..core.example import Example
from ..optimize.splits import Split
from ..store.datasets import AppendOutcome, DatasetRecord, DatasetStore

#: Longest accepted AppendExamples request id.
MAX_REQUEST_ID = 128
#: Most examples one AppendExamples stream may carry (a stream is held in memory until it is written).
MAX_APPEND_EXAMPLES = 10_000


class Datasets:
    def __init__(self, store: DatasetStore, limits: Limits = Limits()) -> None:
        self._store = store
        self._limits = limits

    async def create(self, dataset_id: str, *, display_name: str, description: str, labels: Mapping[str, str],
                     input_keys: Sequence[str]) -> DatasetRecord:
        for index, key in enumerate(input_keys):
            if not key or not key.isidentifier():
                raise invalid(f"dataset.input_keys[{index}]", f"{key!r} is not a field name")
        return await self._store.create(
            dataset_id, display_name=display_name, description=description, labels=labels, input_keys=input_keys
        )

    async def get(self, dataset_id: str) -> DatasetRecord:
        return await self._store.get(dataset_id)

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[DatasetRecord], str]:
        return await self._store.list(page_size=page_size, page_token=page_token)

    async def delete(self, dataset_id: str) -> None:
        await self._store.delete(dataset_id)

    async def append(self, dataset_id: str, request_id: str, examples: Sequence[Example]) -> AppendOutcome:
        """Append after checking every example (nothing is written if one is bad)."""

        if not request_id:
            raise invalid("request_id", "is required (an idempotency key, e.g. a UUID)")
        if len(request_id) > MAX_REQUEST_ID:
            raise invalid("request_id", f"must be at most {MAX_REQUEST_ID} characters")
        if len(examples) > MAX_APPEND_EXAMPLES:
            raise invalid("examples", f"one stream appends at most {MAX_APPEND_EXAMPLES} examples")
        dataset = await self._store.get(dataset_id, field="dataset")
        limit = self._limits.max_dataset_examples
        if dataset.example_count + len(examples) > limit:
            raise ResourceExhausted(
                f"dataset: datasets hold at most {limit} examples (limits.max_dataset_examples); this one has "
                f"{dataset.example_count}", reason="DATASET_FULL",
                metadata={"field": "examples", "max_dataset_examples": str(limit),
                          "example_count": str(dataset.example_count)})
        checked = []
        for index, example in enumerate(examples):
            path = f"examples[{index}]"
            if not example.data:
                raise invalid(f"{path}.data", "needs at least one field")
            keys = example.input_keys or dataset.input_keys
            if not keys:
                raise invalid(f"{path}.input_keys", "name the input fields (here or in the dataset's input_keys)")
            for key in keys:
                if key not in example.data:
                    raise invalid(f"{path}.input_keys", f"{key!r} is not a field of the example")
            checked.append(Example(dict(example.data), tuple(keys)))
        return await self._store.append(dataset_id, request_id, checked)

    async def examples(self, dataset_id: str, *, split: Split | None = None, part: str = "",
                       count: int | None = None) -> list[tuple[int, Example]]:
        """The examples (index, example), optionally one part of a split of the first ``count``."""

        dataset = await self._store.get(dataset_id, field="dataset")
        total = dataset.example_count if count is None else count
        indexes = None if split is None else split.part(total, part)
        if indexes is None and count is not None:
            indexes = list(range(count))
        examples = await self._store.examples(dataset_id, indexes)
        if indexes is not None and len(examples) != len(indexes):
            raise FailedPrecondition(
                f"datasets/{dataset_id} no longer holds the examples this job was created with",
                reason="DATASET_CHANGED", metadata={"dataset": f"datasets/{dataset_id}"},
            )
        return examples

    async def list_examples(self, dataset_id: str, *, page_size: int, page_token: str, split: Split | None,
                            part: str) -> tuple[list[tuple[int, Example]], str]:
        scope = f"datasets/{dataset_id}/examples"
        indexes = None
        if split is not None and part:
            split.validate()
            dataset = await self._store.get(dataset_id, field="parent")
            indexes = split.part(dataset.example_count, part)
            scope += f"/{split.seed}/{split.dev_fraction}/{part}"
        return await self._store.page(dataset_id, page_size=page_size, page_token=page_token, indexes=indexes,
                                      scope=scope)
