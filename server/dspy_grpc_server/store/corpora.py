"""Stored corpora: named, append-only lists of documents with their BM25 tokens.

A corpus (``corpora/{corpus_id}``) holds documents numbered from 0 in append order. Appends are
atomic (all documents of one append or none) and idempotent per ``request_id``: repeating a request
id that already succeeded on the corpus appends nothing and returns the first outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dspy_grpc_server.core.errors import AlreadyExists, NotFound, invalid
from dspy_grpc_server.core.names import validate_resource_id
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.programs import _translated_errors
from dspy_grpc_server.store.schema import corpora, corpus_appends, corpus_documents

#: Rows per INSERT statement when appending.
INSERT_BATCH = 500


@dataclass(frozen=True)
class CorpusRecord:
    corpus_id: str
    display_name: str
    description: str
    labels: Mapping[str, str]
    #: The BM25 settings as stored (see ``retrieval.bm25.Bm25Settings``).
    bm25: Mapping[str, Any]
    #: The embedding model's alias ("" when the corpus has none).
    embedding_model: str
    document_count: int
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"corpora/{self.corpus_id}"


@dataclass(frozen=True)
class StoredDocument:
    """A document as stored: its position, id, text, metadata and BM25 tokens."""

    index: int
    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tokens: tuple[str, ...] = ()
    #: The text's vector, float32 little-endian bytes (None when the corpus has no embedding model).
    embedding: bytes | None = None


@dataclass(frozen=True)
class AppendOutcome:
    appended_count: int
    first_index: int
    document_count: int
    replayed: bool


def _now() -> datetime:
    return datetime.now(UTC)


def corpus_not_found(corpus_id: str) -> NotFound:
    return NotFound(f"corpus 'corpora/{corpus_id}' not found", reason="CORPUS_NOT_FOUND",
                    metadata={"corpus_id": corpus_id})


def _record(row: Any) -> CorpusRecord:
    return CorpusRecord(
        corpus_id=row.corpus_id, display_name=row.display_name, description=row.description,
        labels=dict(row.labels), bm25=dict(row.bm25), embedding_model=row.embedding_model,
        document_count=row.document_count,
        create_time=row.create_time, update_time=row.update_time,
    )


def _json_copy(value: Any, field: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise invalid(field, f"is not valid JSON: {error}") from None


class CorpusStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, corpus_id: str, *, display_name: str = "", description: str = "",
                     labels: Mapping[str, str] | None = None, bm25: Mapping[str, Any],
                     embedding_model: str = "") -> CorpusRecord:
        validate_resource_id(corpus_id, field="corpus_id")
        now = _now()
        record = CorpusRecord(
            corpus_id=corpus_id, display_name=display_name, description=description,
            labels=dict(sorted((labels or {}).items())), bm25=dict(bm25), embedding_model=embedding_model,
            document_count=0, create_time=now, update_time=now,
        )
        async with _translated_errors(), self._db.sessions() as session:
            try:
                async with session.begin():
                    await session.execute(sa.insert(corpora).values(
                        corpus_id=corpus_id, display_name=display_name, description=description,
                        labels=dict(record.labels), bm25=dict(bm25), embedding_model=embedding_model, document_count=0,
                        create_time=now, update_time=now,
                    ))
            except IntegrityError:
                raise AlreadyExists(f"corpus 'corpora/{corpus_id}' already exists", reason="CORPUS_EXISTS",
                                    metadata={"corpus_id": corpus_id}) from None
        return record

    async def get(self, corpus_id: str, *, field: str = "name") -> CorpusRecord:
        validate_resource_id(corpus_id, field=field)
        async with _translated_errors(), self._db.sessions() as session:
            row = (await session.execute(sa.select(corpora).where(corpora.c.corpus_id == corpus_id))).one_or_none()
        if row is None:
            raise corpus_not_found(corpus_id)
        return _record(row)

    async def list(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[CorpusRecord], str]:
        size = normalize_page_size(page_size)
        after = decode_page_token(page_token, "corpora")
        query = sa.select(corpora).order_by(corpora.c.corpus_id).limit(size + 1)
        if after is not None:
            query = query.where(corpora.c.corpus_id > str(after))
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [_record(row) for row in rows[:size]]
        return records, encode_page_token("corpora", records[-1].corpus_id) if len(rows) > size else ""

    async def delete(self, corpus_id: str) -> None:
        validate_resource_id(corpus_id, field="name")
        async with _translated_errors(), self._db.sessions() as session, session.begin():
            for table in (corpus_documents, corpus_appends):
                await session.execute(sa.delete(table).where(table.c.corpus_id == corpus_id))
            deleted = await session.execute(sa.delete(corpora).where(corpora.c.corpus_id == corpus_id))
            if deleted.rowcount != 1:
                raise corpus_not_found(corpus_id)

    async def append(self, corpus_id: str, request_id: str, documents: Sequence[StoredDocument], *,
                     limit: int | None = None) -> AppendOutcome:
        """Append ``documents`` atomically (their ``index`` is assigned here; an empty ``id`` becomes the
        index); a repeated ``request_id`` appends nothing. Refuses to grow the corpus past ``limit``."""

        rows = [
            {"document_id": doc.id, "text": doc.text,
             "doc_metadata": _json_copy(dict(doc.metadata), f"documents[{i}].metadata"), "tokens": " ".join(doc.tokens),
             "embedding": doc.embedding}
            for i, doc in enumerate(documents)
        ]
        async with _translated_errors(), self._db.sessions() as session:
            try:
                async with session.begin():
                    # Taking the corpus row first serialises concurrent appends to one corpus.
                    count = await session.scalar(
                        sa.select(corpora.c.document_count).where(corpora.c.corpus_id == corpus_id).with_for_update()
                    )
                    if count is None:
                        raise corpus_not_found(corpus_id)
                    earlier = (await session.execute(sa.select(corpus_appends).where(
                        corpus_appends.c.corpus_id == corpus_id, corpus_appends.c.request_id == request_id,
                    ))).one_or_none()
                    if earlier is not None:
                        return AppendOutcome(earlier.appended_count, earlier.first_index, count, replayed=True)
                    if limit is not None and count + len(rows) > limit:
                        raise invalid("documents", f"a corpus holds at most {limit} documents (it has {count})")
                    for i, row in enumerate(rows):
                        row["document_index"] = count + i
                        row["document_id"] = row["document_id"] or str(count + i)
                    await session.execute(
                        sa.update(corpora).where(corpora.c.corpus_id == corpus_id)
                        .values(document_count=count + len(rows), update_time=_now())
                    )
                    for start in range(0, len(rows), INSERT_BATCH):
                        await session.execute(sa.insert(corpus_documents), [
                            {"corpus_id": corpus_id, **row} for row in rows[start:start + INSERT_BATCH]
                        ])
                    await session.execute(sa.insert(corpus_appends).values(
                        corpus_id=corpus_id, request_id=request_id, first_index=count, appended_count=len(rows),
                    ))
            except IntegrityError:
                raise invalid("documents", "a document id is already in the corpus (ids must be unique; an empty "
                              "id takes the document's index)") from None
        return AppendOutcome(len(rows), count, count + len(rows), replayed=False)

    async def replayed(self, corpus_id: str, request_id: str) -> AppendOutcome | None:
        """The outcome of an earlier append with ``request_id``, if there was one."""

        async with _translated_errors(), self._db.sessions() as session:
            earlier = (await session.execute(sa.select(corpus_appends).where(
                corpus_appends.c.corpus_id == corpus_id, corpus_appends.c.request_id == request_id,
            ))).one_or_none()
            count = await session.scalar(sa.select(corpora.c.document_count).where(corpora.c.corpus_id == corpus_id))
        if earlier is None or count is None:
            return None
        return AppendOutcome(earlier.appended_count, earlier.first_index, count, replayed=True)

    async def tokens(self, corpus_id: str, start: int, stop: int) -> list[list[str]]:
        """The stored tokens of documents ``start`` .. ``stop - 1``, in index order."""

        query = (sa.select(corpus_documents.c.tokens)
                 .where(corpus_documents.c.corpus_id == corpus_id, corpus_documents.c.document_index >= start,
                        corpus_documents.c.document_index < stop)
                 .order_by(corpus_documents.c.document_index))
        async with _translated_errors(), self._db.sessions() as session:
            return [row.tokens.split() for row in (await session.execute(query)).all()]

    async def embeddings(self, corpus_id: str, start: int, stop: int) -> list[bytes | None]:
        """The stored vectors of documents ``start`` .. ``stop - 1``, in index order."""

        query = (sa.select(corpus_documents.c.embedding)
                 .where(corpus_documents.c.corpus_id == corpus_id, corpus_documents.c.document_index >= start,
                        corpus_documents.c.document_index < stop)
                 .order_by(corpus_documents.c.document_index))
        async with _translated_errors(), self._db.sessions() as session:
            return [row.embedding for row in (await session.execute(query)).all()]

    async def documents(self, corpus_id: str, indexes: Sequence[int]) -> dict[int, StoredDocument]:
        """The documents at ``indexes`` (without their tokens), by index."""

        if not indexes:
            return {}
        columns = (corpus_documents.c.document_index, corpus_documents.c.document_id, corpus_documents.c.text,
                   corpus_documents.c.doc_metadata)
        query = sa.select(*columns).where(corpus_documents.c.corpus_id == corpus_id,
                                          corpus_documents.c.document_index.in_(list(indexes)))
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return {row.document_index: StoredDocument(row.document_index, row.document_id, row.text,
                                                   dict(row.doc_metadata)) for row in rows}
