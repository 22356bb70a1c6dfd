"""The Python client's Composite: programs written like a dspy.Module (attributes + forward()) become
graph programs with retrieve, loop and value steps, and run with DSPy's prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dspy
import pytest
import pytest_asyncio
from dspy.utils import DummyLM
from google.protobuf import json_format

import dspy_grpc as dg
from dspy_grpc import AsyncClient
from tests.parity.test_retrieval_parity import Hop as DspyHop
from tests.parity.test_retrieval_parity import _scripted_hops, chat, search, wiki  # noqa: F401  (fixture)
from tests.retrieval.programs import multihop

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Hop(dg.Composite):
    def __init__(self, corpus: str, num_docs: int = 10, num_hops: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_docs, self.num_hops = num_docs, num_hops
        self.generate_query = dg.ChainOfThought("claim, notes -> query")
        self.search = dg.Retrieve(corpus=corpus, k=num_docs)
        self.append_notes = dg.ChainOfThought("claim, notes, context -> new_notes: list[str], titles: list[str]")

    def forward(self, claim):
        for hop in self.loop(self.num_hops, notes=[], titles=[]):
            query = self.generate_query(claim=claim, notes=hop.notes).query
            context = self.search(query).scored_passages
            prediction = self.append_notes(claim=claim, notes=hop.notes, context=context)
            hop.notes.extend(prediction.new_notes)
            hop.titles.extend(prediction.titles)
        return dict(notes=hop.notes, titles=dg.dedupe(hop.titles))


class Email(dg.Composite):
    """Computed values: an f-string, a join and an assembled object around one predictor."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.write = dg.Predict("topic, points: list[str] -> subject, body")

    def forward(self, topic, points):
        draft = self.write(topic=topic, points=points)
        text = dg.template("Subject: {subject}\n\n{body}", subject=draft.subject, body=draft.body)
        return dict(email=text, outline=dg.join("; ", points), meta=dg.obj(topic=topic, n=dg.constant(2)))


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=30) as c:
        yield c


async def test_the_recorded_spec_is_the_multihop_program():
    spec = Hop("corpora/w", num_docs=3, num_hops=2).module_spec()
    graph = spec.graph
    assert [step.name for step in graph.steps] == ["loop_1", "value_2"]
    loop = graph.steps[0].module.loop
    assert (loop.max_iters, dict(graph.steps[0].inputs)) == (2, {"claim": "inputs.claim"})
    assert [(v.name, v.update, v.initial_json) for v in loop.variables] == [
        ("notes", "notes_update", "[]"), ("titles", "titles_update", "[]")]
    reference = json_format.ParseDict(multihop("corpora/w", 3, 2), type(spec)()).graph.steps[0].module.loop.body
    assert [(s.name, s.module, dict(s.inputs)) for s in loop.body.steps] == [
        (s.name, s.module, dict(s.inputs)) for s in reference.steps]
    assert dict(graph.outputs) == {"notes": "loop_1.notes", "titles": "value_2.value"}


async def test_a_composite_hop_runs_with_dspys_prompts(client, wiki, mock_lm):
    claim = "A composer from Frostvale studied at a lighthouse in Ironbridge."
    script = _scripted_hops(claim, 2)
    lm = DummyLM(script)
    with dspy.context(lm=lm):
        expected = DspyHop(num_docs=4, num_hops=2)(claim=claim)
    hop = Hop(wiki, num_docs=4, num_hops=2, client=client, lm="mock")
    before = len(mock_lm.completion_requests)
    mock_lm.enqueue(*[chat(**answer) for answer in script])
    prediction = await hop.acall(claim=claim)
    assert [r.messages for r in mock_lm.completion_requests[before:]] == [e["messages"] for e in lm.history]
    assert prediction.notes == expected.notes and sorted(prediction.titles) == sorted(expected.titles)
    stored = await client.create_program("hop-py", hop)
    assert stored.name == "programs/hop-py"


async def test_streaming_a_composite_shows_each_retrieval(client, wiki, mock_lm):
    hop = Hop(wiki, num_docs=2, num_hops=1, client=client, lm="mock")
    mock_lm.enqueue(chat(reasoning="r", query="Frostvale composer"),
                    chat(reasoning="r", new_notes=["n"], titles=["T"]))
    events = [event async for event in hop.astream(claim="Stream a hop over Frostvale.")]
    (retrieval,) = [e for e in events if isinstance(e, dg.RetrievalEvent)]
    assert (retrieval.module, retrieval.query, retrieval.k, retrieval.source) == ("search", "Frostvale composer", 2, wiki)
    assert [p["text"] for p in retrieval.passages] == list(search("Frostvale composer", 2))
    assert isinstance(events[-1], dg.Prediction) and events[-1].titles == ["T"]


async def test_value_helpers_compute_like_forward_code(client, mock_lm):
    email = Email(client=client, lm="mock")
    mock_lm.enqueue(chat(subject="Hello", body="Dear all."))
    prediction = await email.acall(topic="news", points=["a", "b"])
    assert prediction.email == "Subject: Hello\n\nDear all."
    assert prediction.outline == "a; b"
    assert prediction.meta == {"topic": "news", "n": 2}


async def test_a_callers_search_runs_in_this_process(client, mock_lm):
    seen = []

    def my_search(query: str, k: int) -> list:
        """Search my own store."""
        seen.append((query, k))
        return [{"text": f"About {query}.", "id": "x1", "score": 1.0}]

    class Rag(dg.Composite):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.search = dg.Retrieve(caller_tool="my_search", k=2)
            self.respond = dg.ChainOfThought("context, question -> response")

        def forward(self, question):
            context = self.search(question).passages
            return dict(response=self.respond(context=context, question=question).response)

    rag = Rag(client=client, lm="mock", tools=[my_search])
    mock_lm.enqueue(chat(reasoning="r", response="Found it."))
    prediction = await rag.acall(question="owls")
    assert prediction.response == "Found it." and seen == [("owls", 2)]
    assert "[[ ## context ## ]]\n«About owls.»" in mock_lm.completion_requests[-1].last_user_text


async def test_misuse_is_reported_while_building():
    class Twice(dg.Composite):
        def __init__(self) -> None:
            super().__init__()
            self.p = dg.Predict("q -> a")

        def forward(self, q):
            first = self.p(q=q).a
            return dict(a=self.p(q=first).a)

    with pytest.raises(ValueError, match="call each sub-module once"):
        Twice().module_spec()

    class Branchy(dg.Composite):
        def __init__(self) -> None:
            super().__init__()
            self.p = dg.Predict("q -> a, done: bool")

        def forward(self, q):
            if self.p(q=q).done:
                return dict(a=q)
            return dict(a=q)

    with pytest.raises(TypeError, match="stop_when"):
        Branchy().module_spec()

    class Breaks(dg.Composite):
        def __init__(self) -> None:
            super().__init__()
            self.p = dg.Predict("q, seen -> a")

        def forward(self, q):
            for hop in self.loop(3, seen=[]):
                hop.seen.extend(self.p(q=q, seen=hop.seen).a)
                break
            return dict(seen=hop.seen)

    with pytest.raises(ValueError, match="break"):
        Breaks().module_spec()
