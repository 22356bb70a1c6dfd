"""One HTTP attempt against a provider, within a deadline, with failures turned into typed errors.

Shared by every HTTP provider: JSON POSTs, streamed POSTs read line by line, and server-sent events.
No retries here (the worker decides about those). Each attempt is a ``POST`` client span under the
LM request span, recording the method, the URL without query or user info, and the status code;
headers (and with them API keys) never are.

The client is aiohttp: per request it costs about a quarter of the CPU httpx does, which is most of
what a served Predict spends outside gRPC (``make bench-predict``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp

from ...core import telemetry
from .. import provider_errors as errors
from ..deadline import Deadline

T = TypeVar("T")

#: The HTTP client a provider sends through (one per deployment worker, see :func:`open_session`).
Session = aiohttp.ClientSession

#: Longest line a streamed answer may carry (one server-sent event's data line).
MAX_LINE_BYTES = 4 * 1024 * 1024


def open_session() -> aiohttp.ClientSession:
    """The connection pool of one deployment's worker: keep-alive connections, no pool limit (the
    worker's limiter bounds concurrency), no timeout of its own (every request carries its deadline)."""

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None),
        read_bufsize=MAX_LINE_BYTES // 2,
        skip_auto_headers=("User-Agent",),
    )


class HttpTransport:
    """Sends requests for one deployment over ``session``. ``metadata`` tags every error; ``secret``
    is masked in them."""

    def __init__(self, session: aiohttp.ClientSession, *, metadata: Mapping[str, str], secret: str | None) -> None:
        self._session = session
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
        except TimeoutError:
            raise errors.timed_out(deadline.span, metadata=self.metadata) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise errors.unreachable(exc, metadata=self.metadata, midstream=midstream) from None

    def _raise_for_status(self, response: aiohttp.ClientResponse, content: bytes) -> None:
        if response.status >= 400:
            raise errors.error_for_status(
                response.status, content, response.headers, metadata=self.metadata, secret=self.secret
            )

    def decode_json(self, content: bytes, what: str = "body") -> Any:
        """Parse JSON or raise ``PROVIDER_BAD_RESPONSE``."""

        try:
            return json.loads(content)
        except ValueError:
            raise self.bad_response(f"{what} is not JSON: {content[:200].decode('utf-8', 'replace')!r}") from None

    def bad_response(self, description: str) -> Exception:
        return errors.bad_response(description, metadata=self.metadata, secret=self.secret)

    async def _post(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        with telemetry.http_call("POST", url) as call:
            response = await self._session.post(url, data=json.dumps(body).encode(), headers=headers)
            call.record_status(response.status)
            return response

    async def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                        deadline: Deadline) -> Any:
        """POST ``body`` and return the parsed JSON answer."""

        async def exchange() -> tuple[aiohttp.ClientResponse, bytes]:
            async with await self._post(url, body, headers) as response:
                return response, await response.read()

        response, content = await self._guarded(exchange(), deadline)
        self._raise_for_status(response, content)
        return self.decode_json(content)

    async def stream_lines(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                           deadline: Deadline) -> AsyncIterator[str]:
        """POST ``body`` and yield the answer's lines (without line endings) as they arrive.

        Errors before the first line (unreachable, HTTP errors, timeouts) are raised as usual; a
        connection lost later raises ``PROVIDER_UNAVAILABLE`` marked as mid-stream. Closing the
        iterator closes the HTTP response (and so the upstream stream).
        """

        response = await self._guarded(self._post(url, body, headers), deadline)
        try:
            if response.status >= 400:
                content = await self._guarded(response.read(), deadline)
                self._raise_for_status(response, content)
            # Whatever has arrived is read at once and split here: one guarded read per network read,
            # not per line (a provider's burst of chunks costs one deadline timer, not dozens).
            pending: list[bytes] = []  # the start of a line whose end has not arrived
            pending_bytes = 0
            while True:
                data = await self._guarded(response.content.readany(), deadline, midstream=True)
                if not data:
                    if pending:
                        yield b"".join(pending).decode("utf-8", "replace").rstrip("\r")
                    return
                if b"\n" not in data:
                    pending.append(data)
                    pending_bytes += len(data)
                    if pending_bytes > MAX_LINE_BYTES:
                        raise errors.unreachable(
                            ValueError(f"a streamed line is longer than {MAX_LINE_BYTES} bytes"),
                            metadata=self.metadata, midstream=True)
                    continue
                first, *lines = data.split(b"\n")
                rest = lines.pop()
                yield (b"".join(pending) + first).decode("utf-8", "replace").rstrip("\r")
                for line in lines:
                    yield line.decode("utf-8", "replace").rstrip("\r")
                pending, pending_bytes = ([rest], len(rest)) if rest else ([], 0)
        finally:
            response.close()

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
