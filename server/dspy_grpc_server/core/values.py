"""Checking and coercing values against a :class:`~dspy_grpc_server.core.types.TypeSpec`.

Values travel as JSON (str, int, float, bool, None, lists and dicts). Validation uses pydantic's lax mode,
the same rules DSPy applies when it parses an LM's answer, so ``"3"`` becomes ``3`` for an ``int`` field,
objects are checked against their JSON schema, and so on. Every function here is pure.
"""

from __future__ import annotations

import ast
import datetime
import enum
import json
import re
import types as _pytypes
from functools import lru_cache
from typing import Any, ForwardRef, Literal, Optional, Union, get_args, get_origin

import json_repair
import pydantic
from pydantic import TypeAdapter

from .types import TypeKind, TypeSpec

# ---------------------------------------------------------------------------------------------------------
# Built-in rich types (their names and JSON schemas match DSPy's so prompts render identically)


class Image(pydantic.BaseModel):
    """An image given by URL or data URI."""

    model_config = pydantic.ConfigDict(extra="forbid", title="Image")
    url: str


Image.__doc__ = None  # keep the JSON schema free of a description, like DSPy's


class History(pydantic.BaseModel):
    """Earlier turns of a conversation: each message is a dict keyed by signature field names."""

    model_config = pydantic.ConfigDict(extra="forbid", title="History")
    messages: list[dict[str, Any]]


class ToolCall(pydantic.BaseModel):
    id: str | None = None
    name: str
    args: dict[str, Any] = pydantic.Field(json_schema_extra={"additionalProperties": True})

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(super().__get_pydantic_json_schema__(core_schema, handler))
        schema.get("properties", {}).pop("id", None)
        schema.pop("description", None)
        if "required" in schema:
            schema["required"] = [r for r in schema["required"] if r != "id"]
        return schema


ToolCall.__doc__ = None


class ToolCalls(pydantic.BaseModel):
    tool_calls: list[ToolCall]

    @pydantic.model_validator(mode="before")
    @classmethod
    def _accept_shorthands(cls, data: Any) -> Any:
        if isinstance(data, list) and all(isinstance(i, dict) and "name" in i for i in data):
            return {"tool_calls": [_normalize_call(i) for i in data]}
        if isinstance(data, dict):
            if "tool_calls" in data and isinstance(data["tool_calls"], list):
                return {"tool_calls": [_normalize_call(i) if isinstance(i, dict) else i for i in data["tool_calls"]]}
            if "name" in data and "tool_calls" not in data:
                return {"tool_calls": [_normalize_call(data)]}
        if isinstance(data, (ToolCalls,)):
            return data
        raise ValueError(f"Received invalid value for `ToolCalls`: {data}")


ToolCalls.__doc__ = None


def _normalize_call(item: dict[str, Any]) -> dict[str, Any]:
    out = {"name": item.get("name"), "args": item.get("args", item.get("arguments", {}))}
    if isinstance(out["args"], str):
        out["args"] = json_repair.loads(out["args"]) or {}
    if item.get("id") is not None:
        out["id"] = item["id"]
    return out


TOOL_CALLS_DESCRIPTION = (
    "Tool calls must be a JSON object with `tool_calls`, a list of calls. "
    "Each call must include `name` and `args`. "
    'Example: {"tool_calls": [{"name": "search", "args": {"query": "cats"}}]}'
)


def extract_code(text: str) -> str:
    """The code inside a markdown code block in ``text`` (or ``text`` itself if there is none)."""
    m = re.search(r"```(?:[^\n]*)\n(.*?)```", text, re.DOTALL)
    if m:
        return m.group(1).strip()
    m = re.search(r"```(.*?)```", text, re.DOTALL)
    if m:
        return m.group(1).strip()
    return text


class _CodeBase(pydantic.BaseModel):
    code: str

    @pydantic.model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, _CodeBase):
            return data
        if isinstance(data, str):
            return {"code": extract_code(data)}
        if isinstance(data, dict):
            if "code" not in data:
                raise ValueError("`code` field is required for `Code`")
            if not isinstance(data["code"], str):
                raise ValueError(f"`code` field must be a string, but received type: {type(data['code'])}")
            return {"code": extract_code(data["code"])}
        raise ValueError(f"Received invalid value for `Code`: {data}")


