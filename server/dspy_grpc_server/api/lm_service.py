"""LMService: translation between requests and the provider layer (:class:`~..lm.registry.LMRegistry`)."""

from __future__ import annotations

from typing import Any

import grpc
from dspy_grpc.v1 import lm_pb2, lm_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

from ..core.bounds import COMPLETIONS, Range
from ..core.errors import invalid
from ..lm.registry import LMRegistry
from ..optimize.live_traffic import LiveTraffic
from ..lm.status import DeploymentStatus, ModelStatus
from ..lm.types import LM, EmbeddingResponse, LMRequest, LMResponse, LMStreamChunk, ToolCall, wrong_model_kind
from ..store.paging import decode_page_token, encode_page_token, normalize_page_size
from .convert import lm_options_from_proto, struct_to_dict
from .deadlines import seconds_left

ROLES = ("system", "developer", "user", "assistant", "tool")
#: Most texts one Embed call takes (OpenAI's limit per embeddings request).
MAX_EMBED_TEXTS = 2048
#: `n` of a request: 0 means 1.
_REQUESTED_COMPLETIONS = Range(0, COMPLETIONS.high)
_BREAKER_STATES = {
    "closed": lm_pb2.BREAKER_STATE_CLOSED,
    "open": lm_pb2.BREAKER_STATE_OPEN,
    "half_open": lm_pb2.BREAKER_STATE_HALF_OPEN,
}


class LMService(lm_pb2_grpc.LMServiceServicer):
    def __init__(self, registry: LMRegistry, live: LiveTraffic | None = None) -> None:
        self._registry = registry
        #: Counts the calls in flight, so that jobs give way to them (optimize.live_traffic).
        self._live = live or LiveTraffic()

    def _model(self, alias: str, kind: str) -> LM:
        """The model ``alias`` (NOT_FOUND if unknown), which must be of ``kind`` ("chat"/"embedding")."""

        lm = self._registry.get(alias)
        if self._registry.config(alias).kind != kind:
            raise wrong_model_kind(alias, wanted=kind, field_name="model")
        return lm

    async def Complete(self, request: lm_pb2.CompleteRequest, context: grpc.aio.ServicerContext):
        lm_request = lm_request_from_proto(request)
        lm = self._model(request.model, "chat")
        with self._live.call():
            response = await lm.complete(lm_request, timeout=seconds_left(context))
        return complete_response(response)

    async def StreamComplete(self, request: lm_pb2.StreamCompleteRequest, context: grpc.aio.ServicerContext):
        if request.n > 1:
            raise invalid("n", "StreamComplete streams one choice: n must be 0 or 1")
        lm_request = lm_request_from_proto(request)
        lm = self._model(request.model, "chat")
        texts: list[str] = []
        with self._live.call():
            async for chunk in lm.stream_chunks(lm_request, timeout=seconds_left(context)):
                texts.append(chunk.text)
                if chunk.finish_reason is None:
                    if chunk.text:
                        yield lm_pb2.StreamCompleteResponse(text_delta=chunk.text)
                    continue
                yield lm_pb2.StreamCompleteResponse(done=final_response("".join(texts), chunk))

    async def Embed(self, request: lm_pb2.EmbedRequest, context: grpc.aio.ServicerContext):
        if not request.texts:
            raise invalid("texts", "must hold at least one text")
        if len(request.texts) > MAX_EMBED_TEXTS:
            raise invalid("texts", f"must hold at most {MAX_EMBED_TEXTS} texts, got {len(request.texts)}")
        for index, text in enumerate(request.texts):
            if not text:
                raise invalid(f"texts[{index}]", "must not be empty")
        lm = self._model(request.model, "embedding")
        response = await lm.embed(tuple(request.texts), timeout=seconds_left(context))
        return lm_pb2.EmbedResponse(
            embeddings=[lm_pb2.Embedding(values=vector) for vector in response.vectors], usage=_usage(response),
            model=response.model, deployment=response.deployment, cache_hit=response.cache_hit,
        )

    async def ListModels(self, request: lm_pb2.ListModelsRequest, context: grpc.aio.ServicerContext):
        size = normalize_page_size(request.page_size)
        start = decode_page_token(request.page_token, "models") or 0
        if not isinstance(start, int) or start < 0:
            raise invalid("page_token", "is not a page token returned by this listing")
        aliases = self._registry.aliases()
        page = aliases[start:start + size]
        following = start + size
        return lm_pb2.ListModelsResponse(
            models=[model_info(self._registry, alias) for alias in page],
            next_page_token=encode_page_token("models", following) if following < len(aliases) else "",
        )

    async def GetProviderStatus(self, request: lm_pb2.GetProviderStatusRequest, context: grpc.aio.ServicerContext):
        if request.model:
            self._registry.config(request.model)  # NOT_FOUND for an unknown alias
        return lm_pb2.GetProviderStatusResponse(
            models=[model_status(status) for status in self._registry.status(request.model)]
        )


