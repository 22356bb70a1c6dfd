"""CorpusService over gRPC: create/get/list/delete, idempotent streamed appends, BM25 search equal to
bm25s's, incremental re-indexing, bounds, and a corpus that survives a restart."""

from __future__ import annotations

import uuid

import bm25s
import grpc
import pytest
import Stemmer
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.retrieval.wiki import generate

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _append(corpus: str, request_id: str, texts: list[str], ids: list[str] | None = None,
            metadata: list[dict] | None = None) -> corpus_pb2.AppendDocumentsRequest:
    documents = []
    for i, text in enumerate(texts):
        doc = {"text": text}
        if ids:
            doc["id"] = ids[i]
        if metadata:
            doc["metadata"] = metadata[i]
        documents.append(doc)
    return json_format.ParseDict({"corpus": corpus, "request_id": request_id, "documents": documents},
                                 corpus_pb2.AppendDocumentsRequest())


async def _create(stub, corpus_id: str, texts: list[str], **bm25) -> None:
    await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(
        corpus_id=corpus_id, corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(**bm25))))
    half = len(texts) // 2
    # Two messages of one stream, then a second stream: three chunks, one index.
    await stub.AppendDocuments(iter([_append(f"corpora/{corpus_id}", "a", texts[:10]),
                                     _append("", "", texts[10:half])]))
    if texts[half:]:
        await stub.AppendDocuments(iter([_append(f"corpora/{corpus_id}", "b", texts[half:])]))


def _bm25s_top(texts: list[str], query: str, k: int, k1: float, b: float) -> list[tuple[int, float]]:
    """What DSPy's multi-hop tutorial computes with bm25s."""

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=k, n_threads=1, show_progress=False)
    return [(int(d), float(s)) for d, s in zip(docs[0], scores[0])]


