"""The mock LM's unscripted behaviour: answer DSPy adapter prompts with deterministic values.

The output fields are read from the system prompt's "Your output fields are:" list (falling back to
the ``[[ ## name ## ]]`` markers of the structure section); the inputs from the ``[[ ## name ## ]]``
sections of the last user message. A text field ``answer`` becomes
``"mock answer for: <first input value>"``; numbers become 0, booleans true, lists [], dicts {},
Literals their first option. A prompt asking for JSON (``response_format`` set, or a JSONAdapter
system prompt) gets a JSON object; anything else gets ChatAdapter markers. A conversation that is not
a DSPy prompt gets ``"mock reply to: <last user text>"``.
"""

from __future__ import annotations

import json
import re
from typing import Any

OUTPUT_LIST = re.compile(r"Your output fields are:\n((?:\d+\. .*(?:\n|$))+)")
LISTED_FIELD = re.compile(r"^\d+\. `([^`]+)` \(([^)]*)\)", re.MULTILINE)
MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")
SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", re.DOTALL)


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message)
    return ""


def output_fields(system_prompt: str, last_user: str) -> list[tuple[str, str]]:
    """(name, type) of the requested output fields, in order."""

    listed = OUTPUT_LIST.search(system_prompt)
    if listed:
        return LISTED_FIELD.findall(listed.group(1))
    inputs = {name for name, _ in SECTION.findall(last_user)}
    names = [n for n in dict.fromkeys(MARKER.findall(system_prompt)) if n not in inputs and n != "completed"]
    return [(name, "str") for name in names]


def value_for(name: str, type_name: str, first_input: str) -> Any:
    t = type_name.strip().split(":")[0].strip()
    if t == "int":
        return 0
    if t == "float":
        return 0.0
    if t == "bool":
        return True
    if t.startswith(("list", "tuple", "set")):
        return []
    if t.startswith("dict"):
        return {}
    literal = re.match(r"Literal\[\s*(['\"])(.*?)\1", t)
    if literal:
        return literal.group(2)
    return f"mock {name} for: {first_input}"


def auto_answer(body: dict[str, Any]) -> str:
    """The default completion text for a chat completions request body."""

    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    last_user = last_user_text(messages)
    fields = output_fields(system, last_user)
    if not fields:
        return f"mock reply to: {last_user}"
    section = SECTION.search(last_user)
    first_input = (section.group(2) if section else last_user).strip()
    values = {name: value_for(name, type_name, first_input) for name, type_name in fields}
    wants_json = body.get("response_format") is not None or "Outputs will be a JSON object" in system
    if wants_json:
        return json.dumps(values, indent=2, ensure_ascii=False)
    parts = [
        f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}\n\n"
        for name, value in values.items()
    ]
    return "".join(parts) + "[[ ## completed ## ]]"
