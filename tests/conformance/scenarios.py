"""The conformance scenarios: language-neutral JSON files in ``scenarios/``, run by every client.

A scenario is a list of steps, each one RPC made through a client's typed layer (or grpcurl)::

    {
      "description": "what the scenario shows",
      "mock_lm": [{"contains": "text in the prompt", "reply": "completion"}
                  | {"contains": "...", "status": 503, "message": "provider error"}],
      "steps": [
        {"rpc": "ProgramService/CreateProgram", "request": {...}},
        {"rpc": "InferenceService/Predict", "request": {...},
         "expect": {"response": {...}} | {"error": {"code": "NOT_FOUND", "reason": "PROGRAM_NOT_FOUND",
                                                   "fieldViolations": ["inputs.question"]}}}
      ]
    }

- ``request`` is the request message in proto JSON form. Every ``{run}`` in the file is replaced by
  an id unique to the run (lower-case letters and digits), so program ids never collide between runs
  against the same server.
- ``expect.response`` is matched against the response in proto JSON form (lowerCamelCase names, 64-bit
  integers as strings): every key given must be there with a matching value (objects recursively,
  lists element by element with the same length); ``{"$contains": "text"}`` matches any string that
  contains ``text``. A step without ``expect`` must succeed.
- ``expect.error`` gives the gRPC code name, the ErrorInfo reason and fields that must be among the
  BadRequest field violations.
- Streaming steps compare ``expect.response`` with a summary of the stream, built the same way by
  every runner:

  - ``InferenceService/StreamPredict`` (request: a StreamPredictRequest) and ``InferenceService/Run``
    (request: the RunStart message; its ``tools`` are run by the runner itself, in its own language,
    from the conformance tools below) give ``{"prediction": <the final Prediction>, "fieldText":
    {field: all its field_delta text joined}, "toolCalls": [{"tool", "args"} from each
    tool_call_started event, in order, with "observation" and "error" (only when not empty) from
    the tool_call_finished event of the same call_id]}``;
  - ``CorpusService/AppendDocuments`` (a client stream; request: one AppendDocumentsRequest, sent as
    the stream's only message) gives the AppendDocumentsResponse;
  - ``InferenceService/BatchPredict`` gives ``{"items": [{"index": i, "prediction": {...}} or
    {"index": i, "error": {"code", "reason", "fieldViolations": [field, ...]}}, by index]}``.

  The conformance tools every runner implements: ``add(a, b)`` returns ``a + b``; ``fail()`` fails
  with the message "failed on purpose".
- ``mock_lm`` rules are loaded into the mock LM by ``python -m tests.conformance.serve`` before the
  server starts: the reply is picked by text in the last user message, so give each rule a marker no
  other scenario uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
#: The variable the TypeScript and Go test suites read the server address from ("127.0.0.1:PORT").
ADDRESS_ENV = "DSPY_GRPC_CONFORMANCE_ADDR"
RUN_TOKEN = "{run}"
#: RPCs that stream (grpcurl runs only the scenarios without them).
STREAMING_RPCS = frozenset({"InferenceService/StreamPredict", "InferenceService/BatchPredict", "InferenceService/Run",
                            "CorpusService/AppendDocuments"})


@dataclass(frozen=True)
class Scenario:
    name: str
    data: dict[str, Any]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.data["steps"]

    @property
    def mock_rules(self) -> list[dict[str, Any]]:
        return self.data.get("mock_lm", [])

    def is_unary(self) -> bool:
        """True when every step is a unary RPC (grpcurl can run it)."""

        return all(step["rpc"] not in STREAMING_RPCS for step in self.steps)


def load(run_id: str = "run") -> list[Scenario]:
    """Every scenario, with ``{run}`` replaced by ``run_id``, in file-name order."""

    return [
        Scenario(path.stem, json.loads(path.read_text().replace(RUN_TOKEN, run_id)))
        for path in sorted(SCENARIO_DIR.glob("*.json"))
    ]


def matches(expected: Any, actual: Any, path: str = "response") -> list[str]:
    """Where ``actual`` differs from ``expected`` (see the module docstring); empty when it matches."""

    if isinstance(expected, dict) and set(expected) == {"$contains"}:
        if isinstance(actual, str) and expected["$contains"] in actual:
            return []
        return [f"{path}: expected a string containing {expected['$contains']!r}, got {actual!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(matches(value, actual[key], f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual)) for p in matches(e, a, f"{path}[{i}]")]
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if expected is actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return [] if float(expected) == float(actual) else [f"{path}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def error_problems(expected: dict[str, Any], code: str, reason: str, fields: list[str]) -> list[str]:
    """Where an error differs from ``expect.error``; empty when it matches."""

    problems = []
    if code != expected["code"]:
        problems.append(f"code: expected {expected['code']}, got {code}")
    if "reason" in expected and reason != expected["reason"]:
        problems.append(f"reason: expected {expected['reason']}, got {reason!r}")
    missing = [f for f in expected.get("fieldViolations", []) if f not in fields]
    if missing:
        problems.append(f"fieldViolations: {missing} not among {fields}")
    return problems
