"""ReAct: think, pick a tool, observe — then extract the outputs from the trajectory (dspy.ReAct)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..adapters import get_adapter
from ..core import telemetry
from ..core.errors import FailedPrecondition, ParseError
from ..core.signature import Field, Role, Signature
from ..core.types import STR
from .context import RunContext
from .derive import FINISH, extract_signature, lenient_tool_name, react_signature
from .events import ToolCallFinished, ToolCallStarted
from .node import Node, join
from .predictor import NamedPredictor, call_predictor
from .spec import PredictorSpec, PredictorState, ToolSpec
from .tools import BUILTIN_TOOLS, ToolError, run_builtin

TRAJECTORY = "trajectory"


def resolved_tool(tool: ToolSpec) -> ToolSpec:
    """A built-in tool with its registry description and arguments filled in where left empty."""

    if not tool.builtin:
        return tool
    builtin = BUILTIN_TOOLS[tool.builtin]
    return replace(tool, description=tool.description or builtin.description, args=tool.args or builtin.args)


class ReActNode(Node):
    kind = "react"

    def __init__(self, name: str, spec: PredictorSpec, tools: Sequence[ToolSpec], max_iters: int,
                 react: PredictorState, extract: PredictorState) -> None:
        super().__init__(name)
        self.base = spec.signature
        self.tools = {tool.name: tool for tool in (resolved_tool(t) for t in tools)}
        self.max_iters = max_iters
        self.adapter = spec.adapter
        react_sig = react_signature(spec.signature, list(self.tools.values()), react.instructions)
        self.react = NamedPredictor(
            join(name, "react"), replace(spec, demos=react.demos), react_sig, parse_signature=lenient_tool_name(react_sig)
        )
        self.extract = NamedPredictor(
            join(name, "extract.predict"), replace(spec, demos=extract.demos),
            extract_signature(spec.signature, extract.instructions),
        )

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.base.input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return (TRAJECTORY,) + tuple(f.name for f in self.extract.signature.output_fields)

    def predictors(self) -> list[NamedPredictor]:
        return [self.react, self.extract]

    def needs_caller_tools(self) -> tuple[str, ...]:
        return tuple(name for name, tool in self.tools.items() if not tool.builtin)

    def format_trajectory(self, trajectory: Mapping[str, Any]) -> str:
        """The trajectory as the adapter formats it into the ``trajectory`` input (as DSPy does)."""

        fields = tuple(Field(key, Role.INPUT, STR) for key in trajectory) + (Field("x", Role.OUTPUT, STR),)
        return get_adapter(self.adapter).user_content(Signature(fields), trajectory)

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        missing = [name for name in self.needs_caller_tools() if ctx.tools is None or not ctx.tools.offers(name)]
        if missing:
            raise FailedPrecondition(
                f"the tools {', '.join(missing)} run in the caller's process: call InferenceService.Run and "
                "declare them", reason="TOOLS_UNAVAILABLE", metadata={"tools": ",".join(missing)},
            )
        values = {key: value for key, value in inputs.items() if key != TRAJECTORY}
        trajectory: dict[str, Any] = {}
        for idx in range(self.max_iters):
            try:
                step = await call_predictor(
                    self.react, {**values, TRAJECTORY: self.format_trajectory(trajectory)}, ctx, inputs_path=path
                )
            except ParseError:
                break  # as DSPy: the agent failed to produce a valid step; extract from what we have
            name, args = step["next_tool_name"], step["next_tool_args"]
            trajectory[f"thought_{idx}"] = step["next_thought"]
            trajectory[f"tool_name_{idx}"] = name
            trajectory[f"tool_args_{idx}"] = args
            trajectory[f"observation_{idx}"] = await self._observe(name, args, ctx)
            if name == FINISH:
                break
        extracted = await call_predictor(
            self.extract, {**values, TRAJECTORY: self.format_trajectory(trajectory)}, ctx, inputs_path=path
        )
        return {TRAJECTORY: trajectory, **extracted}

    async def _observe(self, name: str, args: Mapping[str, Any], ctx: RunContext) -> Any:
        """The tool's result, or the error text the LM sees (DSPy's "Execution error in ...")."""

        call_id = uuid.uuid4().hex[:16]
        ctx.send(ToolCallStarted(self.name, call_id, name, dict(args)))
        error = ""
        with telemetry.tool_call(name, call_id) as span:
            try:
                observation = await self._run_tool(call_id, name, args, ctx)
            except ToolError as failure:
                error = str(failure)
                observation = f"Execution error in {name}: {error}"
                telemetry.mark_failed(span, "TOOL_ERROR")
        ctx.send(ToolCallFinished(self.name, call_id, name, dict(args), observation, error))
        return observation

    async def _run_tool(self, call_id: str, name: str, args: Mapping[str, Any], ctx: RunContext) -> Any:
        if name == FINISH:
            if args:
                raise ToolError(f"Arg {next(iter(args))} is not in the tool's args.")
            return "Completed."
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join([*self.tools, FINISH])
            raise ToolError(f"there is no tool named {name!r}; the tools are: {known}")
        if tool.builtin:
            return await run_builtin(tool.builtin, args)
        assert ctx.tools is not None
        return await ctx.tools.call(call_id, name, args, ctx.remaining())
