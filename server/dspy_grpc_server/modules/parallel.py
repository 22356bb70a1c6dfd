"""Parallel: one module over many inputs, a bounded number at a time (dspy.Parallel)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..core.errors import DeadlineExceeded, DspyGrpcError, invalid
from ..core.signature import Field, Role
from ..core.types import ANY, STR, dict_of, list_of
from .context import RunContext
from .node import Node
from .predictor import NamedPredictor

ITEMS, RESULTS, ERRORS = "items", "results", "errors"


class ParallelNode(Node):
    """Runs ``module`` on every object of the ``items`` input, ``num_threads`` at a time. Outputs
    ``results`` (one output object per item, in order; null for a failed item) and ``errors``
    (``{"index", "reason", "message"}`` per failed item). Once ``max_errors`` items have failed the
    run stops with that error, as DSPy cancels the remaining work."""

    kind = "parallel"

    def __init__(self, name: str, module: Node, num_threads: int, max_errors: int) -> None:
        super().__init__(name)
        self.module, self.num_threads, self.max_errors = module, num_threads, max_errors

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return (Field(ITEMS, Role.INPUT, list_of(dict_of(STR, ANY))),)

    @property
    def output_names(self) -> tuple[str, ...]:
        return (RESULTS, ERRORS)

    def predictors(self) -> list[NamedPredictor]:
        return self.module.predictors()

    def needs_caller_tools(self) -> tuple[str, ...]:
        return self.module.needs_caller_tools()

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        unknown = [key for key in inputs if key != ITEMS]
        if unknown:
            raise invalid(f"{path}.{unknown[0]}", f"parallel modules take only {ITEMS!r}")
        items = inputs.get(ITEMS)
        if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
            raise invalid(f"{path}.{ITEMS}", "must be a list of input objects")
        gate = asyncio.Semaphore(max(1, self.num_threads))
        results: list[Any] = [None] * len(items)
        errors: list[dict[str, Any]] = []

        async def one(index: int, item: Mapping[str, Any]) -> None:
            async with gate:
                try:
                    results[index] = await self.module(item, ctx, f"{path}.{ITEMS}[{index}]")
                except DspyGrpcError as error:
                    if isinstance(error, DeadlineExceeded):
                        raise
                    errors.append({"index": index, "reason": error.reason, "message": error.message})
                    if len(errors) >= self.max_errors:
                        raise

        tasks = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(items)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        errors.sort(key=lambda entry: entry["index"])
        return {RESULTS: results, ERRORS: errors}
