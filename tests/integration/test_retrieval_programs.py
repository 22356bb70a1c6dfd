"""Programs that retrieve, loop and compute values, through gRPC against a real server: the RAG and
multi-hop tutorial programs, retrieval events and trace steps, caller and ColBERTv2 retrievers, and
specs rejected at create time."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import grpc
import pytest
from dspy_grpc.v1 import (
    corpus_pb2,
    corpus_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.retrieval.programs import cot, multihop, rag
from tests.retrieval.wiki import generate

pytestmark = pytest.mark.asyncio(loop_scope="session")

MOCK = {"model": "mock"}
TEXTS = generate(240, seed=5)


def chat(**fields) -> str:
    parts = [f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}\n\n"
             for name, value in fields.items()]
    return "".join(parts) + "[[ ## completed ## ]]"


async def _corpus(channel, corpus_id: str, texts=TEXTS) -> None:
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    try:
        await stub.CreateCorpus(corpus_pb2.CreateCorpusRequest(
            corpus_id=corpus_id, corpus=corpus_pb2.Corpus(bm25=corpus_pb2.Bm25Options(k1=0.9, b=0.4))))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        return
    request = json_format.ParseDict({"corpus": f"corpora/{corpus_id}", "request_id": "load",
                                     "documents": [{"text": t} for t in texts]}, corpus_pb2.AppendDocumentsRequest())
    await stub.AppendDocuments(iter([request]))


async def _search(channel, corpus_id: str, query: str, k: int) -> list:
    stub = corpus_pb2_grpc.CorpusServiceStub(channel)
    return list((await stub.SearchCorpus(corpus_pb2.SearchCorpusRequest(corpus=f"corpora/{corpus_id}", query=query,
                                                                       k=k))).passages)


async def _create(channel, program_id: str, module: dict) -> None:
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict({"programId": program_id, "program": {"module": module}},
                                                       program_pb2.CreateProgramRequest()))


async def _predict(channel, target: dict, inputs: dict, **extra):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({**target, "inputs": inputs, "lm": MOCK, **extra}, inference_pb2.PredictRequest())
    return (await stub.Predict(request, timeout=30)).prediction


async def test_a_retrieve_module_returns_the_corpus_passages(channel):
    await _corpus(channel, "wiki-a")
    prediction = await _predict(channel, {"module": {"retrieve": {"corpus": "corpora/wiki-a", "k": 4}}},
                                {"query": "painter born in Glenhollow"}, includeTrace=True)
    outputs = json_format.MessageToDict(prediction.outputs)
    expected = await _search(channel, "wiki-a", "painter born in Glenhollow", 4)
    assert outputs["passages"] == [p.text for p in expected]
    # (google.protobuf.Struct keeps no key order: compared as a mapping here; the prompt test checks the order.)
    assert outputs["scored_passages"] == {p.text: pytest.approx(p.score) for p in expected}
    assert [h["id"] for h in outputs["hits"]] == [p.id for p in expected]
    (step,) = prediction.trace
    assert (step.predictor, step.adapter, step.model) == ("self", "retrieve", "corpora/wiki-a")
    assert json_format.MessageToDict(step.inputs) == {"query": "painter born in Glenhollow", "k": 4}


async def test_the_rag_program_feeds_passages_to_its_predictor_and_streams_the_retrieval(channel, mock_lm):
    await _corpus(channel, "wiki-a")
    await _create(channel, "rag", rag("corpora/wiki-a", k=3))
    question = "Which river flows through Ravenholm?"
    expected = await _search(channel, "wiki-a", question, 3)
    mock_lm.enqueue(chat(reasoning="From the passages.", response="The Ravenholm river."))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({"program": "programs/rag", "inputs": {"question": question}, "lm": MOCK},
                                    inference_pb2.StreamPredictRequest())
    events = [event async for event in stub.StreamPredict(request, timeout=30)]
    retrievals = [event.retrieval for event in events if event.WhichOneof("event") == "retrieval"]
    assert [(r.module, r.query, r.k, r.source) for r in retrievals] == [("search", question, 3, "corpora/wiki-a")]
    assert [p.text for p in retrievals[0].passages] == [p.text for p in expected]
    final = events[-1].prediction
    assert json_format.MessageToDict(final.outputs)["response"] == "The Ravenholm river."
    user = mock_lm.completion_requests[-1].last_user_text
    numbered = "\n".join(f"[{i + 1}] «{p.text}»" for i, p in enumerate(expected))
    assert f"[[ ## context ## ]]\n{numbered}\n\n[[ ## question ## ]]\n{question}" in user


async def test_the_multihop_program_loops_accumulates_and_dedupes(channel, mock_lm):
    await _corpus(channel, "wiki-a")
    await _create(channel, "hop", multihop("corpora/wiki-a", num_docs=3, num_hops=2))
    mock_lm.enqueue(
        chat(reasoning="r", query="Aldermoor museum"),
        chat(reasoning="r", new_notes=["note one"], titles=["A", "B"]),
        chat(reasoning="r", query="Frostvale poet"),
        chat(reasoning="r", new_notes=["note two"], titles=["B", "C"]),
    )
    prediction = await _predict(channel, {"program": "programs/hop"}, {"claim": "Some claim."}, includeTrace=True)
    assert json_format.MessageToDict(prediction.outputs) == {"notes": ["note one", "note two"],
                                                             "titles": ["A", "B", "C"]}
    assert [(s.predictor, s.adapter) for s in prediction.trace] == [
        ("generate_query.predict", "chat"), ("search", "retrieve"), ("append_notes.predict", "chat"),
    ] * 2
    requests = mock_lm.completion_requests[-4:]
    assert "[[ ## notes ## ]]\nN/A" in requests[0].last_user_text
    assert "[[ ## notes ## ]]\n«note one»" in requests[2].last_user_text
    scored = {p.text: p.score for p in await _search(channel, "wiki-a", "Frostvale poet", 3)}
    assert f"[[ ## context ## ]]\n{json.dumps(scored, ensure_ascii=False)}" in requests[3].last_user_text
    # DSPy's named_predictors(): each predictor inside the loop once, under its attribute name.
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    exported = await programs.ExportDspyProgram(program_pb2.ExportDspyProgramRequest(name="programs/hop"))
    state = json.loads(exported.dspy_json)
    assert [key for key in state if key != "metadata"] == ["generate_query.predict", "append_notes.predict"]


async def test_a_loop_stops_when_its_condition_holds_and_value_steps_compute(channel, mock_lm):
    body = {
        "steps": [
            {"name": "step", "module": {"predict": {"predictor": {"signature": {"text": "topic, done_so_far -> item, done: bool"}}}},
             "inputs": {"topic": "inputs.topic", "done_so_far": "inputs.items"}},
        ],
        "outputs": {"item": "step.item", "done": "step.done"},
    }
    module = {"graph": {
        "steps": [
            {"name": "gather", "module": {"loop": {"body": body, "maxIters": 5, "stopWhen": "done", "variables": [
                {"name": "items", "update": "item", "accumulate": "LOOP_ACCUMULATE_APPEND_UNIQUE"},
                {"name": "last", "update": "item", "accumulate": "LOOP_ACCUMULATE_LAST"},
            ]}}, "inputs": {"topic": "inputs.topic"}},
            {"name": "joined", "module": {"value": {"operation": "VALUE_OPERATION_JOIN", "inputs": ["items"],
                                                    "separator": ", "}}, "inputs": {"items": "gather.items"}},
            {"name": "subject", "module": {"value": {"operation": "VALUE_OPERATION_TEMPLATE",
                                                     "template": "Subject: {topic}\n\n{body} {{ok}} {items}"}},
             "inputs": {"topic": "inputs.topic", "body": "joined.value", "items": "gather.items"}},
            {"name": "greeting", "module": {"value": {"operation": "VALUE_OPERATION_CONSTANT",
                                                      "constantJson": "{\"n\": 1, \"tags\": [\"x\"]}"}}},
            {"name": "summary", "module": {"value": {"operation": "VALUE_OPERATION_OBJECT",
                                                     "inputs": ["last", "greeting"]}},
             "inputs": {"last": "gather.last", "greeting": "greeting.value"}},
        ],
        "outputs": {"subject": "subject.value", "summary": "summary.value", "items": "gather.items"},
    }}
    mock_lm.enqueue(chat(item="apples", done="false"), chat(item="pears", done="false"),
                    chat(item="apples", done="true"))
    prediction = await _predict(channel, {"module": module}, {"topic": "fruit"}, includeTrace=True)
    assert [json_format.MessageToDict(s.inputs)["done_so_far"] for s in prediction.trace] == [
        [], ["apples"], ["apples", "pears"]]  # stopped after the third iteration of at most five
    assert json_format.MessageToDict(prediction.outputs) == {
        "items": ["apples", "pears"],
        "subject": "Subject: fruit\n\napples, pears {ok} ['apples', 'pears']",
        "summary": {"last": "apples", "greeting": {"n": 1, "tags": ["x"]}},
    }


@pytest.mark.parametrize(
    ("module", "field", "words"),
    [
        (multihop("corpora/wiki-a", num_hops=0), "program.module.graph.steps[0].module.loop.max_iters", "bound"),
        (multihop("corpora/no-such-corpus"),
         "program.module.graph.steps[0].module.loop.body.steps[1].module.retrieve.corpus", "no corpus"),
        ({"graph": {"steps": [
            {"name": "a", "module": {"value": {"operation": "VALUE_OPERATION_CONCAT", "inputs": ["x"]}},
             "inputs": {"x": "b.value"}},
            {"name": "b", "module": {"value": {"operation": "VALUE_OPERATION_CONCAT", "inputs": ["x"]}},
             "inputs": {"x": "a.value"}}], "outputs": {"v": "b.value"}}},
         "program.module.graph.steps[0].inputs", "cycle"),
        ({"value": {"operation": "VALUE_OPERATION_TEMPLATE", "template": "{a.b}"}},
         "program.module.value.template", "plain"),
        ({"value": {"operation": "VALUE_OPERATION_JOIN", "inputs": ["a", "b"]}}, "program.module.value.inputs",
         "exactly one"),
        ({"retrieve": {"corpus": "corpora/wiki-a", "k": 1001}}, "program.module.retrieve.k", "between"),
        ({"retrieve": {"colbertv2Url": "http://127.0.0.1:9/search"}}, "program.module.retrieve.colbertv2_url",
         "colbertv2_urls"),
        ({"loop": {"body": {"steps": [{"name": "s", "module": cot("x -> y"), "inputs": {"x": "inputs.x"}}],
                            "outputs": {"y": "s.y"}}, "maxIters": 2, "variables": [{"name": "v", "update": "z"}]}},
         "program.module.loop.variables[0].update", "not an output"),
        ({"graph": {"steps": [
            {"name": "search", "module": {"retrieve": {"corpus": "corpora/wiki-a"}}, "inputs": {"query": "inputs.q"}},
            {"name": "hops", "module": {"loop": {"body": {"steps": [
                {"name": "search", "module": cot("x -> y"), "inputs": {"x": "inputs.x"}}], "outputs": {"y": "search.y"}},
                "maxIters": 2, "variables": [{"name": "ys", "update": "y"}]}}, "inputs": {"x": "inputs.q"}}],
            "outputs": {"ys": "hops.ys"}}},
         "program.module.graph.steps[1].module.loop.body.steps[0].name", "unique"),
    ],
)
async def test_bad_specs_fail_when_the_program_is_created(channel, module, field, words):
    await _corpus(channel, "wiki-a")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _create(channel, "bad-" + uuid.uuid4().hex[:8], module)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = error_details(caught.value)["violations"]
    assert field in violations and words in violations[field], violations


async def test_the_callers_search_runs_through_run(channel, mock_lm):
    module = {"graph": {"steps": [
        {"name": "search", "module": {"retrieve": {"callerTool": "my_search", "k": 2}}, "inputs": {"query": "inputs.q"}},
        {"name": "answer", "module": {"predict": {"predictor": {"signature": {"text": "context, q -> a"}}}},
         "inputs": {"context": "search.passages", "q": "inputs.q"}}],
        "outputs": {"a": "answer.a", "hits": "search.hits"}}}
    mock_lm.enqueue(chat(a="42"))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    first = json_format.ParseDict({"start": {"request": {"module": module, "inputs": {"q": "life?"}, "lm": MOCK},
                                             "tools": ["my_search"]}}, inference_pb2.RunRequest())
    queue: list = [first]
    call = stub.Run(timeout=30)
    await call.write(first)
    calls, final = [], None
    async for event in call:
        kind = event.WhichOneof("event")
        if kind == "tool_call":
            calls.append((event.tool_call.tool, json_format.MessageToDict(event.tool_call.args)))
            answer = [{"text": "Life is 42.", "id": "h2g2", "score": 9.5, "metadata": {"src": "book"}}, "Plain text.",
                      "dropped: beyond k"]
            await call.write(json_format.ParseDict(
                {"toolResult": {"callId": event.tool_call.call_id, "output": answer}}, inference_pb2.RunRequest()))
        elif kind == "prediction":
            final = event.prediction
    assert queue and calls == [("my_search", {"query": "life?", "k": 2})]
    outputs = json_format.MessageToDict(final.outputs)
    assert outputs["a"] == "42"
    assert outputs["hits"] == [{"id": "h2g2", "text": "Life is 42.", "score": 9.5, "metadata": {"src": "book"}},
                               {"id": "1", "text": "Plain text.", "score": 0.0, "metadata": {}}]
    assert "[1] «Life is 42.»\n[2] «Plain text.»" in mock_lm.completion_requests[-1].last_user_text


class _ColBERT(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        query = parse_qs(urlparse(self.path).query)
        k = int(query["k"][0])
        topk = [{"text": f"{query['query'][0]} passage {i}", "pid": 100 + i, "rank": i + 1, "score": 20.0 - i,
                 "prob": 0.1} for i in range(5)]
        body = json.dumps({"topk": topk[:k] if k < 3 else topk}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


async def test_a_colbertv2_server_in_dspys_http_shape(server_factory):
    http = ThreadingHTTPServer(("127.0.0.1", 0), _ColBERT)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http.server_address[1]}/api/search"
    try:
        running = await server_factory(retrieval_colbertv2_urls=(url,))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            await _create(chan, "colbert", {"retrieve": {"colbertv2Url": url, "k": 3}})
            prediction = await _predict(chan, {"program": "programs/colbert"}, {"query": "Paris"})
            outputs = json_format.MessageToDict(prediction.outputs)
            # k=3 but the server answered 5: the first k are kept, as dspy.ColBERTv2 does.
            assert outputs["passages"] == ["Paris passage 0", "Paris passage 1", "Paris passage 2"]
            assert outputs["hits"][1] == {"id": "101", "text": "Paris passage 1", "score": 19.0,
                                          "metadata": {"rank": 2, "prob": 0.1}}
    finally:
        http.shutdown()
        http.server_close()
