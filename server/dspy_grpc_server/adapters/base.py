"""The adapter interface and the rendering rules every adapter shares.

An adapter turns a :class:`~dspy_grpc_server.core.signature.Signature`, few-shot demos and the current
inputs into chat messages for an LM, and turns the LM's text back into typed output values. The text it
produces is byte-for-byte what DSPy 3.4.1 produces for the same signature and values.
"""

from __future__ import annotations

import json
import re
import textwrap
from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

from ..core.errors import FieldViolation, InvalidArgument
from ..core.signature import Field, Role, Signature
from ..core.types import TypeKind, TypeSpec
from ..core.values import (
    TOOL_CALLS_DESCRIPTION,
    ValueCheckError,
    allows_none,
    code_description,
    coerce_input,
    has_aliases,
    input_as_rendered,
    with_attribute_names,
    json_schema_for,
)

Message = dict[str, Any]

# Rich values (images) are embedded in text between these markers and later split into content parts.
MARK_START = "<<CUSTOM-TYPE-START-IDENTIFIER>>"
MARK_END = "<<CUSTOM-TYPE-END-IDENTIFIER>>"

INCOMPLETE_DEMO_PREFIX = "This is an example of the task, though some input or output fields are not supplied."
MISSING_IN_INCOMPLETE_DEMO = "Not supplied for this particular example. "
MISSING_IN_COMPLETE_DEMO = "Not supplied for this conversation history message. "


# ---------------------------------------------------------------------------------------------------------
# Type names and notes


def annotation_name(spec: TypeSpec) -> str:
    """The type name DSPy prints next to a field, e.g. ``list[str]``, ``Union[int, NoneType]``."""
    k = spec.kind
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
        return f"Code_{spec.language}" if spec.language else "Code"
    if k in (TypeKind.ENUM, TypeKind.OBJECT):
        return spec.name or (spec.json_schema or {}).get("title", "")
    if k == TypeKind.LIST:
        return f"list[{annotation_name(spec.args[0])}]" if spec.args else "list"
    if k == TypeKind.DICT:
        return f"dict[{annotation_name(spec.args[0])}, {annotation_name(spec.args[1])}]" if spec.args else "dict"
    if k == TypeKind.TUPLE and spec.variadic:
        return f"tuple[{annotation_name(spec.args[0])}, Ellipsis]"
    if k == TypeKind.TUPLE:
        return f"tuple[{', '.join(annotation_name(a) for a in spec.args)}]" if spec.args else "tuple"
    if k == TypeKind.LITERAL:
        return "Literal[" + ", ".join(
            _quote_literal(v) if isinstance(v, str) else str(v) for v in spec.values) + "]"
    if k == TypeKind.OPTIONAL:
        inner = spec.args[0]
        members = [annotation_name(m) for m in (inner.args if inner.kind == TypeKind.UNION else [inner])]
        return "Union[" + ", ".join(["NoneType", *members] if spec.none_first else [*members, "NoneType"]) + "]"
    if k == TypeKind.UNION:
        return "Union[" + ", ".join(annotation_name(m) for m in spec.args) + "]"
    raise ValueError(f"unknown type kind {k}")  # pragma: no cover


def _quote_literal(s: str) -> str:
    if "'" in s and '"' not in s:
        return f'"{s}"'
    if "'" in s:
        return "'" + s.replace("'", "\\'") + "'"
    return f"'{s}'"


def _sorted_type_first(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted_type_first(v) for k, v in sorted(value.items(), key=lambda kv: (kv[0] != "type", kv[0]))}
    if isinstance(value, list):
        return [_sorted_type_first(v) for v in value]
    return value


def type_note(f: Field) -> str:
    """The ``# note: ...`` DSPy appends to an output field's placeholder ('' for inputs and plain str)."""
    spec = f.type
    k = spec.kind
    if f.role == Role.INPUT or k == TypeKind.STR:
        return ""
    if k == TypeKind.BOOL:
        desc = "must be True or False"
    elif k in (TypeKind.INT, TypeKind.FLOAT):
        desc = f"must be a single {k.value} value"
    elif k == TypeKind.ENUM:
        desc = "must be one of: " + "; ".join(str(v) for v in spec.values)
    elif k == TypeKind.LITERAL:
        desc = "must exactly match (no extra characters) one of: " + "; ".join(str(v) for v in spec.values)
    elif k == TypeKind.CODE:
        desc = ""
    else:
        schema = _sorted_type_first(json_schema_for(spec))
        desc = f"must adhere to the JSON schema: {json.dumps(schema, ensure_ascii=False)}"
    return (" " * 8 + f"# note: the value you produce {desc}") if desc else ""


def placeholder(f: Field) -> str:
    """``{name}`` plus the type note: what the structure section shows in place of a value."""
    return f"{{{f.name}}}{type_note(f)}"


