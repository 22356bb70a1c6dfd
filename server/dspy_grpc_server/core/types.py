"""The type system of signature fields.

A field's type is a :class:`TypeSpec`: a small, immutable, JSON-friendly description of what values the
field holds (``str``, ``list[int]``, ``Literal['a', 'b']``, a pydantic-style object with a JSON schema,
an image, a conversation history...). :func:`parse_type` reads the Python-like annotation syntax DSPy
uses in string signatures and :func:`format_type` writes it back.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from .errors import invalid


class TypeKind(str, Enum):
    """The kinds of field types; values are the lower-case names used on the wire."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    LIST = "list"
    DICT = "dict"
    TUPLE = "tuple"
    LITERAL = "literal"
    ENUM = "enum"
    OBJECT = "object"
    OPTIONAL = "optional"
    UNION = "union"
    IMAGE = "image"
    HISTORY = "history"
    TOOL_CALLS = "tool_calls"
    CODE = "code"
    ANY = "any"
    DATETIME = "datetime"
    DATE = "date"


@dataclass(frozen=True)
class TypeSpec:
    """What values a field holds.

    ``args`` holds the element types (``list[T]`` -> ``(T,)``, ``dict[K, V]`` -> ``(K, V)``, a tuple's item
    types, ``Optional[T]`` -> ``(T,)``, a union's members). ``values`` lists the allowed values of a
    ``Literal`` or an enum; ``member_names`` optionally gives an enum's member names (parallel to
    ``values``). ``name`` is the model/enum class name and ``json_schema`` an object's JSON schema (as
    pydantic's ``model_json_schema()`` produces it). ``language`` is a code field's language (none: a
    bare ``Code``). ``none_first`` marks an optional type written with None first (``None | int``), and
    ``variadic`` a ``tuple[T, ...]`` (``args`` holds T).
    """

    kind: TypeKind
    args: tuple["TypeSpec", ...] = ()
    values: tuple[Any, ...] = ()
    name: str = ""
    json_schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    language: str = ""
    member_names: tuple[str, ...] = ()
    none_first: bool = False
    variadic: bool = False

    # JSON schemas are dicts (unhashable); equality compares their canonical JSON form instead.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TypeSpec):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.args == other.args
            and self.values == other.values
            and self.name == other.name
            and self.language == other.language
            and self.member_names == other.member_names
            and self.none_first == other.none_first
            and self.variadic == other.variadic
            and _schema_key(self.json_schema) == _schema_key(other.json_schema)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.args, self.values, self.name, self.language, self.member_names,
                     self.none_first, self.variadic, _schema_key(self.json_schema)))

    def __str__(self) -> str:
        return format_type(self)


def _schema_key(schema: Mapping[str, Any] | None) -> str:
    if schema is None:
        return ""
    import json

    return json.dumps(schema, sort_keys=True, default=str)


STR = TypeSpec(TypeKind.STR)
INT = TypeSpec(TypeKind.INT)
FLOAT = TypeSpec(TypeKind.FLOAT)
BOOL = TypeSpec(TypeKind.BOOL)
ANY = TypeSpec(TypeKind.ANY)
IMAGE = TypeSpec(TypeKind.IMAGE)
HISTORY = TypeSpec(TypeKind.HISTORY)
TOOL_CALLS = TypeSpec(TypeKind.TOOL_CALLS)
DATETIME = TypeSpec(TypeKind.DATETIME)
DATE = TypeSpec(TypeKind.DATE)


def list_of(item: TypeSpec) -> TypeSpec:
    """``list[item]``."""
    return TypeSpec(TypeKind.LIST, (item,))


def dict_of(key: TypeSpec, value: TypeSpec) -> TypeSpec:
    """``dict[key, value]``."""
    return TypeSpec(TypeKind.DICT, (key, value))


def tuple_of(*items: TypeSpec) -> TypeSpec:
    """``tuple[items...]``."""
    return TypeSpec(TypeKind.TUPLE, tuple(items))


def optional(inner: TypeSpec, *, none_first: bool = False) -> TypeSpec:
    """``Optional[inner]`` (``inner | None``; ``None | inner`` with ``none_first``)."""
    return TypeSpec(TypeKind.OPTIONAL, (inner,), none_first=none_first)


def variadic_tuple(item: TypeSpec) -> TypeSpec:
    """``tuple[item, ...]``."""
    return TypeSpec(TypeKind.TUPLE, (item,), variadic=True)


def union(*members: TypeSpec) -> TypeSpec:
    """``Union[members...]`` (use :func:`optional` to admit ``None``)."""
    return TypeSpec(TypeKind.UNION, tuple(members))


