"""Conversion between Python values and their two wire forms.

Every value field of the API has an exact form, JSON text (``inputs_json``, ``outputs_json``, ...),
and a convenient one, ``google.protobuf.Struct`` / ``Value``. The client sends and reads the exact
form, so integers stay integers, floats stay floats (``1.0`` is not ``1``) and dicts keep their key
order — all of which DSPy's prompts show. :func:`to_json` / :func:`to_jsonable` and :func:`to_struct`
/ :func:`to_value` accept ``None``, ``bool``, ``int``, ``float``, ``str``, mappings with string keys,
lists and tuples, plus enum members (sent as their value), dataclass instances
(:class:`~dspy_grpc.Image` and :class:`~dspy_grpc.History` among them) and objects with a
``model_dump()`` method (pydantic models), which are sent as objects. :func:`from_json` reads the
exact form back; :func:`from_struct` / :func:`from_value` read the convenient one, where protobuf
numbers are doubles, so whole numbers come back as ``int`` (``4.0`` becomes ``4``).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

__all__ = ["to_json", "to_jsonable", "from_json", "to_value", "to_struct", "from_value", "from_struct"]

_MAX_EXACT_INT = 2**53


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (dict, list, str, int, float, bool, None), keeping dict key order
    and the difference between ``1`` and ``1.0``.

    Raises:
        TypeError: for values that have no JSON form (sets, bytes, arbitrary objects, non-str keys).
        ValueError: for NaN or infinite floats, which JSON cannot carry.
    """

    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"cannot send non-finite number {obj!r}")
        return obj
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, (datetime.date, datetime.datetime)):
        return obj.isoformat()
    if isinstance(obj, (struct_pb2.Value, struct_pb2.Struct)):
        return from_value(obj) if isinstance(obj, struct_pb2.Value) else from_struct(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, item in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {type(key).__name__} {key!r}")
            out[key] = to_jsonable(item)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(item) for item in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if callable(getattr(obj, "model_dump", None)):  # keyed as its JSON schema names the fields (aliases)
        return to_jsonable(obj.model_dump(mode="json", by_alias=True))
    raise TypeError(f"cannot convert {type(obj).__name__} to a JSON value")


def to_json(obj: Any) -> str:
    """The exact wire form of a value: JSON text (see :func:`to_jsonable` for what is accepted)."""

    return json.dumps(to_jsonable(obj), ensure_ascii=False)


def from_json(text: str) -> Any:
    """A value from its exact wire form (JSON text): ints, floats and key order as sent."""

    return json.loads(text)


def exact_or(text: str, fallback: Any) -> Any:
    """The value of a response field pair: its JSON text when the server sent it, else the
    convenient form (a Struct or Value) read with :func:`from_struct` / :func:`from_value`."""

    if text:
        return from_json(text)
    if isinstance(fallback, struct_pb2.Struct):
        return from_struct(fallback)
    return from_value(fallback)


def to_value(obj: Any) -> struct_pb2.Value:
    """Convert a JSON-like Python value to a ``google.protobuf.Value``.

    Raises:
        TypeError: for values that have no JSON form (sets, bytes, arbitrary objects, non-str keys).
        ValueError: for NaN or infinite floats, which JSON cannot carry.
    """

    value = struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int):
        if abs(obj) > _MAX_EXACT_INT:
            raise ValueError(f"integer {obj} is too large to send exactly (protobuf numbers are doubles)")
        value.number_value = float(obj)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"cannot send non-finite number {obj!r}")
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, enum.Enum):
        value.CopyFrom(to_value(obj.value))
    elif isinstance(obj, struct_pb2.Value):
        value.CopyFrom(obj)
    elif isinstance(obj, struct_pb2.Struct):
        value.struct_value.CopyFrom(obj)
    elif isinstance(obj, Mapping):
        value.struct_value.CopyFrom(to_struct(obj))
    elif isinstance(obj, (list, tuple)):
        value.list_value.values.extend(to_value(item) for item in obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        value.struct_value.CopyFrom(to_struct(dataclasses.asdict(obj)))
    elif callable(getattr(obj, "model_dump", None)):
        value.struct_value.CopyFrom(to_struct(obj.model_dump(mode="json")))
    else:
        raise TypeError(f"cannot convert {type(obj).__name__} to a protobuf Value")
    return value


def to_struct(mapping: Mapping[str, Any] | struct_pb2.Struct | None) -> struct_pb2.Struct:
    """Convert a mapping with string keys to a ``google.protobuf.Struct`` (``None`` gives an empty one)."""

    struct = struct_pb2.Struct()
    if mapping is None:
        return struct
    if isinstance(mapping, struct_pb2.Struct):
        struct.CopyFrom(mapping)
        return struct
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, got {type(key).__name__} {key!r}")
        struct.fields[key].CopyFrom(to_value(item))
    return struct


def from_value(value: struct_pb2.Value) -> Any:
    """Convert a ``google.protobuf.Value`` to plain Python (dict, list, str, int/float, bool, None)."""

    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    return [from_value(item) for item in value.list_value.values]


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Convert a ``google.protobuf.Struct`` to a ``dict``."""

    return {key: from_value(item) for key, item in struct.fields.items()}

