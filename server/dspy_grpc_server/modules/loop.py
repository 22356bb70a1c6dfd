"""Loops: ``for _ in range(max_iters)`` over a sub-graph, carrying variables across iterations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.signature import Field
from .context import RunContext
from .graph import GraphNode
from .node import Node
from .predictor import NamedPredictor
from .spec import LoopVariable


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def fold(variable: LoopVariable, held: Any, value: Any) -> Any:
    """The variable after one iteration whose update is ``value``."""

    if variable.accumulate == "last":
        return value
    items = list(held) if isinstance(held, list) else ([] if held is None else [held])
    new = value if isinstance(value, list) else [value]
    if variable.accumulate == "append":
        return items + list(new)
    seen = {_key(item) for item in items}
    for item in new:
        key = _key(item)
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


class LoopNode(Node):
    kind = "loop"

    def __init__(self, name: str, body: GraphNode, max_iters: int, variables: tuple[LoopVariable, ...],
                 stop_when: str) -> None:
        super().__init__(name)
        self.body = body
        self.max_iters = max_iters
        self.variables = variables
        self.stop_when = stop_when
        carried = {v.name for v in variables}
        self._inputs = tuple(f for f in body.input_fields if f.name not in carried)

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self._inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def predictors(self) -> list[NamedPredictor]:
        return self.body.predictors()  # once each, however many iterations run them

    def needs_caller_tools(self) -> tuple[str, ...]:
        return self.body.needs_caller_tools()

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        held = {v.name: json.loads(json.dumps(v.start)) for v in self.variables}
        given = {f.name: inputs[f.name] for f in self._inputs if f.name in inputs}
        read = {f.name for f in self.body.input_fields}
        for _ in range(self.max_iters):
            ctx.remaining()  # stop between iterations once the deadline has passed
            carried = {name: value for name, value in held.items() if name in read}
            outputs = await self.body({**given, **carried}, ctx, path)
            for variable in self.variables:
                held[variable.name] = fold(variable, held[variable.name], outputs.get(variable.update))
            if self.stop_when and outputs.get(self.stop_when):
                break
        return held
