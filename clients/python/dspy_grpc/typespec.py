"""Python type hints as the wire's ``TypeSpec``, and the :class:`Image` / :class:`History` field types.

A signature field's type travels as a ``dspy_grpc.v1.TypeSpec``. :func:`type_spec` builds one from a
Python type hint:

============================================  =====================================================
hint                                          TypeSpec
============================================  =====================================================
``str``, ``int``, ``float``, ``bool``         the scalar kinds
``typing.Any``                                ``TYPE_KIND_ANY``
``list[T]``, ``dict[K, V]``, ``tuple[A, B]``  containers (bare ``list`` / ``dict`` hold ``Any``)
``Literal["a", "b"]``                         ``TYPE_KIND_LITERAL`` with the values
an ``enum.Enum`` subclass                     ``TYPE_KIND_ENUM``: its name, member values and names
``T | None``, ``Optional[T]``                 ``TYPE_KIND_OPTIONAL``
``A | B``, ``Union[A, B]``                    ``TYPE_KIND_UNION``
a dataclass, a ``TypedDict``, or a class      ``TYPE_KIND_OBJECT``: its name and JSON schema
with ``model_json_schema()`` (pydantic)
:class:`Image`, :class:`History`              ``TYPE_KIND_IMAGE``, ``TYPE_KIND_HISTORY``
============================================  =====================================================

Object schemas are written the way pydantic writes them (``$defs`` for nested objects and enums,
titles, defaults, keys sorted), so the server renders the same prompt DSPy renders for that type;
this client does not need pydantic for it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import inspect
import json
import mimetypes
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .v1 import signature_pb2

__all__ = ["Image", "History", "type_spec", "json_schema", "is_object_type"]


@dataclasses.dataclass(frozen=True)
class Image:
    """An image for an ``Image`` field: a URL (http, https, gs) or a ``data:`` URI.

        class Describe(Signature):
            image: Image = InputField()
            caption: str = OutputField()

        describe(image=Image("https://example.com/cat.png"))
        describe(image=Image.from_file("cat.png"))
    """

    url: str

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str = "image/png") -> Image:
        """An image sent inline, as a base64 ``data:`` URI."""

        return cls(f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}")

    @classmethod
    def from_file(cls, path: str | Path, mime_type: str | None = None) -> Image:
        """An image read from a local file and sent inline (the type is guessed from the file name)."""

        guessed = mime_type or mimetypes.guess_type(str(path))[0]
        if not guessed or not guessed.startswith("image/"):
            raise ValueError(f"cannot tell the image type of {str(path)!r}; pass mime_type='image/...'")
        return cls.from_bytes(Path(path).read_bytes(), guessed)


@dataclasses.dataclass(frozen=True)
class History:
    """Earlier turns of a conversation for a ``History`` field, like ``dspy.History``.

    Each message is a dict keyed by the signature's field names, e.g.
    ``History([{"question": "Capital of France?", "answer": "Paris"}])``.
    """

    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)


_SCALARS = {
    str: signature_pb2.TYPE_KIND_STR,
    int: signature_pb2.TYPE_KIND_INT,
    float: signature_pb2.TYPE_KIND_FLOAT,
    bool: signature_pb2.TYPE_KIND_BOOL,
}
_NONE = type(None)


def _is_typeddict(hint: Any) -> bool:
    # typing.is_typeddict does not recognise typing_extensions.TypedDict on every Python version.
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


def _is_pydantic_model(hint: Any) -> bool:
    return isinstance(hint, type) and callable(getattr(hint, "model_json_schema", None))


def is_object_type(hint: Any) -> bool:
    """Whether ``hint`` travels as an object type (dataclass, TypedDict or pydantic model)."""

    if hint in (Image, History):
        return False
    return (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or _is_typeddict(hint) or _is_pydantic_model(hint)


_WRAPPERS = ("Annotated", "Required", "NotRequired", "ReadOnly")


def _strip_annotated(hint: Any) -> Any:
    """``T`` for ``Annotated[T, ...]``, ``Required[T]``, ``NotRequired[T]`` (typing or typing_extensions)."""

    while getattr(typing.get_origin(hint), "_name", None) in _WRAPPERS or typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _union_members(hint: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(hint)
    return None


def type_spec(hint: Any) -> signature_pb2.TypeSpec:
    """The ``TypeSpec`` for a Python type hint; raises ``TypeError`` for hints with no wire form."""

    hint = _strip_annotated(hint)
    if hint is _NONE or hint is None:
        raise TypeError("a field type cannot be None alone; use Optional[T]")
    if hint in _SCALARS:
        return signature_pb2.TypeSpec(kind=_SCALARS[hint])
    if hint is Any:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_ANY)
    if hint is datetime.datetime:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_DATETIME)
    if hint is datetime.date:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_DATE)
    if hint is Image:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_IMAGE)
    if hint is History:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_HISTORY)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        spec = signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_ENUM, name=hint.__name__,
                                      member_names=[member.name for member in hint])
        for member in hint:
            _add_value(spec, member.value)
        return spec
    if is_object_type(hint):
        return signature_pb2.TypeSpec(
            kind=signature_pb2.TYPE_KIND_OBJECT, name=hint.__name__, json_schema=json.dumps(json_schema(hint))
        )
    members = _union_members(hint)
    if members is not None:
        rest = [m for m in members if m is not _NONE]
        inner = type_spec(rest[0]) if len(rest) == 1 else signature_pb2.TypeSpec(
            kind=signature_pb2.TYPE_KIND_UNION, args=[type_spec(m) for m in rest]
        )
        if len(rest) < len(members):  # None written first renders first, as in DSPy: Union[NoneType, int]
            return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_OPTIONAL, args=[inner],
                                          none_first=members[0] is _NONE)
        return inner
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        spec = signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_LITERAL)
        for value in args:
            if isinstance(value, enum.Enum):
                value = value.value
            if not isinstance(value, (str, int, float, bool)):
                raise TypeError(f"Literal values must be str, int, float or bool, not {value!r}")
            _add_value(spec, value)
        return spec
    if hint is list or origin is list:
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_LIST, args=[type_spec(args[0] if args else Any)])
    if hint is dict or origin is dict:
        key, value = args if args else (Any, Any)
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_DICT, args=[type_spec(key), type_spec(value)])
    if hint is tuple or origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_TUPLE, args=[type_spec(args[0])], variadic=True)
        return signature_pb2.TypeSpec(kind=signature_pb2.TYPE_KIND_TUPLE, args=[type_spec(a) for a in args])
    raise TypeError(
        f"unsupported field type {_name(hint)}: use str, int, float, bool, Any, list, dict, tuple, Literal, "
        "an Enum, Optional/Union, a dataclass, a TypedDict, Image or History"
    )


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)


def _add_value(spec: signature_pb2.TypeSpec, value: Any) -> None:
    """A literal's or enum's value, in both forms (the exact one keeps 1 apart from 1.0)."""

    from .values import to_json, to_value

    spec.values.append(to_value(value))
    spec.values_json.append(to_json(value))


# --------------------------------------------------------------------------------------- JSON schema


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of an object type, as pydantic's ``TypeAdapter(cls).json_schema()`` writes it."""

    if _is_pydantic_model(cls):
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
        _mark_attributes(schema, cls.model_json_schema(by_alias=False))  # type: ignore[attr-defined]
        return schema
    builder = _SchemaBuilder()
    schema = builder.object_schema(cls)
    if builder.defs:
        schema["$defs"] = builder.defs
    return _sorted(schema)


