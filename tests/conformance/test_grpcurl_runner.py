"""The unary conformance scenarios through grpcurl (no .proto files: the server's reflection)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import grpc
import pytest

from .conftest import ROOT, require_tool, run_id
from .scenarios import Scenario, error_problems, load, matches

CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def grpcurl_call(grpcurl: str, address: str, rpc: str, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the response, False) or (the error status, True), both as JSON."""

    result = subprocess.run(
        [grpcurl, "-plaintext", "-format-error", "-d", "@", address, f"dspy_grpc.v1.{rpc}"],
        input=json.dumps(request), capture_output=True, text=True, timeout=60,
    )
    if result.returncode == 0:
        return json.loads(result.stdout or "{}"), False
    try:  # -format-error prints the status as JSON on stderr
        return json.loads(result.stderr), True
    except json.JSONDecodeError:
        raise AssertionError(f"grpcurl failed: {result.stdout}{result.stderr}") from None


def error_parts(status: dict[str, Any]) -> tuple[str, str, list[str]]:
    reason = ""
    fields: list[str] = []
    for detail in status.get("details", []):
        if detail.get("@type") == ERROR_INFO:
            reason = detail.get("reason", "")
        elif detail.get("@type") == BAD_REQUEST:
            violations = detail.get("fieldViolations", detail.get("field_violations", []))
            fields += [v.get("field", "") for v in violations]
    return CODE_NAMES.get(status.get("code", 2), "UNKNOWN"), reason, fields


def run_scenario(grpcurl: str, address: str, scenario: Scenario) -> list[str]:
    problems: list[str] = []
    for index, step in enumerate(scenario.steps):
        where = f"step {index} ({step['rpc']})"
        expect = step.get("expect", {})
        body, failed = grpcurl_call(grpcurl, address, step["rpc"], step["request"])
        if failed:
            if "error" not in expect:
                return problems + [f"{where}: unexpected error {body}"]
            problems += [f"{where}: {p}" for p in error_problems(expect["error"], *error_parts(body))]
        elif "error" in expect:
            problems.append(f"{where}: expected {expect['error']}, got {body}")
        elif "response" in expect:
            problems += [f"{where}: {p}" for p in matches(expect["response"], body)]
    return problems


@pytest.mark.parametrize("name", [s.name for s in load() if s.is_unary()])
def test_scenario(name: str, conformance_address: str) -> None:
    grpcurl = require_tool("grpcurl", "run `make tools`", ROOT / ".tools/bin/grpcurl")
    scenario = next(s for s in load(run_id("cu")) if s.name == name)
    assert run_scenario(grpcurl, conformance_address, scenario) == []
