"""Events of a streamed run (``module.stream(...)`` / ``module.astream(...)``).

    for event in qa.stream(question="Why is the sky blue?"):
        if isinstance(event, dspy_grpc.FieldDelta):
            print(event.text, end="", flush=True)     # the answer as the LM writes it
        elif isinstance(event, dspy_grpc.Prediction):
            print(event.answer)                       # always the last event

Between the deltas come :class:`ModuleEvent` s (a module started / finished),
:class:`ToolCallEvent` s (a ReAct agent called a tool / got its observation) and
:class:`RetrievalEvent` s (a ``retrieve`` step found passages).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from .results import Prediction
from .v1 import inference_pb2
from .values import exact_or, from_struct

__all__ = ["FieldDelta", "ModuleEvent", "ToolCallEvent", "RetrievalEvent", "StreamEvent", "event_from_proto",
           "tool_error_text"]


@dataclass(frozen=True)
class FieldDelta:
    """More text of an output field, as the LM writes it (DSPy's ``StreamResponse``).

    The pieces of one field of one predictor call concatenate to the field's text; ``last`` closes
    the field. The typed value arrives in the final :class:`~dspy_grpc.Prediction`.
    """

    predictor: str
    field: str
    text: str
    last: bool


@dataclass(frozen=True)
class ModuleEvent:
    """A module started (``finished`` false) or finished; ``error`` says why it failed, if it did."""

    module: str
    kind: str
    finished: bool
    error: str = ""


@dataclass(frozen=True)
class ToolCallEvent:
    """A ReAct agent called a tool (``finished`` false) or observed its result."""

    module: str
    call_id: str
    tool: str
    args: dict[str, Any]
    finished: bool
    observation: Any = None
    error: str = ""


@dataclass(frozen=True)
class RetrievalEvent:
    """A ``retrieve`` step searched ``source`` ("corpora/...", a URL or "tool:<name>") for ``query``;
    ``passages`` are dicts {"id", "text", "score", "metadata"}, best first."""

    module: str
    query: str
    k: int
    source: str
    passages: list[dict[str, Any]]


#: What a stream yields; the last event is always the :class:`~dspy_grpc.Prediction`.
StreamEvent = Union[FieldDelta, ModuleEvent, ToolCallEvent, RetrievalEvent, Prediction]


def event_from_proto(event: inference_pb2.PredictEvent, output_types: Mapping[str, Any] | None) -> StreamEvent | None:
    """The event a stream yields for ``event`` (``None`` for Run's ``tool_call``, handled by the caller)."""

    kind = event.WhichOneof("event")
    if kind == "field_delta":
        d = event.field_delta
        return FieldDelta(d.predictor, d.field, d.text, d.last)
    if kind in ("module_started", "module_finished"):
        m = getattr(event, kind)
        return ModuleEvent(m.module, m.kind, kind == "module_finished", m.error)
    if kind in ("tool_call_started", "tool_call_finished"):
        t = getattr(event, kind)
        finished = kind == "tool_call_finished"
        observation = exact_or(t.observation_json, t.observation) if finished else None
        return ToolCallEvent(t.module, t.call_id, t.tool, exact_or(t.args_json, t.args), finished, observation,
                             t.error)
    if kind == "retrieval":
        r = event.retrieval
        passages = [{"id": p.id, "text": p.text, "score": p.score, "metadata": from_struct(p.metadata)}
                    for p in r.passages]
        return RetrievalEvent(r.module, r.query, r.k, r.source, passages)
    if kind == "prediction":
        return Prediction(event.prediction, output_types)
    return None


def tool_error_text(error: BaseException) -> str:
    """A failed tool's error as DSPy's ReAct shows it to the LM: a traceback of at most 5 frames."""

    return "\n" + "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=5)).strip()
