"""DSPy's JSONAdapter: the LM answers with one JSON object keyed by output field names."""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping

import json_repair
import pydantic

from ..core.errors import ParseError
from ..core.signature import Field, Signature
from ..core.types import TypeKind
from ..core.values import annotation_for, parse_output_value, to_jsonable
from .base import annotation_name, apply_output_defaults, placeholder, render_jsonable
from .chat import STRUCTURE_INTRO, ChatAdapter

RESPONSE_MODEL_NAME = "DSPyProgramOutputs"


def _first_balanced_object(text: str) -> str | None:
    """The first ``{...}`` span with balanced braces (braces only, as DSPy's recursive regex matches)."""
    for start, ch in enumerate(text):
        if ch != "{":
            continue
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
    return None


class JSONAdapter(ChatAdapter):
    """Asks for a JSON object (and, through :meth:`lm_options`, a JSON response format)."""

    name = "json"

    def field_structure(self, signature: Signature) -> str:
        inputs = "\n\n".join(f"[[ ## {f.name} ## ]]\n{placeholder(f)}" for f in signature.input_fields).strip()
        outputs = json.dumps({f.name: placeholder(f) for f in signature.output_fields}, indent=2, ensure_ascii=False)
        parts = [STRUCTURE_INTRO, "Inputs will have the following structure:", inputs,
                 "Outputs will be a JSON object with the following fields.", outputs]
        return "\n\n".join(parts).strip()

    def _json_block(self, values: Mapping[str, Any], signature: Signature) -> str:
        types = {f.name: f.type for f in signature.output_fields}
        return json.dumps({k: render_jsonable(types.get(k), v) for k, v in values.items()}, indent=2,
                          ensure_ascii=False)

    def output_requirements(self, signature: Signature) -> str:
        def note(f: Field) -> str:
            if f.type.kind == TypeKind.TOOL_CALLS:
                return ' (must be a JSON object like {"tool_calls": [{"name": "...", "args": {...}}]})'
            if f.type.kind != TypeKind.STR:
                return f" (must be formatted as a valid Python {annotation_name(f.type)})"
            return ""

        return ("Respond with a JSON object in the following order of fields: "
                + ", then ".join(f"`{f.name}`{note(f)}" for f in signature.output_fields) + ".")

    def assistant_content(self, signature: Signature, values: Mapping[str, Any], missing: str | None = None) -> str:
        return self._json_block({f.name: values.get(f.name, missing) for f in signature.output_fields}, signature)

    def lm_options(self, signature: Signature, *, supports_json_schema: bool = True) -> dict[str, Any]:
        """``response_format``: a strict JSON schema of the outputs when the model supports it, else JSON mode.

        Like DSPy, an output of type ``dict[...]`` (open-ended mapping) always falls back to JSON mode, and
        ToolCalls outputs are left out of the schema (they arrive as native tool calls).
        """
        if not supports_json_schema or any(f.type.kind == TypeKind.DICT for f in signature.output_fields):
            return {"response_format": {"type": "json_object"}}
        try:
            schema = structured_output_schema(signature)
        except (ValueError, pydantic.PydanticInvalidForJsonSchema, pydantic.PydanticSchemaGenerationError):
            return {"response_format": {"type": "json_object"}}
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": RESPONSE_MODEL_NAME, "schema": schema, "strict": True}}}

    def parse(self, signature: Signature, completion: str) -> dict[str, Any]:
        data = json_repair.loads(completion)
        if not isinstance(data, dict):
            span = _first_balanced_object(completion)
            if span is not None:
                completion = span
                data = json_repair.loads(completion)
        if not isinstance(data, dict):
            raise ParseError("LM response cannot be serialized to a JSON object.", adapter="JSONAdapter",
                             completion=completion)
        outputs = {f.name: f for f in signature.output_fields}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in outputs:
                continue
            f = outputs[key]
            try:
                values[key] = to_jsonable(f.type, parse_output_value(f.type, raw))
            except ValueError as exc:
                raise ParseError(f"Failed to parse field {key}: {exc}", adapter="JSONAdapter",
                                 completion=completion) from None
        values = apply_output_defaults(signature, values)
        missing = [f.name for f in signature.output_fields if f.name not in values]
        if missing:
            raise ParseError(f"The LM response is missing the output fields {', '.join(missing)}.",
                             adapter="JSONAdapter", completion=completion)
        return values


def structured_output_schema(signature: Signature) -> dict[str, Any]:
    """The strict JSON schema (OpenAI structured outputs) DSPy sends for the signature's outputs."""
    fields: dict[str, Any] = {}
    for f in signature.output_fields:
        if f.type.kind == TypeKind.TOOL_CALLS:
            continue
        if f.type.kind == TypeKind.DICT:
            raise ValueError(f"Field '{f.name}' has an open-ended mapping type.")
        fields[f.name] = (annotation_for(f.type), f.default if f.has_default else ...)
    model = pydantic.create_model(RESPONSE_MODEL_NAME, __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    schema = copy.deepcopy(model.model_json_schema())
    _close_objects(schema)
    return _strict(schema, schema)


def _close_objects(part: dict[str, Any]) -> None:
    if part.get("type") == "object":
        props = part.get("properties")
        if props is not None:
            part["required"] = list(props.keys())
            part["additionalProperties"] = False
            for sub in props.values():
                if isinstance(sub, dict):
                    _close_objects(sub)
        else:
            part["properties"] = {}
            part["required"] = []
            part["additionalProperties"] = False
    if part.get("type") == "array" and isinstance(part.get("items"), dict):
        _close_objects(part["items"])
    for key in ("$defs", "definitions"):
        for sub in part.get(key, {}).values():
            _close_objects(sub)


def _strict(schema: Any, root: dict[str, Any]) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("$defs", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {n: _strict(s, root) for n, s in out[key].items()}
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if isinstance(out.get("properties"), dict):
        out["required"] = list(out["properties"])
        out["properties"] = {n: _strict(s, root) for n, s in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"], root)
    if isinstance(out.get("anyOf"), list):
        out["anyOf"] = [_strict(s, root) for s in out["anyOf"]]
    if isinstance(out.get("allOf"), list):
        if len(out["allOf"]) == 1:
            out.update(_strict(out.pop("allOf")[0], root))
        else:
            out["allOf"] = [_strict(s, root) for s in out["allOf"]]
    if "default" in out and out["default"] is None:
        del out["default"]
    ref = out.get("$ref")
    if isinstance(ref, str) and len(out) > 1 and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            out = {**_strict(target, root), **{k: v for k, v in out.items() if k != "$ref"}}
    return out
