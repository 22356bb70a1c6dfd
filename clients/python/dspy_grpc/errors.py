"""Typed errors raised by :class:`~dspy_grpc.Client` and :class:`~dspy_grpc.AsyncClient`.

Every failed RPC raises a :class:`DspyGrpcError` — usually one of its subclasses, chosen by the
gRPC status code — built from the server's rich status (``google.rpc.Status``):

- ``reason`` / ``domain`` / ``metadata`` come from ``google.rpc.ErrorInfo``
  (e.g. reason ``"PROGRAM_NOT_FOUND"``, domain ``"dspy-grpc"``);
- ``field_violations`` comes from ``google.rpc.BadRequest`` as ``(field, description)`` pairs;
- ``retry_delay`` comes from ``google.rpc.RetryInfo``, in seconds.

    try:
        client.predict("programs/missing", question="hi")
    except NotFoundError as error:
        print(error.reason, error.message)
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DspyGrpcError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "FailedPreconditionError",
    "AbortedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "DeadlineExceededError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "InternalError",
    "RpcCancelledError",
    "from_rpc_error",
    "from_item_error",
]

REQUEST_ID_KEY = "x-request-id"


class DspyGrpcError(Exception):
    """A failed RPC.

    Attributes:
        code: the gRPC status code.
        message: the server's error message.
        reason: ``ErrorInfo.reason`` in UPPER_SNAKE_CASE (``""`` when the server sent none).
        domain: ``ErrorInfo.domain`` (``"dspy-grpc"`` for errors from this service).
        metadata: ``ErrorInfo.metadata``.
        field_violations: the offending request fields, as ``(field, description)`` pairs.
        retry_delay: seconds to wait before retrying, when the server suggests a retry.
        request_id: the server's id for the request (quote it when reporting a problem).
        status: the decoded ``google.rpc.Status``, or ``None`` when the server sent no rich status.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
        retry_delay: float | None = None,
        request_id: str | None = None,
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[tuple[str, str]] = list(field_violations or [])
        self.retry_delay = retry_delay
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        if self.field_violations:
            text += " (" + "; ".join(f"{field}: {desc}" for field, desc in self.field_violations) + ")"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, message={self.message!r})"


class InvalidArgumentError(DspyGrpcError):
    """INVALID_ARGUMENT: the request is malformed; see :attr:`field_violations`."""


class NotFoundError(DspyGrpcError):
    """NOT_FOUND: e.g. an unknown program or revision."""


class AlreadyExistsError(DspyGrpcError):
    """ALREADY_EXISTS: e.g. a program id that is taken."""


class FailedPreconditionError(DspyGrpcError):
    """FAILED_PRECONDITION: e.g. reason ``PARSE_ERROR`` when the LM's reply does not fit the signature."""


class AbortedError(DspyGrpcError):
    """ABORTED: e.g. reason ``ETAG_MISMATCH`` when someone else changed the program."""


class ResourceExhaustedError(DspyGrpcError):
    """RESOURCE_EXHAUSTED: a rate or quota limit; see :attr:`retry_delay`."""


class UnavailableError(DspyGrpcError):
    """UNAVAILABLE: the server or the LM provider is unreachable; retrying may help."""


class DeadlineExceededError(DspyGrpcError):
    """DEADLINE_EXCEEDED: the call or the LM provider took too long."""


class UnauthenticatedError(DspyGrpcError):
    """UNAUTHENTICATED: missing or invalid credentials."""


class PermissionDeniedError(DspyGrpcError):
    """PERMISSION_DENIED: the caller may not do this."""


class InternalError(DspyGrpcError):
    """INTERNAL: a server bug; :attr:`request_id` finds it in the server log."""


class RpcCancelledError(DspyGrpcError):
    """CANCELLED: the call was cancelled (named so it does not shadow ``asyncio.CancelledError``)."""


_BY_CODE: dict[grpc.StatusCode, type[DspyGrpcError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.CANCELLED: RpcCancelledError,
}


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    try:
        return rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError, TypeError):
        return None


def _metadata_value(metadata: Any, key: str) -> str | None:
    try:
        for item_key, item_value in metadata or ():
            if item_key == key:
                return item_value.decode() if isinstance(item_value, bytes) else str(item_value)
    except (TypeError, ValueError):
        return None
    return None


def from_rpc_error(error: grpc.RpcError) -> DspyGrpcError:
    """Build the typed error for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""

    code_fn = getattr(error, "code", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details_fn = getattr(error, "details", None)
    message = (details_fn() if callable(details_fn) else None) or str(error)

    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    retry_delay: float | None = None
    status = _rich_status(error)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend((v.field, v.description) for v in bad_request.field_violations)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9

    request_id = metadata.get("request_id")
    for getter in ("initial_metadata", "trailing_metadata"):
        if request_id:
            break
        fn = getattr(error, getter, None)
        if callable(fn):
            try:
                request_id = _metadata_value(fn(), REQUEST_ID_KEY)
            except Exception:  # noqa: BLE001 - metadata is best effort
                request_id = None

    cls = _BY_CODE.get(code, DspyGrpcError)
    return cls(
        code, message, reason=reason, domain=domain, metadata=metadata, field_violations=violations,
        retry_delay=retry_delay, request_id=request_id or None, status=status,
    )


def from_item_error(item: Any) -> DspyGrpcError:
    """The typed error of one failed BatchPredict item (a ``dspy_grpc.v1.ItemError``)."""

    code = getattr(grpc.StatusCode, item.code, grpc.StatusCode.UNKNOWN)
    metadata = dict(item.metadata)
    cls = _BY_CODE.get(code, DspyGrpcError)
    return cls(
        code, item.message, reason=item.reason, domain="dspy-grpc" if item.reason else "", metadata=metadata,
        field_violations=[(v.field, v.description) for v in item.field_violations],
        request_id=metadata.get("request_id"),
    )
