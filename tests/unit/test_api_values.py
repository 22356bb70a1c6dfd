"""The api layer's value conversions (Struct/Value <-> Python, exact JSON) against protobuf's own
json_format / Struct.update forms they replace: the same results on every shape of value."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from dspy_grpc_server.api import convert
from dspy_grpc_server.core.errors import InvalidArgument


# ---------------------------------------------------------------- the forms these functions replace


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: _canonical(value[key]) for key in sorted(value)}
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "value") and not callable(value.value):
        return _jsonable(value.value)
    return str(value)


def reference_struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return _canonical(json_format.MessageToDict(struct))


def reference_struct_value(value: struct_pb2.Value) -> Any:
    return _canonical(json_format.MessageToDict(value))


def reference_dict_to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_jsonable(values))
    return struct


def reference_to_struct_value(value: Any) -> struct_pb2.Value:
    return json_format.ParseDict(_jsonable(value), struct_pb2.Value())


def reference_exact_json(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False)


# ---------------------------------------------------------------- values


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Size(enum.IntEnum):
    SMALL = 1


class Mood(str, enum.Enum):
    HAPPY = "happy"


class Opaque:
    def __str__(self) -> str:
        return "opaque thing"


SHAPES: list[Any] = [
    {},
    {"question": "Why is the sky blue?"},
    {"a": 1, "b": 1.5, "c": True, "d": False, "e": None, "f": "", "g": [], "h": {}},
    {"zeta": 1, "alpha": 2, "Mid": 3, "ä": 4, "10": 5, "9": 6},
    {"nested": {"list": [1, [2, [3, {"deep": [None, True, "x"]}]]], "obj": {"b": {}, "a": []}}},
    {"unicode": "héllo wörld ✓ 日本語 \U0001f600", "escapes": "quote \" backslash \\ newline \n tab \t nul \x00"},
    {"big": 2**53, "bigger": 2**53 + 2, "huge": 2**60, "neg": -(2**53), "negbig": -(2**53) - 2, "tiny": 1e-300},
    {"floats": [0.1, -0.0, 0.0, 1e300, -1e300, 3.0, -7.0, 2.5e15, 1.7976931348623157e308, 5e-324]},
    {"ints": [0, -1, 1, 2**31, 2**63 - 1, -(2**63)]},
    {"tuple": (1, "two", (3.0,)), "list_of_dicts": [{"k": "v"}, {}]},
    {"enum": Color.RED, "enum_int": Color.BLUE, "intenum": Size.SMALL, "strenum": Mood.HAPPY, "other": Opaque()},
    {1: "int key", 2.5: "float key", None: "none key", True: "bool key"},
    {"empty_string": "", "spaces": "   ", "long": "x" * 5000},
]
VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.5, -0.0, 2**53, 2**53 + 2, 1e300, "", "text", "ünïcödé",
    [], [1, "a", None], {}, {"b": 1, "a": [2, {"c": None}]}, (1, 2), Color.RED, Opaque(),
]


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    return reference_dict_to_struct(values)


def _same_message(ours, theirs) -> None:
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


@pytest.mark.parametrize("values", SHAPES)
def test_struct_to_dict_reads_as_message_to_dict(values: dict[str, Any]) -> None:
    struct = _struct(values)
    ours = convert.struct_to_dict(struct)
    assert ours == reference_struct_to_dict(struct)
    assert json.dumps(ours) == json.dumps(reference_struct_to_dict(struct))  # key order and int/float kinds too


@pytest.mark.parametrize("values", SHAPES)
def test_dict_to_struct_and_exact_json_write_as_before(values: dict[str, Any]) -> None:
    _same_message(convert.dict_to_struct(values), reference_dict_to_struct(values))
    assert convert.exact_json(values) == reference_exact_json(values)
    fields = convert.values_fields("outputs", values)
    _same_message(fields["outputs"], reference_dict_to_struct(dict(values)))
    assert fields["outputs_json"] == reference_exact_json(dict(values))


@pytest.mark.parametrize("value", VALUES)
def test_single_values_convert_as_before(value: Any) -> None:
    _same_message(convert.to_struct_value(value), reference_to_struct_value(value))
    assert convert.exact_json(value) == reference_exact_json(value)
    message = reference_to_struct_value(value)
    assert convert.struct_value(message) == reference_struct_value(message)
    assert type(convert.struct_value(message)) is type(reference_struct_value(message))


def test_unset_value_reads_as_null() -> None:
    assert convert.struct_value(struct_pb2.Value()) is None
    assert reference_struct_value(struct_pb2.Value()) is None


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_when_read_and_kept_when_written(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.fields["x"].number_value = number
    with pytest.raises(ValueError):
        reference_struct_to_dict(struct)  # protobuf's JSON mapping refuses them too
    with pytest.raises(InvalidArgument) as ours:  # the caller's bad input, naming the field
        convert.struct_to_dict(struct, "inputs")
    assert [v.field for v in ours.value.violations] == ["inputs"]
    assert ("NaN" if number != number else "Infinity") in ours.value.message
    _same_message(convert.dict_to_struct({"x": number}), reference_dict_to_struct({"x": number}))
    assert convert.exact_json({"x": number}) == reference_exact_json({"x": number})


def test_whole_numbers_read_as_ints_only_within_2_to_the_53() -> None:
    read = convert.struct_to_dict(_struct({"a": 3.0, "b": -0.0, "c": 2.0**53, "d": 2.0**53 + 2, "e": 0.5}))
    assert read == {"a": 3, "b": 0, "c": 2**53, "d": 2.0**53 + 2, "e": 0.5}
    assert [type(read[k]) for k in "abcde"] == [int, int, int, float, float]
    assert list(read) == sorted(read)


json_values = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_any_json_object_converts_as_before(values: dict[str, Any]) -> None:
    _same_message(convert.dict_to_struct(values), reference_dict_to_struct(values))
    assert convert.exact_json(values) == reference_exact_json(values)
    struct = reference_dict_to_struct(values)
    assert json.dumps(convert.struct_to_dict(struct)) == json.dumps(reference_struct_to_dict(struct))


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_converts_as_before(value: Any) -> None:
    _same_message(convert.to_struct_value(value), reference_to_struct_value(value))
    message = reference_to_struct_value(value)
    assert json.dumps(convert.struct_value(message)) == json.dumps(reference_struct_value(message))


# ---------------------------------------------------------------- predictions


def reference_prediction_to_proto(prediction, *, program_id: str = "", revision_id: str = ""):
    from dspy_grpc.v1 import prediction_pb2

    def fields(name: str, values: Any) -> dict[str, Any]:
        return {name: reference_dict_to_struct(dict(values)), f"{name}_json": reference_exact_json(dict(values))}

    def usage(model: str, used, calls: int):
        return prediction_pb2.ModelUsage(model=model, prompt_tokens=used.prompt_tokens,
                                         completion_tokens=used.completion_tokens,
                                         total_tokens=used.total_tokens, calls=calls)

    message = prediction_pb2.Prediction(
        **fields("outputs", prediction.outputs),
        usage=[usage(entry.model, entry.usage, entry.calls) for entry in prediction.usage],
        program=f"programs/{program_id}" if program_id else "",
        revision_id=revision_id,
        adapter_fallbacks=[prediction_pb2.AdapterFallback(predictor=f.predictor, from_adapter=f.from_adapter,
                                                          to_adapter=f.to_adapter, error=f.error)
                           for f in prediction.adapter_fallbacks],
    )
    for step in prediction.trace:
        trace = message.trace.add(predictor=step.predictor, **fields("inputs", step.inputs),
                                  **fields("outputs", step.outputs), adapter=step.adapter, model=step.model,
                                  usage=usage(step.model, step.usage, 1), lm_call_ids=list(step.lm_call_ids),
                                  cache_hit=step.cache_hit)
        trace.latency.FromNanoseconds(int(step.latency_s * 1e9))
    return message


def _predictions():
    from dspy_grpc_server.lm.types import Usage
    from dspy_grpc_server.modules.prediction import AdapterFallback, ModelUsage, Prediction, TraceStep

    yield Prediction(outputs={}), "", ""
    yield Prediction(outputs={"answer": "Paris"}, usage=[ModelUsage("mock", Usage(20, 10, 30), 1)]), "qa", "r1"
    step = TraceStep("predict", {"question": "Why?", "n": 3}, {"reasoning": "…", "answer": ["a", 1.5]}, "chat",
                     "mock", Usage(5, 6, 11, estimated=True), 0.0123, ("call-1", "call-2"), cache_hit=True)
    empty_step = TraceStep("retrieve", {}, {}, "retrieve", "", Usage(), 0.0)
    yield Prediction(
        outputs={"answer": {"nested": [1, 2.0, None, True]}, "score": 0.5, "label": Color.RED},
        usage=[ModelUsage("a", Usage(1, 2, 3), 2), ModelUsage("b", Usage(), 0)],
        trace=[step, empty_step],
        adapter_fallbacks=[AdapterFallback("predict", "chat", "json", "could not parse")],
    ), "prog", ""


@pytest.mark.parametrize("prediction, program_id, revision_id", list(_predictions()))
def test_prediction_to_proto_writes_as_before(prediction, program_id: str, revision_id: str) -> None:
    from dspy_grpc.v1 import inference_pb2

    expected = reference_prediction_to_proto(prediction, program_id=program_id, revision_id=revision_id)
    _same_message(convert.prediction_to_proto(prediction, program_id=program_id, revision_id=revision_id), expected)
    response = inference_pb2.PredictResponse()
    convert.prediction_to_proto(prediction, program_id=program_id, revision_id=revision_id, into=response.prediction)
    _same_message(response, inference_pb2.PredictResponse(prediction=expected))
    assert response.prediction.HasField("outputs")