def _rich_type_descriptions(spec: TypeSpec) -> list[str]:
    if spec.kind == TypeKind.CODE:
        return [f"Type description of {annotation_name(spec)}: {code_description(spec.language or 'python')}"]
    if spec.kind == TypeKind.TOOL_CALLS:
        return [f"Type description of ToolCalls: {TOOL_CALLS_DESCRIPTION}"]
    out: list[str] = []
    if spec.kind in (TypeKind.LIST, TypeKind.DICT, TypeKind.TUPLE, TypeKind.OPTIONAL, TypeKind.UNION):
        for a in spec.args:
            out.extend(_rich_type_descriptions(a))
    return out


def field_descriptions(fields: Sequence[Field]) -> str:
    """The numbered ``1. `name` (type): description`` list of the system message."""
    lines = []
    for i, f in enumerate(fields):
        desc = f.description if f.description is not None and f.description != f"${{{f.name}}}" else ""
        for extra in _rich_type_descriptions(f.type):
            desc += "\n    " + extra
        line = f"{i + 1}. `{f.name}` ({annotation_name(f.type)}): {desc}"
        if f.constraints_text:
            line += f"\nConstraints: {f.constraints_text}"
        lines.append(line)
    return "\n".join(lines).strip()


def task_description(signature: Signature) -> str:
    instructions = textwrap.dedent(signature.effective_instructions)
    objective = ("\n" + " " * 8).join([""] + instructions.splitlines())
    return f"In adhering to this structure, your objective is: {objective}"


# ---------------------------------------------------------------------------------------------------------
# Values as text


def _image_marker(url: str) -> str:
    return MARK_START + json.dumps([{"type": "image_url", "image_url": {"url": url}}], ensure_ascii=False) + MARK_END


def render_jsonable(spec: TypeSpec | None, value: Any) -> Any:
    """The JSON value DSPy would serialize for ``value`` of type ``spec`` (images become markers)."""
    if spec is None:
        return value
    k = spec.kind
    if k == TypeKind.IMAGE:
        if isinstance(value, dict) and "url" in value:
            value = value["url"]
        return _image_marker(value) if isinstance(value, str) else value
    if k == TypeKind.TOOL_CALLS and isinstance(value, (dict, list)):
        calls = value.get("tool_calls", []) if isinstance(value, dict) else value
        if isinstance(calls, list) and all(isinstance(c, dict) for c in calls):
            return {"tool_calls": [{"name": c.get("name"), "args": c.get("args", {})} for c in calls]}
        return value
    if k == TypeKind.CODE and isinstance(value, dict) and "code" in value:
        return value["code"]
    if k == TypeKind.OBJECT and has_aliases(spec):
        return with_attribute_names(spec, value)
    if k == TypeKind.OPTIONAL:
        return value if value is None else render_jsonable(spec.args[0], value)
    if k == TypeKind.LIST and spec.args and isinstance(value, list):
        return [render_jsonable(spec.args[0], v) for v in value]
    if k == TypeKind.TUPLE and spec.args and isinstance(value, (list, tuple)):
        items = [spec.args[0]] * len(value) if spec.variadic else spec.args
        return [render_jsonable(items[i] if i < len(items) else None, v) for i, v in enumerate(value)]
    if k == TypeKind.DICT and spec.args and isinstance(value, dict):
        return {kk: render_jsonable(spec.args[1], v) for kk, v in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _format_blob(blob: Any) -> str:
    blob = str(blob) if not isinstance(blob, str) else blob
    if "\n" not in blob and "«" not in blob and "»" not in blob:
        return f"«{blob}»"
    return "«««\n    " + blob.replace("\n", "\n    ") + "\n»»»"


def format_value(spec: TypeSpec | None, value: Any) -> str:
    """A field value as DSPy writes it into a prompt."""
    if isinstance(value, list) and spec is not None and spec.kind == TypeKind.STR:
        if not value:
            return "N/A"
        if len(value) == 1:
            return _format_blob(value[0])
        return "\n".join(f"[{i + 1}] {_format_blob(v)}" for i, v in enumerate(value))
    jsonable = render_jsonable(spec, value)
    if isinstance(jsonable, (dict, list)):
        return json.dumps(jsonable, ensure_ascii=False)
    return str(jsonable)


def expand_rich_content(message: Message) -> Message:
    """Split a user message whose text embeds image markers into OpenAI-style content parts."""
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, str) or MARK_START not in content:
        return message
    parts: list[dict[str, Any]] = []
    last = 0
    for m in re.finditer(re.escape(MARK_START) + "(.*?)" + re.escape(MARK_END), content, re.DOTALL):
        start, end = m.span()
        if start > last:
            parts.append({"type": "text", "text": content[last:start]})
        payload = m.group(1).strip()
        parsed = _parse_marker_payload(payload)
        if isinstance(parsed, list):
            parts.extend(p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in parsed)
        else:
            parts.append({"type": "text", "text": payload})
        last = end
    if last < len(content):
        parts.append({"type": "text", "text": content[last:]})
    return {**message, "content": parts}


