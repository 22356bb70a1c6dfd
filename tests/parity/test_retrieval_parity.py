"""The RAG and multi-hop tutorial programs against dspy==3.4.1: the same passages as bm25s over the
same generated corpus, byte-identical prompts at every hop, and the saved JSON loading both ways."""

from __future__ import annotations

import json

import bm25s
import dspy
import grpc
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

from tests.retrieval.programs import multihop, rag
from tests.retrieval.wiki import generate

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORPUS = generate(300, seed=2026)
STEMMER = Stemmer.Stemmer("english")
RETRIEVER = bm25s.BM25(k1=0.9, b=0.4)
RETRIEVER.index(bm25s.tokenize(CORPUS, stopwords="en", stemmer=STEMMER, show_progress=False), show_progress=False)


def search(query: str, k: int) -> dict[str, float]:
    """The multi-hop tutorial's search() over the same corpus."""

    tokens = bm25s.tokenize(query, stopwords="en", stemmer=STEMMER, show_progress=False)
    results, scores = RETRIEVER.retrieve(tokens, k=k, n_threads=1, show_progress=False)
    return {CORPUS[doc]: float(score) for doc, score in zip(results[0], scores[0])}


class Hop(dspy.Module):
    """DSPy's multi-hop tutorial program."""

    def __init__(self, num_docs: int = 10, num_hops: int = 4) -> None:
        self.num_docs, self.num_hops = num_docs, num_hops
        self.generate_query = dspy.ChainOfThought("claim, notes -> query")
        self.append_notes = dspy.ChainOfThought("claim, notes, context -> new_notes: list[str], titles: list[str]")

    def forward(self, claim: str) -> dspy.Prediction:
        notes: list[str] = []
        titles: list[str] = []
        for _ in range(self.num_hops):
            query = self.generate_query(claim=claim, notes=notes).query
            context = search(query, k=self.num_docs)
            prediction = self.append_notes(claim=claim, notes=notes, context=context)
            notes.extend(prediction.new_notes)
            titles.extend(prediction.titles)
        return dspy.Prediction(notes=notes, titles=list(set(titles)))


class RAG(dspy.Module):
    """DSPy's RAG tutorial program, with the BM25 search in place of its embeddings retriever."""

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.respond = dspy.ChainOfThought("context, question -> response")

    def forward(self, question: str) -> dspy.Prediction:
        context = list(search(question, k=self.k))
        return self.respond(context=context, question=question)


def chat(**fields) -> str:
    parts = [f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}\n\n"
             for name, value in fields.items()]
    return "".join(parts) + "[[ ## completed ## ]]"


@pytest_asyncio.fixture(loop_scope="session")
async def wiki(channel) -> str:
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    try:
        await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(
            corpus_id="parity-wiki", corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(k1=0.9, b=0.4))))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        return "corpora/parity-wiki"
    chunks = [CORPUS[i:i + 100] for i in range(0, len(CORPUS), 100)]
    messages = [json_format.ParseDict({"corpus": "corpora/parity-wiki" if i == 0 else "", "request_id": "load" if i == 0
                                       else "", "documents": [{"text": t} for t in chunk]},
                                      corpus_pb2.AppendDocumentsRequest()) for i, chunk in enumerate(chunks)]
    await stub.AppendDocuments(iter(messages))
    return "corpora/parity-wiki"


async def _run(channel, program: str, inputs: dict, **extra):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({"program": program, "inputs": inputs, "lm": {"model": "mock"}, **extra},
                                    inference_pb2.PredictRequest())
    return (await stub.Predict(request, timeout=60)).prediction


def _scripted_hops(claim: str, hops: int) -> list[dict]:
    queries = ["Frostvale composer", "Ironbridge lighthouse founded", "mayor of Lowmere", "Clara Moreau painter"]
    answers = []
    for hop in range(hops):
        answers.append({"reasoning": f"Hop {hop} for: {claim}", "query": queries[hop % len(queries)]})
        answers.append({"reasoning": f"Notes {hop}.", "new_notes": [f"fact {hop}a", f"fact {hop}b"],
                        "titles": [f"Title {hop}", f"Title {hop + 1}"]})
    return answers