def literal(*values: Any) -> TypeSpec:
    """``Literal[values...]``; values are JSON scalars."""
    return TypeSpec(TypeKind.LITERAL, values=tuple(values))


def enum_type(name: str, values: tuple[Any, ...] | list[Any], member_names: tuple[str, ...] | list[str] = ()) -> TypeSpec:
    """An ``Enum`` class called ``name`` with the given member values (and optionally member names)."""
    return TypeSpec(TypeKind.ENUM, values=tuple(values), name=name, member_names=tuple(member_names))


def object_type(name: str, json_schema: Mapping[str, Any]) -> TypeSpec:
    """A pydantic-model-like object type called ``name`` described by ``json_schema``."""
    return TypeSpec(TypeKind.OBJECT, name=name, json_schema=json_schema)


def code(language: str = "") -> TypeSpec:
    """``Code['language']``; no language: a bare ``Code`` (Python code, rendered ``Code`` as in DSPy)."""
    return TypeSpec(TypeKind.CODE, language=language)


# ---------------------------------------------------------------------------------------------------------
# Parsing the annotation syntax

_SIMPLE = {
    "str": STR,
    "int": INT,
    "float": FLOAT,
    "bool": BOOL,
    "Any": ANY,
    "Image": IMAGE,
    "History": HISTORY,
    "ToolCalls": TOOL_CALLS,
    "list": list_of(ANY),
    "List": list_of(ANY),
    "dict": dict_of(ANY, ANY),
    "Dict": dict_of(ANY, ANY),
    "tuple": TypeSpec(TypeKind.TUPLE),
    "Tuple": TypeSpec(TypeKind.TUPLE),
    "Code": code(),
    "datetime": DATETIME,
    "date": DATE,
}
_NONE = object()  # marker for `None` / `NoneType` while parsing
_ELLIPSIS = object()  # marker for `...` (only valid as `tuple[T, ...]`)


class _TypeSyntaxError(Exception):
    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.col = col


def parse_type(
    annotation: str,
    *,
    field_path: str = "type",
    names: Mapping[str, TypeSpec] | None = None,
    _col_offset: int = 0,
) -> TypeSpec:
    """Parse a Python-like type annotation such as ``"list[str]"`` or ``"Literal['a', 'b']"``.

    ``names`` maps extra type names (enums, objects) to their specs. Errors raise
    :class:`~dspy_grpc_server.core.errors.InvalidArgument` naming ``field_path`` and the offending token.
    """
    text = annotation.strip()
    if not text:
        raise invalid(field_path, "empty type annotation")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise invalid(field_path, f"invalid type annotation {annotation!r}: syntax error at column "
                      f"{col + 1 + _col_offset}") from None
    try:
        result = _convert(node, names or {})
    except _TypeSyntaxError as exc:
        raise invalid(field_path, f"{exc} at column {exc.col + 1 + _col_offset} of {annotation!r}") from None
    if result is _NONE:
        raise invalid(field_path, f"type {annotation!r} admits only None")
    return result


def _token(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - defensive
        return type(node).__name__


def _convert(node: ast.AST, names: Mapping[str, TypeSpec]) -> Any:
    col = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Constant) and node.value is None:
        return _NONE
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return _ELLIPSIS
    if isinstance(node, ast.Name):
        if node.id in ("None", "NoneType"):
            return _NONE
        if node.id in names:
            return names[node.id]
        if node.id in _SIMPLE:
            return _SIMPLE[node.id]
        raise _TypeSyntaxError(f"unknown type name {node.id!r}", col)
    if isinstance(node, ast.Attribute):
        # dspy.Image, typing.List, ... : the final attribute is the type name
        return _convert(ast.copy_location(ast.Name(id=node.attr), node), names)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _make_union([_convert(node.left, names), _convert(node.right, names)])
    if isinstance(node, ast.Subscript):
        base = node.value
        base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base_name == "Literal":
            values = []
            for item in items:
                if isinstance(item, ast.Constant) and isinstance(item.value, (str, int, float, bool)):
                    values.append(item.value)
                elif (isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub)
                      and isinstance(item.operand, ast.Constant) and isinstance(item.operand.value, (int, float))):
                    values.append(-item.operand.value)
                else:
                    raise _TypeSyntaxError(f"Literal values must be str, int, float or bool, got {_token(item)!r}",
                                           getattr(item, "col_offset", col))
            return literal(*values)
        if base_name == "Code":
            if len(items) != 1 or not (isinstance(items[0], ast.Constant) and isinstance(items[0].value, str)):
                raise _TypeSyntaxError("Code takes one language string, e.g. Code['python']", col)
            return code(items[0].value)
        args = [_convert(item, names) for item in items]
        if base_name in ("list", "List"):
            _arity(args, 1, base_name, col)
            return list_of(_no_none(args[0], col))
        if base_name in ("dict", "Dict"):
            _arity(args, 2, base_name, col)
            return dict_of(_no_none(args[0], col), _no_none(args[1], col))
        if base_name in ("tuple", "Tuple"):
            if len(args) == 2 and args[1] is _ELLIPSIS:
                return variadic_tuple(_no_none(args[0], col))
            return tuple_of(*(_no_none(a, col) for a in args))
        if base_name == "Optional":
            _arity(args, 1, base_name, col)
            return _make_union([args[0], _NONE])
        if base_name == "Union":
            return _make_union(args)
        raise _TypeSyntaxError(f"unsupported generic type {_token(base)!r}", col)
    raise _TypeSyntaxError(f"unsupported type expression {_token(node)!r}", col)


