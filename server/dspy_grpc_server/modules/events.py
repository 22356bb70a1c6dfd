"""What a streaming run reports while it works (the final prediction is not an event: it is the result)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class FieldDelta:
    """More text of one output field of one predictor call. ``last`` closes the field."""

    predictor: str
    field: str
    text: str
    last: bool = False


@dataclass(frozen=True)
class ModuleStarted:
    """A module (``name`` as DSPy names it; "" for the program itself) started."""

    module: str
    kind: str


@dataclass(frozen=True)
class ModuleFinished:
    module: str
    kind: str
    error: str = ""


@dataclass(frozen=True)
class ToolCallStarted:
    """A ReAct agent called a tool; ``call_id`` pairs it with its :class:`ToolCallFinished`."""

    module: str
    call_id: str
    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolCallFinished:
    """The tool answered (``observation``) or failed (``error``, and the observation the LM sees)."""

    module: str
    call_id: str
    tool: str
    args: dict[str, Any]
    observation: Any
    error: str = ""


@dataclass(frozen=True)
class RetrievalFinished:
    """A ``retrieve`` module searched ``source`` for ``query`` and found ``passages`` (best first)."""

    module: str
    query: str
    k: int
    source: str
    passages: tuple[Any, ...]


Event = Union[FieldDelta, ModuleStarted, ModuleFinished, ToolCallStarted, ToolCallFinished, RetrievalFinished]
