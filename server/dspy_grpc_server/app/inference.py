"""Running a stored program or an inline module: the Predict use case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..lm.deadline import Deadline
from ..modules.engine import Engine
from ..modules.prediction import Prediction
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


class Inference:
    def __init__(self, programs: Programs, engine: Engine) -> None:
        self._programs = programs
        self._engine = engine

    async def predict(
        self,
        target: ProgramRef | ModuleSpec,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
    ) -> ProgramPrediction:
        if isinstance(target, ProgramRef):
            program = await self._programs.get(target.program_id, target.revision_id)
            prediction = await self._engine.run(
                program.module, inputs, request_lm=request_lm, deadline=deadline, include_trace=include_trace
            )
            return ProgramPrediction(prediction, program.record.program_id, program.record.revision_id)
        target.validate("module")
        prediction = await self._engine.run(
            target, inputs, request_lm=request_lm, deadline=deadline, include_trace=include_trace
        )
        return ProgramPrediction(prediction)
