"""Ensembles: several programs on the same inputs, their outputs reduced (dspy.Ensemble)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.signature import Field
from .context import RunContext
from .node import Node
from .predictor import NamedPredictor
from .rollouts import gather_all, vote

COMPLETIONS = "completions"


class EnsembleNode(Node):
    """Runs ``size`` of the programs (all when 0) concurrently on the same inputs. ``majority`` returns
    the shared outputs of the first program whose ``field`` value is the most common (``dspy.majority``);
    ``none`` returns every program's outputs, in the order the programs ran, as ``completions``.

    DSPy draws the sample from the global ``random`` module on every call; here the generator is
    seeded by ``seed``, the call's rollout id and the inputs, so the same call always uses the same
    programs (what DSPy's unimplemented ``deterministic=True`` asks for)."""

    kind = "ensemble"

    def __init__(self, name: str, programs: Sequence[Node], shared_outputs: Sequence[str], reduce: str, size: int,
                 seed: int, field: str) -> None:
        super().__init__(name)
        self.programs = tuple(programs)
        self.shared_outputs = tuple(shared_outputs)
        self.reduce = reduce
        self.size = size
        self.seed = seed
        self.field = field or self.shared_outputs[-1]

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.programs[0].input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.shared_outputs if self.reduce == "majority" else (COMPLETIONS,)

    def predictors(self) -> list[NamedPredictor]:
        return [p for program in self.programs for p in program.predictors()]

    def needs_caller_tools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for program in self.programs for t in program.needs_caller_tools()))

    def sample(self, inputs: Mapping[str, Any], rollout_id: int | None) -> list[int]:
        """The indexes of the programs one call runs, in the order they run."""

        count = len(self.programs)
        if not self.size or self.size >= count:
            return list(range(count))
        key = json.dumps([self.seed, rollout_id, dict(inputs)], sort_keys=True, default=str)
        rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        return rng.sample(range(count), self.size)

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        chosen = self.sample(inputs, ctx.option_overrides.rollout_id)
        completions = await gather_all([self.programs[i](inputs, ctx, path) for i in chosen])
        if self.reduce == "majority":
            winner = vote(completions, self.field)
            return {name: winner.get(name) for name in self.shared_outputs}
        return {COMPLETIONS: completions}