async def test_create_append_get_list_delete(channel):
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    created = await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id="basic"))
    assert created.index_state == corpus_pb2.CORPUS_INDEX_STATE_EMPTY
    assert (created.bm25.k1, created.bm25.b, created.bm25.method) == (1.5, 0.75, "lucene")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/basic", query="x"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(err.value)["reason"] == "CORPUS_EMPTY"

    response = await stub.AppendDocuments(iter([_append(
        "corpora/basic", "r1", ["Paris is the capital of France.", "Berlin is in Germany."], ids=["paris", ""],
        metadata=[{"lang": "en", "year": 2020}, {}])]))
    assert (response.appended_count, response.first_index, response.document_count) == (2, 0, 2)
    corpus = await stub.GetCorpus(corpus_pb2.GetCorpusRequest(name="corpora/basic"))
    assert corpus.document_count == corpus.indexed_document_count == 2
    assert corpus.index_state == corpus_pb2.CORPUS_INDEX_STATE_READY
    found = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/basic", query="capital of France",
                                                                   k=5))
    assert [p.id for p in found.passages] == ["paris", "1"]  # k above the count returns every document
    assert found.passages[0].text == "Paris is the capital of France." and found.passages[0].score > 0
    assert json_format.MessageToDict(found.passages[0].metadata) == {"lang": "en", "year": 2020}
    assert found.passages[1].score == 0.0

    listed = await stub.ListCorpora(corpus_pb2.ListCorporaRequest())
    assert "corpora/basic" in [c.name for c in listed.corpora]
    await stub.DeleteCorpus(corpus_pb2.DeleteCorpusRequest(name="corpora/basic"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCorpus(corpus_pb2.GetCorpusRequest(name="corpora/basic"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err.value)["reason"] == "CORPUS_NOT_FOUND"


async def test_append_is_idempotent_and_atomic(channel):
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id="idem"))
    first = await stub.AppendDocuments(iter([_append("corpora/idem", "req", ["one doc", "two doc"])]))
    again = await stub.AppendDocuments(iter([_append("corpora/idem", "req", ["one doc", "two doc"])]))
    assert (first.replayed, again.replayed, again.appended_count, again.document_count) == (False, True, 2, 2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AppendDocuments(iter([_append("corpora/idem", "req-2", ["fine", ""])]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "documents[1].text" in error_details(err.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as err:  # an id already in the corpus
        await stub.AppendDocuments(iter([_append("corpora/idem", "req-3", ["three"], ids=["0"])]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "documents" in error_details(err.value)["violations"]
    corpus = await stub.GetCorpus(corpus_pb2.GetCorpusRequest(name="corpora/idem"))
    assert corpus.document_count == 2


async def test_bad_settings_and_requests_name_the_field(channel):
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    cases = [
        (corpus_pb2.CreateCorpusRequest(corpus_id="bad", corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(k1=0))),
         "corpus.bm25.k1"),
        (corpus_pb2.CreateCorpusRequest(corpus_id="bad", corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(b=2))),
         "corpus.bm25.b"),
        (corpus_pb2.CreateCorpusRequest(corpus_id="bad", corpus=corpus_pb2.Corpus(
            bm25=corpus_pb2.Bm25Options(method="tfidf"))), "corpus.bm25.method"),
        (corpus_pb2.CreateCorpusRequest(corpus_id="Bad"), "corpus_id"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateCorpus(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in error_details(err.value)["violations"], field
    await _create(stub, "bounds", ["some text here", "more text there"])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/bounds", query="text", k=1001))
    assert "k" in error_details(err.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpus/x", query="text"))
    assert "corpus" in error_details(err.value)["violations"]


async def test_search_matches_bm25s_and_follows_appends(channel):
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    texts = generate(300, seed=7)
    await _create(stub, "wiki", texts[:200], k1=0.9, b=0.4)
    queries = ["composer born in Frostvale", "Ironbridge lighthouse founded", "mayor of Lowmere", "Clara Moreau"]
    for query in queries:
        found = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/wiki", query=query, k=10))
        expected = _bm25s_top(texts[:200], query, 10, 0.9, 0.4)
        assert [(p.index, p.score) for p in found.passages] == expected, query
        assert [p.text for p in found.passages] == [texts[i] for i, _ in expected]
    # Appending changes every idf: the next search sees the whole corpus, scored afresh.
    await stub.AppendDocuments(iter([_append("corpora/wiki", "c", texts[200:])]))
    for query in queries:
        found = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/wiki", query=query, k=10))
        assert [(p.index, p.score) for p in found.passages] == _bm25s_top(texts, query, 10, 0.9, 0.4), query


async def test_a_corpus_survives_a_restart(server_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'corpora.db'}"
    texts = generate(120, seed=3)
    first = await server_factory(database_url=url)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as chan:
        stub = corpus_pb2_grpc.CorpusServiceStub(chan)
        await _create(stub, "kept", texts)
        before = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/kept", query="poet", k=5))
    await first.stop(grace=0)
    second = await server_factory(database_url=url)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as chan:
        stub = corpus_pb2_grpc.CorpusServiceStub(chan)
        corpus = await stub.GetCorpus(corpus_pb2.GetCorpusRequest(name="corpora/kept"))
        assert corpus.document_count == 120
        after = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/kept", query="poet", k=5))
    assert list(after.passages) == list(before.passages) and len(after.passages) == 5


async def test_corpora_on_postgresql(server_factory, postgres_url, mock_lm):
    texts = generate(150, seed=11)
    corpus_id = f"pg-{uuid.uuid4().hex[:12]}"
    embed = mock_model_config(mock_lm.base_url, "mock-embed", model="mock-embedding", kind="embedding")
    running = await server_factory(database_url=postgres_url,
                                   models=(mock_model_config(mock_lm.base_url), embed, BUILTIN_DUMMY))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        stub = corpus_pb2_grpc.CorpusServiceStub(chan)
        await _create(stub, corpus_id, texts, k1=0.9, b=0.4)
        again = await stub.AppendDocuments(iter([_append(f"corpora/{corpus_id}", "a", texts[:10])]))
        assert again.replayed and again.document_count == 150
        found = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus=f"corpora/{corpus_id}",
                                                                       query="botanist Northwick", k=10))
        assert [(p.index, p.score) for p in found.passages] == _bm25s_top(texts, "botanist Northwick", 10, 0.9, 0.4)
        # Vectors are stored as bytea on PostgreSQL: a dense search reads them back.
        await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id=f"{corpus_id}-d", corpus=corpus_pb2.Corpus(
            embedding_model="mock-embed")))
        await stub.AppendDocuments(iter([_append(f"corpora/{corpus_id}-d", "a", texts[:40])]))
        dense = await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(
            corpus=f"corpora/{corpus_id}-d", query=texts[7], k=1, mode=corpus_pb2.RETRIEVAL_MODE_DENSE))
        assert [p.index for p in dense.passages] == [7] and dense.passages[0].score == pytest.approx(1.0, abs=1e-5)
        await stub.DeleteCorpus(corpus_pb2.DeleteCorpusRequest(name=f"corpora/{corpus_id}"))
