from __future__ import annotations

import pytest

from dspy_grpc_server.core.errors import InvalidArgument
from dspy_grpc_server.core.types import (
    INT, STR, TypeKind, TypeSpec, code, dict_of, format_type, list_of, literal, optional, parse_type, tuple_of, union,
)
from dspy_grpc_server.core.values import ValueCheckError, coerce_input, parse_output_value


@pytest.mark.parametrize("text, spec", [
    ("str", STR),
    ("list[str]", list_of(STR)),
    ("dict[str, int]", dict_of(STR, INT)),
    ("Literal['a', 'b']", literal("a", "b")),
    ("Optional[int]", optional(INT)),
    ("int | None", optional(INT)),
    ("None | int", optional(INT, none_first=True)),
    ("tuple[int, ...]", TypeSpec(TypeKind.TUPLE, (INT,), variadic=True)),
    ("datetime.datetime", TypeSpec(TypeKind.DATETIME)),
    ("tuple[int, str]", tuple_of(INT, STR)),
    ("Union[int, str]", union(INT, STR)),
    ("Code['python']", code("python")),
    ("dspy.Image", parse_type("Image")),
])
def test_parse_type(text: str, spec) -> None:
    assert parse_type(text) == spec
    assert parse_type(format_type(spec)) == spec


@pytest.mark.parametrize("text", ["History", "ToolCalls", "list[Optional[float]]", "dict[str, list[int]]",
                                  "Literal[1, 2, -3]", "Any"])
def test_round_trip(text: str) -> None:
    spec = parse_type(text)
    assert parse_type(format_type(spec)) == spec


@pytest.mark.parametrize("text, fragment", [("list[", "syntax error"), ("Foo", "'Foo'"), ("dict[str]", "2 type"),
                                            ("Literal[x]", "Literal values")])
def test_parse_type_errors_name_field_and_token(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_type(text, field_path="signature.fields[1].type")
    assert err.value.violations[0].field == "signature.fields[1].type"
    assert fragment in err.value.violations[0].description


def test_coerce_input() -> None:
    assert coerce_input(INT, 3.0) == 3
    assert coerce_input(list_of(INT), ["1", 2]) == [1, 2]
    with pytest.raises(ValueCheckError):
        coerce_input(INT, "abc")
    assert parse_type("Image").kind == TypeKind.IMAGE
    assert coerce_input(parse_type("Image"), {"url": "https://x/y.png"}) == "https://x/y.png"


def test_parse_output_value_follows_dspy_rules() -> None:
    assert parse_output_value(INT, "42") == 42
    assert parse_output_value(literal("yes", "no"), "'yes'") == "yes"
    assert parse_output_value(literal("yes", "no"), "Literal[no]") == "no"
    with pytest.raises(ValueError):
        parse_output_value(INT, "forty")
