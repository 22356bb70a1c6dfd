"""DSPy's XMLAdapter: each field wrapped in ``<name>...</name>``; structured outputs as nested XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any, Mapping
from xml.sax.saxutils import quoteattr

import pydantic

from ..core.errors import ParseError
from ..core.signature import Field, Role, Signature
from ..core.types import TypeKind, TypeSpec
from ..core.values import json_schema_for, parse_output_value, to_jsonable, type_adapter
from .base import apply_output_defaults, format_value, placeholder, render_jsonable
from .chat import STRUCTURE_INTRO, ChatAdapter

_RICH = (TypeKind.IMAGE, TypeKind.HISTORY, TypeKind.TOOL_CALLS, TypeKind.CODE)


def uses_nested_xml(spec: TypeSpec) -> bool:
    """Whether an output of this type is written as nested XML elements rather than text."""
    if spec.kind == TypeKind.OPTIONAL and spec.args[0].kind != TypeKind.UNION:
        spec = spec.args[0]
    if spec.kind == TypeKind.LIST:
        item = spec.args[0] if spec.args else None
        return not (item is not None and item.kind in _RICH)
    if spec.kind in _RICH:
        return False
    return spec.kind in (TypeKind.DICT, TypeKind.OBJECT)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def value_to_xml(value: Any, tag: str, key: str | None = None) -> str:
    attrs = f" key={quoteattr(key)}" if key is not None else ""
    if isinstance(value, list):
        children = "".join(value_to_xml(item, "item") for item in value)
        return f"<{tag}{attrs}>{children}</{tag}>" if children else f"<{tag}{attrs} />"
    if isinstance(value, dict):
        parts = []
        for name, child in value.items():
            name = str(name)
            ok = (name[:1] + name[1:].replace("-", "_").replace(".", "_")).isidentifier()
            parts.append(value_to_xml(child, name) if ok else value_to_xml(child, "entry", name))
        return f"<{tag}{attrs}>{''.join(parts)}</{tag}>"
    if value is None:
        return f"<{tag}{attrs} />"
    return f"<{tag}{attrs}>{_escape(str(value))}</{tag}>"


def _schema_to_xml(tag: str, schema: dict, defs: dict, seen: frozenset[str]) -> str:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return f"<{tag}>...</{tag}>"
        return _schema_to_xml(tag, defs[name], defs, seen | {name})
    choices = schema.get("anyOf")
    if choices:
        chosen = next((s for s in choices if s.get("type") != "null"), choices[0])
        return _schema_to_xml(tag, chosen, defs, seen)
    if schema.get("type") == "array":
        return f"<{tag}>{_schema_to_xml('item', schema.get('items', {}), defs, seen)}</{tag}>"
    children = "".join(_schema_to_xml(n, c, defs, seen) for n, c in schema.get("properties", {}).items())
    return f"<{tag}>{children}</{tag}>" if children else f"<{tag}>...</{tag}>"


def xml_schema(tag: str, spec: TypeSpec) -> str:
    schema = json_schema_for(spec, by_alias=False)  # elements are named by attribute, as in DSPy
    return _schema_to_xml(tag, schema, schema.get("$defs", {}), frozenset())


def _group_children(element: ET.Element) -> dict[str, list[ET.Element]]:
    groups: dict[str, list[ET.Element]] = defaultdict(list)
    for child in element:
        groups[child.attrib.get("key", child.tag) if child.tag == "entry" else child.tag].append(child)
    return groups


def _elements_to_value(elements: list[ET.Element], schema: dict, defs: dict) -> Any:
    schema = defs.get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
    choices = schema.get("anyOf")
    if choices:
        if {"type": "null"} in choices and not list(elements[0]) and not (elements[0].text or "").strip():
            return None
        choices = [c for c in choices if c.get("type") != "null"]
        schema = choices[0]
        if list(elements[0]):
            schema = next((c for c in choices if c.get("type") != "string"), schema)
    if schema.get("type") == "array":
        if len(elements) == 1 and not list(elements[0]):
            text = (elements[0].text or "").strip()
            if not text or text.startswith("["):
                return [] if not text else text
        if len(elements) == 1:
            items = _group_children(elements[0]).get("item")
            if items:
                elements = items
        return [_elements_to_value([e], schema.get("items", {}), defs) for e in elements]
    element = elements[0]
    if schema.get("type") == "string" and list(element):
        return (element.text or "") + "".join(ET.tostring(c, encoding="unicode") for c in element)
    children = _group_children(element)
    if not children:
        if schema.get("type") == "object" and not (element.text or "").strip():
            return {}
        texts = [(e.text or "").strip() for e in elements]
        return texts[0] if len(texts) == 1 else texts
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", {})
    if not isinstance(extra, dict):
        extra = {}
    return {name: _elements_to_value(items, props.get(name, extra), defs) for name, items in children.items()}


class XMLAdapter(ChatAdapter):
    """Fields as XML elements; lists, dicts and objects in outputs as nested elements."""

    name = "xml"

    def _fields_xml(self, fields: list[tuple[Field, Any]], placeholders: bool = False) -> str:
        out = []
        for f, value in fields:
            if placeholders:
                out.append(f"<{f.name}>\n{value}\n</{f.name}>")
                continue
            jsonable = render_jsonable(f.type, value)
            is_output = f.role == Role.OUTPUT
            if is_output and uses_nested_xml(f.type) and isinstance(jsonable, (dict, list)):
                out.append(value_to_xml(jsonable, f.name))
                continue
            text = format_value(f.type, value)
            if is_output and f.type.kind == TypeKind.STR:
                text = _escape(text)
            out.append(f"<{f.name}>\n{text}\n</{f.name}>")
        return "\n\n".join(out).strip()

    def field_structure(self, signature: Signature) -> str:
        def one(f: Field) -> str:
            if f.role == Role.OUTPUT and uses_nested_xml(f.type):
                return xml_schema(f.name, f.type)
            return self._fields_xml([(f, placeholder(f))], placeholders=True)

        groups = ("\n\n".join(one(f) for f in group) for group in (signature.input_fields, signature.output_fields))
        return "\n\n".join((STRUCTURE_INTRO, *groups))

    def user_content(self, signature: Signature, values: Mapping[str, Any], prefix: str = "", suffix: str = "",
                     main_request: bool = False) -> str:
        fields = [(f, values[f.name]) for f in signature.input_fields if f.name in values]
        parts = [prefix, self._fields_xml(fields)]
        if main_request:
            parts.append(self.output_requirements(signature))
        return "\n\n".join((*parts, suffix)).strip()

    def assistant_content(self, signature: Signature, values: Mapping[str, Any], missing: str | None = None) -> str:
        return self._fields_xml([(f, values.get(f.name, missing)) for f in signature.output_fields])

    def output_requirements(self, signature: Signature) -> str:
        names = ", then ".join(f"`<{f.name}>`" for f in signature.output_fields)
        schemas = [xml_schema(f.name, f.type) for f in signature.output_fields if uses_nested_xml(f.type)]
        text = f"Respond with the corresponding output fields wrapped in XML tags {names}."
        if schemas:
            text += f" Use this nested XML structure: {' '.join(schemas)}"
        return text

    def parse(self, signature: Signature, completion: str) -> dict[str, Any]:
        try:
            root = ET.fromstring(f"<dspy_root>{completion}</dspy_root>")
        except ET.ParseError as exc:
            raise ParseError(f"Failed to parse XML: {exc}", adapter="XMLAdapter", completion=completion) from None
        elements = _group_children(root)
        values: dict[str, Any] = {}
        for f in signature.output_fields:
            if f.name not in elements:
                continue
            schema = json_schema_for(f.type, by_alias=False)
            error: Exception | None = None
            value = None
            for candidate in [schema, *schema.get("anyOf", [])]:
                try:
                    value = _elements_to_value(elements[f.name], candidate, schema.get("$defs", {}))
                    try:
                        parsed = parse_output_value(f.type, value)
                    except pydantic.ValidationError:
                        parsed = type_adapter(f.type).validate_python(value, by_name=True)
                    values[f.name] = to_jsonable(f.type, parsed)
                    break
                except ValueError as exc:
                    error = exc
            else:
                raise ParseError(f"Failed to parse field {f.name} with value {value}: {error}",
                                 adapter="XMLAdapter", completion=completion)
        values = apply_output_defaults(signature, values)
        missing = [f.name for f in signature.output_fields if f.name not in values]
        if missing:
            raise ParseError(f"The LM response is missing the output fields {', '.join(missing)}.",
                             adapter="XMLAdapter", completion=completion)
        return values
