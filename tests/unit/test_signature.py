from __future__ import annotations

import pytest

from dspy_grpc_server.adapters import get_adapter, validate_inputs
from dspy_grpc_server.core.errors import InvalidArgument
from dspy_grpc_server.core.signature import Field, Role, Signature, infer_prefix, parse_signature, with_reasoning
from dspy_grpc_server.core.types import INT, STR, list_of


def test_parse_signature_basic() -> None:
    sig = parse_signature("question, context: list[str] -> answer: int")
    assert [f.name for f in sig.input_fields] == ["question", "context"]
    assert sig.field("context").type == list_of(STR)
    assert sig.field("answer").type == INT
    assert sig.effective_instructions == "Given the fields `question`, `context`, produce the fields `answer`."
    assert sig.field("question").effective_prefix == "Question:"


def test_type_with_commas_and_colons() -> None:
    sig = parse_signature("a: dict[str, int], b -> c: Literal['x:y', 'z']")
    assert [f.name for f in sig.fields] == ["a", "b", "c"]
    assert sig.field("c").type.values == ("x:y", "z")


@pytest.mark.parametrize("text, fragment", [
    ("a -> b -> c", "exactly one '->'"),
    ("a, 1x -> b", "'1x' at column 4"),
    ("a -> ", "no output fields"),
    ("a -> a", "distinct names"),
    ("a: Foo -> b", "'Foo' at column 4"),
    ("a, a -> b", "duplicate"),
])
def test_parse_signature_errors(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_signature(text, field_path="program.signature")
    v = err.value.violations[0]
    assert v.field == "program.signature"
    assert fragment in v.description


def test_validate_names_offending_field() -> None:
    sig = Signature((Field("q", Role.INPUT), Field("q", Role.OUTPUT), Field("", Role.OUTPUT)))
    with pytest.raises(InvalidArgument) as err:
        sig.validate()
    fields = [v.field for v in err.value.violations]
    assert fields == ["signature.fields[1].name", "signature.fields[2].name"]
    with pytest.raises(InvalidArgument) as err:
        Signature((Field("q", Role.INPUT),)).validate()
    assert err.value.violations[0].field == "signature.fields"


def test_with_reasoning_prepends_output_and_keeps_instructions() -> None:
    sig = with_reasoning(parse_signature("question -> answer"))
    assert [f.name for f in sig.output_fields] == ["reasoning", "answer"]
    assert sig.effective_instructions == "Given the fields `question`, produce the fields `answer`."
    assert sig.field("reasoning").effective_prefix == "Reasoning:"


def test_infer_prefix() -> None:
    assert infer_prefix("camelCaseText") == "Camel Case Text"
    assert infer_prefix("text2number") == "Text 2 Number"
    assert infer_prefix("HTMLParser") == "HTML Parser"


def test_validate_inputs_errors() -> None:
    sig = parse_signature("question, n: int -> answer")
    assert validate_inputs(sig, {"question": "q", "n": 2.0}) == {"question": "q", "n": 2}
    with pytest.raises(InvalidArgument) as err:
        validate_inputs(sig, {"n": "x", "answer": "a"})
    fields = sorted(v.field for v in err.value.violations)
    assert fields == ["inputs.answer", "inputs.n", "inputs.question"]


def test_get_adapter() -> None:
    assert get_adapter("chat").name == "chat"
    assert get_adapter("json").name == "json"
    with pytest.raises(InvalidArgument) as err:
        get_adapter("yaml")
    assert err.value.violations[0].field == "adapter"


def test_chat_parse_error_carries_completion() -> None:
    from dspy_grpc_server.core.errors import ParseError

    sig = parse_signature("q -> a: int")
    with pytest.raises(ParseError) as err:
        get_adapter("chat").parse(sig, "[[ ## a ## ]]\nnot a number")
    assert err.value.adapter == "ChatAdapter"
    assert "not a number" in err.value.completion
