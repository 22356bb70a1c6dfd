"""The parity corpus: signatures described once, built both as DSPy signatures and as ours.

Each :class:`Case` lists fields as ``(name, role, our_type, python_annotation, options)``; the test builds
a ``dspy.Signature`` from the Python annotations and one of our ``Signature`` s from the TypeSpecs, then
compares what the two adapters render and parse.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import pydantic

from dspy_grpc_server.core.types import TypeSpec, enum_type, object_type, parse_type


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.Enum):
    LOW = 1
    HIGH = 2


class Address(pydantic.BaseModel):
    street: str
    city: str = pydantic.Field(description="City name")
    zip_code: Optional[str] = None


class Person(pydantic.BaseModel):
    """A person with an address."""

    name: str
    age: int = pydantic.Field(ge=0)
    tags: list[str] = []
    address: Address


class Score(pydantic.BaseModel):
    label: Literal["good", "bad"]
    value: float


COLOR = enum_type("Color", [m.value for m in Color], [m.name for m in Color])
PRIORITY = enum_type("Priority", [m.value for m in Priority], [m.name for m in Priority])
ADDRESS = object_type("Address", Address.model_json_schema())
PERSON = object_type("Person", Person.model_json_schema())
SCORE = object_type("Score", Score.model_json_schema())
NAMES = {"Color": COLOR, "Priority": PRIORITY, "Address": ADDRESS, "Person": PERSON, "Score": SCORE}


def T(text: str) -> TypeSpec:
    return parse_type(text, names=NAMES)


@dataclass
class F:
    name: str
    role: str  # "in" | "out"
    type: str  # our annotation text (parsed with NAMES)
    py: Any  # the Python annotation DSPy sees ("dspy:Image" etc. resolved by the test)
    desc: str | None = None
    prefix: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    id: str
    fields: list[F]
    inputs: dict[str, Any]
    outputs: dict[str, Any]  # a valid answer (JSON values)
    instructions: str | None = None
    bad_outputs: list[dict[str, Any]] = field(default_factory=list)  # wrong-typed answers (JSON values)


def _io(out_type: str, out_py: Any, good: Any, bad: list[Any], in_value: str = "What is it?") -> list[Case]:
    """Two cases per type: as an output (with a str input) and as an input (with a str output)."""
    safe = out_type.replace("[", "_").replace("]", "").replace(", ", "_").replace("'", "").replace(" | ", "_or_")
    return [
        Case(f"out_{safe}", [F("question", "in", "str", str), F("answer", "out", out_type, out_py)],
             {"question": in_value}, {"answer": good}, bad_outputs=[{"answer": b} for b in bad]),
        Case(f"in_{safe}", [F("value", "in", out_type, out_py), F("summary", "out", "str", str)],
             {"value": good}, {"summary": "ok"}),
    ]


CASES: list[Case] = []
CASES += _io("str", str, "Paris", [])
CASES += _io("int", int, 42, ["forty", 4.5, [1]])
CASES += _io("float", float, 3.25, ["pi", {"a": 1}])
CASES += _io("bool", bool, True, ["maybe", 7])
CASES += _io("list[str]", list[str], ["a", "b c", "multi\nline"], ["x", {"a": 1}])
CASES += _io("list[int]", list[int], [1, 2, 3], [["a"], "nope"])
CASES += _io("dict[str, int]", dict[str, int], {"a": 1, "b": 2}, [["a"], {"a": "x"}])
CASES += _io("dict[str, list[str]]", dict[str, list[str]], {"k": ["v1", "v2"]}, [{"k": 3}])
CASES += _io("tuple[int, str]", tuple[int, str], [1, "one"], [["x", "y", "z"]])
CASES += _io("Literal['yes', 'no', 'maybe']", Literal["yes", "no", "maybe"], "yes", ["perhaps", 3])
CASES += _io("Literal[1, 2, 3]", Literal[1, 2, 3], 2, [5, "seven"])
CASES += _io("Color", Color, "red", ["purple"])
CASES += _io("Priority", Priority, 2, [9])
CASES += _io("Address", Address, {"street": "1 Main St", "city": "Springfield", "zip_code": None},
             [{"street": "x"}, "address"])
CASES += _io("Person", Person, {"name": "Ann", "age": 30, "tags": ["x"],
                                "address": {"street": "s", "city": "c", "zip_code": "123"}},
             [{"name": "Ann"}, {"name": "A", "age": "old", "address": {}}])
CASES += _io("list[Score]", list[Score], [{"label": "good", "value": 0.5}], [[{"label": "meh", "value": 1}]])
CASES += _io("Optional[int]", Optional[int], 7, ["seven"])
CASES += _io("int | None", Optional[int], None, [[1]])
CASES += _io("Optional[str]", Optional[str], "maybe", [])
CASES += _io("Union[int, str]", Union[int, str], 5, [[1, 2]])
CASES += _io("list[Optional[float]]", list[Optional[float]], [1.5, None], [["a"]])
CASES += _io("Any", Any, {"free": ["form", 1]}, [])
CASES += _io("list[dict[str, Any]]", list[dict[str, Any]], [{"a": 1}, {"b": [2]}], ["z"])
CASES += _io("Code['python']", "dspy:Code['python']", "print('hi')", [])
CASES += _io("Code", "dspy:Code", "print('bare')", [])
CASES += _io("None | int", None | int, 7, [[1]])
CASES += _io("Union[None, str, int]", Union[None, str, int], "x", [[1]])
CASES += _io("tuple[int, ...]", tuple[int, ...], [1, 2, 3], [["a"], "x"])
CASES += _io("tuple[str, ...]", tuple[str, ...], ["a"], [[{"b": 1}]])
CASES += _io("datetime", datetime.datetime, "2024-01-02T03:04:05", ["soon", [1]])
CASES += _io("date", datetime.date, "2024-01-02", ["someday"])
CASES += _io("list[date]", list[datetime.date], ["2024-01-02", "2025-12-31"], [["x"]])

CASES += [
    Case("multi_io", [F("question", "in", "str", str), F("context", "in", "list[str]", list[str]),
                      F("answer", "out", "str", str), F("confidence", "out", "float", float)],
         {"question": "Who?", "context": ["passage one", "passage «two»"]}, {"answer": "Bob", "confidence": 0.9},
         bad_outputs=[{"answer": "Bob", "confidence": "high"}]),
    Case("instructions_multiline", [F("text", "in", "str", str), F("label", "out", "Literal['pos', 'neg']",
                                                                    Literal["pos", "neg"])],
         {"text": "great movie"}, {"label": "pos"},
         instructions="Classify the sentiment.\n\n    Be careful with sarcasm.\nAnswer briefly.",
         bad_outputs=[{"label": "neutral"}]),
    Case("descriptions", [F("doc", "in", "str", str, desc="The document to read"),
                          F("title", "out", "str", str, desc="A short title"),
                          F("keywords", "out", "list[str]", list[str], desc="Up to five keywords")],
         {"doc": "A long document about cats."}, {"title": "Cats", "keywords": ["cats", "pets"]},
         instructions="Summarize the document."),
    Case("prefixes", [F("query", "in", "str", str, prefix="Search Query:"),
                      F("result", "out", "str", str, prefix="Top Result:")],
         {"query": "dspy"}, {"result": "DSPy is a framework"}),
    Case("constraints", [F("n", "in", "int", int, constraints={"ge": 1, "le": 10}),
                         F("items", "out", "list[str]", list[str], constraints={"min_length": 1, "max_length": 3}),
                         F("score", "out", "float", float, desc="A score", constraints={"gt": 0, "lt": 1})],
         {"n": 3}, {"items": ["a"], "score": 0.5}),
    Case("camel_and_digits", [F("userQuery2", "in", "str", str), F("HTMLAnswer", "out", "str", str)],
         {"userQuery2": "hello"}, {"HTMLAnswer": "<b>hi</b> & bye"}),
    Case("image_in", [F("image", "in", "Image", "dspy:Image"), F("caption", "out", "str", str)],
         {"image": "https://example.com/cat.png"}, {"caption": "A cat"}),
    Case("images_list_in", [F("images", "in", "list[Image]", "dspy:list[Image]"), F("question", "in", "str", str),
                            F("answer", "out", "str", str)],
         {"images": ["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="], "question": "Same?"},
         {"answer": "no"}),
    Case("history", [F("question", "in", "str", str), F("history", "in", "History", "dspy:History"),
                     F("answer", "out", "str", str)],
         {"question": "And Germany?", "history": {"messages": [
             {"question": "Capital of France?", "answer": "Paris"},
             {"question": "Are you sure?"},
             {"answer": "Yes"}]}},
         {"answer": "Berlin"}),
    Case("tool_calls_out", [F("task", "in", "str", str), F("calls", "out", "ToolCalls", "dspy:ToolCalls")],
         {"task": "search cats"}, {"calls": {"tool_calls": [{"name": "search", "args": {"q": "cats"}}]}},
         bad_outputs=[{"calls": 5}]),
    Case("code_in", [F("code", "in", "Code['python']", "dspy:Code['python']"), F("complexity", "out", "str", str)],
         {"code": "def f(x):\n    return x"}, {"complexity": "O(1)"}),
    Case("nested_objects_out", [F("text", "in", "str", str), F("people", "out", "list[Person]", list[Person]),
                                F("best", "out", "Optional[Person]", Optional[Person])],
         {"text": "Ann lives on Main St."},
         {"people": [{"name": "Ann", "age": 3, "tags": [], "address": {"street": "Main", "city": "X",
                                                                       "zip_code": None}}], "best": None}),
    Case("unicode", [F("texte", "in", "str", str), F("réponse_ok", "out", "dict[str, str]", dict[str, str])],
         {"texte": "Ça va? 你好"}, {"réponse_ok": {"clé": "valeur é"}}),
]