def _parse_marker_payload(payload: str) -> Any:
    import json_repair

    for attempt in (json.loads, lambda p: json.loads(json.loads(f'"{p}"')), json_repair.loads):
        try:
            return attempt(payload)
        except Exception:
            continue
    return None


# ---------------------------------------------------------------------------------------------------------
# Input validation


def validate_inputs(signature: Signature, inputs: Mapping[str, Any], field_path: str = "inputs") -> dict[str, Any]:
    """Check ``inputs`` against the signature's input fields and return them coerced to their types.

    Every input field must be present unless its type admits None (then it may be omitted); unknown
    keys are rejected. Raises InvalidArgument with one violation per bad field (``inputs.<name>``).
    """
    if not isinstance(inputs, Mapping):
        raise InvalidArgument(f"{field_path}: expected an object of input values",
                              violations=[FieldViolation(field_path, "expected an object of input values")])
    violations: list[FieldViolation] = []
    out: dict[str, Any] = {}
    known = {f.name for f in signature.input_fields}
    for f in signature.input_fields:
        path = f"{field_path}.{f.name}"
        if f.name not in inputs:
            if allows_none(f.type) or f.type.kind == TypeKind.HISTORY:
                continue
            violations.append(FieldViolation(path, f"required input field is missing (expected {_expected(f)})"))
            continue
        value = inputs[f.name]
        if value is None and not (allows_none(f.type) or f.type.kind == TypeKind.ANY):
            violations.append(FieldViolation(path, f"must not be null (expected {_expected(f)})"))
            continue
        try:
            coerced = coerce_input(f.type, value)
        except ValueCheckError as exc:
            violations.append(FieldViolation(path, str(exc)))
            continue
        problem = _constraint_problem(f, coerced)
        if problem:
            violations.append(FieldViolation(path, problem))
            continue
        out[f.name] = input_as_rendered(f.type, value, coerced)
    for key in inputs:
        if key not in known:
            outputs = {f.name for f in signature.output_fields}
            why = "is an output field, not an input" if key in outputs else "is not an input field of the signature"
            violations.append(FieldViolation(f"{field_path}.{key}", f"{key!r} {why}; inputs are: "
                                             + ", ".join(sorted(known))))
    if violations:
        raise InvalidArgument("invalid inputs: " + "; ".join(f"{v.field}: {v.description}" for v in violations),
                              violations=violations)
    return out


def normalize_demo(signature: Signature, demo: Mapping[str, Any]) -> dict[str, Any]:
    """A demo with each field's value as DSPy renders it (kept as is when it does not fit the type).

    DSPy renders a demo's values as the Python values a user wrote: plain JSON values as given, class
    instances (a pydantic model, an enum member) in their own form. Values of class types are coerced
    here so that, e.g., an object renders in its model's field order with its defaults filled in.
    """
    types = {f.name: f.type for f in signature.fields}
    out: dict[str, Any] = {}
    for key, value in demo.items():
        if key in types and value is not None:
            try:
                value = input_as_rendered(types[key], value, coerce_input(types[key], value))
            except ValueCheckError:
                pass
        out[key] = value
    return out


def _expected(f: Field) -> str:
    from ..core.types import format_type

    return format_type(f.type)


def _constraint_problem(f: Field, value: Any) -> str | None:
    c = f.constraints
    if not c:
        return None
    num = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    size = len(value) if isinstance(value, (str, list, dict)) else None
    checks = [
        ("gt", num, lambda v, b: v > b, "greater than"),
        ("ge", num, lambda v, b: v >= b, "greater than or equal to"),
        ("lt", num, lambda v, b: v < b, "less than"),
        ("le", num, lambda v, b: v <= b, "less than or equal to"),
        ("min_length", size, lambda v, b: v >= b, "of length at least"),
        ("max_length", size, lambda v, b: v <= b, "of length at most"),
    ]
    for key, actual, ok, words in checks:
        if key in c and actual is not None and not ok(actual, c[key]):
            return f"must be {words} {c[key]}, got {value!r}"
    if "multiple_of" in c and num is not None and c["multiple_of"] and num % c["multiple_of"] != 0:
        return f"must be a multiple of {c['multiple_of']}, got {value!r}"
    return None


# ---------------------------------------------------------------------------------------------------------
# The adapter interface


#: How many signatures' system messages each adapter remembers.
SYSTEM_MESSAGE_CACHE_SIZE = 512


