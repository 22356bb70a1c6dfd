"""A class-based signature written with the Python client renders, through the server, exactly as the
same class written with DSPy 3.4.1 renders in DSPy — rich types included (dataclasses, TypedDicts,
enums, Literals, Optionals, tuples, demos).

Object types travel as a name plus a JSON schema and render as DSPy renders a pydantic model. That
is what DSPy does for a dataclass too, except in XMLAdapter, which nests XML for pydantic models
only: there a dataclass renders as it would were it a pydantic model.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from typing import Literal, Optional

import dspy
import pydantic
import pytest
import pytest_asyncio
import typing_extensions as te

import dspy_grpc

ASYNC = pytest.mark.asyncio(loop_scope="session")


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclasses.dataclass
class Place:
    """Where something is."""

    city: str
    population: int = 0
    aliases: Optional[list[str]] = None


class Person(te.TypedDict):
    name: str
    home: Optional[Place]


def _pydantic_versions() -> tuple[type, type]:
    """Place and Person again, with Place a pydantic model (same names: DSPy shows class names)."""

    class Place(pydantic.BaseModel):
        """Where something is."""

        city: str
        population: int = 0
        aliases: Optional[list[str]] = None

    return Place, te.TypedDict("Person", {"name": str, "home": Optional[Place]})


PlaceModel, PersonModel = _pydantic_versions()


INSTRUCTIONS = "Describe the text."
FIELDS = [
    # name, role, annotation, keyword arguments
    ("text", "in", str, {"desc": "the text"}),
    ("hints", "in", list[str], {}),
    ("mood", "out", Mood, {}),
    ("place", "out", Place, {"desc": "the main place"}),
    ("people", "out", list[Person], {}),
    ("score", "out", float, {"ge": 0.5}),
    ("pair", "out", tuple[int, str], {}),
    ("label", "out", Optional[Literal["a", "b"]], {}),
]
INPUTS = {"text": "Ada lives in Oslo.", "hints": ["names", "places"]}
DEMO = {**INPUTS, "mood": "happy", "place": {"city": "Oslo", "population": 1, "aliases": None},
        "people": [{"name": "Ada", "home": None}], "score": 0.5, "pair": [1, "x"], "label": "a"}


#: FIELDS with pydantic models in place of the dataclass: what the XML adapter is compared with.
PYDANTIC_FIELDS = [
    (name, role, {Place: PlaceModel, list[Person]: list[PersonModel]}.get(annotation, annotation), kwargs)
    for name, role, annotation, kwargs in FIELDS
]


def _class(base: type, input_field, output_field, fields=FIELDS) -> type:
    namespace = {"__doc__": INSTRUCTIONS, "__annotations__": {}}
    for name, role, annotation, kwargs in fields:
        namespace["__annotations__"][name] = annotation
        namespace[name] = (input_field if role == "in" else output_field)(**kwargs)
    return type(base)("Describe", (base,), namespace)


OURS = _class(dspy_grpc.Signature, dspy_grpc.InputField, dspy_grpc.OutputField)
THEIRS = _class(dspy.Signature, dspy.InputField, dspy.OutputField)
THEIRS_PYDANTIC = _class(dspy.Signature, dspy.InputField, dspy.OutputField, PYDANTIC_FIELDS)


def _dspy_values(values: dict, fields=FIELDS) -> dict:
    annotations = {name: annotation for name, _, annotation, _ in fields}
    return {k: v if annotations[k] is str else pydantic.TypeAdapter(annotations[k]).validate_python(v)
            for k, v in values.items()}


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[dspy_grpc.AsyncClient]:
    async with dspy_grpc.AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


@pytest.mark.parametrize("adapter, reference", [
    ("chat", dspy.ChatAdapter), ("json", dspy.JSONAdapter), ("xml", dspy.XMLAdapter),
])
@pytest.mark.parametrize("module, dspy_module", [
    (dspy_grpc.Predict, dspy.Predict), (dspy_grpc.ChainOfThought, dspy.ChainOfThought),
])
@ASYNC
async def test_class_signature_renders_as_dspy(client, adapter, reference, module, dspy_module) -> None:
    handle = module(OURS, client=client, adapter=adapter, demos=[DEMO])
    rendered = await handle.arender(**INPUTS)
    fields, reference_signature = (PYDANTIC_FIELDS, THEIRS_PYDANTIC) if adapter == "xml" else (FIELDS, THEIRS)
    signature = dspy_module(reference_signature).predictors()[0].signature
    expected = reference().format(signature, [_dspy_values(DEMO, fields)], _dspy_values(INPUTS, fields))
    assert rendered.messages == expected


@ASYNC
async def test_parsed_outputs_match_dspy(client) -> None:
    completion = (
        "[[ ## mood ## ]]\nsad\n\n[[ ## place ## ]]\n{\"city\": \"Rome\", \"aliases\": [\"Roma\"]}\n\n"
        "[[ ## people ## ]]\n[{\"name\": \"Bo\", \"home\": null}]\n\n[[ ## score ## ]]\n0.75\n\n"
        "[[ ## pair ## ]]\n[2, \"y\"]\n\n[[ ## label ## ]]\nb\n\n[[ ## completed ## ]]"
    )
    ours = await dspy_grpc.Predict(OURS, client=client).aparse(completion)
    theirs = dspy.ChatAdapter().parse(THEIRS, completion)
    assert ours["mood"] is Mood.SAD and theirs["mood"] is Mood.SAD
    assert ours["place"] == theirs["place"] == Place("Rome", 0, ["Roma"])
    assert ours["people"] == theirs["people"] == [{"name": "Bo", "home": None}]
    assert ours["score"] == theirs["score"] == 0.75
    assert ours["pair"] == theirs["pair"] == (2, "y")
    assert ours["label"] == theirs["label"] == "b"


@ASYNC
async def test_an_enum_answered_by_member_name_parses_as_dspy_parses_it(client) -> None:
    completion = (
        "[[ ## mood ## ]]\nHAPPY\n\n[[ ## place ## ]]\n{\"city\": \"Oslo\"}\n\n[[ ## people ## ]]\n[]\n\n"
        "[[ ## score ## ]]\n1\n\n[[ ## pair ## ]]\n[1, \"x\"]\n\n[[ ## label ## ]]\na\n\n[[ ## completed ## ]]"
    )
    ours = await dspy_grpc.Predict(OURS, client=client).aparse(completion)
    theirs = dspy.ChatAdapter().parse(THEIRS, completion)
    assert ours["mood"] is Mood.HAPPY and theirs["mood"] is Mood.HAPPY


@dataclasses.dataclass
class Tagged:
    name: str
    tags: list[str] = dataclasses.field(default_factory=list)


@ASYNC
async def test_default_factory_fields_render_as_dspy(client) -> None:
    fields = [("text", "in", str, {}), ("tagged", "out", Tagged, {})]
    ours = _class(dspy_grpc.Signature, dspy_grpc.InputField, dspy_grpc.OutputField, fields)
    theirs = _class(dspy.Signature, dspy.InputField, dspy.OutputField, fields)
    rendered = await dspy_grpc.Predict(ours, client=client).arender(text="t")
    assert rendered.messages == dspy.ChatAdapter().format(theirs, [], {"text": "t"})


@ASYNC
async def test_several_constraints_render_as_dspy(client) -> None:
    fields = [("text", "in", str, {}), ("score", "out", float, {"ge": 0, "le": 1})]
    ours = _class(dspy_grpc.Signature, dspy_grpc.InputField, dspy_grpc.OutputField, fields)
    theirs = _class(dspy.Signature, dspy.InputField, dspy.OutputField, fields)
    rendered = await dspy_grpc.Predict(ours, client=client).arender(text="t")
    assert rendered.messages == dspy.ChatAdapter().format(theirs, [], {"text": "t"})


# -------------------------------------------------------------------------------------------- tools


class Unit(enum.Enum):
    C = "C"
    F = "F"


@dataclasses.dataclass
class Spot:
    """A spot."""

    city: str
    unit: Unit = Unit.C


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1, spot: Optional[Spot] = None) -> str:
    """The current weather in a city."""
    return f"18 {unit} in {city}"


def plan(spots: list[Spot], budget: dict[str, float], pair: tuple[int, str], u: Unit = Unit.F, **extra):
    return "ok"


@pytest.mark.parametrize("func", [get_weather, plan])
def test_tools_are_described_as_dspy_describes_them(func) -> None:
    ours, theirs = dspy_grpc.Tool.from_function(func), dspy.Tool(func)
    assert ours.name == theirs.name
    assert ours.desc == (theirs.desc or "")
    assert ours.args == theirs.args
    assert ours.has_kwargs == theirs.has_kwargs
