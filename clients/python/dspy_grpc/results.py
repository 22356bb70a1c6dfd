"""What the client returns: :class:`Prediction`, :class:`Program` and their parts."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .coerce import coerce
from .v1 import inference_pb2, prediction_pb2, program_pb2
from .values import exact_or, from_struct

__all__ = ["Usage", "TraceStep", "AdapterFallback", "Prediction", "Program", "RenderedPrompt", "typed_outputs"]


@dataclass(frozen=True)
class Usage:
    """Tokens spent with one model during a call."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int

    @classmethod
    def from_proto(cls, usage: prediction_pb2.ModelUsage) -> Usage:
        return cls(usage.model, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.calls)


@dataclass(frozen=True)
class TraceStep:
    """One predictor call (present when the request set ``include_trace=True``)."""

    predictor: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    adapter: str
    model: str
    usage: Usage | None
    latency: float
    """Wall time of the call in seconds, including parsing."""

    @classmethod
    def from_proto(cls, step: prediction_pb2.TraceStep) -> TraceStep:
        return cls(
            predictor=step.predictor,
            inputs=exact_or(step.inputs_json, step.inputs),
            outputs=exact_or(step.outputs_json, step.outputs),
            adapter=step.adapter,
            model=step.model,
            usage=Usage.from_proto(step.usage) if step.HasField("usage") else None,
            latency=step.latency.seconds + step.latency.nanos / 1e9,
        )


@dataclass(frozen=True)
class AdapterFallback:
    """An extra LM call made because a completion could not be parsed (ChatAdapter -> JSONAdapter)."""

    predictor: str
    from_adapter: str
    to_adapter: str
    error: str


def typed_outputs(values: Mapping[str, Any], types: Mapping[str, Any] | None) -> dict[str, Any]:
    """``values`` with each field that has a declared type converted to it (others as they are), in
    the declared order (``Struct`` keys arrive unordered)."""

    if not types:
        return dict(values)
    ordered = [name for name in types if name in values] + [name for name in values if name not in types]
    return {name: coerce(types[name], values[name], name) if name in types else values[name] for name in ordered}


class Prediction:
    """The result of running a module, like ``dspy.Prediction``.

    Output fields are attributes and items: ``pred.answer`` / ``pred["answer"]``; ``pred.outputs``
    is a dict of all of them. When the module's signature is a :class:`~dspy_grpc.Signature`
    subclass, each output has the Python type it declares (``int`` fields give ``int``, dataclass
    fields an instance, ...); otherwise outputs are plain JSON values. ``pred.raw`` is the
    ``dspy_grpc.v1.Prediction`` proto.
    """

    __slots__ = ("outputs", "usage", "trace", "program", "revision_id", "adapter_fallbacks", "raw")

    def __init__(self, raw: prediction_pb2.Prediction, output_types: Mapping[str, Any] | None = None) -> None:
        self.raw = raw
        self.outputs: dict[str, Any] = typed_outputs(exact_or(raw.outputs_json, raw.outputs), output_types)
        self.usage: list[Usage] = [Usage.from_proto(u) for u in raw.usage]
        self.trace: list[TraceStep] = [TraceStep.from_proto(s) for s in raw.trace]
        self.program: str = raw.program
        self.revision_id: str = raw.revision_id
        self.adapter_fallbacks: list[AdapterFallback] = [
            AdapterFallback(f.predictor, f.from_adapter, f.to_adapter, f.error) for f in raw.adapter_fallbacks
        ]

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not slots: output fields.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.outputs[name]
        except KeyError:
            raise AttributeError(
                f"prediction has no output field {name!r} (fields: {', '.join(self.outputs) or 'none'})"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self.outputs[name]

    def __contains__(self, name: object) -> bool:
        return name in self.outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def get(self, name: str, default: Any = None) -> Any:
        """The output field ``name``, or ``default``."""

        return self.outputs.get(name, default)

    @property
    def total_tokens(self) -> int:
        """Tokens spent across all models."""

        return sum(u.total_tokens for u in self.usage)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prediction) and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{key}={value!r}" for key, value in self.outputs.items()]
        if self.program:
            parts.append(f"program={self.program}@{self.revision_id}")
        return f"Prediction({', '.join(parts)})"


def _time(timestamp: Any) -> _dt.datetime | None:
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return timestamp.ToDatetime(tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class Program:
    """A stored program at one revision. ``raw`` is the ``dspy_grpc.v1.Program`` proto."""

    name: str
    revision_id: str
    etag: str
    display_name: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    active_revision_id: str = ""
    create_time: _dt.datetime | None = None
    update_time: _dt.datetime | None = None
    revision_create_time: _dt.datetime | None = None
    raw: program_pb2.Program = field(default_factory=program_pb2.Program, repr=False, compare=False)

    @property
    def program_id(self) -> str:
        """The id, ``"qa"`` for ``"programs/qa"``."""

        return self.name.removeprefix("programs/")

    @property
    def revision_name(self) -> str:
        """The name of this exact revision, ``"programs/qa@r0002"``; pass it to ``predict`` to pin it."""

        return f"{self.name}@{self.revision_id}" if self.revision_id else self.name

    @property
    def module(self) -> Any:
        """The ``dspy_grpc.v1.ModuleSpec`` the program runs."""

        return self.raw.module

    @classmethod
    def from_proto(cls, raw: program_pb2.Program) -> Program:
        return cls(
            name=raw.name,
            revision_id=raw.revision_id,
            etag=raw.etag,
            display_name=raw.display_name,
            description=raw.description,
            labels=dict(raw.labels),
            active_revision_id=raw.active_revision_id,
            create_time=_time(raw.create_time),
            update_time=_time(raw.update_time),
            revision_create_time=_time(raw.revision_create_time),
            raw=raw,
        )


@dataclass(frozen=True)
class RenderedPrompt:
    """What a predictor would send to its LM (from ``RenderPrompt``), without calling it.

    ``messages`` are OpenAI-style chat messages: ``{"role": ..., "content": "..."}``, where
    ``content`` is a list of content parts (``{"type": "text", ...}``, ``{"type": "image_url", ...}``)
    for messages with images. ``request_options`` are the extra request body entries
    (``response_format`` for JSON, sampling options).
    """

    messages: list[dict[str, Any]]
    request_options: dict[str, Any]
    predictor: str
    adapter: str
    raw: inference_pb2.RenderPromptResponse = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, raw: inference_pb2.RenderPromptResponse) -> RenderedPrompt:
        messages = [
            {"role": m.role, "content": [from_struct(p) for p in m.content_parts] if m.content_parts else m.content}
            for m in raw.messages
        ]
        options = exact_or(raw.request_options_json, raw.request_options)
        return cls(messages, options, raw.predictor, raw.adapter, raw)
