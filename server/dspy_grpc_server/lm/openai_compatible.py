"""An :class:`LM` speaking the OpenAI chat completions protocol over HTTP.

Works with OpenAI and with every server that copies its API (vLLM, Ollama, LiteLLM proxy, llama.cpp
server, ...). Transient failures (unreachable, HTTP 5xx, HTTP 429) are retried a few times with
backoff, honouring ``Retry-After``, but never past the time budget.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from ..core.errors import DspyGrpcError, FailedPrecondition
from . import provider_errors as errors
from .config import DEFAULT_OPENAI_BASE_URL, ModelConfig
from .deadline import Deadline
from .retry import RetryPolicy, is_retryable
from .types import LM, LMOptions, LMRequest, LMResponse, LMStreamChunk, Usage

T = TypeVar("T")


def request_body(model: str, request: LMRequest, options: LMOptions) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``request`` with the effective ``options``."""

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
    return body


def usage_from(data: Any) -> Usage:
    """A :class:`Usage` from a provider's ``usage`` object (missing numbers count as 0)."""

    if not isinstance(data, Mapping):
        return Usage()

    def number(key: str) -> int:
        value = data.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    prompt, completion = number("prompt_tokens"), number("completion_tokens")
    return Usage(prompt, completion, number("total_tokens") or prompt + completion)


