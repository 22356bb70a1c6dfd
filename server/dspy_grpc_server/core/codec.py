"""Plain-JSON forms of the core types, for persistence (never for the wire: that is api/'s job).

Every ``*_to_dict`` writes only what differs from the defaults, and its ``*_from_dict`` inverse
accepts exactly that, so stored specs stay small and readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .example import Example
from .signature import Field, Role, Signature
from .types import TypeKind, TypeSpec


def type_to_dict(spec: TypeSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": spec.kind.value}
    if spec.args:
        out["args"] = [type_to_dict(arg) for arg in spec.args]
    if spec.values:
        out["values"] = list(spec.values)
    if spec.name:
        out["name"] = spec.name
    if spec.json_schema is not None:
        out["json_schema"] = dict(spec.json_schema)
    if spec.language:
        out["language"] = spec.language
    if spec.member_names:
        out["member_names"] = list(spec.member_names)
    if spec.none_first:
        out["none_first"] = True
    if spec.variadic:
        out["variadic"] = True
    return out


def type_from_dict(data: Mapping[str, Any]) -> TypeSpec:
    return TypeSpec(
        kind=TypeKind(data["kind"]),
        args=tuple(type_from_dict(arg) for arg in data.get("args", ())),
        values=tuple(data.get("values", ())),
        name=data.get("name", ""),
        json_schema=data.get("json_schema"),
        language=data.get("language", ""),
        member_names=tuple(data.get("member_names", ())),
        none_first=bool(data.get("none_first", False)),
        variadic=bool(data.get("variadic", False)),
    )


def field_to_dict(item: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": item.name, "role": item.role.value, "type": type_to_dict(item.type)}
    if item.description is not None:
        out["description"] = item.description
    if item.prefix is not None:
        out["prefix"] = item.prefix
    if item.constraints:
        out["constraints"] = dict(item.constraints)
    if item.has_default:
        out["default"] = item.default
    return out


def field_from_dict(data: Mapping[str, Any]) -> Field:
    return Field(
        name=data["name"],
        role=Role(data["role"]),
        type=type_from_dict(data["type"]),
        description=data.get("description"),
        prefix=data.get("prefix"),
        constraints=dict(data.get("constraints", {})),
        default=data.get("default"),
        has_default="default" in data,
    )


def signature_to_dict(signature: Signature) -> dict[str, Any]:
    out: dict[str, Any] = {"fields": [field_to_dict(item) for item in signature.fields]}
    if signature.instructions is not None:
        out["instructions"] = signature.instructions
    return out


def signature_from_dict(data: Mapping[str, Any]) -> Signature:
    return Signature(
        fields=tuple(field_from_dict(item) for item in data["fields"]),
        instructions=data.get("instructions"),
    )


def example_to_dict(example: Example) -> dict[str, Any]:
    out: dict[str, Any] = {"data": dict(example.data)}
    if example.input_keys:
        out["input_keys"] = list(example.input_keys)
    if example.augmented:
        out["augmented"] = True
    return out


def example_from_dict(data: Mapping[str, Any]) -> Example:
    return Example(
        data=dict(data.get("data", {})),
        input_keys=tuple(data.get("input_keys", ())),
        augmented=bool(data.get("augmented", False)),
    )
