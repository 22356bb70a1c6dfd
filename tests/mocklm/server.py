"""A real OpenAI-compatible HTTP server on 127.0.0.1, scripted by the test that runs it.

    server = MockLMServer()
    await server.start()
    server.enqueue(MockReply.error(503), "second call answers this")
    ... point a client at server.base_url ...
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test"
    await server.stop()

Which reply a request gets: the queue (FIFO, each reply used once), then the rules (first whose
``contains`` occurs in the last user message), then the default reply, then the automatic answer to
DSPy prompts (see :mod:`tests.mocklm.auto_answer`).

Two protocols share the script: OpenAI chat completions (``POST /v1/chat/completions``) and
Anthropic Messages (``POST /v1/messages``, ``x-api-key``, SSE events ``message_start`` ...
``message_stop``). ``stream_disconnects`` counts streamed answers the client closed before the end.

``POST /v1/embeddings`` answers with hashed bag-of-words vectors (:mod:`tests.mocklm.embeddings`;
``dimensions`` in the request, else 256). It takes its faults from the same script (a queued or
matching reply's ``status``, ``retry_after``, ``delay_s``, ``malformed`` and ``usage`` apply; rules
match the input texts joined by newlines; the reply's text is ignored).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .auto_answer import auto_answer, last_user_text, text_of
from .embeddings import DEFAULT_DIMENSIONS, hashed_embedding


@dataclass(frozen=True)
class RecordedRequest:
    """One request the mock received. ``headers`` keys are lower-case; ``json`` is None if unparsable."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages") or []) if isinstance(self.json, dict) else []

    @property
    def last_user_text(self) -> str:
        return last_user_text(self.messages)


ReplyText = str | Callable[[RecordedRequest], str] | None


@dataclass
class MockReply:
    """What the mock answers to one request.

    ``text`` is the completion (or a function of the request; ``None`` = automatic answer).
    ``status`` >= 400 sends an OpenAI-style error body with ``error_message``; ``retry_after`` adds a
    ``Retry-After`` header. ``delay_s`` waits before answering. ``malformed`` sends a 200 whose body is
    not JSON. ``cut_after_chunks`` (streaming only) drops the connection after that many content chunks.
    """

    text: ReplyText = None
    status: int = 200
    error_message: str = "mock provider error"
    retry_after: float | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    malformed: bool = False
    cut_after_chunks: int | None = None
    #: Pause between streamed chunks (to let a test act mid-stream).
    chunk_delay_s: float = 0.0
    #: Tool calls to answer with: ``{"name": ..., "arguments": {...}}`` (ids are generated).
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    finish_reason: str = "stop"
    usage: Mapping[str, int] | None = None
    model: str | None = None
    #: Answer only once this event is set (to keep a call in flight for as long as a test needs).
    hold: asyncio.Event | None = None

    @classmethod
    def error(
        cls, status: int, message: str = "mock provider error", *, retry_after: float | str | None = None
    ) -> MockReply:
        return cls(status=status, error_message=message, retry_after=retry_after)

    @classmethod
    def of(cls, value: MockReply | ReplyText) -> MockReply:
        return value if isinstance(value, MockReply) else cls(text=value)


@dataclass
class _Rule:
    contains: str
    reply: MockReply
    times: int | None


def _estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _stream_pieces(text: str) -> list[str]:
    """Split a completion into word-sized deltas (whitespace kept), as real providers roughly do."""

    return re.findall(r"\s*\S+\s*|\s+", text) or [""]


def _error_headers(reply: MockReply) -> dict[str, str]:
    """The headers of a scripted error reply (its own, plus Retry-After when it sets one)."""

    headers = dict(reply.headers)
    if reply.retry_after is not None:
        headers["Retry-After"] = str(reply.retry_after)
    return headers