class Adapter(ABC):
    """Formats prompts for, and parses completions from, an LM for one signature."""

    name: str = ""

    def __init__(self) -> None:
        self._system_messages: dict[int, tuple[Signature, str]] = {}

    # ---- public API ----

    def format(self, signature: Signature, demos: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]
               ) -> list[Message]:
        """The chat messages for one call: system message, demos, conversation history, current input."""
        inputs = dict(inputs)
        history_field = next((f for f in signature.input_fields if f.type.kind == TypeKind.HISTORY), None)
        messages: list[Message] = [{"role": "system", "content": self._cached_system_message(signature)}]
        messages.extend(self.format_demos(signature, demos))
        if history_field is not None:
            without = signature.delete(history_field.name)
            messages.extend(self.format_history(without, inputs.pop(history_field.name, None)))
            content = self.user_content(without, inputs, main_request=True)
        else:
            content = self.user_content(signature, inputs, main_request=True)
        if content:
            messages.append({"role": "user", "content": content})
        return [expand_rich_content(m) for m in messages]

    def lm_options(self, signature: Signature, *, supports_json_schema: bool = True) -> dict[str, Any]:
        """Extra LM request options this adapter needs (none by default)."""
        return {}

    @abstractmethod
    def parse(self, signature: Signature, completion: str) -> dict[str, Any]:
        """The output values in ``completion``; raises ParseError if they cannot be read."""

    def _cached_system_message(self, signature: Signature) -> str:
        """:meth:`system_message`, remembered per signature object (a program's signatures live as
        long as its worker, and the text depends on nothing else)."""

        cache = self._system_messages
        entry = cache.get(id(signature))
        if entry is None or entry[0] is not signature:
            if len(cache) >= SYSTEM_MESSAGE_CACHE_SIZE:
                cache.pop(next(iter(cache)))
            entry = cache[id(signature)] = (signature, self.system_message(signature))
        return entry[1]

    # ---- building blocks (overridden per format) ----

    def system_message(self, signature: Signature) -> str:
        return (f"{self.field_description(signature)}\n{self.field_structure(signature)}\n"
                f"{task_description(signature)}")

    def field_description(self, signature: Signature) -> str:
        return (f"Your input fields are:\n{field_descriptions(signature.input_fields)}\n"
                f"Your output fields are:\n{field_descriptions(signature.output_fields)}")

    @abstractmethod
    def field_structure(self, signature: Signature) -> str: ...

    @abstractmethod
    def user_content(self, signature: Signature, values: Mapping[str, Any], prefix: str = "", suffix: str = "",
                     main_request: bool = False) -> str: ...

    @abstractmethod
    def assistant_content(self, signature: Signature, values: Mapping[str, Any],
                          missing: str | None = None) -> str: ...

    def format_demos(self, signature: Signature, demos: Sequence[Mapping[str, Any]]) -> list[Message]:
        """Few-shot demos as user/assistant turns: incomplete demos first (with a note), then complete ones."""
        complete, incomplete = [], []
        names = [f.name for f in signature.ordered_fields]
        for demo in demos:
            if all(n in demo and demo[n] is not None for n in names):
                complete.append(demo)
            elif any(f.name in demo for f in signature.input_fields) and any(
                    f.name in demo for f in signature.output_fields):
                incomplete.append(demo)
        messages: list[Message] = []
        for demo in incomplete:
            messages.append({"role": "user", "content": self.user_content(signature, demo,
                                                                          prefix=INCOMPLETE_DEMO_PREFIX)})
            messages.append({"role": "assistant", "content": self.assistant_content(
                signature, demo, missing=MISSING_IN_INCOMPLETE_DEMO)})
        for demo in complete:
            messages.append({"role": "user", "content": self.user_content(signature, demo)})
            messages.append({"role": "assistant", "content": self.assistant_content(
                signature, demo, missing=MISSING_IN_COMPLETE_DEMO)})
        return messages

    def format_history(self, signature: Signature, history: Any) -> list[Message]:
        """Earlier turns (``{"messages": [...]}``) as user/assistant message pairs."""
        if history is None:
            return []
        turns = history.get("messages", []) if isinstance(history, Mapping) else history
        messages: list[Message] = []
        input_names = [f.name for f in signature.input_fields]
        for turn in turns or []:
            user = self.user_content(signature, turn, main_request=any(n in turn for n in input_names))
            if user:
                messages.append({"role": "user", "content": user})
            assistant = self.assistant_content(signature, turn)
            if assistant:
                messages.append({"role": "assistant", "content": assistant})
        return messages


def apply_output_defaults(signature: Signature, values: dict[str, Any]) -> dict[str, Any]:
    """Fill output fields the LM left out when they have a default or admit None; keep signature order."""
    out: dict[str, Any] = {}
    for f in signature.output_fields:
        if f.name in values:
            out[f.name] = values[f.name]
        elif f.has_default:
            out[f.name] = f.default
        elif allows_none(f.type):
            out[f.name] = None
    return out
