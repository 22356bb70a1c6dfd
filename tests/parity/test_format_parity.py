"""Our adapters render byte-identical messages to DSPy 3.4.1's for every corpus case."""

from __future__ import annotations

from typing import Any

import pytest

from dspy_grpc_server.adapters import get_adapter, validate_inputs

from .conftest import ADAPTER_PAIRS, Built


def _demos(b: Built) -> dict[str, list[dict[str, Any]]]:
    case = b.case
    complete = {**case.inputs, **case.outputs}
    first_in = next(iter(case.inputs))
    first_out = next(iter(case.outputs))
    incomplete = {first_in: case.inputs[first_in], first_out: case.outputs[first_out]}
    variants = {"none": [], "complete": [complete, complete]}
    if len(case.inputs) + len(case.outputs) > 2:
        variants["incomplete"] = [incomplete, complete]
    else:  # an input-only demo is dropped; an outputs-only one too
        variants["incomplete"] = [{first_in: case.inputs[first_in]}, complete]
    return variants


def _check(b: Built, adapter_name: str, demos: list[dict[str, Any]]) -> None:
    ours_inputs = validate_inputs(b.ours, b.case.inputs)
    expected = ADAPTER_PAIRS[adapter_name]().format(
        b.ref, [b.dspy_values(d) for d in demos], b.dspy_values(b.case.inputs))
    actual = get_adapter(adapter_name).format(b.ours, demos, ours_inputs)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == want


@pytest.mark.parametrize("variant", ["none", "complete", "incomplete"])
def test_format_matches_dspy(built: Built, adapter_name: str, variant: str) -> None:
    _check(built, adapter_name, _demos(built)[variant])


def test_json_response_format_matches_dspy(built: Built) -> None:
    from dspy.adapters.json_adapter import _get_structured_outputs_response_format
    from dspy.clients.legacy_requests import _strict_json_schema

    ours = get_adapter("json").lm_options(built.ours)["response_format"]
    try:
        model = _get_structured_outputs_response_format(built.ref)
    except ValueError:
        assert ours == {"type": "json_object"}
        return
    schema = _strict_json_schema(model.model_json_schema())
    # Deliberate difference (README): a bare Code's schema leaves out the docstring of DSPy's Code class.
    schema.get("$defs", {}).get("Code", {}).pop("description", None)
    expected = {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}
    assert ours == expected
    assert get_adapter("json").lm_options(built.ours, supports_json_schema=False) == {
        "response_format": {"type": "json_object"}}
