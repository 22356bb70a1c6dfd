"""The runtime form of a module: a tree of :class:`Node` s built once from a :data:`ModuleSpec`.

Every node knows its name (DSPy's attribute path, "" for the program itself), the input fields it
accepts, the output fields it produces and its predictors, named as DSPy's ``named_predictors()``
names them. Running a node reports ModuleStarted/ModuleFinished events to streaming callers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from ..core.signature import Field
from .context import RunContext
from .events import ModuleFinished, ModuleStarted
from .predictor import NamedPredictor


def join(prefix: str, name: str) -> str:
    """DSPy's dotted predictor/module path: ``join("generate", "predict") == "generate.predict"``."""

    return f"{prefix}.{name}" if prefix else name


class Node(ABC):
    kind: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def input_fields(self) -> tuple[Field, ...]:
        """The inputs the node accepts (a field whose type admits None may be left out)."""

    @property
    @abstractmethod
    def output_names(self) -> tuple[str, ...]:
        """The outputs the node produces, in order."""

    @abstractmethod
    def predictors(self) -> list[NamedPredictor]:
        """Every predictor under this node, in DSPy's order."""

    @abstractmethod
    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        """The outputs for ``inputs``; ``path`` names the inputs in errors (e.g. "inputs")."""

    async def __call__(self, inputs: Mapping[str, Any], ctx: RunContext, path: str = "inputs") -> dict[str, Any]:
        if not ctx.streaming:
            return await self.forward(inputs, ctx, path)
        ctx.send(ModuleStarted(self.name, self.kind))
        try:
            outputs = await self.forward(inputs, ctx, path)
        except Exception as error:
            ctx.send(ModuleFinished(self.name, self.kind, error=str(error) or type(error).__name__))
            raise
        ctx.send(ModuleFinished(self.name, self.kind))
        return outputs

    def find_predictor(self, name: str) -> NamedPredictor | None:
        for predictor in self.predictors():
            if predictor.name == name:
                return predictor
        return None

    def needs_caller_tools(self) -> tuple[str, ...]:
        """Names of the tools under this node that the caller must execute (InferenceService.Run)."""

        return ()
