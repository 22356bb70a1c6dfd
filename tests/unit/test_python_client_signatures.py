"""The Python client's class-based signatures, type hints -> TypeSpec, and output coercion (no server)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Any, Literal, Optional, Union

import pydantic
import pytest
import typing_extensions as te

from dspy_grpc import History, Image, InputField, OutputField, OutputTypeError, Signature
from dspy_grpc.coerce import coerce
from dspy_grpc.typespec import json_schema, type_spec
from dspy_grpc.v1 import signature_pb2 as pb


class Color(enum.Enum):
    """A colour."""

    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Inner:
    a: int


@dataclasses.dataclass
class Point:
    """A point."""

    x: int
    y: float = 1.5
    tags: list[str] = dataclasses.field(default_factory=list)
    color: Color = Color.RED
    level: Optional[Level] = None
    inner: Optional[Inner] = None
    inners: list[Inner] = dataclasses.field(default_factory=list)
    choice: Literal["a", "b"] = "a"
    one: Literal["z"] = "z"
    pair: tuple[int, str] = (1, "a")
    many: tuple[int, ...] = ()
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    loose: dict = dataclasses.field(default_factory=dict)
    either: Union[int, None, str] = 3
    anything: Any = None


class Person(te.TypedDict, total=False):
    """Someone."""

    name: te.Required[str]
    home: Point
    nickname: str


# ------------------------------------------------------------------------------------ JSON schemas


@pytest.mark.parametrize("cls", [Inner, Point, Person])
def test_object_schemas_are_what_pydantic_writes(cls: type) -> None:
    # The server rebuilds the object type from this schema and renders it as DSPy would render the
    # class itself; byte-equal JSON (key order included) keeps prompts identical.
    assert json.dumps(json_schema(cls)) == json.dumps(pydantic.TypeAdapter(cls).json_schema())


def test_pydantic_models_use_their_own_schema() -> None:
    class Answer(pydantic.BaseModel):
        text: str
        score: float = pydantic.Field(ge=0, description="how sure")

    spec = type_spec(Answer)
    assert spec.kind == pb.TYPE_KIND_OBJECT and spec.name == "Answer"
    assert json.loads(spec.json_schema) == Answer.model_json_schema()
    assert coerce(Answer, {"text": "t", "score": 1}) == Answer(text="t", score=1.0)


# ------------------------------------------------------------------------------------- type hints


@pytest.mark.parametrize("hint, expected", [
    (str, {"kind": "TYPE_KIND_STR"}),
    (int, {"kind": "TYPE_KIND_INT"}),
    (float, {"kind": "TYPE_KIND_FLOAT"}),
    (bool, {"kind": "TYPE_KIND_BOOL"}),
    (Any, {"kind": "TYPE_KIND_ANY"}),
    (list[str], {"kind": "TYPE_KIND_LIST", "args": [{"kind": "TYPE_KIND_STR"}]}),
    (list, {"kind": "TYPE_KIND_LIST", "args": [{"kind": "TYPE_KIND_ANY"}]}),
    (dict[str, int], {"kind": "TYPE_KIND_DICT", "args": [{"kind": "TYPE_KIND_STR"}, {"kind": "TYPE_KIND_INT"}]}),
    (tuple[int, str], {"kind": "TYPE_KIND_TUPLE", "args": [{"kind": "TYPE_KIND_INT"}, {"kind": "TYPE_KIND_STR"}]}),
    (Literal["a", 1, True], {"kind": "TYPE_KIND_LITERAL", "values": ["a", 1.0, True],
                             "valuesJson": ['"a"', "1", "true"]}),
    (Color, {"kind": "TYPE_KIND_ENUM", "name": "Color", "values": ["red", "blue"], "valuesJson": ['"red"', '"blue"'],
              "memberNames": ["RED", "BLUE"]}),
    (None | int, {"kind": "TYPE_KIND_OPTIONAL", "args": [{"kind": "TYPE_KIND_INT"}], "noneFirst": True}),
    (tuple[int, ...], {"kind": "TYPE_KIND_TUPLE", "args": [{"kind": "TYPE_KIND_INT"}], "variadic": True}),
    (datetime.datetime, {"kind": "TYPE_KIND_DATETIME"}),
    (datetime.date, {"kind": "TYPE_KIND_DATE"}),
    (Optional[int], {"kind": "TYPE_KIND_OPTIONAL", "args": [{"kind": "TYPE_KIND_INT"}]}),
    (int | None, {"kind": "TYPE_KIND_OPTIONAL", "args": [{"kind": "TYPE_KIND_INT"}]}),
    (Union[int, str], {"kind": "TYPE_KIND_UNION", "args": [{"kind": "TYPE_KIND_INT"}, {"kind": "TYPE_KIND_STR"}]}),
    (int | str | None, {"kind": "TYPE_KIND_OPTIONAL", "args": [
        {"kind": "TYPE_KIND_UNION", "args": [{"kind": "TYPE_KIND_INT"}, {"kind": "TYPE_KIND_STR"}]}]}),
    (Image, {"kind": "TYPE_KIND_IMAGE"}),
    (History, {"kind": "TYPE_KIND_HISTORY"}),
    (te.Annotated[int, "meta"], {"kind": "TYPE_KIND_INT"}),
])
def test_type_hints_map_to_type_specs(hint: Any, expected: dict) -> None:
    from google.protobuf import json_format

    assert json_format.MessageToDict(type_spec(hint)) == expected


def test_object_type_hints_carry_name_and_schema() -> None:
    spec = type_spec(list[Point])
    inner = spec.args[0]
    assert inner.kind == pb.TYPE_KIND_OBJECT and inner.name == "Point"
    assert json.loads(inner.json_schema) == json_schema(Point)


@pytest.mark.parametrize("hint, message", [
    (set[int], "unsupported field type"),
    (type(None), "None alone"),
    (Literal[None], "Literal values"),
])
def test_unsupported_type_hints_raise(hint: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        type_spec(hint)


# ------------------------------------------------------------------------------------- signatures


def test_class_signature_to_proto() -> None:
    class QA(Signature):
        """Answer the question.

        Be brief.
        """

        question: str = InputField(desc="a question", prefix="Q:")
        context = InputField()  # no type hint: str, as in DSPy
        answer: int = OutputField(ge=0, le=10)
        where: Point = OutputField()

    assert QA.instructions == "Answer the question.\n\nBe brief."
    assert list(QA.input_fields) == ["question", "context"] and list(QA.output_fields) == ["answer", "where"]
    assert QA.signature == "question, context -> answer, where"
    assert QA.output_types() == {"answer": int, "where": Point}
    message = QA.to_proto()
    assert [(f.name, f.role) for f in message.fields] == [
        ("question", pb.FIELD_ROLE_INPUT), ("context", pb.FIELD_ROLE_INPUT),
        ("answer", pb.FIELD_ROLE_OUTPUT), ("where", pb.FIELD_ROLE_OUTPUT),
    ]
    question, context, answer, where = message.fields
    assert question.description == "a question" and question.prefix == "Q:"
    assert not context.HasField("description") and not context.HasField("prefix")
    assert context.type.kind == pb.TYPE_KIND_STR
    assert [(c.name, c.value) for c in answer.constraints] == [("ge", "0"), ("le", "10")]
    assert where.type.name == "Point"
    assert message.instructions == "Answer the question.\n\nBe brief."


def test_signature_without_docstring_leaves_instructions_to_the_server() -> None:
    class Bare(Signature):
        question: str = InputField()
        answer: str = OutputField()

    assert Bare.instructions is None and not Bare.to_proto().HasField("instructions")
    assert Bare.with_instructions("Be terse.").to_proto().instructions == "Be terse."


def test_subclasses_inherit_fields_and_docstring() -> None:
    class Base(Signature):
        """Base instructions."""

        question: str = InputField()
        answer: str = OutputField()

    class WithContext(Base):
        context: list[str] = InputField()

    assert list(WithContext.fields) == ["question", "answer", "context"]
    assert WithContext.instructions == "Base instructions."
    assert WithContext.signature == "question, context -> answer"


def test_signature_types_may_be_local_to_a_function() -> None:
    @dataclasses.dataclass
    class Local:
        z: int

    class UsesLocal(Signature):
        text: str = InputField()
        found: list[Local] = OutputField()

    assert UsesLocal.to_proto().fields[1].type.args[0].name == "Local"


def test_signature_mistakes_fail_at_definition() -> None:
    with pytest.raises(TypeError, match="InputField\\(\\) or OutputField\\(\\)"):
        class NoField(Signature):  # noqa: F841
            question: str

    with pytest.raises(TypeError, match="field 'answer'.*unsupported field type"):
        class BadType(Signature):  # noqa: F841
            answer: set[int] = OutputField()

    with pytest.raises(TypeError, match="unknown field argument"):
        InputField(description="use desc=")

    class Fine(Signature):
        question: str = InputField()

    with pytest.raises(TypeError, match="is a signature"):
        Fine()


# --------------------------------------------------------------------------------------- coercion


@pytest.mark.parametrize("hint, value, expected", [
    (int, 4, 4),
    (int, 4.0, 4),
    (float, 2, 2.0),
    (bool, True, True),
    (Color, "blue", Color.BLUE),
    (Color, "BLUE", Color.BLUE),  # by member name too
    (Level, 2, Level.HIGH),
    (tuple[int, str], [1, "a"], (1, "a")),
    (tuple[int, ...], [1, 2], (1, 2)),
    (dict[int, list[float]], {"1": [1, 2]}, {1: [1.0, 2.0]}),
    (Optional[int], None, None),
    (Union[int, str], "x", "x"),
    (Union[float, int], 3, 3),  # the member of the same JSON kind wins
    (Literal["a", "b"], "b", "b"),
    (Image, "https://x/y.png", Image("https://x/y.png")),
    (Image, {"url": "https://x/y.png"}, Image("https://x/y.png")),
    (History, {"messages": [{"q": "a"}]}, History([{"q": "a"}])),
    (Any, {"k": [1]}, {"k": [1]}),
])
def test_coerce_plain_values(hint: Any, value: Any, expected: Any) -> None:
    result = coerce(hint, value)
    assert result == expected and type(result) is type(expected)


def test_coerce_objects() -> None:
    point = coerce(Point, {"x": 1, "inners": [{"a": 2}], "color": "blue", "pair": [3, "b"], "level": 1})
    assert point == Point(x=1, inners=[Inner(2)], color=Color.BLUE, pair=(3, "b"), level=Level.LOW)
    person = coerce(Person, {"name": "Ada", "home": {"x": 0}})
    assert person == {"name": "Ada", "home": Point(x=0)}


@pytest.mark.parametrize("hint, value, message", [
    (int, "4", "expected int, got a string"),
    (int, True, "expected int, got a boolean"),
    (Color, "green", "not a value of Color"),
    (Point, {"x": 1, "zz": 2}, "unexpected field"),
    (tuple[int, int], [1], "expected 2 items"),
    (Literal["a"], "b", "not one of"),
    (str, None, "got null"),
])
def test_coerce_mismatch_raises(hint: Any, value: Any, message: str) -> None:
    with pytest.raises(OutputTypeError, match=message):
        coerce(hint, value)