@lru_cache(maxsize=None)
def code_class(language: str) -> type[pydantic.BaseModel]:
    """The model class for ``Code[language]`` (named ``Code_<language>`` as in DSPy; a bare ``Code``
    for no language)."""
    model = pydantic.create_model(f"Code_{language}" if language else "Code", __base__=_CodeBase)
    model.__doc__ = None
    return model


def code_description(language: str) -> str:
    """The type description DSPy shows for ``Code[language]`` fields."""
    return (
        "Code represented in a string, specified in the `code` field. If this is an output field, the code "
        f"field should follow the markdown code block format, e.g. \n```{language.lower()}\n{{code}}\n```"
        f"\nProgramming language: {language}"
    )


# ---------------------------------------------------------------------------------------------------------
# TypeSpec -> Python annotation (cached; used for validation and JSON schemas)

_JSON_SCALAR = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
_CONSTRAINT_KEYS = {
    "minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt",
    "minLength": "min_length", "maxLength": "max_length", "minItems": "min_length", "maxItems": "max_length",
    "multipleOf": "multiple_of", "pattern": "pattern",
}


def annotation_for(spec: TypeSpec) -> Any:
    """The Python/pydantic annotation equivalent to ``spec`` (built once per spec)."""
    return _annotation_cached(spec)


@lru_cache(maxsize=4096)
def _annotation_cached(spec: TypeSpec) -> Any:
    k = spec.kind
    if k == TypeKind.STR:
        return str
    if k == TypeKind.INT:
        return int
    if k == TypeKind.FLOAT:
        return float
    if k == TypeKind.BOOL:
        return bool
    if k == TypeKind.ANY:
        return Any
    if k == TypeKind.DATETIME:
        return datetime.datetime
    if k == TypeKind.DATE:
        return datetime.date
    if k == TypeKind.IMAGE:
        return Image
    if k == TypeKind.HISTORY:
        return History
    if k == TypeKind.TOOL_CALLS:
        return ToolCalls
    if k == TypeKind.CODE:
        return code_class(spec.language)
    if k == TypeKind.LIST:
        return list[annotation_for(spec.args[0])] if spec.args else list
    if k == TypeKind.DICT:
        return dict[annotation_for(spec.args[0]), annotation_for(spec.args[1])] if spec.args else dict
    if k == TypeKind.TUPLE and spec.variadic:
        return tuple[annotation_for(spec.args[0]), ...]
    if k == TypeKind.TUPLE:
        return tuple[tuple(annotation_for(a) for a in spec.args)] if spec.args else tuple
    if k == TypeKind.LITERAL:
        return Literal[spec.values]  # type: ignore[valid-type]
    if k == TypeKind.OPTIONAL:
        return Optional[annotation_for(spec.args[0])]
    if k == TypeKind.UNION:
        return Union[tuple(annotation_for(a) for a in spec.args)]
    if k == TypeKind.ENUM:
        return _make_enum(spec.name or "Enum", spec.values, spec.member_names, None)
    if k == TypeKind.OBJECT:
        schema = dict(spec.json_schema or {"type": "object", "properties": {}})
        return _SchemaModels(schema.get("$defs", {})).top(spec.name or schema.get("title", "Model"), schema)
    raise ValueError(f"unknown type kind {k}")


def _make_enum(name: str, values: tuple[Any, ...], names: tuple[str, ...], doc: str | None) -> type[enum.Enum]:
    member_names = list(names) if len(names) == len(values) else [
        (v if isinstance(v, str) and v.isidentifier() else f"V{i}") for i, v in enumerate(values)
    ]
    cls = enum.Enum(name, list(zip(member_names, values)))
    cls.__doc__ = doc
    return cls



def _no_value() -> None:
    """The value of an optional object property the caller left out and whose schema has no default."""

    return None

