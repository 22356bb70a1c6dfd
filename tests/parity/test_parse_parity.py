"""Our adapters parse completions to the same values as DSPy 3.4.1, and fail on exactly the same ones."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any

import dspy
import pydantic

from dspy_grpc_server.adapters import get_adapter
from dspy_grpc_server.core.errors import ParseError

from .conftest import ADAPTER_PAIRS, Built


def _jsonable(value: Any) -> Any:
    """DSPy's parsed values as plain JSON, for comparison with ours."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return pydantic.TypeAdapter(type(value)).dump_python(value, mode="json")
    if isinstance(value, dspy.Code):
        return value.code
    if isinstance(value, dspy.ToolCalls):
        return {"tool_calls": [{"name": c.name, "args": c.args} for c in value.tool_calls]}
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _completions(b: Built, adapter_name: str) -> list[str]:
    ref_adapter = ADAPTER_PAIRS[adapter_name]()
    texts = []
    for outputs in [b.case.outputs, *b.case.bad_outputs]:
        try:
            texts.append(ref_adapter.format_assistant_message_content(b.ref, b.dspy_values(outputs)))
        except (ValueError, TypeError):
            texts.append(ref_adapter.format_assistant_message_content(b.ref, outputs))
    names = [f.name for f in b.case.fields if f.role == "out"]
    first = names[0]
    raw = json.dumps(b.case.outputs, ensure_ascii=False)
    texts += [
        "",
        "I don't know.",
        raw,
        f"Sure! Here you go: {raw} Hope it helps.",
        f"[[ ## {first} ## ]]\n",
        f"[[ ## {first} ## ]] inline value\n\n[[ ## completed ## ]]",
        "\n\n".join(f"[[ ## {n} ## ]]\n{json.dumps(b.case.outputs[n], ensure_ascii=False)}" for n in names),
        "".join(f"<{n}>{b.case.outputs[n] if isinstance(b.case.outputs[n], str) else json.dumps(b.case.outputs[n])}"
                f"</{n}>" for n in names),
        f"<{first}>unclosed",
        "{" + ", ".join(f'"{n}": "zzz"' for n in names),
    ]
    return texts


def test_parse_matches_dspy(built: Built, adapter_name: str) -> None:
    ref_adapter = ADAPTER_PAIRS[adapter_name]()
    ours = get_adapter(adapter_name)
    for text in _completions(built, adapter_name):
        try:
            expected: Any = _jsonable(ref_adapter.parse(built.ref, text))
        except (dspy.utils.exceptions.AdapterParseError, ValueError):
            expected = ParseError
        try:
            actual: Any = ours.parse(built.ours, text)
        except ParseError:
            actual = ParseError
        assert actual == expected, text
