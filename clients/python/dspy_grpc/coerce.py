"""Turning output values (JSON from the server) into the Python types a signature declares.

The server has already validated every output against its type, so this only changes the
representation: ``int`` fields give ``int``, ``float`` fields ``float`` (JSON has one number type),
tuples give ``tuple``, enums their member, dataclasses an instance, pydantic models
``model_validate(...)``, :class:`~dspy_grpc.Image` / :class:`~dspy_grpc.History` their helper
objects. TypedDicts stay dicts (with their values converted). A value that does not fit its type
raises :class:`OutputTypeError` (it means the program's signature differs from the one given here).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing
from typing import Any

from .typespec import History, Image, _is_pydantic_model, _is_typeddict, _strip_annotated, _union_members

__all__ = ["OutputTypeError", "coerce"]

_NONE = type(None)


class OutputTypeError(ValueError):
    """An output value does not fit the Python type its signature declares."""


def coerce(hint: Any, value: Any, path: str = "value") -> Any:
    """``value`` (plain JSON-like Python) as an instance of ``hint``."""

    hint = _strip_annotated(hint)
    if hint is Any:
        return value
    if value is None:
        if hint is _NONE or hint is None or _admits_none(hint):
            return None
        raise OutputTypeError(f"{path}: expected {_name(hint)}, got null")
    if hint is bool:
        return _expect(value, bool, path, hint)
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _expect(value, int, path, hint)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise OutputTypeError(f"{path}: expected float, got {_describe(value)}")
    if hint is str:
        return _expect(value, str, path, hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_member(hint, value, path)
    if hint in (datetime.datetime, datetime.date):
        try:
            return hint.fromisoformat(_expect(value, str, path, hint))
        except ValueError as error:
            raise OutputTypeError(f"{path}: {error}") from error
    if hint is Image:
        url = value.get("url") if isinstance(value, dict) else value
        return Image(_expect(url, str, path, hint))
    if hint is History:
        messages = value.get("messages") if isinstance(value, dict) else value
        return History(list(_expect(messages, list, path, hint)))
    if _is_pydantic_model(hint):
        try:
            return hint.model_validate(value)  # type: ignore[attr-defined]
        except ValueError as error:
            raise OutputTypeError(f"{path}: {error}") from error
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, path)
    if _is_typeddict(hint):
        data = _expect(value, dict, path, hint)
        hints = typing.get_type_hints(hint)
        return {key: coerce(hints.get(key, Any), item, f"{path}.{key}") for key, item in data.items()}
    members = _union_members(hint)
    if members is not None:
        return _union(members, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        for allowed in args:
            plain = allowed.value if isinstance(allowed, enum.Enum) else allowed
            if plain == value and isinstance(plain, bool) == isinstance(value, bool):
                return allowed
        raise OutputTypeError(f"{path}: {value!r} is not one of {list(args)!r}")
    if hint is list or origin is list:
        items = _expect(value, list, path, hint)
        item_hint = args[0] if args else Any
        return [coerce(item_hint, item, f"{path}[{i}]") for i, item in enumerate(items)]
    if hint is dict or origin is dict:
        data = _expect(value, dict, path, hint)
        key_hint, value_hint = args if args else (Any, Any)
        return {_key(key_hint, key, path): coerce(value_hint, item, f"{path}.{key}") for key, item in data.items()}
    if hint is tuple or origin is tuple:
        items = _expect(value, list, path, hint)
        if not args:
            return tuple(items)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], item, f"{path}[{i}]") for i, item in enumerate(items))
        if len(items) != len(args):
            raise OutputTypeError(f"{path}: expected {len(args)} items, got {len(items)}")
        return tuple(coerce(a, item, f"{path}[{i}]") for i, (a, item) in enumerate(zip(args, items)))
    raise OutputTypeError(f"{path}: cannot convert to {_name(hint)}")


def _admits_none(hint: Any) -> bool:
    members = _union_members(hint)
    return members is not None and _NONE in members


def _expect(value: Any, kind: type, path: str, hint: Any) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise OutputTypeError(f"{path}: expected {_name(hint)}, got {_describe(value)}")


def _enum_member(cls: type[enum.Enum], value: Any, path: str) -> enum.Enum:
    for member in cls:
        if member.value == value:
            return member
    if isinstance(value, str) and value in cls.__members__:
        return cls[value]
    raise OutputTypeError(f"{path}: {value!r} is not a value of {cls.__name__}")


def _dataclass(cls: type, value: Any, path: str) -> Any:
    data = _expect(value, dict, path, cls)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise OutputTypeError(f"{path}: unexpected field(s) {sorted(unknown)} for {cls.__name__}")
    kwargs = {key: coerce(hints.get(key, Any), item, f"{path}.{key}") for key, item in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise OutputTypeError(f"{path}: {error}") from error


def _union(members: tuple[Any, ...], value: Any, path: str) -> Any:
    # Prefer a member whose JSON kind matches exactly (an int stays an int in int | float).
    errors = []
    for strict in (True, False):
        for member in members:
            if member is _NONE:
                continue
            if strict and not _same_kind(_strip_annotated(member), value):
                continue
            try:
                return coerce(member, value, path)
            except OutputTypeError as error:
                errors.append(str(error))
    raise OutputTypeError(f"{path}: {value!r} fits none of the union's members ({'; '.join(errors)})")


def _same_kind(hint: Any, value: Any) -> bool:
    if hint in (bool, int, float, str):
        return type(value) is hint
    return True


def _key(hint: Any, key: str, path: str) -> Any:
    hint = _strip_annotated(hint)
    if hint in (int, float):
        try:
            return hint(key)
        except ValueError:
            raise OutputTypeError(f"{path}: key {key!r} is not {_name(hint)}") from None
    return coerce(hint, key, f"{path} key")


def _describe(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)
