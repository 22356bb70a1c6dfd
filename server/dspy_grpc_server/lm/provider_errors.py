"""Turning what an OpenAI-compatible provider says (or fails to say) into the engine's typed errors.

Every message built here is safe to show a caller: the API key is masked wherever it might appear,
and provider error texts are truncated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

from ..core.errors import (
    DeadlineExceeded,
    DspyGrpcError,
    ProviderError,
    ResourceExhausted,
    Unavailable,
)

MESSAGE_LIMIT = 500


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked and cut to :data:`MESSAGE_LIMIT` characters."""

    if secret:
        text = text.replace(secret, "***")
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + "…"
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/bad."""

    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def provider_message(body: bytes) -> str:
    """The human message inside an error body (``{"error": {"message": ...}}`` and variants)."""

    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, Mapping):
        error = data.get("error", data)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return data["message"]
    return text


def error_for_status(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    metadata: Mapping[str, str],
    secret: str | None,
) -> DspyGrpcError:
    """The typed error for a non-2xx HTTP answer from the provider."""

    meta = {**metadata, "status": str(status)}
    detail = scrub(provider_message(body), secret)
    model = metadata.get("model", "?")
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ResourceExhausted(
            f"provider rate limit reached for model {model}: {detail}",
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
            retry_after=retry_after,
        )
    if status in (401, 403):
        return ProviderError(
            f"provider rejected the credentials for model {model} (HTTP {status})",
            reason="PROVIDER_AUTH_FAILED",
            metadata=meta,
        )
    if status == 408:
        return DeadlineExceeded(
            f"provider timed out on model {model} (HTTP 408)", reason="PROVIDER_TIMEOUT", metadata=meta
        )
    if status >= 500:
        return Unavailable(
            f"provider unavailable for model {model} (HTTP {status}): {detail}",
            reason="PROVIDER_UNAVAILABLE",
            metadata=meta,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    return ProviderError(
        f"provider rejected the request for model {model} (HTTP {status}): {detail}",
        reason="PROVIDER_REJECTED",
        metadata=meta,
    )


def unreachable(error: Exception, *, metadata: Mapping[str, str], midstream: bool = False) -> Unavailable:
    """The provider could not be reached, or (``midstream``) dropped a streamed answer half-way."""

    model = metadata.get("model", "?")
    what = "stream from the provider broke off" if midstream else "provider unreachable"
    return Unavailable(
        f"{what} for model {model}: {scrub(str(error) or type(error).__name__, None)}",
        reason="PROVIDER_UNAVAILABLE",
        metadata={**metadata, "status": "0"},
    )


def timed_out(seconds: float, *, metadata: Mapping[str, str]) -> DeadlineExceeded:
    """The provider did not answer within the time budget."""

    model = metadata.get("model", "?")
    return DeadlineExceeded(
        f"provider did not answer for model {model} within {seconds:.3g}s",
        reason="PROVIDER_TIMEOUT",
        metadata=dict(metadata),
    )


def bad_response(description: str, *, metadata: Mapping[str, str], secret: str | None) -> ProviderError:
    """The provider answered 2xx but the body is not a usable chat completion."""

    model = metadata.get("model", "?")
    return ProviderError(
        f"provider sent an unusable response for model {model}: {scrub(description, secret)}",
        reason="PROVIDER_BAD_RESPONSE",
        metadata=dict(metadata),
    )
