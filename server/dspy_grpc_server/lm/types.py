"""The vocabulary of the LM provider layer: requests, responses, usage and the :class:`LM` interface.

Everything here is plain data. A module (``Predict`` and friends) builds an :class:`LMRequest` from the
messages an adapter rendered, hands it to an :class:`LM` and reads the texts back from the
:class:`LMResponse`. Which provider sits behind the :class:`LM` is invisible to the caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..core import bounds
from ..core.errors import FieldViolation, InvalidArgument, invalid

#: How a request uses the response cache: ``"use"`` (read and write; the default), ``"bypass"``
#: (neither read nor write) or ``"refresh"`` (do not read, but store the fresh answer).
CachePolicy = Literal["use", "bypass", "refresh"]
CACHE_POLICIES: tuple[str, ...] = ("use", "bypass", "refresh")


#: Stop sequences per request (OpenAI allows 4; some providers more).
MAX_STOP_SEQUENCES = 16


@dataclass(frozen=True)
class LMOptions:
    """Sampling options for one completion. ``None`` (or an empty ``stop``) means "provider default".

    ``tools`` are OpenAI-style function tools (``{"type": "function", "function": {"name": ...,
    "description": ..., "parameters": {...}}}``) and ``tool_choice`` is ``"auto"``, ``"none"``,
    ``"required"`` or ``{"type": "function", "function": {"name": ...}}``; providers translate both.
    """

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    response_format: Mapping[str, Any] | None = None
    #: DSPy's rollout id: not sent to the provider, but part of the cache key, so that otherwise
    #: identical requests (BestOfN, Refine) get distinct completions.
    rollout_id: int | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    #: How this request uses the response cache (never sent, not part of the cache key);
    #: ``None`` means ``"use"``.
    cache: CachePolicy | None = None

    def validate(self, path: str) -> None:
        """Every number within its documented bounds (INVALID_ARGUMENT naming ``path.<option>``)."""

        bounds.TEMPERATURE.check(self.temperature, f"{path}.temperature")
        bounds.MAX_TOKENS.check(self.max_tokens, f"{path}.max_tokens")
        bounds.FRACTION.check(self.top_p, f"{path}.top_p")
        bounds.Range(0, bounds.INT64_MAX).check(self.seed, f"{path}.seed")
        bounds.COMPLETIONS.check(self.n, f"{path}.n")
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise invalid(f"{path}.stop", f"must hold at most {MAX_STOP_SEQUENCES} sequences")

    def is_unset(self) -> bool:
        """Whether no option is set (every value is the "provider default" one)."""

        return (self.temperature is None and self.max_tokens is None and self.top_p is None and not self.stop
                and self.seed is None and self.n == 1 and self.response_format is None and self.rollout_id is None
                and not self.tools and self.tool_choice is None and self.cache is None)

    @property
    def cache_policy(self) -> str:
        """The effective cache policy (``"use"`` when unset)."""

        return self.cache or "use"

    def merged_over(self, defaults: LMOptions) -> LMOptions:
        """These options, with every unset value taken from ``defaults``.

        ``n`` counts as unset when it is 1 (the neutral value), ``stop`` when it is empty. When either
        side sets nothing, the other is returned as it is (no new object: this runs several times
        on every call).
        """

        if defaults.is_unset():
            return self
        if self.is_unset():
            return defaults
        return LMOptions(
            temperature=self.temperature if self.temperature is not None else defaults.temperature,
            max_tokens=self.max_tokens if self.max_tokens is not None else defaults.max_tokens,
            top_p=self.top_p if self.top_p is not None else defaults.top_p,
            stop=self.stop or defaults.stop,
            seed=self.seed if self.seed is not None else defaults.seed,
            n=self.n if self.n != 1 else defaults.n,
            response_format=(
                self.response_format if self.response_format is not None else defaults.response_format
            ),
            rollout_id=self.rollout_id if self.rollout_id is not None else defaults.rollout_id,
            tools=self.tools or defaults.tools,
            tool_choice=self.tool_choice if self.tool_choice is not None else defaults.tool_choice,
            cache=self.cache if self.cache is not None else defaults.cache,
        )


@dataclass(frozen=True)
class LMRequest:
    """One chat completion request.

    ``messages`` use the OpenAI chat format: ``{"role": ..., "content": ...}`` where content is a string
    or a list of parts such as ``{"type": "text", "text": ...}``.
    """

    messages: tuple[Mapping[str, Any], ...]
    options: LMOptions = field(default_factory=LMOptions)

    def with_options(self, **changes: Any) -> LMRequest:
        """A copy of this request with some options replaced."""

        return replace(self, options=replace(self.options, **changes))

    def last_user_text(self) -> str:
        """The text of the last ``user`` message (text parts joined by newlines), or ``""``."""

        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message_text(message)
        return ""


def message_text(message: Mapping[str, Any]) -> str:
    """The plain text of one chat message: the string content, or its text parts joined by newlines."""

    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
    return "\n".join(texts)


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more completions. Usages add up with ``+``.

    ``estimated`` is True when the provider reported no usage and the counts were estimated from the
    text (about four characters per token); a sum is estimated when any part of it is.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            estimated=self.estimated or other.estimated,
        )


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asks for: ``arguments`` is the JSON text of the arguments object."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class LMResponse:
    """The answer to an :class:`LMRequest`: one text per requested choice."""

    texts: tuple[str, ...]
    usage: Usage
    model: str
    finish_reasons: tuple[str, ...] = ()
    response_id: str = ""
    #: True when the answer came from the cache (then ``usage`` is zero: nothing was spent).
    cache_hit: bool = False
    #: The tool calls of each choice (parallel to ``texts``; empty when the model called none).
    tool_calls: tuple[tuple[ToolCall, ...], ...] = ()
    #: What the call cost, from the deployment's price table (0 for cache hits and unpriced models).
    cost_usd: float = 0.0
    #: The deployment that answered (empty for cache hits and LMs without deployments).
    deployment: str = ""
    #: On a cache hit: the key the answer was read under (see ``GatewayLM.recall``); else empty.
    cache_key: str = ""

    @property
    def text(self) -> str:
        """The first choice's text (``""`` when there is none)."""

        return self.texts[0] if self.texts else ""


