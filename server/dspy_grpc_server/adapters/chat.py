"""DSPy's ChatAdapter: fields delimited by ``[[ ## name ## ]]`` headers."""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..core.errors import ParseError
from ..core.signature import Field, Signature
from ..core.types import TypeKind
from ..core.values import parse_output_value, to_jsonable
from .base import Adapter, annotation_name, apply_output_defaults, format_value, placeholder

HEADER = re.compile(r"\[\[ ## (\w+) ## \]\]")
STRUCTURE_INTRO = "All interactions will be structured in the following way, with the appropriate values filled in."


class ChatAdapter(Adapter):
    """The default adapter: each field's value follows its ``[[ ## name ## ]]`` header; the answer ends with
    ``[[ ## completed ## ]]``. A parse failure raises ParseError (the modules layer may then retry with JSON)."""

    name = "chat"

    def _sections(self, fields: tuple[Field, ...], values: Mapping[str, Any] | None) -> str:
        parts = []
        for f in fields:
            text = placeholder(f) if values is None else format_value(f.type, values[f.name])
            parts.append(f"[[ ## {f.name} ## ]]\n{text}")
        return "\n\n".join(parts).strip()

    def field_structure(self, signature: Signature) -> str:
        parts = [STRUCTURE_INTRO, self._sections(signature.input_fields, None),
                 self._sections(signature.output_fields, None), "[[ ## completed ## ]]\n"]
        return "\n\n".join(parts).strip()

    def output_requirements(self, signature: Signature) -> str:
        """The reminder closing the last user message."""
        def note(f: Field) -> str:
            if f.type.kind == TypeKind.TOOL_CALLS:
                return ' (must be a JSON object like {"tool_calls": [{"name": "...", "args": {...}}]})'
            if f.type.kind != TypeKind.STR:
                return f" (must be formatted as a valid Python {annotation_name(f.type)})"
            return ""

        return ("Respond with the corresponding output fields, starting with the field "
                + ", then ".join(f"`[[ ## {f.name} ## ]]`{note(f)}" for f in signature.output_fields)
                + ", and then ending with the marker for `[[ ## completed ## ]]`.")

    def user_content(self, signature: Signature, values: Mapping[str, Any], prefix: str = "", suffix: str = "",
                     main_request: bool = False) -> str:
        parts = [prefix]
        for f in signature.input_fields:
            if f.name in values:
                parts.append(f"[[ ## {f.name} ## ]]\n{format_value(f.type, values.get(f.name))}")
        if main_request:
            parts.append(self.output_requirements(signature))
        parts.append(suffix)
        return "\n\n".join(parts).strip()

    def assistant_content(self, signature: Signature, values: Mapping[str, Any], missing: str | None = None) -> str:
        filled = {f.name: values.get(f.name, missing) for f in signature.output_fields}
        return self._sections(signature.output_fields, filled) + "\n\n[[ ## completed ## ]]\n"

    def parse(self, signature: Signature, completion: str) -> dict[str, Any]:
        sections: list[tuple[str | None, list[str]]] = [(None, [])]
        for line in completion.splitlines():
            m = HEADER.match(line.strip()) if "[[" in line else None
            if m:
                rest = line[m.end():].strip()
                sections.append((m.group(1), [rest] if rest else []))
            else:
                sections[-1][1].append(line)
        outputs = {f.name: f for f in signature.output_fields}
        values: dict[str, Any] = {}
        for name, lines in sections:
            text = "\n".join(lines).strip()
            if name in outputs and name not in values:
                f = outputs[name]
                try:
                    values[name] = to_jsonable(f.type, parse_output_value(f.type, text))
                except ValueError as exc:
                    raise ParseError(
                        f"Failed to parse field {name} with value {text} from the LM response. Error message: {exc}",
                        adapter="ChatAdapter", completion=completion) from None
        values = apply_output_defaults(signature, values)
        missing = [f.name for f in signature.output_fields if f.name not in values]
        if missing:
            raise ParseError(f"The LM response is missing the output fields {', '.join(missing)}.",
                             adapter="ChatAdapter", completion=completion)
        return values