class MockLMServer:
    """The scriptable mock. ``latency_s`` delays every completion (on top of a reply's ``delay_s``).

    ``api_key``, when set, makes every request without ``Authorization: Bearer <api_key>`` fail with 401.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        api_key: str | None = None,
        models: tuple[str, ...] = ("mock-model",),
        record: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_s
        self.api_key = api_key
        self.models = models
        self.record = record
        self.requests: list[RecordedRequest] = []
        #: Chat completion requests received, counted even when ``record`` is False (GET /mock/stats).
        self.chat_completions = 0
        #: Streams the client closed (or cancelled) before the mock finished sending them.
        self.stream_disconnects = 0
        #: Chat completions being answered right now, and the most there ever were at once.
        self.completions_in_flight = 0
        self.max_completions_in_flight = 0
        self.default_reply: MockReply | None = None
        #: When set, every reply also waits until this event is set (a test holds the LM back).
        self.gate: asyncio.Event | None = None
        #: Replies started so far, and from which one on they wait for the gate (see hold_replies_after).
        self._replies_started = 0
        self._gate_from: int | None = None
        self._queue: deque[MockReply] = deque()
        self._rules: list[_Rule] = []
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ scripting

    def enqueue(self, *replies: MockReply | ReplyText) -> MockLMServer:
        """Append replies to the queue; each answers exactly one request, in order."""

        self._queue.extend(MockReply.of(r) for r in replies)
        return self

    def add_rule(self, contains: str, reply: MockReply | ReplyText, *, times: int | None = None) -> MockLMServer:
        """Answer requests whose last user message contains ``contains`` (``times`` = use limit)."""

        self._rules.append(_Rule(contains, MockReply.of(reply), times))
        return self

    def reset(self) -> None:
        """Forget the script, the recorded requests, the default reply, the API key and the latency."""

        self.requests.clear()
        self.stream_disconnects = 0
        self.max_completions_in_flight = 0
        self._queue.clear()
        self._rules.clear()
        self.default_reply = None
        self.api_key = None
        self.latency_s = 0.0
        self.gate = None
        self._replies_started = 0
        self._gate_from = None

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """Requests to either completion endpoint (OpenAI or Anthropic)."""

        return [r for r in self.requests if r.path.endswith(("/chat/completions", "/messages"))]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """Requests to ``POST /v1/embeddings``."""

        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def _pick(self, request: RecordedRequest, text: str | None = None) -> MockReply:
        if self._queue:
            return self._queue.popleft()
        last_user = request.last_user_text if text is None else text
        for rule in self._rules:
            if rule.contains in last_user and (rule.times is None or rule.times > 0):
                if rule.times is not None:
                    rule.times -= 1
                return rule.reply
        return self.default_reply or MockReply()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` once started."""

        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> MockLMServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._counted_chat_completions)
        app.router.add_post("/v1/messages", self._anthropic_messages)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/mock/stats", self._stats)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MockLMServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ handlers

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            json=parsed,
        )
        if self.record:
            self.requests.append(recorded)
        return recorded

    def hold_replies_after(self, count: int) -> asyncio.Event:
        """Answer the next ``count`` requests (of any kind) as usual; hold every later one back until the
        returned event is set (a test stops a job at a known point however fast it runs)."""

        self.gate = asyncio.Event()
        self._gate_from = self._replies_started + count
        return self.gate

    async def _wait(self, reply: MockReply) -> None:
        """The gate (a test holding every reply back, or those after a count), the reply's own hold (one reply
        held), then the server's latency plus the reply's own delay."""

        self._replies_started += 1
        if self.gate is not None and (self._gate_from is None or self._replies_started > self._gate_from):
            await self.gate.wait()
        if reply.hold is not None:
            await reply.hold.wait()
        delay = self.latency_s + reply.delay_s
        if delay > 0:
            await asyncio.sleep(delay)

    @staticmethod
    def _error(status: int, message: str, *, kind: str = "invalid_request_error", headers=None) -> web.Response:
        payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return web.json_response(payload, status=status, headers=headers)

    def _unauthorized(self, recorded: RecordedRequest) -> web.Response | None:
        if self.api_key is None:
            return None
        if recorded.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return self._error(401, "Incorrect API key provided.", kind="authentication_error")

    async def _list_models(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (denied := self._unauthorized(recorded)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"chat_completions": self.chat_completions})

    async def _counted_chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.completions_in_flight += 1
        self.max_completions_in_flight = max(self.max_completions_in_flight, self.completions_in_flight)
        try:
            return await self._chat_completions(request)
        finally:
            self.completions_in_flight -= 1

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.chat_completions += 1
        recorded = await self._record(request)
        if (denied := self._unauthorized(recorded)) is not None:
            return denied
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "'messages' must be a non-empty list")
        reply = self._pick(recorded)
        await self._wait(reply)
        if reply.status >= 400:
            return self._error(reply.status, reply.error_message, kind="mock_error", headers=_error_headers(reply))
        if reply.malformed:
            return web.Response(
                status=reply.status, body=b'{"id": "broken", "choices": [', content_type="application/json"
            )
        if callable(reply.text):
            text = reply.text(recorded)
        elif reply.text is None:
            text = auto_answer(body)
        else:
            text = reply.text
        n = int(body.get("n") or 1)
        model = reply.model or str(body.get("model") or self.models[0])
        prompt_tokens = sum(_estimate_tokens(text_of(m)) for m in body["messages"] if isinstance(m, dict))
        usage = dict(reply.usage) if reply.usage is not None else {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _estimate_tokens(text) * n,
            "total_tokens": prompt_tokens + _estimate_tokens(text) * n,
        }
        completion_id = f"chatcmpl-mock-{uuid.uuid4().hex[:12]}"
        if body.get("stream"):
            return await self._stream(request, reply, body, text, n, model, usage, completion_id)
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text,
                                **({"tool_calls": _openai_tool_calls(reply)} if reply.tool_calls else {})},
                    "finish_reason": "tool_calls" if reply.tool_calls else reply.finish_reason,
                }
                for i in range(n)
            ],
            "usage": usage,
        }
        return web.json_response(payload, headers=dict(reply.headers))

    async def _stream(
        self,
        request: web.Request,
        reply: MockReply,
        body: dict[str, Any],
        text: str,
        n: int,
        model: str,
        usage: dict[str, int],
        completion_id: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **dict(reply.headers)}
        )
        await response.prepare(request)
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()

        sent = 0
        try:
            for index in range(n):
                await response.write(chunk([{"index": index, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None}]))
                for piece in _stream_pieces(text):
                    if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                        # Drop the connection mid-stream: no final chunk, no [DONE].
                        if request.transport is not None:
                            request.transport.close()
                        return response
                    await response.write(chunk([{"index": index, "delta": {"content": piece},
                                                 "finish_reason": None}]))
                    sent += 1
                    if reply.chunk_delay_s:
                        await asyncio.sleep(reply.chunk_delay_s)
                if reply.tool_calls:
                    calls = [{"index": i, **call} for i, call in enumerate(_openai_tool_calls(reply))]
                    await response.write(chunk([{"index": index, "delta": {"tool_calls": calls},
                                                 "finish_reason": None}]))
                finish = "tool_calls" if reply.tool_calls else reply.finish_reason
                await response.write(chunk([{"index": index, "delta": {}, "finish_reason": finish}]))
            if (body.get("stream_options") or {}).get("include_usage"):
                await response.write(chunk([], usage=usage))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.stream_disconnects += 1
            raise
        return response

    # ------------------------------------------------------------------ embeddings

    async def _embeddings(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (denied := self._unauthorized(recorded)) is not None:
            return denied
        body = recorded.json
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self._error(400, "'input' must be a string or a non-empty list of strings")
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        reply = self._pick(recorded, "\n".join(texts))
        await self._wait(reply)
        if reply.status >= 400:
            return self._error(reply.status, reply.error_message, kind="mock_error", headers=_error_headers(reply))
        if reply.malformed:
            return web.Response(status=200, body=b'{"object": "list", "data": [', content_type="application/json")
        tokens = sum(_estimate_tokens(text) for text in texts)
        usage = dict(reply.usage) if reply.usage is not None else {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": hashed_embedding(text, dimensions)}
                     for i, text in enumerate(texts)],
            "model": reply.model or str(body.get("model") or self.models[0]),
            "usage": usage,
        }, headers=dict(reply.headers))

    # ------------------------------------------------------------------ Anthropic Messages

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if self.api_key is not None and recorded.headers.get("x-api-key") != self.api_key:
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _anthropic_error(400, "invalid_request_error", "messages: must be a non-empty list")
        if not isinstance(body.get("max_tokens"), int):
            return _anthropic_error(400, "invalid_request_error", "max_tokens: field required")
        if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return _anthropic_error(400, "invalid_request_error", "messages: roles must be user or assistant")
        reply = self._pick(recorded)
        await self._wait(reply)
        if reply.status >= 400:
            return _anthropic_error(reply.status, "api_error", reply.error_message, headers=_error_headers(reply))
        if reply.malformed:
            return web.Response(status=200, body=b'{"type": "message", "content": [', content_type="application/json")
        as_openai = {"messages": [{"role": "system", "content": body.get("system", "")}, *body["messages"]]}
        if callable(reply.text):
            text = reply.text(recorded)
        elif reply.text is None:
            text = auto_answer(as_openai)
        else:
            text = reply.text
        model = reply.model or str(body.get("model"))
        prompt_tokens = _estimate_tokens(str(body.get("system", ""))) + sum(
            _estimate_tokens(text_of(m)) for m in body["messages"])
        usage = dict(reply.usage) if reply.usage is not None else {
            "input_tokens": prompt_tokens, "output_tokens": _estimate_tokens(text)}
        stop_reason = "tool_use" if reply.tool_calls else {"stop": "end_turn", "length": "max_tokens"}.get(
            reply.finish_reason, reply.finish_reason)
        tools = [{"type": "tool_use", "id": f"toolu_mock_{i}", "name": c["name"], "input": dict(c["arguments"])}
                 for i, c in enumerate(reply.tool_calls)]
        message_id = f"msg_mock_{uuid.uuid4().hex[:12]}"
        if not body.get("stream"):
            return web.json_response({
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": ([{"type": "text", "text": text}] if text else []) + tools,
                "stop_reason": stop_reason, "stop_sequence": None, "usage": usage,
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def event(kind: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

        try:
            await event("message_start", {"message": {
                "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "usage": {"input_tokens": usage.get("input_tokens", 0), "output_tokens": 1}}})
            await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            await event("ping", {})
            for sent, piece in enumerate(_stream_pieces(text)):
                if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                    if request.transport is not None:
                        request.transport.close()
                    return response
                await event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
            await event("content_block_stop", {"index": 0})
            for offset, tool in enumerate(tools, start=1):
                await event("content_block_start", {"index": offset, "content_block": {**tool, "input": {}}})
                arguments = json.dumps(tool["input"])
                for half in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
                    await event("content_block_delta",
                                {"index": offset, "delta": {"type": "input_json_delta", "partial_json": half}})
                await event("content_block_stop", {"index": offset})
            await event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                          "usage": {"output_tokens": usage.get("output_tokens", 0)}})
            await event("message_stop", {})
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.stream_disconnects += 1
            raise
        return response


def _openai_tool_calls(reply: MockReply) -> list[dict[str, Any]]:
    return [{"id": f"call_mock_{i}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(dict(call["arguments"]))}}
            for i, call in enumerate(reply.tool_calls)]


def _anthropic_error(status: int, kind: str, message: str, *, headers=None) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}},
                             status=status, headers=headers)