# --------------------------------------------------------------------------- requests


def _message(message: lm_pb2.LMMessage, index: int) -> dict[str, Any]:
    role, content = message.role, message.content
    if role not in ROLES:
        raise invalid(f"messages[{index}].role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    out: dict[str, Any] = {"role": role, "content": content}
    if message.content_parts:
        if content:
            raise invalid(f"messages[{index}].content", "set content or content_parts, not both")
        out["content"] = [struct_to_dict(part) for part in message.content_parts]
    if message.tool_calls:
        if role != "assistant":
            raise invalid(f"messages[{index}].tool_calls", "only assistant messages carry tool calls")
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
            for call in message.tool_calls
        ]
    if role == "tool":
        if not message.tool_call_id:
            raise invalid(f"messages[{index}].tool_call_id", "is required for tool messages")
        out["tool_call_id"] = message.tool_call_id
    return out


def lm_request_from_proto(request: lm_pb2.CompleteRequest | lm_pb2.StreamCompleteRequest) -> LMRequest:
    """The domain request for Complete / StreamComplete; INVALID_ARGUMENT names the bad field."""

    if not request.model:
        raise invalid("model", "name a model alias (see ListModels)")
    if not request.messages:
        raise invalid("messages", "must contain at least one message")
    messages = tuple([_message(m, i) for i, m in enumerate(request.messages)])
    _REQUESTED_COMPLETIONS.check(request.n, "n")
    tools = []
    for index, tool in enumerate(request.tools):
        if not tool.name:
            raise invalid(f"tools[{index}].name", "must not be empty")
        parameters = struct_to_dict(tool.parameters) if tool.HasField("parameters") else {
            "type": "object", "properties": {}}
        tools.append({"type": "function",
                      "function": {"name": tool.name, "description": tool.description, "parameters": parameters}})
    tool_choice: str | dict[str, Any] | None = None
    if request.tool_choice in ("auto", "none", "required"):
        tool_choice = request.tool_choice
    elif request.tool_choice:
        if request.tool_choice not in {tool.name for tool in request.tools}:
            raise invalid("tool_choice", "must be auto, none, required or the name of one of tools")
        tool_choice = {"type": "function", "function": {"name": request.tool_choice}}
    options = lm_options_from_proto(
        request.options,
        n=request.n or 1,
        response_format=(struct_to_dict(request.response_format, "response_format")
                         if request.HasField("response_format") else None),
        tools=tuple(tools),
        tool_choice=tool_choice,
        rollout_id=request.rollout_id if request.HasField("rollout_id") else None,
    )
    options.validate("options")
    return LMRequest(messages, options)


# --------------------------------------------------------------------------- responses


def _tool_calls(calls: tuple[ToolCall, ...]) -> list[lm_pb2.LMToolCall]:
    return [lm_pb2.LMToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in calls]


def _usage(response: LMResponse | LMStreamChunk | EmbeddingResponse) -> lm_pb2.LMUsage:
    message = lm_pb2.LMUsage()
    _set_usage(message, response)
    return message


