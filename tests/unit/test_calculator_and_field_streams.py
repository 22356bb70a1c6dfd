"""The calculator tool's evaluator and the per-field streaming parsers (pure functions)."""

from __future__ import annotations

import json

import pytest

from dspy_grpc_server.modules.calculator import CalculatorError, evaluate
from dspy_grpc_server.modules.streaming import ChatFieldStream, JSONFieldStream


@pytest.mark.parametrize(("expression", "value"), [
    ("(2 + 3) * 4", 20), ("2 ** 10", 1024), ("7 // 2 + 7 % 2", 4), ("-3 + +1", -2), ("1 / 4", 0.25),
    ("sqrt(16) + abs(-2) + max(1, 5, 3)", 11.0), ("round(pi, 2)", 3.14),
])
def test_arithmetic(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(("expression", "words"), [
    ("__import__('os').system('true')", "only these functions"),
    ("open('/etc/passwd')", "only these functions"),
    ("(1).__class__", "not allowed"),
    ("x + 1", "unknown name"),
    ("'a' * 3", "not a number"),
    ("[1, 2]", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("9 ** 9 ** 9", "exponents are limited"),
    ("2 ** 5000", "exponents are limited"),
    ("(2 ** 999) ** 5", "too large"),
    ("10.0 ** 400", "too large"),
    ("1 / 0", "division by zero"),
    ("1 +", "not an arithmetic expression"),
    ("1" + " + 1" * 300, "longer than"),
    ("True + 1", "not a number"),
])
def test_anything_else_is_refused(expression, words):
    with pytest.raises(CalculatorError) as caught:
        evaluate(expression)
    assert words in str(caught.value)


def feed_all(stream, text: str, size: int) -> list[tuple[str, str, bool]]:
    out = []
    for start in range(0, len(text), size):
        out += stream.feed(text[start:start + size])
    return out + stream.close()


def joined(deltas, field: str) -> str:
    return "".join(text for name, text, _ in deltas if name == field)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_chat_stream_splits_fields_at_their_headers_whatever_the_chunking(size):
    text = ("[[ ## reasoning ## ]]\nFirst [thought], then\nmore.\n\n[[ ## answer ## ]]\n  Paris [1]  \n\n"
            "[[ ## completed ## ]]\n")
    deltas = feed_all(ChatFieldStream(["reasoning", "answer"]), text, size)
    assert joined(deltas, "reasoning") == "First [thought], then\nmore."
    assert joined(deltas, "answer") == "Paris [1]"
    assert [(name, last) for name, _, last in deltas if last] == [("reasoning", True), ("answer", True)]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_json_stream_decodes_string_values_and_sends_others_whole(size):
    payload = {"reasoning": "Line one\nsays \"hi\" \u00e9\u4e2d", "count": [1, {"a": "}"}], "answer": "Oslo"}
    deltas = feed_all(JSONFieldStream(["reasoning", "count", "answer"]), json.dumps(payload, indent=2), size)
    assert joined(deltas, "reasoning") == payload["reasoning"]
    assert json.loads(joined(deltas, "count")) == payload["count"]
    assert joined(deltas, "answer") == "Oslo"
    assert sum(1 for _, _, last in deltas if last) == 3