#: The JSON schema keyword naming the Python attribute of a property named by its alias: the server
#: shows the alias in schemas and the attribute name in values, as DSPy does.
ATTRIBUTE_KEY = "x-python-name"


def _mark_attributes(by_alias: Any, by_name: Any) -> None:
    """Mark each property of ``by_alias`` whose name differs in ``by_name`` (same shape) with its attribute."""

    if isinstance(by_alias, dict) and isinstance(by_name, dict):
        properties, names = by_alias.get("properties"), by_name.get("properties")
        if isinstance(properties, dict) and isinstance(names, dict) and len(properties) == len(names):
            for (alias, sub), name in zip(properties.items(), names):
                if alias != name and isinstance(sub, dict):
                    sub[ATTRIBUTE_KEY] = name
        for key, value in by_alias.items():
            if key != "properties" or not isinstance(properties, dict):
                _mark_attributes(value, by_name.get(key))
            else:
                for sub, other in zip(properties.values(), names.values() if isinstance(names, dict) else ()):
                    _mark_attributes(sub, other)
    elif isinstance(by_alias, list) and isinstance(by_name, list):
        for a, b in zip(by_alias, by_name):
            _mark_attributes(a, b)


def _sorted(value: Any, parent_key: str | None = None) -> Any:
    # pydantic sorts schema keys alphabetically, except the names under "properties" (field order) and
    # the members of a "default" value.
    if isinstance(value, dict):
        keys = value.keys() if parent_key in ("properties", "default") else sorted(value)
        return {key: _sorted(value[key], key) for key in keys}
    if isinstance(value, list):
        return [_sorted(item, parent_key) for item in value]
    return value


def _title(name: str) -> str:
    return name.title().replace("_", " ").strip()