@dataclass(frozen=True)
class LMStreamChunk:
    """One piece of a streamed completion.

    ``text`` is the delta of the first choice (possibly empty). The final chunk of a stream carries
    ``finish_reason`` and, when the provider reports it, ``usage``.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str = ""
    #: True when the whole completion came from the cache (a single chunk then carries all the text).
    cache_hit: bool = False
    #: Final chunk only: the tool calls of the first choice, complete.
    tool_calls: tuple[ToolCall, ...] = ()
    #: Final chunk only: what the call cost.
    cost_usd: float = 0.0
    #: Final chunk only: the deployment that answered.
    deployment: str = ""


@dataclass(frozen=True)
class EmbeddingResponse:
    """The answer to an embeddings request: one vector per input text, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    model: str
    #: True when the answer came from the cache (then ``usage`` is zero: nothing was spent).
    cache_hit: bool = False
    #: What the call cost, from the deployment's price table.
    cost_usd: float = 0.0
    #: The deployment that answered (empty for cache hits).
    deployment: str = ""


def wrong_model_kind(alias: str, *, wanted: str, field_name: str) -> InvalidArgument:
    """The error for using a chat model to embed, or an embedding model to complete chat."""

    if wanted == "embedding":
        description = f"model {alias!r} is a chat model, not an embedding model (kind = \"embedding\")"
        reason = "NOT_AN_EMBEDDING_MODEL"
    else:
        description = f"model {alias!r} is an embedding model; it cannot complete chat"
        reason = "NOT_A_CHAT_MODEL"
    return InvalidArgument(f"{field_name}: {description}", reason=reason, metadata={"model": alias},
                           violations=[FieldViolation(field_name, description)])


class LM(ABC):
    """A language model the engine can ask for chat completions.

    ``name`` is the alias under which the model is known to callers (e.g. ``"gpt-4o-mini"`` or
    ``"local-dummy"``), not necessarily the provider's model name.
    """

    name: str
    #: Whether ``response_format`` may carry a strict JSON schema (else only ``json_object``).
    supports_json_schema: bool = True
    #: Whether :meth:`recall` can answer (the LM keeps a response cache).
    recalls: bool = False

    async def recall(self, key: str, options: LMOptions) -> LMResponse | None:
        """The answer cached under ``key`` (an earlier cache hit's ``LMResponse.cache_key``), recorded
        as a cache hit of a request with ``options``; None when there is none (this LM keeps no cache)."""

        return None

    @abstractmethod
    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        """Run one completion.

        ``timeout`` is the caller's remaining budget in seconds; the LM never works past it (nor past
        its own configured timeout) and raises :class:`~dspy_grpc_server.core.errors.DeadlineExceeded`.
        """

    async def stream_chunks(
        self, request: LMRequest, *, timeout: float | None = None
    ) -> AsyncIterator[LMStreamChunk]:
        """The completion as it arrives. The default runs :meth:`complete` and yields one final chunk."""

        response = await self.complete(request, timeout=timeout)
        yield LMStreamChunk(
            text=response.text,
            finish_reason=response.finish_reasons[0] if response.finish_reasons else "stop",
            usage=response.usage,
            model=response.model,
            cache_hit=response.cache_hit,
            tool_calls=response.tool_calls[0] if response.tool_calls else (),
            cost_usd=response.cost_usd,
            deployment=response.deployment,
        )

    async def stream(self, request: LMRequest, *, timeout: float | None = None) -> AsyncIterator[str]:
        """Text deltas of the first choice (from :meth:`stream_chunks`)."""

        async for chunk in self.stream_chunks(request, timeout=timeout):
            if chunk.text:
                yield chunk.text

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> EmbeddingResponse:
        """One vector per text (embedding models only; every other LM refuses with
        ``NOT_AN_EMBEDDING_MODEL``)."""

        raise wrong_model_kind(self.name, wanted="embedding", field_name="embedding_model")

    async def aclose(self) -> None:
        """Release connections and other resources. Safe to call more than once."""
