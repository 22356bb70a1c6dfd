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
    #: The provider's ids of the LM calls made (one, or two with a fallback or the two-step adapter).
    lm_call_ids: tuple[str, ...] = ()
    #: True when every LM call of this step was answered from the cache.
    cache_hit: bool = False

    @property
    def is_retrieval(self) -> bool:
        """A retrieval (``predictor`` is then the retrieve module's name), not a predictor call."""

        return self.adapter == RETRIEVAL_ADAPTER


#: The ``adapter`` of a trace step that records a retrieval (a ``retrieve`` module), not a predictor call.
RETRIEVAL_ADAPTER = "retrieve"


@dataclass(frozen=True)
class AdapterFallback:
    """A completion one adapter could not parse, retried (one more LM call) with another adapter."""

    predictor: str
    from_adapter: str
    to_adapter: str
    error: str


@dataclass
class Prediction:
    outputs: dict[str, Any]
    usage: list[ModelUsage] = field(default_factory=list)
    trace: list[TraceStep] = field(default_factory=list)
    adapter_fallbacks: list[AdapterFallback] = field(default_factory=list)
