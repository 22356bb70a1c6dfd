"""A client for ColBERTv2 servers in DSPy's HTTP shape (``dspy.ColBERTv2(url)``):
``GET <url>?query=...&k=...`` answers ``{"topk": [{"text", "pid", "score", ...}, ...]}``."""

from __future__ import annotations

from typing import Any

import httpx

from ..core.errors import FailedPrecondition, Unavailable

#: Seconds a ColBERTv2 request may take when the call has no deadline (DSPy uses 10).
DEFAULT_TIMEOUT_S = 10.0


async def colbertv2_search(client: httpx.AsyncClient, url: str, query: str, k: int,
                           timeout: float | None) -> list[dict[str, Any]]:
    """The ``topk`` entries (at most ``k``) the server returns, each with at least ``text``."""

    try:
        response = await client.get(url, params={"query": query, "k": k},
                                    timeout=DEFAULT_TIMEOUT_S if timeout is None else min(timeout, DEFAULT_TIMEOUT_S))
    except httpx.HTTPError as error:
        raise Unavailable(f"the ColBERTv2 server at {url} did not answer: {type(error).__name__}",
                          reason="RETRIEVER_UNAVAILABLE", metadata={"url": url}, retry_after=1.0) from None
    if response.status_code >= 500:
        raise Unavailable(f"the ColBERTv2 server at {url} answered HTTP {response.status_code}",
                          reason="RETRIEVER_UNAVAILABLE", metadata={"url": url}, retry_after=1.0)
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("error") or not isinstance(body.get("topk"), list):
        detail = body.get("message", "") if isinstance(body, dict) else f"HTTP {response.status_code}"
        raise FailedPrecondition(f"the ColBERTv2 server at {url} gave no passages: {detail or 'unexpected answer'}",
                                 reason="RETRIEVER_FAILED", metadata={"url": url})
    entries = [entry for entry in body["topk"][:k] if isinstance(entry, dict) and isinstance(entry.get("text"), str)]
    if len(entries) != len(body["topk"][:k]):
        raise FailedPrecondition(f"the ColBERTv2 server at {url} answered passages without text",
                                 reason="RETRIEVER_FAILED", metadata={"url": url})
    return entries
