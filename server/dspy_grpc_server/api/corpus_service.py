"""CorpusService: translation between requests and :class:`~..app.corpora.Corpora`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc
from google.protobuf import empty_pb2

from ..app.corpora import DEFAULT_K, Corpora
from ..core.errors import invalid
from ..modules.retrieval import Passage
from ..retrieval.bm25 import Bm25Settings
from ..store.corpora import CorpusRecord, StoredDocument
from .convert import _timestamp as timestamp
from .convert import dict_to_struct, retrieval_mode_from_proto, struct_to_dict

_NAME = re.compile(r"corpora/([a-z][a-z0-9-]{0,62})")


def corpus_id(name: str, field: str) -> str:
    """The id in "corpora/{id}"; INVALID_ARGUMENT naming ``field`` otherwise."""

    if not name:
        raise invalid(field, "is required: a name such as \"corpora/my-corpus\"")
    match = _NAME.fullmatch(name)
    if match is None:
        raise invalid(field, f"{name!r} is not a corpus name of the form corpora/{{id}}")
    return match.group(1)


def bm25_from_proto(message: corpus_pb2.Bm25Options) -> Bm25Settings:
    defaults = Bm25Settings()
    return Bm25Settings(
        k1=message.k1 if message.HasField("k1") else defaults.k1,
        b=message.b if message.HasField("b") else defaults.b,
        method=message.method or defaults.method, keep_stopwords=message.keep_stopwords,
        no_stemming=message.no_stemming,
    )


def corpus_to_proto(record: CorpusRecord) -> corpus_pb2.Corpus:
    settings = Bm25Settings.from_dict(dict(record.bm25))
    state = corpus_pb2.CORPUS_INDEX_STATE_READY if record.document_count else corpus_pb2.CORPUS_INDEX_STATE_EMPTY
    return corpus_pb2.Corpus(
        name=record.name, display_name=record.display_name, description=record.description, labels=dict(record.labels),
        bm25=corpus_pb2.Bm25Options(k1=settings.k1, b=settings.b, method=settings.method,
                                    keep_stopwords=settings.keep_stopwords, no_stemming=settings.no_stemming),
        document_count=record.document_count, index_state=state, indexed_document_count=record.document_count,
        create_time=timestamp(record.create_time), update_time=timestamp(record.update_time),
        embedding_model=record.embedding_model,
    )


def passage_to_proto(passage: Passage) -> corpus_pb2.Passage:
    return corpus_pb2.Passage(id=passage.id, text=passage.text, score=passage.score,
                              metadata=dict_to_struct(dict(passage.metadata)), index=passage.index)


def _document(message: corpus_pb2.Document) -> StoredDocument:
    metadata: dict[str, Any] = struct_to_dict(message.metadata) if message.HasField("metadata") else {}
    return StoredDocument(-1, message.id, message.text, metadata)


class CorpusService(corpus_pb2_grpc.CorpusServiceServicer):
    def __init__(self, corpora: Corpora) -> None:
        self._corpora = corpora

    async def CreateCorpus(self, request: corpus_pb2.CreateCorpusRequest, context: grpc.aio.ServicerContext):
        corpus = request.corpus
        created = await self._corpora.create(
            request.corpus_id, display_name=corpus.display_name, description=corpus.description,
            labels=dict(corpus.labels), bm25=bm25_from_proto(corpus.bm25), embedding_model=corpus.embedding_model,
        )
        return corpus_to_proto(created)

    async def GetCorpus(self, request: corpus_pb2.GetCorpusRequest, context: grpc.aio.ServicerContext):
        return corpus_to_proto(await self._corpora.get(corpus_id(request.name, "name")))

    async def ListCorpora(self, request: corpus_pb2.ListCorporaRequest, context: grpc.aio.ServicerContext):
        records, token = await self._corpora.list(page_size=request.page_size, page_token=request.page_token)
        return corpus_pb2.ListCorporaResponse(corpora=[corpus_to_proto(r) for r in records], next_page_token=token)

    async def DeleteCorpus(self, request: corpus_pb2.DeleteCorpusRequest, context: grpc.aio.ServicerContext):
        await self._corpora.delete(corpus_id(request.name, "name"))
        return empty_pb2.Empty()

    async def AppendDocuments(
        self, request_iterator: AsyncIterator[corpus_pb2.AppendDocumentsRequest], context: grpc.aio.ServicerContext
    ):
        corpus_name = request_id = ""
        documents: list[StoredDocument] = []
        async for message in request_iterator:
            if not corpus_name:
                corpus_name, request_id = message.corpus, message.request_id
                if not corpus_name:
                    raise invalid("corpus", "is required in the first message")
            elif message.corpus and message.corpus != corpus_name:
                raise invalid("corpus", "must not change within one stream")
            elif message.request_id and message.request_id != request_id:
                raise invalid("request_id", "must not change within one stream")
            documents.extend(_document(document) for document in message.documents)
        if not corpus_name:
            raise invalid("corpus", "is required: the stream sent no message")
        outcome = await self._corpora.append(corpus_id(corpus_name, "corpus"), request_id, documents)
        return corpus_pb2.AppendDocumentsResponse(
            appended_count=outcome.appended_count, first_index=outcome.first_index,
            document_count=outcome.document_count, replayed=outcome.replayed,
        )

    async def SearchCorpus(self, request: corpus_pb2.SearchCorpusRequest, context: grpc.aio.ServicerContext):
        if not request.query:
            raise invalid("query", "is required")
        passages = await self._corpora.search(corpus_id(request.corpus, "corpus"), request.query,
                                              request.k or DEFAULT_K, mode=retrieval_mode_from_proto(request.mode, "mode"))
        return corpus_pb2.SearchCorpusResponse(passages=[passage_to_proto(p) for p in passages])