async def test_multihop_prompts_and_passages_match_dspy_at_every_hop(channel, wiki, mock_lm):
    claim = "A composer born in Frostvale studied at a lighthouse founded by a painter."
    hops, docs = 3, 5
    script = _scripted_hops(claim, hops)
    lm = DummyLM(script)
    with dspy.context(lm=lm):
        expected = Hop(num_docs=docs, num_hops=hops)(claim=claim)
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict(
        {"programId": "parity-hop", "program": {"module": multihop(wiki, num_docs=docs, num_hops=hops)}},
        program_pb2.CreateProgramRequest()))
    before = len(mock_lm.completion_requests)
    mock_lm.enqueue(*[chat(**answer) for answer in script])
    prediction = await _run(channel, "programs/parity-hop", {"claim": claim}, includeTrace=True)
    ours = [request.messages for request in mock_lm.completion_requests[before:]]
    theirs = [entry["messages"] for entry in lm.history]
    assert len(ours) == len(theirs) == 2 * hops
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert mine == reference, f"LM call {index} differs"
    outputs = json_format.MessageToDict(prediction.outputs)
    assert outputs["notes"] == expected.notes
    # DSPy's list(set(titles)) has no fixed order; ours keeps first occurrences in order.
    assert sorted(outputs["titles"]) == sorted(expected.titles)
    assert outputs["titles"] == list(dict.fromkeys(t for answer in script[1::2] for t in answer["titles"]))
    # Each hop's retrieval is bm25s's result for the query the LM wrote.
    retrievals = [step for step in prediction.trace if step.adapter == "retrieve"]
    for hop, step in enumerate(retrievals):
        query = script[2 * hop]["query"]
        assert json_format.MessageToDict(step.inputs)["query"] == query
        assert json_format.MessageToDict(step.outputs)["passages"] == list(search(query, docs))


async def test_rag_prompt_matches_dspy(channel, wiki, mock_lm):
    question = "Who founded the Aldermoor observatory?"
    script = [{"reasoning": "The passage names the founder.", "response": "Someone."}]
    lm = DummyLM(script)
    with dspy.context(lm=lm):
        expected = RAG(k=4)(question=question)
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict({"programId": "parity-rag", "program": {"module": rag(wiki, 4)}},
                                                       program_pb2.CreateProgramRequest()))
    before = len(mock_lm.completion_requests)
    mock_lm.enqueue(chat(**script[0]))
    prediction = await _run(channel, "programs/parity-rag", {"question": question})
    (request,) = mock_lm.completion_requests[before:]
    assert request.messages == lm.history[0]["messages"]
    assert json_format.MessageToDict(prediction.outputs)["response"] == expected.response


async def test_the_multihop_programs_saved_json_loads_both_ways(channel, wiki, tmp_path):
    program = Hop()
    program.generate_query.predict.signature = program.generate_query.predict.signature.with_instructions(
        "Write one search query that finds a missing page.")
    program.append_notes.predict.demos = [dspy.Example(
        claim="c", notes=["n"], context={"T | text": 1.5}, reasoning="r", new_notes=["m"], titles=["T"],
        augmented=True)]
    path = tmp_path / "hop.json"
    program.save(str(path))
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    structure = json_format.ParseDict(multihop(wiki), program_pb2.Program().module)
    await programs.ImportDspyProgram(program_pb2.ImportDspyProgramRequest(
        name="programs/parity-hop-import", dspy_json=path.read_text(), module=structure))
    exported = await programs.ExportDspyProgram(program_pb2.ExportDspyProgramRequest(
        name="programs/parity-hop-import"))
    assert list(exported.predictors) == [name for name, _ in Hop().named_predictors()]
    saved, again = json.loads(path.read_text()), json.loads(exported.dspy_json)
    for name in exported.predictors:
        assert again[name]["signature"] == saved[name]["signature"], name
        assert again[name]["demos"] == saved[name]["demos"], name
    back = tmp_path / "back.json"
    back.write_text(exported.dspy_json)
    loaded = Hop()
    loaded.load(str(back))
    assert loaded.generate_query.predict.signature.instructions == "Write one search query that finds a missing page."
    assert loaded.append_notes.predict.demos[0]["context"] == {"T | text": 1.5}
