"""Running, rendering and parsing for a stored program or an inline module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..lm.deadline import Deadline
from ..modules.engine import Engine
from ..modules.prediction import Prediction
from ..modules.predictor import RenderedPrompt
from ..modules.spec import LMChoice, ModuleSpec
from .programs import Programs


@dataclass(frozen=True)
class ProgramRef:
    """A stored program, optionally pinned to a revision."""

    program_id: str
    revision_id: str | None = None


@dataclass(frozen=True)
class ProgramPrediction:
    prediction: Prediction
    program_id: str = ""
    revision_id: str = ""


Target = ProgramRef | ModuleSpec


class Inference:
    def __init__(self, programs: Programs, engine: Engine) -> None:
        self._programs = programs
        self._engine = engine

    async def _resolve(self, target: Target) -> tuple[ModuleSpec, str, str]:
        """The module to run and, for stored programs, its id and revision."""

        if isinstance(target, ProgramRef):
            program = await self._programs.get(target.program_id, target.revision_id)
            return program.module, program.record.program_id, program.record.revision_id
        return target.validate("module"), "", ""

    async def predict(
        self,
        target: Target,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
    ) -> ProgramPrediction:
        module, program_id, revision_id = await self._resolve(target)
        prediction = await self._engine.run(
            module, inputs, request_lm=request_lm, deadline=deadline, include_trace=include_trace
        )
        return ProgramPrediction(prediction, program_id, revision_id)

    async def render_prompt(
        self, target: Target, inputs: Mapping[str, Any], *, predictor: str = "", adapter: str | None = None
    ) -> tuple[str, RenderedPrompt]:
        module, _, _ = await self._resolve(target)
        return self._engine.render(module, inputs, predictor=predictor, adapter=adapter)

    async def parse_completion(
        self, target: Target, completion: str, *, predictor: str = "", adapter: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        module, _, _ = await self._resolve(target)
        return self._engine.parse(module, completion, predictor=predictor, adapter=adapter)
