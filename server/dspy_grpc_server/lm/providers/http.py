"""One HTTP attempt against a provider, within a deadline, with failures turned into typed errors.

Shared by every HTTP provider: JSON POSTs, streamed POSTs read line by line, and server-sent events.
No retries here (the worker decides about those).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from .. import provider_errors as errors
from ..deadline import Deadline

T = TypeVar("T")


Clients = httpx.AsyncClient | Sequence[httpx.AsyncClient]


class HttpTransport:
    """Sends requests for one deployment. ``metadata`` tags every error; ``secret`` is masked in them.

    Given several clients (connection pools), requests go to them in turn: httpx's pool slows down
    markedly with many concurrent requests on one client, so a worker shards its connections.
    """

    def __init__(self, clients: Clients, *, metadata: Mapping[str, str], secret: str | None) -> None:
        self._clients = itertools.cycle([clients] if isinstance(clients, httpx.AsyncClient) else list(clients))
        self.metadata = dict(metadata)
        self.secret = secret

    async def _guarded(self, awaitable: Awaitable[T], deadline: Deadline, *, midstream: bool = False) -> T:
        remaining = deadline.remaining()
        if remaining <= 0:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
            raise errors.timed_out(deadline.span, metadata=self.metadata)
        try:
            async with asyncio.timeout(remaining):
                return await awaitable
        except (TimeoutError, httpx.TimeoutException):
            raise errors.timed_out(deadline.span, metadata=self.metadata) from None
        except httpx.TransportError as exc:
            raise errors.unreachable(exc, metadata=self.metadata, midstream=midstream) from None

    def _raise_for_status(self, response: httpx.Response, content: bytes) -> None:
        if response.status_code >= 400:
            raise errors.error_for_status(
                response.status_code, content, response.headers, metadata=self.metadata, secret=self.secret
            )

    def decode_json(self, content: bytes, what: str = "body") -> Any:
        """Parse JSON or raise ``PROVIDER_BAD_RESPONSE``."""

        try:
            return json.loads(content)
        except ValueError:
            raise self.bad_response(f"{what} is not JSON: {content[:200].decode('utf-8', 'replace')!r}") from None

    def bad_response(self, description: str) -> Exception:
        return errors.bad_response(description, metadata=self.metadata, secret=self.secret)

    async def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                        deadline: Deadline) -> Any:
        """POST ``body`` and return the parsed JSON answer."""

        response = await self._guarded(
            next(self._clients).post(url, json=body, headers=dict(headers), timeout=deadline.remaining() or None),
            deadline,
        )
        self._raise_for_status(response, response.content)
        return self.decode_json(response.content)

    async def stream_lines(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                           deadline: Deadline) -> AsyncIterator[str]:
        """POST ``body`` and yield the answer's lines as they arrive.

        Errors before the first line (unreachable, HTTP errors, timeouts) are raised as usual; a
        connection lost later raises ``PROVIDER_UNAVAILABLE`` marked as mid-stream. Closing the
        iterator closes the HTTP response (and so the upstream stream).
        """

        client = next(self._clients)
        request = client.build_request("POST", url, json=body, headers=dict(headers),
                                       timeout=deadline.remaining() or None)
        response = await self._guarded(client.send(request, stream=True), deadline)
        try:
            if response.status_code >= 400:
                content = await self._guarded(response.aread(), deadline)
                self._raise_for_status(response, content)
            lines = response.aiter_lines()
            while True:
                try:
                    line = await self._guarded(anext(lines), deadline, midstream=True)
                except StopAsyncIteration:
                    return
                yield line
        finally:
            await response.aclose()

    def stream_broke(self, description: str) -> Exception:
        """The error for a stream that ended before the provider said it was complete."""

        return errors.unreachable(ConnectionError(description), metadata=self.metadata, midstream=True)


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)`` pairs (``event`` is ``""`` when not named).

    Multi-line ``data`` fields are joined with newlines; comments and unknown fields are skipped.
    """

    event, data = "", []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)