def _arity(args: list[Any], n: int, name: str, col: int) -> None:
    if len(args) != n:
        raise _TypeSyntaxError(f"{name}[...] takes {n} type argument{'s' if n > 1 else ''}, got {len(args)}", col)


def _no_none(arg: Any, col: int) -> TypeSpec:
    if arg is _NONE:
        raise _TypeSyntaxError("None is only allowed inside Optional[...] or a union", col)
    if arg is _ELLIPSIS:
        raise _TypeSyntaxError("... is only allowed as tuple[T, ...]", col)
    return arg


def _make_union(members: list[Any]) -> Any:
    flat: list[Any] = []
    for member in members:
        if isinstance(member, TypeSpec) and member.kind == TypeKind.OPTIONAL:
            parts = [member.args[0], _NONE]
        elif isinstance(member, TypeSpec) and member.kind == TypeKind.UNION:
            parts = list(member.args)
        else:
            parts = [member]
        for part in parts:
            if isinstance(part, TypeSpec) and part.kind == TypeKind.UNION:
                candidates = list(part.args)
            else:
                candidates = [part]
            for c in candidates:
                if c not in flat:
                    flat.append(c)
    has_none = _NONE in flat
    rest = [m for m in flat if m is not _NONE]
    if not rest:
        return _NONE
    inner = rest[0] if len(rest) == 1 else union(*rest)
    return optional(inner, none_first=flat[0] is _NONE) if has_none else inner


# ---------------------------------------------------------------------------------------------------------
# Writing it back

def format_type(t: TypeSpec) -> str:
    """Write ``t`` in the annotation syntax accepted by :func:`parse_type` (they round-trip)."""
    k = t.kind
    if k in (TypeKind.STR, TypeKind.INT, TypeKind.FLOAT, TypeKind.BOOL):
        return k.value
    if k == TypeKind.ANY:
        return "Any"
    if k in (TypeKind.DATETIME, TypeKind.DATE):
        return k.value
    if k == TypeKind.IMAGE:
        return "Image"
    if k == TypeKind.HISTORY:
        return "History"
    if k == TypeKind.TOOL_CALLS:
        return "ToolCalls"
    if k == TypeKind.CODE:
        return f"Code[{t.language!r}]" if t.language else "Code"
    if k == TypeKind.LIST:
        return f"list[{format_type(t.args[0])}]" if t.args else "list"
    if k == TypeKind.DICT:
        return f"dict[{format_type(t.args[0])}, {format_type(t.args[1])}]" if t.args else "dict"
    if k == TypeKind.TUPLE and t.variadic:
        return f"tuple[{format_type(t.args[0])}, ...]"
    if k == TypeKind.TUPLE:
        return f"tuple[{', '.join(format_type(a) for a in t.args)}]" if t.args else "tuple"
    if k == TypeKind.LITERAL:
        return f"Literal[{', '.join(repr(v) for v in t.values)}]"
    if k == TypeKind.OPTIONAL and t.none_first:
        return f"None | {format_type(t.args[0])}"
    if k == TypeKind.OPTIONAL:
        return f"Optional[{format_type(t.args[0])}]"
    if k == TypeKind.UNION:
        return f"Union[{', '.join(format_type(a) for a in t.args)}]"
    if k in (TypeKind.ENUM, TypeKind.OBJECT):
        return t.name
    raise ValueError(f"unknown type kind {k}")  # pragma: no cover
