"""The RAG and multi-hop programs of DSPy's tutorials as module specs (JSON, as a client sends them),
for the tests, the README and the benchmark."""

from __future__ import annotations


def cot(signature: str, **extra) -> dict:
    return {"chainOfThought": {"predictor": {"signature": {"text": signature}, **extra}}}


def rag(corpus: str, k: int = 5) -> dict:
    """``RAG``: ``context = search(question, k)``; ``respond = ChainOfThought('context, question -> response')``."""

    return {"graph": {
        "steps": [
            {"name": "search", "module": {"retrieve": {"corpus": corpus, "k": k}}, "inputs": {"query": "inputs.question"}},
            {"name": "respond", "module": cot("context, question -> response"),
             "inputs": {"context": "search.passages", "question": "inputs.question"}},
        ],
        "outputs": {"reasoning": "respond.reasoning", "response": "respond.response"},
    }}


def multihop(corpus: str, num_docs: int = 10, num_hops: int = 4) -> dict:
    """The tutorial's ``Hop``: per hop, ``generate_query`` -> ``search(query, k=num_docs)`` ->
    ``append_notes``; notes and titles accumulate; titles come back deduplicated."""

    body = {
        "steps": [
            {"name": "generate_query", "module": cot("claim, notes -> query"),
             "inputs": {"claim": "inputs.claim", "notes": "inputs.notes"}},
            {"name": "search", "module": {"retrieve": {"corpus": corpus, "k": num_docs}},
             "inputs": {"query": "generate_query.query"}},
            {"name": "append_notes", "module": cot("claim, notes, context -> new_notes: list[str], titles: list[str]"),
             "inputs": {"claim": "inputs.claim", "notes": "inputs.notes", "context": "search.scored_passages"}},
        ],
        "outputs": {"new_notes": "append_notes.new_notes", "titles": "append_notes.titles"},
    }
    return {"graph": {
        "steps": [
            {"name": "hops", "module": {"loop": {
                "body": body, "maxIters": num_hops,
                "variables": [{"name": "notes", "update": "new_notes"}, {"name": "titles", "update": "titles"}],
            }}, "inputs": {"claim": "inputs.claim"}},
            {"name": "unique_titles", "module": {"value": {"operation": "VALUE_OPERATION_DEDUPE", "inputs": ["items"]}},
             "inputs": {"items": "hops.titles"}},
        ],
        "outputs": {"notes": "hops.notes", "titles": "unique_titles.value"},
    }}
