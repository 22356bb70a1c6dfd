"""Stored datasets: named, append-only lists of examples.

A dataset (``datasets/{dataset_id}``) holds examples numbered from 0 in append order. Appends are
atomic (all examples of one append or none) and idempotent per ``request_id``: repeating a request
id that already succeeded on the dataset appends nothing and returns the first outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dspy_grpc_server.core.errors import AlreadyExists, NotFound, invalid
from dspy_grpc_server.core.example import Example
from dspy_grpc_server.core.names import validate_dataset_id
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.programs import _translated_errors
from dspy_grpc_server.store.schema import dataset_appends, dataset_examples, datasets

#: Rows per INSERT statement when appending.
INSERT_BATCH = 500


@dataclass(frozen=True)
class DatasetRecord:
    dataset_id: str
    display_name: str
    description: str
    labels: Mapping[str, str]
    input_keys: tuple[str, ...]
    example_count: int
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"datasets/{self.dataset_id}"


@dataclass(frozen=True)
class AppendOutcome:
    appended_count: int
    first_index: int
    example_count: int
    replayed: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _not_found(dataset_id: str) -> NotFound:
    return NotFound(
        f"dataset 'datasets/{dataset_id}' not found", reason="DATASET_NOT_FOUND",
        metadata={"dataset_id": dataset_id},
    )


def _record(row: Any) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=row.dataset_id, display_name=row.display_name, description=row.description,
        labels=dict(row.labels), input_keys=tuple(row.input_keys), example_count=row.example_count,
        create_time=row.create_time, update_time=row.update_time,
    )


def _json_copy(value: Any, field: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise invalid(field, f"is not valid JSON: {error}") from None


class DatasetStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, dataset_id: str, *, display_name: str = "", description: str = "",
        labels: Mapping[str, str] | None = None, input_keys: Sequence[str] = (),
    ) -> DatasetRecord:
        validate_dataset_id(dataset_id)
        now = _now()
        record = DatasetRecord(
            dataset_id=dataset_id, display_name=display_name, description=description,
            labels=dict(sorted((labels or {}).items())), input_keys=tuple(input_keys), example_count=0,
            create_time=now, update_time=now,
        )
        async with _translated_errors(), self._db.sessions() as session:
            try:
                async with session.begin():
                    await session.execute(
                        sa.insert(datasets).values(
                            dataset_id=dataset_id, display_name=display_name, description=description,
                            labels=dict(record.labels), input_keys=list(record.input_keys),
                            example_count=0, create_time=now, update_time=now,
                        )
                    )
            except IntegrityError:
                raise AlreadyExists(
                    f"dataset 'datasets/{dataset_id}' already exists", reason="DATASET_EXISTS",
                    metadata={"dataset_id": dataset_id},
                ) from None
        return record

    async def get(self, dataset_id: str, *, field: str = "name") -> DatasetRecord:
        validate_dataset_id(dataset_id, field=field)
        async with _translated_errors(), self._db.sessions() as session:
            row = (await session.execute(sa.select(datasets).where(datasets.c.dataset_id == dataset_id))).one_or_none()
        if row is None:
            raise _not_found(dataset_id)
        return _record(row)

    async def list(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[DatasetRecord], str]:
        size = normalize_page_size(page_size)
        after = decode_page_token(page_token, "datasets")
        query = sa.select(datasets).order_by(datasets.c.dataset_id).limit(size + 1)
        if after is not None:
            query = query.where(datasets.c.dataset_id > str(after))
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [_record(row) for row in rows[:size]]
        return records, encode_page_token("datasets", records[-1].dataset_id) if len(rows) > size else ""

    async def delete(self, dataset_id: str) -> None:
        validate_dataset_id(dataset_id, field="name")
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            for table in (dataset_examples, dataset_appends):
                await session.execute(sa.delete(table).where(table.c.dataset_id == dataset_id))
            deleted = await session.execute(sa.delete(datasets).where(datasets.c.dataset_id == dataset_id))
            if deleted.rowcount != 1:
                raise _not_found(dataset_id)

    async def append(self, dataset_id: str, request_id: str, examples: Sequence[Example]) -> AppendOutcome:
        """Append ``examples`` atomically; a repeated ``request_id`` appends nothing."""

        validate_dataset_id(dataset_id, field="dataset")
        rows = [
            {"data": _json_copy(dict(example.data), f"examples[{i}].data"), "input_keys": list(example.input_keys)}
            for i, example in enumerate(examples)
        ]
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            # Taking the dataset row first (a write on SQLite, FOR UPDATE on PostgreSQL) serialises
            # concurrent appends to one dataset.
            count = await session.scalar(
                sa.select(datasets.c.example_count).where(datasets.c.dataset_id == dataset_id).with_for_update()
            )
            if count is None:
                raise _not_found(dataset_id)
            earlier = (
                await session.execute(
                    sa.select(dataset_appends).where(
                        dataset_appends.c.dataset_id == dataset_id, dataset_appends.c.request_id == request_id
                    )
                )
            ).one_or_none()
            if earlier is not None:
                return AppendOutcome(earlier.appended_count, earlier.first_index, count, replayed=True)
            now = _now()
            await session.execute(
                sa.update(datasets).where(datasets.c.dataset_id == dataset_id)
                .values(example_count=count + len(rows), update_time=now)
            )
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start:start + INSERT_BATCH]
                await session.execute(
                    sa.insert(dataset_examples),
                    [{"dataset_id": dataset_id, "example_index": count + start + i, **row} for i, row in enumerate(batch)],
                )
            await session.execute(
                sa.insert(dataset_appends).values(
                    dataset_id=dataset_id, request_id=request_id, first_index=count, appended_count=len(rows)
                )
            )
        return AppendOutcome(len(rows), count, count + len(rows), replayed=False)

    async def examples(self, dataset_id: str, indexes: Sequence[int] | None = None) -> list[tuple[int, Example]]:
        """Examples in index order: all of them, or those at ``indexes``."""

        query = sa.select(dataset_examples).where(dataset_examples.c.dataset_id == dataset_id)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query.order_by(dataset_examples.c.example_index))).all()
        wanted = None if indexes is None else set(indexes)
        return [
            (row.example_index, Example(dict(row.data), tuple(row.input_keys)))
            for row in rows if wanted is None or row.example_index in wanted
        ]

    async def page(
        self, dataset_id: str, *, page_size: int, page_token: str, indexes: Sequence[int] | None, scope: str
    ) -> tuple[list[tuple[int, Example]], str]:
        """One page of examples (in index order, optionally only ``indexes``)."""

        await self.get(dataset_id, field="parent")
        size = normalize_page_size(page_size)
        after = decode_page_token(page_token, scope)
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise invalid("page_token", "is not a page token returned by this listing")
        query = sa.select(dataset_examples).where(dataset_examples.c.dataset_id == dataset_id)
        if indexes is not None:
            wanted = [i for i in sorted(indexes) if after is None or i > after][: size + 1]
            query = query.where(dataset_examples.c.example_index.in_(wanted))
        elif after is not None:
            query = query.where(dataset_examples.c.example_index > after)
        query = query.order_by(dataset_examples.c.example_index).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [(row.example_index, Example(dict(row.data), tuple(row.input_keys))) for row in rows[:size]]
        return items, encode_page_token(scope, items[-1][0]) if len(rows) > size else ""