class _SchemaBuilder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def object_schema(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls, include_extras=True)
        properties: dict[str, Any] = {}
        required: list[str] = []
        if _is_typeddict(cls):
            for name, hint in hints.items():
                properties[name] = self.property_schema(name, hint, dataclasses.MISSING)
                if _typeddict_key_required(cls, name, hint):
                    required.append(name)
            doc = cls.__doc__
        else:
            for item in dataclasses.fields(cls):
                if not item.init:
                    continue
                default = item.default
                properties[item.name] = self.property_schema(item.name, hints.get(item.name, Any), default)
                if default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                    required.append(item.name)
            doc = cls.__doc__
            if doc is not None and doc.startswith(f"{cls.__name__}("):  # dataclass' generated doc
                doc = None
        schema: dict[str, Any] = {"properties": properties, "title": cls.__name__, "type": "object"}
        if required:
            schema["required"] = required
        if doc:
            schema["description"] = inspect.cleandoc(doc)
        return schema

    def property_schema(self, name: str, hint: Any, default: Any) -> dict[str, Any]:
        schema = self.schema(hint)
        if default is not dataclasses.MISSING:
            schema["default"] = _plain(default)
        if not _has_own_title(hint):
            schema["title"] = _title(name)
        return schema

    def schema(self, hint: Any) -> dict[str, Any]:
        hint = _strip_annotated(hint)
        if hint is _NONE or hint is None:
            return {"type": "null"}
        if hint is Any:
            return {}
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is str:
            return {"type": "string"}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self.ref(hint, self.enum_schema)
        if is_object_type(hint) or hint in (Image, History):
            return self.ref(hint, self.object_schema)
        members = _union_members(hint)
        if members is not None:
            rest = [self.schema(m) for m in members if m is not _NONE]
            if len(rest) < len(members):
                rest.append({"type": "null"})
            return {"anyOf": rest}
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Literal:
            return _literal_schema([a.value if isinstance(a, enum.Enum) else a for a in args])
        if hint is list or origin is list:
            return {"items": self.schema(args[0]) if args else {}, "type": "array"}
        if hint is dict or origin is dict:
            values = self.schema(args[1]) if args else {}
            values.pop("title", None)
            return {"additionalProperties": values or True, "type": "object"}
        if hint is tuple or origin is tuple:
            if not args:
                return {"items": {}, "type": "array"}
            if len(args) == 2 and args[1] is Ellipsis:
                return {"items": self.schema(args[0]), "type": "array"}
            items = [self.schema(a) for a in args]
            return {"maxItems": len(items), "minItems": len(items), "prefixItems": items, "type": "array"}
        raise TypeError(f"unsupported type {_name(hint)} inside an object type")

    def ref(self, cls: type, build: Any) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: guards recursive types
            self.defs[name] = build(cls)
        return {"$ref": f"#/$defs/{name}"}

    @staticmethod
    def enum_schema(cls: type[enum.Enum]) -> dict[str, Any]:
        doc = inspect.cleandoc(cls.__doc__) if cls.__doc__ else None
        values = [_plain(member.value) for member in cls]
        schema: dict[str, Any] = {"enum": values, "title": cls.__name__}
        if doc and doc != "An enumeration.":
            schema["description"] = doc
        kind = _json_kind({type(v) for v in values})
        if kind:
            schema["type"] = kind
        return schema


def _typeddict_key_required(cls: type, name: str, hint: Any) -> bool:
    # Required[...] / NotRequired[...] decide; else the class' totality (__required_keys__ cannot see
    # them when annotations are strings, as with `from __future__ import annotations`).
    wrapper = getattr(typing.get_origin(hint), "_name", None)
    if wrapper in ("Required", "NotRequired"):
        return wrapper == "Required"
    return name in cls.__required_keys__  # type: ignore[attr-defined]


def _has_own_title(hint: Any) -> bool:
    # Like pydantic: fields whose type is a named definition (object, enum), optional or not, get no title.
    hint = _strip_annotated(hint)
    members = _union_members(hint)
    if members is not None:
        rest = [m for m in members if m is not _NONE]
        return len(rest) == 1 and len(members) == 2 and _has_own_title(rest[0])
    return (isinstance(hint, type) and issubclass(hint, enum.Enum)) or is_object_type(hint) or hint in (Image, History)


def _literal_schema(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"const": values[0]} if len(values) == 1 else {"enum": list(values)}
    kind = _json_kind({type(v) for v in values})
    if kind:
        schema["type"] = kind
    return schema


def _json_kind(kinds: set[type]) -> str | None:
    for python_type, name in ((str, "string"), (int, "integer"), (float, "number"), (bool, "boolean")):
        if kinds == {python_type}:
            return name
    return None


def _plain(value: Any) -> Any:
    """A default value as JSON-like Python (enums by value, dataclasses as dicts, tuples as lists)."""

    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
