"""Anthropic's Messages API (``POST {base_url}/messages``), whole and streamed.

Requests arrive in the OpenAI chat format and are translated:

* ``system`` messages become the top-level ``system`` text (joined by blank lines);
* ``tool`` messages become ``tool_result`` blocks of a user turn, an assistant's ``tool_calls``
  become ``tool_use`` blocks; consecutive turns of one role are merged, as the API requires;
* images given as ``image_url`` parts become ``image`` blocks (base64 for ``data:`` URLs);
* ``stop`` -> ``stop_sequences``, ``tools`` -> ``input_schema`` tools, ``tool_choice`` ->
  ``auto``/``any``/``none``/``tool``; ``max_tokens`` (required by the API) defaults to
  :data:`DEFAULT_MAX_TOKENS`; ``seed`` and ``response_format`` have no equivalent and are not sent;
  ``n > 1`` runs n requests concurrently.

Answers come back as the same :class:`LMResponse` as OpenAI's: ``stop_reason`` is mapped to OpenAI's
finish reasons (``end_turn``/``stop_sequence`` -> ``stop``, ``max_tokens`` -> ``length``,
``tool_use`` -> ``tool_calls``). The key is sent as ``x-api-key`` and never logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..config import DeploymentConfig
from ..deadline import Deadline
from ..types import LMRequest, LMResponse, LMStreamChunk, ToolCall, Usage, message_text
from .base import Provider, estimated_usage
from .http import HttpTransport, Session, sse_events

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "pause_turn": "stop", "refusal": "content_filter"}


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        header, data = url[len("data:"):].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": header or "image/png", "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str):
                blocks.append(_image_block(url))
    return blocks


def _tool_use_block(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
    except ValueError:
        parsed = {}
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": str(function.get("name") or ""),
            "input": parsed if isinstance(parsed, dict) else {}}


def translate_messages(messages: tuple[Mapping[str, Any], ...]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-format messages as Anthropic's ``(system, messages)``."""

    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(message_text(message))
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                          "content": message_text(message)}])
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            blocks += [_tool_use_block(call) for call in message.get("tool_calls") or () if isinstance(call, Mapping)]
            add("assistant", blocks)
        else:
            add("user", _content_blocks(message.get("content")))
    return "\n\n".join(system), turns


def _tools(tools: tuple[Mapping[str, Any], ...]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function = tool.get("function", tool)
        out.append({
            "name": str(function.get("name", "")),
            "description": str(function.get("description", "")),
            "input_schema": dict(function.get("parameters") or {"type": "object", "properties": {}}),
        })
    return out


def _tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        return {"type": {"auto": "auto", "required": "any", "none": "none"}.get(choice, "auto")}
    name = (choice.get("function") or {}).get("name") or choice.get("name", "")
    return {"type": "tool", "name": str(name)}


def request_body(model: str, request: LMRequest) -> dict[str, Any]:
    options = request.options
    system, messages = translate_messages(request.messages)
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": options.max_tokens if options.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.top_p is not None:
        body["top_p"] = options.top_p
    if options.stop:
        body["stop_sequences"] = list(options.stop)
    if options.tools:
        body["tools"] = _tools(options.tools)
    if options.tool_choice is not None and options.tools:
        body["tool_choice"] = _tool_choice(options.tool_choice)
    return body


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, Mapping):
        return None
    prompt = int(data.get("input_tokens") or 0) + int(data.get("cache_read_input_tokens") or 0) + int(
        data.get("cache_creation_input_tokens") or 0)
    completion = int(data.get("output_tokens") or 0)
    return Usage(prompt, completion, prompt + completion)