class OpenAICompatibleLM(LM):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``client`` may be shared between several LMs; an LM only closes a client it created itself.
    ``environ`` (default: ``os.environ``) is where the API key is looked up under
    ``config.api_key_env``. The key is sent as ``Authorization: Bearer ...`` and never logged or
    put into an error.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        client: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.name = config.alias
        self.config = config
        self.supports_json_schema = config.supports_json_schema
        self.model = config.model
        self.base_url = (config.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
        self.default_options = config.default_options()
        self.retry_policy = retry_policy or RetryPolicy(max_retries=config.max_retries)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()
        env = os.environ if environ is None else environ
        self._api_key: str | None = env.get(config.api_key_env) if config.api_key_env else None
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenAICompatibleLM(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    # ---------------------------------------------------------------- plumbing

    @property
    def _metadata(self) -> dict[str, str]:
        return {"model": self.model, "alias": self.name}

    def _headers(self) -> dict[str, str]:
        if self.config.api_key_env and not self._api_key:
            raise FailedPrecondition(
                f"model {self.name}: environment variable {self.config.api_key_env} holding the API key"
                " is not set",
                reason="PROVIDER_NOT_CONFIGURED",
                metadata=self._metadata,
            )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _deadline(self, timeout: float | None) -> Deadline:
        return Deadline.within(self.config.timeout_s, timeout)

    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
        """Run ``attempt()`` until it succeeds, fails for good, or retrying would pass ``deadline``."""

        retry = 0
        while True:
            try:
                return await attempt()
            except DspyGrpcError as error:
                if not is_retryable(error) or retry >= self.retry_policy.max_retries:
                    raise
                retry += 1
                delay = self.retry_policy.delay_before_retry(retry, error)
                if delay >= deadline.remaining():
                    raise
                await asyncio.sleep(delay)

    # ---------------------------------------------------------------- complete

    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        """One chat completion; see :class:`LM`. Raises the typed errors of :mod:`provider_errors`."""

        options = request.options.merged_over(self.default_options)
        body = request_body(self.model, request, options)
        headers = self._headers()
        deadline = self._deadline(timeout)
        deadline_budget = deadline.remaining()

        async def attempt() -> LMResponse:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise errors.timed_out(deadline_budget, metadata=self._metadata)
            try:
                async with asyncio.timeout(remaining):
                    response = await self._client.post(
                        self._url(), json=body, headers=headers, timeout=remaining
                    )
            except (TimeoutError, httpx.TimeoutException):
                raise errors.timed_out(deadline_budget, metadata=self._metadata) from None
            except httpx.TransportError as exc:
                raise errors.unreachable(exc, metadata=self._metadata) from None
            if response.status_code >= 400:
                raise errors.error_for_status(
                    response.status_code,
                    response.content,
                    response.headers,
                    metadata=self._metadata,
                    secret=self._api_key,
                )
            return self._parse_completion(response.content)

        return await self._with_retries(attempt, deadline)

    def _parse_completion(self, content: bytes) -> LMResponse:
        def bad(description: str) -> DspyGrpcError:
            return errors.bad_response(description, metadata=self._metadata, secret=self._api_key)

        try:
            data = json.loads(content)
        except ValueError:
            raise bad(f"body is not JSON: {content[:200].decode('utf-8', 'replace')!r}") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("choices"), list):
            raise bad("body has no 'choices' list")
        texts: list[str] = []
        finish_reasons: list[str] = []
        for choice in sorted(data["choices"], key=lambda c: c.get("index", 0) if isinstance(c, Mapping) else 0):
            message = choice.get("message") if isinstance(choice, Mapping) else None
            if not isinstance(message, Mapping):
                raise bad("a choice has no 'message'")
            text = message.get("content")
            texts.append(text if isinstance(text, str) else "")
            finish_reasons.append(str(choice.get("finish_reason") or ""))
        return LMResponse(
            texts=tuple(texts),
            usage=usage_from(data.get("usage")),
            model=str(data.get("model") or self.model),
            finish_reasons=tuple(finish_reasons),
            response_id=str(data.get("id") or ""),
        )

    # ---------------------------------------------------------------- streaming

    async def stream_chunks(
        self, request: LMRequest, *, timeout: float | None = None
    ) -> AsyncIterator[LMStreamChunk]:
        """The streamed completion as :class:`LMStreamChunk` s; the last one carries usage if known.

        Connecting is retried like :meth:`complete`; once text has arrived, a broken stream raises
        :class:`~dspy_grpc_server.core.errors.Unavailable` instead of starting over.
        """

        options = request.options.merged_over(self.default_options)
        body = request_body(self.model, request, options)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        headers = {**self._headers(), "Accept": "text/event-stream"}
        deadline = self._deadline(timeout)
        budget = deadline.remaining()

        async def guarded(awaitable: Awaitable[T], *, midstream: bool = False) -> T:
            remaining = deadline.remaining()
            if remaining <= 0:
                close = getattr(awaitable, "close", None)
                if close is not None:
                    close()
                raise errors.timed_out(budget, metadata=self._metadata)
            try:
                async with asyncio.timeout(remaining):
                    return await awaitable
            except (TimeoutError, httpx.TimeoutException):
                raise errors.timed_out(budget, metadata=self._metadata) from None
            except httpx.TransportError as exc:
                raise errors.unreachable(exc, metadata=self._metadata, midstream=midstream) from None

        async def open_stream() -> httpx.Response:
            req = self._client.build_request(
                "POST", self._url(), json=body, headers=headers, timeout=deadline.remaining() or None
            )
            response = await guarded(self._client.send(req, stream=True))
            if response.status_code >= 400:
                try:
                    content = await guarded(response.aread())
                finally:
                    await response.aclose()
                raise errors.error_for_status(
                    response.status_code,
                    content,
                    response.headers,
                    metadata=self._metadata,
                    secret=self._api_key,
                )
            return response

        response = await self._with_retries(open_stream, deadline)
        try:
            lines = response.aiter_lines()
            finish_reason: str | None = None
            usage: Usage | None = None
            model = self.model
            while True:
                try:
                    line = await guarded(anext(lines), midstream=True)
                except StopAsyncIteration:
                    raise errors.unreachable(
                        ConnectionError("stream ended before [DONE]"), metadata=self._metadata, midstream=True
                    ) from None
                if not line.startswith("data:"):
                    continue
                payload = line[len("data:"):].strip()
                if payload == "[DONE]":
                    break
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise errors.bad_response(
                        f"stream event is not JSON: {payload[:200]!r}",
                        metadata=self._metadata,
                        secret=self._api_key,
                    ) from None
                if not isinstance(event, Mapping):
                    continue
                if isinstance(event.get("error"), Mapping):
                    raise errors.bad_response(
                        errors.provider_message(payload.encode()),
                        metadata=self._metadata,
                        secret=self._api_key,
                    )
                model = str(event.get("model") or model)
                if event.get("usage"):
                    usage = usage_from(event["usage"])
                for choice in event.get("choices") or ():
                    if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if isinstance(delta, Mapping) else None
                    if choice.get("finish_reason"):
                        finish_reason = str(choice["finish_reason"])
                    if isinstance(text, str) and text:
                        yield LMStreamChunk(text=text, model=model)
            yield LMStreamChunk(finish_reason=finish_reason or "stop", usage=usage, model=model)
        finally:
            await response.aclose()

    # ---------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        """Close the HTTP client if this LM created it."""

        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
