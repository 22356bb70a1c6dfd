"""An httpx transport that records a client span per HTTP request sent to a provider.

Every provider HTTP client is built with :func:`traced_client`, so each attempt (retries included)
shows up as its own ``POST`` span under the LM request span. Only the method, the URL without query
or user info, and the status code are recorded; headers (and with them API keys) never are.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..core import telemetry


class TracedTransport(httpx.AsyncBaseTransport):
    """Wraps another transport; the span covers sending the request and receiving the headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with telemetry.http_call(request.method, str(request.url)) as call:
            response = await self._inner.handle_async_request(request)
            call.record_status(response.status_code)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def traced_client(*, limits: httpx.Limits | None = None, http2: bool = False, **options: Any) -> httpx.AsyncClient:
    """A drop-in for ``httpx.AsyncClient(...)`` whose requests are traced. ``limits`` and ``http2``
    configure the connection pool; ``options`` go to the client (``timeout``, ``headers``, ...)."""

    inner = httpx.AsyncHTTPTransport(limits=limits or httpx.Limits(), http2=http2)
    return httpx.AsyncClient(transport=TracedTransport(inner), **options)