class AnthropicProvider(Provider):
    def __init__(self, deployment: DeploymentConfig, session: Session, *,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(deployment, environ=environ)
        self.url = f"{deployment.endpoint()}/messages"
        self.http = HttpTransport(session, metadata=self.metadata, secret=self.api_key)

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        self.check_configured()
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION,
                   "Accept": "text/event-stream" if stream else "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    async def complete(self, request: LMRequest, deadline: Deadline) -> LMResponse:
        n = request.options.n
        if n > 1:
            single = request.with_options(n=1)
            answers = await asyncio.gather(*(self.complete(single, deadline) for _ in range(n)))
            usage = Usage()
            for answer in answers:
                usage = usage + answer.usage
            return LMResponse(
                texts=tuple(a.text for a in answers), usage=usage, model=answers[0].model,
                finish_reasons=tuple(a.finish_reasons[0] for a in answers), response_id=answers[0].response_id,
                tool_calls=tuple(a.tool_calls[0] if a.tool_calls else () for a in answers)
                if any(a.tool_calls for a in answers) else (),
            )
        data = await self.http.post_json(self.url, request_body(self.deployment.model, request),
                                         self._headers(), deadline)
        if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
            raise self.http.bad_response("body has no 'content' list")
        texts, calls = [], []
        for block in data["content"]:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                calls.append(ToolCall(str(block.get("id", "")), str(block.get("name", "")),
                                      json.dumps(block.get("input") or {})))
        text = "".join(texts)
        return LMResponse(
            texts=(text,),
            usage=_usage(data.get("usage")) or estimated_usage(request, [text]),
            model=str(data.get("model") or self.deployment.model),
            finish_reasons=(FINISH_REASONS.get(str(data.get("stop_reason")), "stop"),),
            response_id=str(data.get("id") or ""),
            tool_calls=(tuple(calls),) if calls else (),
        )

    async def stream(self, request: LMRequest, deadline: Deadline) -> AsyncIterator[LMStreamChunk]:
        body = request_body(self.deployment.model, request)
        body["stream"] = True
        model = self.deployment.model
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        stop_reason = ""
        text_parts: list[str] = []
        tools: dict[int, dict[str, str]] = {}
        finished = False
        lines = self.http.stream_lines(self.url, body, self._headers(stream=True), deadline)
        try:
            async for name, payload in sse_events(lines):
                event = self.http.decode_json(payload.encode(), "stream event")
                if not isinstance(event, Mapping):
                    continue
                kind = event.get("type") or name
                if kind == "error":
                    error = event.get("error") or {}
                    if error.get("type") in ("overloaded_error", "api_error"):
                        raise self.http.stream_broke(f"provider error mid-stream: {error.get('message', '')}")
                    raise self.http.bad_response(str(error.get("message") or payload[:200]))
                if kind == "message_start":
                    message = event.get("message") or {}
                    model = str(message.get("model") or model)
                    usage = message.get("usage") or {}
                    prompt_tokens = (_usage(usage) or Usage()).prompt_tokens if usage else None
                elif kind == "content_block_start":
                    block = event.get("content_block") or {}
                    if block.get("type") == "tool_use":
                        tools[int(event.get("index", 0))] = {"id": str(block.get("id", "")),
                                                             "name": str(block.get("name", "")), "arguments": ""}
                elif kind == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        text_parts.append(str(delta["text"]))
                        yield LMStreamChunk(text=str(delta["text"]), model=model)
                    elif delta.get("type") == "input_json_delta":
                        entry = tools.get(int(event.get("index", 0)))
                        if entry is not None:
                            entry["arguments"] += str(delta.get("partial_json") or "")
                elif kind == "message_delta":
                    stop_reason = str((event.get("delta") or {}).get("stop_reason") or stop_reason)
                    usage = event.get("usage") or {}
                    if "output_tokens" in usage:
                        completion_tokens = int(usage["output_tokens"] or 0)
                elif kind == "message_stop":
                    finished = True
                    break
        finally:
            await lines.aclose()
        if not finished:
            raise self.http.stream_broke("stream ended before message_stop")
        if prompt_tokens is None or completion_tokens is None:
            usage = estimated_usage(request, ["".join(text_parts)])
        else:
            usage = Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        yield LMStreamChunk(
            finish_reason=FINISH_REASONS.get(stop_reason, "stop"),
            usage=usage,
            model=model,
            tool_calls=tuple(ToolCall(t["id"], t["name"], t["arguments"] or "{}") for _, t in sorted(tools.items())),
        )
