"""Programs as graphs: named steps wired by explicit input mappings, independent steps in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters import validate_inputs
from ..core.signature import Field, Signature
from .context import RunContext
from .node import Node
from .predictor import NamedPredictor

PROGRAM_INPUTS = "inputs"


@dataclass(frozen=True)
class Source:
    """Where a value comes from: a program input (``step == "inputs"``) or a step's output."""

    step: str
    field: str

    @classmethod
    def parse(cls, text: str) -> Source | None:
        step, dot, field = text.partition(".")
        if not dot or not step or not field:
            return None
        return cls(step, field)

    def __str__(self) -> str:
        return f"{self.step}.{self.field}"


@dataclass(frozen=True)
class WiredStep:
    name: str
    node: Node
    inputs: tuple[tuple[str, Source], ...]

    @property
    def depends_on(self) -> set[str]:
        return {source.step for _, source in self.inputs if source.step != PROGRAM_INPUTS}


class GraphNode(Node):
    kind = "graph"

    def __init__(self, name: str, steps: Sequence[WiredStep], outputs: Sequence[tuple[str, Source]],
                 program_inputs: Sequence[Field]) -> None:
        super().__init__(name)
        self.steps = tuple(steps)
        self.outputs = tuple(outputs)
        self.program_inputs = tuple(program_inputs)

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.program_inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.outputs)

    def predictors(self) -> list[NamedPredictor]:
        return [p for step in self.steps for p in step.node.predictors()]

    def needs_caller_tools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for step in self.steps for t in step.node.needs_caller_tools()))

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        # Program inputs are checked up front, so that errors name "inputs.<name>".
        values = validate_inputs(Signature(self.program_inputs), inputs, field_path=path)
        results: dict[str, dict[str, Any]] = {PROGRAM_INPUTS: values}
        tasks: dict[str, asyncio.Task] = {}

        async def run(step: WiredStep) -> None:
            for dependency in step.depends_on:
                await tasks[dependency]
            given = {
                target: results[source.step][source.field]
                for target, source in step.inputs
                if source.field in results[source.step]
            }
            results[step.name] = await step.node(given, ctx, f"{step.name}.inputs")

        for step in self.steps:  # in topological order: dependencies have their tasks already
            tasks[step.name] = asyncio.ensure_future(run(step))
        try:
            done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
            for step in self.steps:
                task = tasks[step.name]
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.gather(*tasks.values())
        finally:
            for task in tasks.values():
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        return {name: results[source.step].get(source.field) for name, source in self.outputs}