#: JSON schema keyword naming the Python attribute of a property whose name in the schema is an alias
#: (a pydantic ``Field(alias=...)``). DSPy shows the alias in schemas and the attribute name in values.
ATTRIBUTE_KEY = "x-python-name"


class _SchemaModels:
    """Builds pydantic models from a pydantic-produced JSON schema (so they regenerate the same schema)."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.built: dict[str, Any] = {}
        self.building: set[str] = set()
        self.recursive = False

    def top(self, name: str, schema: dict[str, Any]) -> type[pydantic.BaseModel]:
        """The model of a whole schema. A recursive model's schema is a ``$ref`` into ``$defs`` (pydantic
        writes it so); its self-references are resolved once every model is built."""
        if "$ref" in schema and "properties" not in schema:
            model = self.annotation({"$ref": schema["$ref"]})
        else:
            model = self.model(name, schema)
        if self.recursive:
            for built in self.built.values():
                if isinstance(built, type) and issubclass(built, pydantic.BaseModel):
                    built.model_rebuild(_types_namespace=dict(self.built))
        return model

    def model(self, name: str, schema: dict[str, Any]) -> type[pydantic.BaseModel]:
        fields: dict[str, Any] = {}
        required = set(schema.get("required", []))
        for prop, sub in schema.get("properties", {}).items():
            ann = self.annotation(sub)
            kwargs: dict[str, Any] = {}
            if "title" in sub:
                kwargs["title"] = sub["title"]
            if "description" in sub:
                kwargs["description"] = sub["description"]
            for key, arg in _CONSTRAINT_KEYS.items():
                if key in sub:
                    kwargs[arg] = sub[key]
            extra = {k: v for k, v in sub.items() if k in ("examples",)}
            if extra:
                kwargs["examples"] = extra["examples"]
            attribute = sub.get(ATTRIBUTE_KEY)
            alias_ok = prop.isidentifier() and not prop.startswith("_") and not attribute
            if not alias_ok:
                kwargs["alias"] = prop
            if prop in required:
                field = pydantic.Field(..., **kwargs)
            elif "default" in sub:
                field = pydantic.Field(sub["default"], **kwargs)
            else:  # optional without a JSON default (e.g. a default_factory): the schema shows none either
                field = pydantic.Field(default_factory=_no_value, **kwargs)
            fields[prop if alias_ok else attribute or f"f_{len(fields)}"] = (ann, field)
        config = pydantic.ConfigDict(title=schema.get("title", name))
        if schema.get("additionalProperties") is False:
            config["extra"] = "forbid"
        model = pydantic.create_model(name, __config__=config, **fields)
        model.__doc__ = schema.get("description")
        return model

    def annotation(self, sub: dict[str, Any]) -> Any:
        if "$ref" in sub:
            ref = sub["$ref"].rsplit("/", 1)[-1]
            if ref in self.building:  # a model that contains itself: a forward reference, resolved in top()
                self.recursive = True
                return ForwardRef(ref)
            if ref not in self.built:
                target = self.defs.get(ref, {})
                if "enum" in target:
                    self.built[ref] = _make_enum(ref, tuple(target["enum"]), (), target.get("description"))
                else:
                    self.building.add(ref)
                    try:
                        self.built[ref] = self.model(ref, target)
                    finally:
                        self.building.discard(ref)
            return self.built[ref]
        if "anyOf" in sub:
            members = tuple(self.annotation(s) for s in sub["anyOf"])
            return Union[members] if len(members) > 1 else members[0]
        if "const" in sub:
            return Literal[sub["const"]]
        if "enum" in sub:
            return Literal[tuple(sub["enum"])]
        t = sub.get("type")
        if t == "array":
            if "prefixItems" in sub:
                return tuple[tuple(self.annotation(s) for s in sub["prefixItems"])]
            return list[self.annotation(sub["items"])] if "items" in sub else list
        if t == "object":
            if "properties" in sub:
                return self.model(sub.get("title", "Object"), sub)
            add = sub.get("additionalProperties")
            return dict[str, self.annotation(add)] if isinstance(add, dict) else dict[str, Any]
        if isinstance(t, str) and t in _JSON_SCALAR:
            return _JSON_SCALAR[t]
        return Any


@lru_cache(maxsize=4096)
def type_adapter(spec: TypeSpec) -> TypeAdapter:
    return TypeAdapter(annotation_for(spec))


def json_schema_for(spec: TypeSpec, *, by_alias: bool = True) -> dict[str, Any]:
    """The JSON schema pydantic produces for the type (what DSPy shows the LM); ``by_alias=False``
    names aliased properties by their attributes (as DSPy's XML structure does)."""
    return type_adapter(spec).json_schema(by_alias=by_alias)


def allows_none(spec: TypeSpec) -> bool:
    """Whether the type admits None (``Optional[...]`` or a union with None), as DSPy decides it."""
    return spec.kind == TypeKind.OPTIONAL or (
        spec.kind == TypeKind.UNION and any(allows_none(a) for a in spec.args))


# ---------------------------------------------------------------------------------------------------------
# Validation and coercion


class ValueCheckError(ValueError):
    """A value does not fit a type; the message says what was expected."""


def to_jsonable(spec: TypeSpec, value: Any) -> Any:
    """A validated Python value as plain JSON (enums as values, models as dicts, tuples as lists...)."""
    if spec.kind == TypeKind.IMAGE and isinstance(value, Image):
        return value.url
    if spec.kind == TypeKind.CODE and isinstance(value, pydantic.BaseModel):
        return value.code  # type: ignore[attr-defined]
    if spec.kind == TypeKind.TOOL_CALLS and isinstance(value, ToolCalls):
        return {"tool_calls": [{"name": c.name, "args": c.args} | ({"id": c.id} if c.id else {})
                               for c in value.tool_calls]}
    return type_adapter(spec).dump_python(value, mode="json", by_alias=True)


@lru_cache(maxsize=4096)
def has_aliases(spec: TypeSpec) -> bool:
    """Whether an object type (at any depth) names a property by an alias (see :data:`ATTRIBUTE_KEY`)."""
    if spec.json_schema is not None and ATTRIBUTE_KEY in json.dumps(spec.json_schema):
        return True
    return any(has_aliases(arg) for arg in spec.args)


def with_attribute_names(spec: TypeSpec, value: Any) -> Any:
    """A value keyed by aliases, keyed by attribute names instead: how DSPy renders a model instance."""
    try:
        return type_adapter(spec).dump_python(type_adapter(spec).validate_python(value), mode="json")
    except (pydantic.ValidationError, ValueError):
        return value


def coerce_input(spec: TypeSpec, value: Any) -> Any:
    """Validate an input value (lax, as pydantic does) and return its JSON form; raises ValueCheckError."""
    if spec.kind == TypeKind.STR:
        if isinstance(value, str):
            return value
        if isinstance(value, list):  # DSPy renders a list given to a str field as a numbered list
            return value
        if isinstance(value, dict):  # ... and an object as its JSON (e.g. a retriever's {text: score})
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise ValueCheckError(f"expected a string, got {_describe(value)}")
    if spec.kind == TypeKind.IMAGE:
        url = value.get("url") if isinstance(value, dict) and set(value) == {"url"} else value
        if not isinstance(url, str) or not (url.startswith("data:") or _is_url(url)):
            raise ValueCheckError("expected an image URL (http/https/gs) or data URI string, or {\"url\": ...}")
        return url
    if spec.kind == TypeKind.LIST and spec.args and spec.args[0].kind == TypeKind.IMAGE and isinstance(value, list):
        return [coerce_input(spec.args[0], v) for v in value]
    if spec.kind == TypeKind.OPTIONAL and value is None:
        return None
    if spec.kind == TypeKind.OPTIONAL:
        return coerce_input(spec.args[0], value)
    try:
        validated = type_adapter(spec).validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValueCheckError(f"expected {_expected(spec)}: {_first_error(exc)}") from None
    except ValueError as exc:
        raise ValueCheckError(f"expected {_expected(spec)}: {exc}") from None
    return to_jsonable(spec, validated)


_AS_GIVEN_KINDS = frozenset({
    TypeKind.STR, TypeKind.INT, TypeKind.FLOAT, TypeKind.BOOL, TypeKind.ANY, TypeKind.LITERAL,
    TypeKind.LIST, TypeKind.DICT, TypeKind.TUPLE, TypeKind.OPTIONAL, TypeKind.UNION,
})


def renders_as_given(spec: TypeSpec) -> bool:
    """Whether DSPy renders a value of this type exactly as the caller gave it: plain JSON types and
    containers of them (a ``list[int]`` given ``["1", "2"]`` renders ``["1", "2"]``). Values of
    classes (objects, enums, images, code, history, tool calls) render as the validated instance."""

    return spec.kind in _AS_GIVEN_KINDS and all(renders_as_given(arg) for arg in spec.args)


def input_as_rendered(spec: TypeSpec, given: Any, coerced: Any) -> Any:
    """The value of a checked input (or demo) that the prompt shows: what the caller gave where DSPy
    renders that, else the coerced value (see :func:`renders_as_given`)."""

    return given if renders_as_given(spec) else coerced


def _is_url(text: str) -> bool:
    return bool(re.match(r"^(https?|gs)://\S+$", text))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _expected(spec: TypeSpec) -> str:
    from .types import format_type

    return format_type(spec)


def _first_error(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    e = errors[0]
    loc = ".".join(str(p) for p in e.get("loc", ()))
    return f"{loc + ': ' if loc else ''}{e.get('msg', '')}"


def find_enum_member(enum_cls: type[enum.Enum], identifier: Any) -> enum.Enum:
    for member in enum_cls:
        if member.value == identifier:
            return member
    if isinstance(identifier, str) and identifier in enum_cls.__members__:
        return enum_cls[identifier]
    raise ValueError(f"{identifier} is not a valid name or value for the enum {enum_cls.__name__}")


def parse_output_value(spec: TypeSpec, value: Any) -> Any:
    """Interpret an LM-produced value (text, or JSON from a JSON answer) as ``spec``; returns the
    validated Python value (see :func:`to_jsonable`). Raises ValueError (incl. pydantic's) when it does not fit.

    Follows DSPy 3.4.1's rules: strings pass through for ``str``; enums match by value then name;
    Literals tolerate quotes and ``Literal[...]`` wrappers; other text is read as JSON (repaired), then as
    a Python literal, then validated.
    """
    annotation = annotation_for(spec)
    if spec.kind == TypeKind.STR:
        return str(value)
    if spec.kind == TypeKind.ENUM:
        return find_enum_member(annotation, value)
    if spec.kind == TypeKind.LITERAL:
        allowed = spec.values
        if value in allowed:
            return value
        if isinstance(value, str):
            v = value.strip()
            if v.startswith(("Literal[", "str[")) and v.endswith("]"):
                v = v[v.find("[") + 1:-1]
            if len(v) > 1 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            if v in allowed:
                return v
            value = v
    adapter = type_adapter(spec)
    if not isinstance(value, str):
        return adapter.validate_python(value)
    if get_origin(annotation) in (Union, _pytypes.UnionType):
        members = get_args(annotation)
        if type(None) in members and str in members:
            return adapter.validate_python(value)
    candidate = json_repair.loads(value)
    if candidate == "" and value != "":
        try:
            candidate = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            candidate = value
    try:
        return adapter.validate_python(candidate)
    except pydantic.ValidationError:
        if spec.kind in (TypeKind.IMAGE, TypeKind.HISTORY, TypeKind.TOOL_CALLS, TypeKind.CODE):
            return adapter.validate_python(value)
        raise


def loads_json_with_repair(text: str) -> Any:
    """JSON from possibly broken LM text (``""`` when nothing can be recovered), via json_repair."""
    return json_repair.loads(text)


def dumps(value: Any) -> str:
    """``json.dumps`` the way DSPy renders structured values (non-ASCII kept as is)."""
    return json.dumps(value, ensure_ascii=False)
