"""Tools for ReAct: the server-side registry and the interface to tools the caller executes.

Server-side tools are pure functions of their arguments with no network, file or code execution.
Caller tools are run by the client of InferenceService.Run: the engine asks a :class:`ToolRunner`,
which sends the call on the stream and waits for the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .calculator import CalculatorError, evaluate


class ToolError(Exception):
    """A tool failed; the message becomes the agent's observation."""


class ToolRunner(Protocol):
    """Runs tools that live in the caller's process."""

    def offers(self, name: str) -> bool:
        """Whether the caller declared a tool of this name."""

    async def call(self, call_id: str, name: str, args: Mapping[str, Any], timeout: float | None) -> Any:
        """The tool's result; raises :class:`ToolError` when the caller reports a failure and
        :class:`~dspy_grpc_server.core.errors.DeadlineExceeded` when no answer comes in time."""


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    args: Mapping[str, Any]
    run: Callable[..., Awaitable[Any]]


async def _calculator(expression: str) -> Any:
    try:
        return evaluate(expression)
    except CalculatorError as error:
        raise ToolError(str(error)) from None


BUILTIN_TOOLS: dict[str, BuiltinTool] = {
    "calculator": BuiltinTool(
        name="calculator",
        description=(
            "Evaluates an arithmetic expression with numbers, + - * / // % **, parentheses and the functions "
            "abs, round, min, max, sqrt, floor, ceil, log, exp; returns the number."
        ),
        args={"expression": {"type": "string"}},
        run=_calculator,
    ),
}


async def run_builtin(name: str, args: Mapping[str, Any]) -> Any:
    """Run a server-side tool with the LM's arguments (checked against its argument names)."""

    tool = BUILTIN_TOOLS[name]
    unknown = [key for key in args if key not in tool.args]
    if unknown:
        raise ToolError(f"Arg {unknown[0]} is not in the tool's args.")
    missing = [key for key in tool.args if key not in args]
    if missing:
        raise ToolError(f"missing argument {missing[0]!r}")
    try:
        return await tool.run(**args)
    except TypeError as error:
        raise ToolError(str(error)) from None
