"""The one error hierarchy of the engine.

Every failure a caller can act on is a subclass of :class:`DspyGrpcError`. Each carries a
machine-readable ``reason`` (UPPER_SNAKE_CASE), a human message, string ``metadata`` and, for bad
input, a list of :class:`FieldViolation`. The API layer maps the class to a gRPC status code and
the rest to ``google.rpc`` details; nothing below the API layer knows about gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One offending part of a request: ``field`` is a dotted path such as ``inputs.question``."""

    field: str
    description: str


class DspyGrpcError(Exception):
    """Base of every domain error. Subclasses fix the category; ``reason`` refines it."""

    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        violations: list[FieldViolation] | tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)
        #: Seconds after which a retry may succeed (mapped to google.rpc.RetryInfo).
        self.retry_after = retry_after


class InvalidArgument(DspyGrpcError):
    """The request itself is wrong; retrying it unchanged cannot help."""

    default_reason = "INVALID_ARGUMENT"


class NotFound(DspyGrpcError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DspyGrpcError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DspyGrpcError):
    default_reason = "FAILED_PRECONDITION"


class Aborted(DspyGrpcError):
    """A concurrency conflict (e.g. a stale etag); the caller may re-read and retry."""

    default_reason = "ABORTED"


class ResourceExhausted(DspyGrpcError):
    """A limit or budget is spent; ``retry_after`` says when capacity returns, if known."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DspyGrpcError):
    """A dependency (usually an LM provider) cannot be reached right now."""

    default_reason = "UNAVAILABLE"


class DeadlineExceeded(DspyGrpcError):
    default_reason = "DEADLINE_EXCEEDED"


class Cancelled(DspyGrpcError):
    default_reason = "CANCELLED"


class Unauthenticated(DspyGrpcError):
    """The call carries no valid credentials (missing, unknown, malformed or revoked API key)."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DspyGrpcError):
    """The caller is known but its API key lacks the scope the call needs (metadata ``required_scope``)."""

    default_reason = "PERMISSION_DENIED"


class ProviderError(DspyGrpcError):
    """The LM provider answered with an error that is not the caller's fault and not transient."""

    default_reason = "PROVIDER_ERROR"


class ParseError(DspyGrpcError):
    """An LM completion could not be parsed into the signature's output fields.

    ``metadata`` carries ``adapter`` and ``completion`` (the raw text, truncated).
    """

    default_reason = "PARSE_ERROR"

    COMPLETION_LIMIT = 2000

    def __init__(self, message: str, *, adapter: str, completion: str, **kwargs) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        truncated = completion if len(completion) <= self.COMPLETION_LIMIT else (
            completion[: self.COMPLETION_LIMIT] + "…"
        )
        metadata.update({"adapter": adapter, "completion": truncated})
        super().__init__(message, metadata=metadata, **kwargs)
        self.adapter = adapter
        self.completion = completion


def invalid(field: str, description: str, *, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """Shorthand for an :class:`InvalidArgument` naming one offending field."""

    return InvalidArgument(
        f"{field}: {description}", reason=reason, violations=[FieldViolation(field, description)]
    )
