"""Benchmark: BM25 corpora and a multi-hop program.

    make bench-retrieve        # or: .venv/bin/python -m bench.retrieve --documents 100000 --queries 1000

Starts the mock LM (``python -m tests.mocklm``, with ``--latency-ms`` per completion) and the
dspy-grpc server (SQLite in a temporary folder, LM cache off) as subprocesses, then measures:

* loading: ``--documents`` generated "title | abstract" documents (the shape of DSPy's multi-hop
  tutorial corpus) appended by AppendDocuments streams of 10,000 (tokenized and stored on append);
* the index: the first search builds the BM25 index from the stored tokens (time), and the server's
  resident memory before and after;
* searches: ``--queries`` top-10 SearchCorpus calls one at a time (p50/p99 latency over gRPC) and
  with 16 in flight (queries/s); the same queries straight on an in-process bm25s index built as the
  tutorial builds it (its build time and p50/p99), for comparison;
* the multi-hop tutorial program (4 hops, 10 passages, 8 LM calls per run) over the corpus: the
  end-to-end time of a run vs the LM time it waits for (8 x the mock's latency, measured by timing
  the mock directly), so the difference is what retrieval, the loop and the server add.

Everything runs on this machine: client, server and mock share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import grpc
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc, inference_pb2, inference_pb2_grpc, program_pb2
from dspy_grpc.v1 import program_pb2_grpc
from google.protobuf import json_format

from bench.lm_gateway import _start, percentile
from bench.processes import server_rss_mib
from tests.retrieval.programs import multihop
from tests.retrieval.wiki import generate

CONFIG = """
[cache]
enabled = false

[database]
url = "sqlite+aiosqlite:///{db}"

[[models]]
alias = "mock"
provider = "openai"
model = "mock-model"
base_url = "{base_url}"
max_retries = 0
"""

QUERIES = ["composer born in Frostvale", "Ironbridge lighthouse founded", "mayor of Lowmere in 1900",
           "Clara Moreau painter", "river coast population", "botanist studied at the museum",
           "Oakheart opera house towers", "Nils Quist footballer"]


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.2f} ms"


async def load(stub, corpus: str, texts: list[str], batch: int = 10_000) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        request = corpus_pb2.AppendDocumentsRequest(corpus=corpus, request_id=f"load-{start}")
        request.documents.extend(corpus_pb2.Document(text=t) for t in texts[start:start + batch])
        await stub.AppendDocuments(iter([request]), timeout=600)
    return time.perf_counter() - started


async def search_bench(stub, corpus: str, queries: list[str], concurrency: int) -> tuple[list[float], float]:
    latencies = []
    for query in queries:
        started = time.perf_counter()
        await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus=corpus, query=query, k=10))
        latencies.append(time.perf_counter() - started)
    pending = list(queries)

    async def worker() -> None:
        while pending:
            query = pending.pop()
            await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus=corpus, query=query, k=10))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, len(queries) / (time.perf_counter() - started)


def bm25s_direct(texts: list[str], queries: list[str]) -> tuple[float, list[float]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    build = time.perf_counter() - started
    latencies = []
    for query in queries:
        started = time.perf_counter()
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever.retrieve(tokens, k=10, n_threads=1, show_progress=False)
        latencies.append(time.perf_counter() - started)
    return build, latencies


async def lm_time(base_url: str, n: int = 20) -> float:
    """The mock's own time for one completion (what a predictor waits for)."""

    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            async with session.post(f"{base_url}/chat/completions", json=body) as response:
                await response.read()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def multihop_bench(channel, corpus: str, runs: int) -> list[float]:
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict(
        {"program_id": "bench-hop", "program": {"module": multihop(corpus, num_docs=10, num_hops=4)}},
        program_pb2.CreateProgramRequest()))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    times = []
    for index in range(runs):
        request = json_format.ParseDict({"program": "programs/bench-hop", "lm": {"model": "mock"},
                                         "inputs": {"claim": f"Claim {index}: {QUERIES[index % len(QUERIES)]}."}},
                                        inference_pb2.PredictRequest())
        started = time.perf_counter()
        await stub.Predict(request, timeout=120)
        times.append(time.perf_counter() - started)
    return times


async def main(args: argparse.Namespace) -> None:
    texts = generate(args.documents, seed=1)
    queries = [f"{QUERIES[i % len(QUERIES)]} {i % 97}" for i in range(args.queries)]
    mock, base_url = await _start([sys.executable, "-m", "tests.mocklm", "--port", "0", "--latency-ms",
                                   str(args.latency_ms)], "MOCKLM READY")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(CONFIG.format(base_url=base_url, db=Path(folder) / "bench.db"))
        server, address = await _start(
            [sys.executable, "-m", "dspy_grpc_server", "serve", "--config", str(config), "--port", "0",
             "--log-level", "WARNING"], "dspy-grpc listening on")
        try:
            async with grpc.aio.insecure_channel(address, options=[
                    ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]) as ch:
                stub = corpus_pb2_grpc.CorpusServiceStub(ch)
                corpus_id = f"bench-{uuid.uuid4().hex[:8]}"
                await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(corpus_id=corpus_id, corpus=corpus_pb2.Corpus(
                    bm25=corpus_pb2.Bm25Options(k1=0.9, b=0.4))))
                corpus = f"corpora/{corpus_id}"
                load_s = await load(stub, corpus, texts)
                before = server_rss_mib(server.pid)
                started = time.perf_counter()
                await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus=corpus, query="warm up", k=10))
                build_s = time.perf_counter() - started
                after = server_rss_mib(server.pid)
                latencies, qps = await search_bench(stub, corpus, queries, args.concurrency)
                hop = await multihop_bench(ch, corpus, args.runs)
                lm = await lm_time(base_url)
        finally:
            for process in (server, mock):
                process.terminate()
                await process.wait()
    direct_build, direct = bm25s_direct(texts, queries)
    print(f"corpus: {args.documents:,} generated documents; {args.queries} top-10 queries; this machine "
          f"({os.cpu_count()} cores) runs client, server and mock")
    print(f"load (AppendDocuments, tokenized and stored): {load_s:.1f} s ({args.documents / load_s:,.0f} docs/s)")
    print(f"index build on first search (from stored tokens): {build_s:.2f} s; server RSS {before:,.0f} MB -> "
          f"{after:,.0f} MB (+{after - before:,.0f} MB)")
    print(f"SearchCorpus top-10 over gRPC: p50 {ms(latencies, 0.5)}, p99 {ms(latencies, 0.99)}; "
          f"{qps:,.0f} queries/s at {args.concurrency} in flight")
    print(f"bm25s in-process (the tutorial's code): build {direct_build:.2f} s (tokenizing included); "
          f"query p50 {ms(direct, 0.5)}, p99 {ms(direct, 0.99)}")
    waited = 8 * lm
    p50 = statistics.median(hop)
    print(f"multi-hop (4 hops x [generate_query, search k=10, append_notes]; mock {args.latency_ms:g} ms/completion, "
          f"measured {lm * 1000:.1f} ms): run p50 {p50 * 1000:.0f} ms, p99 {percentile(hop, 0.99) * 1000:.0f} ms vs "
          f"{waited * 1000:.0f} ms of LM time -> overhead {(p50 - waited) * 1000:.0f} ms per run "
          f"({(p50 - waited) / 4 * 1000:.1f} ms per hop)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=20, help="multi-hop runs")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="latency the mock adds to every completion")
    asyncio.run(main(parser.parse_args()))
