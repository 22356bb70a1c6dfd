"""What running a module returns: outputs, usage per model and, on request, a per-call trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..lm.types import Usage


@dataclass
class ModelUsage:
    """Tokens and calls spent on one model within one module run."""

    model: str
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


@dataclass(frozen=True)
class TraceStep:
    """One predictor call: what went in, what came out, through which adapter and model."""

    predictor: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    adapter: str
    model: str
    usage: Usage
    latency_s: float


@dataclass
class Prediction:
    outputs: dict[str, Any]
    usage: list[ModelUsage] = field(default_factory=list)
    trace: list[TraceStep] = field(default_factory=list)
