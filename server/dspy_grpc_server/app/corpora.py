"""Corpora: validate, tokenize (and embed) documents, store them, and search them (BM25, dense, hybrid).

Each replica keeps the BM25 index of the corpora it searched in memory, as a cache of the store:
before a search it reads the corpus's document count and, when documents were appended since (by
any replica), reads only the new documents' stored tokens and rebuilds the score matrix (BM25's
idf depends on every document, so the matrix is recomputed; the texts are never re-tokenized).
The vectors of a corpus with an embedding model are cached the same way (new rows appended).
Building and searching run in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.errors import FailedPrecondition, invalid
from ..modules.retrieval import Passage
from ..retrieval.bm25 import Bm25Index, Bm25Settings, tokenize
from ..retrieval.dense import FUSION_DEPTH, DenseIndex, fuse, to_bytes
from ..store.corpora import AppendOutcome, CorpusRecord, CorpusStore, StoredDocument

#: Longest accepted AppendDocuments request id.
MAX_REQUEST_ID = 128
#: Documents per AppendDocuments stream.
MAX_APPEND_DOCUMENTS = 100_000
#: Documents per corpus.
MAX_CORPUS_DOCUMENTS = 1_000_000
#: Characters per document text.
MAX_TEXT_CHARS = 100_000
#: Characters per document id.
MAX_ID_CHARS = 256
#: Passages per search.
MAX_K = 1000
DEFAULT_K = 10
#: Texts per embeddings call when appending (as KNNFewShot embeds its examples).
EMBED_BATCH = 200
#: How a corpus may be searched.
MODES = ("bm25", "dense", "hybrid")

#: Embeds texts with a model alias: ``await embed(model, texts)`` gives one vector per text.
Embedder = Callable[[str, Sequence[str]], Awaitable[Sequence[Sequence[float]]]]


@dataclass
class _CachedIndex:
    """One corpus's index in this process: the vocabulary, each document's token ids, the index."""

    create_time: datetime
    settings: Bm25Settings
    vocabulary: dict[str, int] = field(default_factory=dict)
    documents: list[array] = field(default_factory=list)
    index: Bm25Index | None = None
    dense: DenseIndex = field(default_factory=DenseIndex)

    def add(self, token_lists: Sequence[Sequence[str]]) -> None:
        for tokens in token_lists:
            ids = array("i")
            for token in tokens:
                ids.append(self.vocabulary.setdefault(token, len(self.vocabulary)))
            self.documents.append(ids)

    def rebuild(self) -> None:
        self.index = Bm25Index(self.settings, self.documents, vocabulary=dict(self.vocabulary))


class Corpora:
    def __init__(self, store: CorpusStore, embedder: Embedder | None = None,
                 check_model: Callable[[str, str], None] | None = None) -> None:
        self._store = store
        self._embedder = embedder
        self._check_model = check_model
        self._indexes: dict[str, _CachedIndex] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def create(self, corpus_id: str, *, display_name: str, description: str, labels: Mapping[str, str],
                     bm25: Bm25Settings, embedding_model: str = "") -> CorpusRecord:
        bm25.validate("corpus.bm25")
        if embedding_model:
            if self._check_model is None or self._embedder is None:
                raise invalid("corpus.embedding_model", "this server cannot embed documents")
            self._check_model(embedding_model, "corpus.embedding_model")
        return await self._store.create(corpus_id, display_name=display_name, description=description,
                                        labels=labels, bm25=bm25.to_dict(), embedding_model=embedding_model)

    async def get(self, corpus_id: str) -> CorpusRecord:
        return await self._store.get(corpus_id)

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[CorpusRecord], str]:
        return await self._store.list(page_size=page_size, page_token=page_token)

    async def delete(self, corpus_id: str) -> None:
        await self._store.delete(corpus_id)
        self._indexes.pop(corpus_id, None)
        self._locks.pop(corpus_id, None)

    async def append(self, corpus_id: str, request_id: str, documents: Sequence[StoredDocument]) -> AppendOutcome:
        """Check and tokenize every document, then append them all (or nothing)."""

        if not request_id:
            raise invalid("request_id", "is required (an idempotency key, e.g. a UUID)")
        if len(request_id) > MAX_REQUEST_ID:
            raise invalid("request_id", f"must be at most {MAX_REQUEST_ID} characters")
        if len(documents) > MAX_APPEND_DOCUMENTS:
            raise invalid("documents", f"at most {MAX_APPEND_DOCUMENTS} documents per stream")
        corpus = await self._store.get(corpus_id, field="corpus")
        if corpus.document_count + len(documents) > MAX_CORPUS_DOCUMENTS:
            raise invalid("documents", f"a corpus holds at most {MAX_CORPUS_DOCUMENTS} documents "
                          f"(it has {corpus.document_count})")
        seen: set[str] = set()
        for index, doc in enumerate(documents):
            path = f"documents[{index}]"
            if not doc.text:
                raise invalid(f"{path}.text", "is required")
            if len(doc.text) > MAX_TEXT_CHARS:
                raise invalid(f"{path}.text", f"must be at most {MAX_TEXT_CHARS} characters")
            if len(doc.id) > MAX_ID_CHARS:
                raise invalid(f"{path}.id", f"must be at most {MAX_ID_CHARS} characters")
            if doc.id and doc.id in seen:
                raise invalid(f"{path}.id", f"duplicate document id {doc.id!r}")
            seen.add(doc.id)
        settings = Bm25Settings.from_dict(corpus.bm25)
        texts = [doc.text for doc in documents]
        token_lists = await asyncio.to_thread(tokenize, texts, settings)
        vectors: list[bytes | None] = [None] * len(documents)
        if corpus.embedding_model:
            earlier = await self._store.replayed(corpus_id, request_id)
            if earlier is not None:  # nothing to append: embed nothing
                return earlier
            vectors = list(await self._embed_all(corpus.embedding_model, texts))
        tokenized = [
            StoredDocument(-1, doc.id, doc.text, doc.metadata, tuple(tokens), vector)
            for doc, tokens, vector in zip(documents, token_lists, vectors)
        ]
        return await self._store.append(corpus_id, request_id, tokenized, limit=MAX_CORPUS_DOCUMENTS)

    async def _embed_all(self, model: str, texts: Sequence[str]) -> list[bytes]:
        assert self._embedder is not None
        out: list[bytes] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            vectors = await self._embedder(model, batch)
            out.extend(to_bytes(vector) for vector in vectors)
        if len({len(v) for v in out}) > 1:
            raise FailedPrecondition(f"embedding model {model!r} returned vectors of different lengths",
                                     reason="EMBEDDING_DIMENSIONS_CHANGED", metadata={"model": model})
        return out

    async def search(self, corpus_id: str, query: str, k: int, *, mode: str = "bm25",
                     embed_query: Callable[[str, str], Awaitable[Sequence[float]]] | None = None) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first (every document when the corpus has
        fewer). ``embed_query(model, text)`` embeds the query for dense and hybrid searches (default:
        the server's embedder, outside any call's usage)."""

        if not 1 <= k <= MAX_K:
            raise invalid("k", f"must be between 1 and {MAX_K}")
        if mode not in MODES:
            raise invalid("mode", f"must be one of {', '.join(MODES)}")
        corpus = await self._store.get(corpus_id, field="corpus")
        if corpus.document_count == 0:
            raise FailedPrecondition(f"corpora/{corpus_id} has no documents to search", reason="CORPUS_EMPTY",
                                     metadata={"corpus": f"corpora/{corpus_id}"})
        if mode != "bm25" and not corpus.embedding_model:
            raise FailedPrecondition(f"corpora/{corpus_id} has no embedding model: it can only be searched with BM25",
                                     reason="CORPUS_NOT_EMBEDDED", metadata={"corpus": f"corpora/{corpus_id}"})
        cached = await self._index(corpus)
        assert cached.index is not None
        depth = min(max(k, FUSION_DEPTH), corpus.document_count)
        lexical: list[tuple[int, float]] = []
        if mode != "dense":
            lexical = await asyncio.to_thread(cached.index.search, query, k if mode == "bm25" else depth)
        hits = lexical
        if mode != "bm25":
            vector = await (embed_query or self._embed_one)(corpus.embedding_model, query)
            if len(vector) != cached.dense.dimensions:
                raise FailedPrecondition(
                    f"embedding model {corpus.embedding_model!r} returned a query vector of {len(vector)} dimensions; "
                    f"corpora/{corpus_id} holds vectors of {cached.dense.dimensions}",
                    reason="EMBEDDING_DIMENSIONS_CHANGED", metadata={"model": corpus.embedding_model})
            semantic = await asyncio.to_thread(cached.dense.search, vector, k if mode == "dense" else depth)
            hits = semantic[:k] if mode == "dense" else fuse([[i for i, _ in lexical], [i for i, _ in semantic]], k)
        documents = await self._store.documents(corpus_id, [index for index, _ in hits])
        passages = []
        for index, score in hits:
            doc = documents.get(index)
            if doc is not None:
                passages.append(Passage(doc.id, doc.text, score, doc.metadata, index))
        return passages

    async def _embed_one(self, model: str, text: str) -> Sequence[float]:
        if self._embedder is None:  # pragma: no cover - corpora with models need an embedder to exist
            raise FailedPrecondition("this server cannot embed queries", reason="CORPUS_NOT_EMBEDDED")
        (vector,) = await self._embedder(model, [text])
        return vector

    async def embedding_model(self, corpus_id: str) -> str:
        return (await self._store.get(corpus_id, field="corpus")).embedding_model

    async def _index(self, corpus: CorpusRecord) -> _CachedIndex:
        lock = self._locks.setdefault(corpus.corpus_id, asyncio.Lock())
        async with lock:
            cached = self._indexes.get(corpus.corpus_id)
            if cached is None or cached.create_time != corpus.create_time:
                cached = _CachedIndex(corpus.create_time, Bm25Settings.from_dict(corpus.bm25))
            have = len(cached.documents)
            if have < corpus.document_count or cached.index is None:
                self._indexes.pop(corpus.corpus_id, None)  # back only once it is complete again
                fresh = await self._store.tokens(corpus.corpus_id, have, corpus.document_count)
                cached.add(fresh)
                if corpus.embedding_model:
                    vectors = await self._store.embeddings(corpus.corpus_id, have, corpus.document_count)
                    await asyncio.to_thread(cached.dense.add, [v for v in vectors if v is not None])
                await asyncio.to_thread(cached.rebuild)
            self._indexes[corpus.corpus_id] = cached
            return cached