def _set_usage(message: lm_pb2.LMUsage, response: LMResponse | LMStreamChunk | EmbeddingResponse) -> None:
    usage = response.usage
    if usage is not None:
        message.prompt_tokens, message.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        message.total_tokens, message.estimated = usage.total_tokens, usage.estimated
        message.cost_usd = response.cost_usd


def complete_response(response: LMResponse) -> lm_pb2.CompleteResponse:
    # Built in place (no choice or usage message built to be copied in): Complete's hot path.
    message = lm_pb2.CompleteResponse(model=response.model, deployment=response.deployment,
                                      cache_hit=response.cache_hit, response_id=response.response_id)
    finish_reasons, tool_calls = response.finish_reasons, response.tool_calls
    for index, text in enumerate(response.texts):
        choice = message.choices.add(index=index, text=text)
        if index < len(finish_reasons):
            choice.finish_reason = finish_reasons[index]
        if index < len(tool_calls):
            for call in tool_calls[index]:
                choice.tool_calls.add(id=call.id, name=call.name, arguments=call.arguments)
    _set_usage(message.usage, response)
    message.usage.SetInParent()  # present even when the provider reported none, as before
    return message


def final_response(text: str, chunk: LMStreamChunk) -> lm_pb2.CompleteResponse:
    """The ``done`` event of a stream: the whole text and the final chunk's details."""

    choice = lm_pb2.CompletionChoice(index=0, text=text, finish_reason=chunk.finish_reason or "",
                                     tool_calls=_tool_calls(chunk.tool_calls))
    return lm_pb2.CompleteResponse(choices=[choice], usage=_usage(chunk), model=chunk.model,
                                   deployment=chunk.deployment, cache_hit=chunk.cache_hit)


def model_info(registry: LMRegistry, alias: str) -> lm_pb2.ModelInfo:
    config = registry.config(alias)
    return lm_pb2.ModelInfo(
        alias=config.alias, routing=config.routing, fallbacks=list(config.fallbacks),
        supports_json_schema=config.supports_json_schema,
        kind=config.kind,
        deployments=[
            lm_pb2.DeploymentInfo(
                name=d.name, provider=d.provider, model=d.model, weight=d.weight, rpm=d.rpm, tpm=d.tpm,
                max_in_flight=d.max_in_flight, input_price_per_1m=d.input_price_per_1m,
                output_price_per_1m=d.output_price_per_1m,
            )
            for d in config.deployments
        ],
    )


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(max(0.0, seconds) * 1e9))
    return duration


def _deployment_status(status: DeploymentStatus) -> lm_pb2.DeploymentStatus:
    message = lm_pb2.DeploymentStatus(
        name=status.name, provider=status.provider, model=status.model, serving=status.serving,
        restarts=status.restarts, breaker_state=_BREAKER_STATES.get(status.breaker_state, 0),
        consecutive_failures=status.consecutive_failures, breaker_opened=status.breaker_opened,
        probe_after=_duration(status.breaker_retry_after_s), in_flight=status.in_flight,
        cooldown=_duration(status.cooldown_s), calls=status.calls, successes=status.successes,
        failures=status.failures, retries=status.retries,
    )
    if status.max_in_flight is not None:
        message.max_in_flight = status.max_in_flight
    if status.requests_headroom is not None:
        message.requests_headroom = status.requests_headroom
    if status.tokens_headroom is not None:
        message.tokens_headroom = status.tokens_headroom
    for error in status.recent_errors:
        when = timestamp_pb2.Timestamp()
        when.FromNanoseconds(int(error.at * 1e9))
        message.recent_errors.add(time=when, reason=error.reason, message=error.message)
    return message


def model_status(status: ModelStatus) -> lm_pb2.ModelStatus:
    cache = status.cache
    return lm_pb2.ModelStatus(
        alias=status.alias,
        cache=lm_pb2.CacheStatus(backend=cache.backend, hits=cache.hits, misses=cache.misses,
                                 coalesced=cache.coalesced, hit_ratio=cache.hit_ratio),
        deployments=[_deployment_status(d) for d in status.deployments],
    )

