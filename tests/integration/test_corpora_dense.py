"""Dense and hybrid corpus search through the provider layer's embedding models, against DSPy's
``dspy.retrievers.Embeddings`` (and the RAG tutorial program built on it) with the same vectors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import bm25s
import dspy
import grpc
import numpy as np
import pytest
import pytest_asyncio
import Stemmer
from dspy.utils import DummyLM
from dspy_grpc.v1 import (
    corpus_pb2,
    corpus_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.mocklm.embeddings import hashed_embedding
from tests.retrieval.programs import rag
from tests.retrieval.wiki import generate

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEXTS = generate(250, seed=9)
QUERIES = ["composer born in Frostvale", "Ironbridge lighthouse founded by", "mayor of Lowmere"]


def embedder(texts: list[str]) -> np.ndarray:
    """What the mock's embedding model returns, as dspy.Embedder would hand it to DSPy."""

    return np.array([hashed_embedding(t) for t in texts], dtype=np.float32)


@pytest_asyncio.fixture(loop_scope="session")
async def channel(server_factory, mock_lm) -> AsyncIterator[grpc.aio.Channel]:
    embed = mock_model_config(mock_lm.base_url, "mock-embed", model="mock-embedding", kind="embedding")
    running = await server_factory(models=(mock_model_config(mock_lm.base_url), embed, BUILTIN_DUMMY))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        stub = corpus_pb2_grpc.CorpusServiceStub(chan)
        await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id="dense", corpus=corpus_pb2.Corpus(
            embedding_model="mock-embed", bm25=corpus_pb2.Bm25Options(k1=0.9, b=0.4))))
        request = json_format.ParseDict({"corpus": "corpora/dense", "request_id": "load",
                                         "documents": [{"text": t} for t in TEXTS]}, corpus_pb2.AppendDocumentsRequest())
        await stub.AppendDocuments(iter([request]))
        yield chan


async def _search(channel, query: str, k: int, mode: int) -> list:
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    return list((await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/dense", query=query, k=k,
                                                                       mode=mode))).passages)


async def test_appending_embeds_every_document_once(channel, mock_lm):
    batches = [r.json["input"] for r in mock_lm.embedding_requests if r.json["model"] == "mock-embedding"]
    assert [text for batch in batches for text in batch][-len(TEXTS):] == TEXTS
    assert all(len(batch) <= 200 for batch in batches)
    before = len(mock_lm.embedding_requests)
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    again = await stub.AppendDocuments(iter([json_format.ParseDict(
        {"corpus": "corpora/dense", "request_id": "load", "documents": [{"text": t} for t in TEXTS]},
        corpus_pb2.AppendDocumentsRequest())]))
    assert again.replayed and len(mock_lm.embedding_requests) == before  # a replay embeds nothing
    corpus = await stub.GetCorpus(corpus_pb2.GetCorpusRequest(name="corpora/dense"))
    assert corpus.embedding_model == "mock-embed" and corpus.document_count == len(TEXTS)


async def test_dense_search_matches_dspy_embeddings(channel):
    retriever = dspy.retrievers.Embeddings(corpus=TEXTS, embedder=embedder, k=5)
    for query in QUERIES:
        found = await _search(channel, query, 5, corpus_pb2.RETRIEVAL_MODE_DENSE)
        expected = retriever(query)
        assert [p.text for p in found] == expected.passages, query
        assert [p.index for p in found] == expected.indices


async def test_hybrid_search_fuses_the_two_rankings(channel):
    stemmer = Stemmer.Stemmer("english")
    bm25 = bm25s.BM25(k1=0.9, b=0.4)
    bm25.index(bm25s.tokenize(TEXTS, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    dense = dspy.retrievers.Embeddings(corpus=TEXTS, embedder=embedder, k=100)
    for query in QUERIES:
        lexical = [int(i) for i in bm25.retrieve(bm25s.tokenize(query, stopwords="en", stemmer=stemmer,
                                                                 show_progress=False), k=100, n_threads=1,
                                                 show_progress=False)[0][0]]
        semantic = dense(query).indices
        fused: dict[int, float] = {}
        for ranking in (lexical, semantic):
            for rank, doc in enumerate(ranking, start=1):
                fused[doc] = fused.get(doc, 0.0) + 1 / (60 + rank)
        best = sorted(fused, key=lambda d: (-fused[d], lexical.index(d) if d in lexical else 101,
                                            semantic.index(d) if d in semantic else 101))[:5]
        found = await _search(channel, query, 5, corpus_pb2.RETRIEVAL_MODE_HYBRID)
        assert [p.index for p in found] == best, query
        assert [p.score for p in found] == pytest.approx([fused[d] for d in best])


async def test_the_rag_tutorial_with_embeddings_matches_dspy(channel, mock_lm):
    question = "Who was the mayor of Lowmere?"
    search = dspy.retrievers.Embeddings(corpus=TEXTS, embedder=embedder, k=3)

    class RAG(dspy.Module):
        def __init__(self):
            self.respond = dspy.ChainOfThought("context, question -> response")

        def forward(self, question):
            context = search(question).passages
            return self.respond(context=context, question=question)

    lm = DummyLM([{"reasoning": "It is in the passages.", "response": "Someone."}])
    with dspy.context(lm=lm):
        RAG()(question=question)
    module = rag("corpora/dense", 3)
    module["graph"]["steps"][0]["module"]["retrieve"]["mode"] = "RETRIEVAL_MODE_DENSE"
    await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict(
        {"programId": "rag-dense", "program": {"module": module}}, program_pb2.CreateProgramRequest()))
    before = len(mock_lm.completion_requests)
    mock_lm.enqueue("[[ ## reasoning ## ]]\nIt is in the passages.\n\n[[ ## response ## ]]\nSomeone.\n\n"
                    "[[ ## completed ## ]]")
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    prediction = (await stub.Predict(json_format.ParseDict(
        {"program": "programs/rag-dense", "inputs": {"question": question}, "lm": {"model": "mock"}},
        inference_pb2.PredictRequest()), timeout=30)).prediction
    (request,) = mock_lm.completion_requests[before:]
    assert request.messages == lm.history[0]["messages"]
    usage = {u.model: u.calls for u in prediction.usage}
    assert usage == {"mock-model": 1, "mock-embedding": 1}  # the query embedding counts in the call usage


async def test_dense_needs_an_embedding_model(channel):
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id="chat", corpus=corpus_pb2.Corpus(
            embedding_model="mock")))
    assert "corpus.embedding_model" in error_details(err.value)["violations"]
    await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id="lexical"))
    await stub.AppendDocuments(iter([json_format.ParseDict(
        {"corpus": "corpora/lexical", "request_id": "r", "documents": [{"text": "a b c"}]},
        corpus_pb2.AppendDocumentsRequest())]))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus="corpora/lexical", query="a",
                                                               mode=corpus_pb2.RETRIEVAL_MODE_DENSE))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(err.value)["reason"] == "CORPUS_NOT_EMBEDDED"
    module = {"retrieve": {"corpus": "corpora/lexical", "mode": "RETRIEVAL_MODE_HYBRID"}}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict(
            {"programId": "bad-dense", "program": {"module": module}}, program_pb2.CreateProgramRequest()))
    assert "program.module.retrieve.mode" in error_details(err.value)["violations"]
