"""The OpenAI chat completions protocol (``POST {base_url}/chat/completions``), whole and streamed,
and the embeddings protocol (``POST {base_url}/embeddings``).

Works with OpenAI and with every server that copies its API (vLLM, Ollama, llama.cpp server,
LiteLLM proxy, ...). The key is sent as ``Authorization: Bearer ...`` and never logged.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..config import DeploymentConfig
from ..deadline import Deadline
from ..types import EmbeddingResponse, LMOptions, LMRequest, LMResponse, LMStreamChunk, ToolCall, Usage
from .base import Provider, estimate_tokens, estimated_usage
from .http import HttpTransport, Session, sse_events


def request_body(model: str, request: LMRequest) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` (options already merged with the defaults)."""

    options: LMOptions = request.options
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in request.messages]}
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.max_tokens is not None:
        body["max_tokens"] = options.max_tokens
    if options.top_p is not None:
        body["top_p"] = options.top_p
    if options.stop:
        body["stop"] = list(options.stop)
    if options.seed is not None:
        body["seed"] = options.seed
    if options.n != 1:
        body["n"] = options.n
    if options.response_format is not None:
        body["response_format"] = dict(options.response_format)
    if options.tools:
        body["tools"] = [dict(tool) for tool in options.tools]
    if options.tool_choice is not None:
        body["tool_choice"] = options.tool_choice if isinstance(options.tool_choice, str) else dict(options.tool_choice)
    return body


def usage_from(data: Any) -> Usage | None:
    """A :class:`Usage` from a provider's ``usage`` object, or ``None`` when there is none."""

    if not isinstance(data, Mapping):
        return None

    def number(key: str) -> int:
        value = data.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    prompt, completion = number("prompt_tokens"), number("completion_tokens")
    return Usage(prompt, completion, number("total_tokens") or prompt + completion)


def _tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    calls = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(ToolCall(
            id=str(call.get("id") or ""),
            name=str(function.get("name") or ""),
            arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        ))
    return tuple(calls)


class OpenAIProvider(Provider):
    def __init__(self, deployment: DeploymentConfig, session: Session, *,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(deployment, environ=environ)
        self.url = f"{deployment.endpoint()}/chat/completions"
        self.embeddings_url = f"{deployment.endpoint()}/embeddings"
        self.http = HttpTransport(session, metadata=self.metadata, secret=self.api_key)
        #: Request headers, built once (the key is fixed for the provider's life); never changed.
        self._json_headers: dict[str, str] | None = None
        self._stream_headers: dict[str, str] | None = None

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        self.check_configured()
        headers = self._stream_headers if stream else self._json_headers
        if headers is None:
            headers = {"Content-Type": "application/json",
                       "Accept": "text/event-stream" if stream else "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            if stream:
                self._stream_headers = headers
            else:
                self._json_headers = headers
        return headers

    async def complete(self, request: LMRequest, deadline: Deadline) -> LMResponse:
        headers = self._headers()
        data = await self.http.post_json(self.url, request_body(self.deployment.model, request), headers, deadline)
        if not isinstance(data, Mapping) or not isinstance(data.get("choices"), list):
            raise self.http.bad_response("body has no 'choices' list")
        texts: list[str] = []
        finish_reasons: list[str] = []
        tool_calls: list[tuple[ToolCall, ...]] = []
        choices = [c for c in data["choices"] if isinstance(c, Mapping)]
        if len(choices) > 1:
            choices.sort(key=lambda c: c.get("index", 0))
        for choice in choices:
            message = choice.get("message")
            if not isinstance(message, Mapping):
                raise self.http.bad_response("a choice has no 'message'")
            text = message.get("content")
            texts.append(text if isinstance(text, str) else "")
            finish_reasons.append(str(choice.get("finish_reason") or ""))
            tool_calls.append(_tool_calls(message))
        usage = usage_from(data.get("usage")) or estimated_usage(request, texts)
        return LMResponse(
            texts=tuple(texts),
            usage=usage,
            model=str(data.get("model") or self.deployment.model),
            finish_reasons=tuple(finish_reasons),
            response_id=str(data.get("id") or ""),
            tool_calls=tuple(tool_calls) if any(tool_calls) else (),
        )

    async def stream(self, request: LMRequest, deadline: Deadline) -> AsyncIterator[LMStreamChunk]:
        headers = self._headers(stream=True)
        body = request_body(self.deployment.model, request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        finish_reason: str | None = None
        usage: Usage | None = None
        model = self.deployment.model
        text_parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        done = False
        lines = self.http.stream_lines(self.url, body, headers, deadline)
        try:
            async for _, payload in sse_events(lines):
                if payload.strip() == "[DONE]":
                    done = True
                    break
                event = self.http.decode_json(payload.encode(), "stream event")
                if not isinstance(event, Mapping):
                    continue
                if isinstance(event.get("error"), Mapping):
                    raise self.http.bad_response(str(event["error"].get("message") or payload[:200]))
                model = str(event.get("model") or model)
                if event.get("usage"):
                    usage = usage_from(event["usage"])
                for choice in event.get("choices") or ():
                    if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    if choice.get("finish_reason"):
                        finish_reason = str(choice["finish_reason"])
                    if not isinstance(delta, Mapping):
                        continue
                    for call in delta.get("tool_calls") or ():
                        entry = calls.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                        function = call.get("function") or {}
                        entry["id"] = call.get("id") or entry["id"]
                        entry["name"] = function.get("name") or entry["name"]
                        entry["arguments"] += function.get("arguments") or ""
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        text_parts.append(text)
                        yield LMStreamChunk(text=text, model=model)
        finally:
            await lines.aclose()
        if not done:
            raise self.http.stream_broke("stream ended before [DONE]")
        tool_calls = tuple(ToolCall(c["id"], c["name"], c["arguments"] or "{}") for _, c in sorted(calls.items()))
        yield LMStreamChunk(
            finish_reason=finish_reason or "stop",
            usage=usage or estimated_usage(request, ["".join(text_parts)]),
            model=model,
            tool_calls=tool_calls,
        )

    async def embed(self, texts: Sequence[str], deadline: Deadline) -> EmbeddingResponse:
        body = {"model": self.deployment.model, "input": list(texts), "encoding_format": "float"}
        data = await self.http.post_json(self.embeddings_url, body, self._headers(), deadline)
        if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
            raise self.http.bad_response("body has no 'data' list")
        items = [item for item in data["data"] if isinstance(item, Mapping)]
        if len(items) != len(texts):
            raise self.http.bad_response(f"{len(items)} embeddings for {len(texts)} inputs")
        vectors = []
        for item in sorted(items, key=lambda item: item.get("index", 0)):
            vector = item.get("embedding")
            if (not isinstance(vector, list) or not vector
                    or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in vector)):
                raise self.http.bad_response("an embedding is not a non-empty list of finite numbers")
            vectors.append(tuple(float(x) for x in vector))
        usage = usage_from(data.get("usage"))
        if usage is None:
            prompt = sum(estimate_tokens(text) for text in texts)
            usage = Usage(prompt, 0, prompt, estimated=True)
        return EmbeddingResponse(vectors=tuple(vectors), usage=usage,
                                 model=str(data.get("model") or self.deployment.model))
