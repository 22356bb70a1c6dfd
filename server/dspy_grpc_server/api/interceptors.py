"""The interceptor every RPC passes through: request id, telemetry, authorization, error mapping.

For each call it

1. takes the request id (the caller's ``x-request-id`` metadata, or a new one) and sends it back:
   as trailing metadata on a unary call (it then travels in the one batch that carries the answer
   and the status -- grpc.aio can only add custom *initial* metadata as a batch of its own, which
   cost about 65 us of CPU per call), as initial metadata when a stream starts;
2. opens the RPC's server span (continuing the caller's W3C ``traceparent`` if sent), counts the
   call in flight and records its duration and status code;
3. checks the ``authorization: Bearer`` API key against the scope the method needs (when
   authentication is on) and runs the handler on behalf of that key (:mod:`..core.caller`);
4. turns exceptions into statuses in one place: domain errors through :mod:`.errors`, client
   cancellation left alone, anything else logged with the request id and reported as INTERNAL;
5. decodes each request message itself: bytes that are not a valid message (invalid UTF-8 in a
   string, nesting deeper than protobuf's recursion limit, garbage) become INVALID_ARGUMENT with
   reason MALFORMED_REQUEST naming the field ``request`` -- on every kind of method, each message of
   a client stream included -- instead of the UNKNOWN or INTERNAL grpc would give.
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import grpc
from opentelemetry import propagate

from ..core import telemetry
from ..core.caller import Caller, acting_as
from ..core.errors import DspyGrpcError, invalid
from ..lm.attribution import attributed
from .authorization import Authorizer
from .errors import internal_status, to_status

log = logging.getLogger("dspy_grpc_server.api")

REQUEST_ID_KEY = "x-request-id"

#: The request id of the RPC being served (for log lines below the API layer too).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def _request_id(metadata: tuple[tuple[str, Any], ...]) -> str:
    for key, value in metadata:
        if key == REQUEST_ID_KEY and value:
            return str(value)[:128]
    return f"{random.getrandbits(128):032x}"  # as unique as a uuid4's hex, without a system call per call


def _status_for(error: BaseException, method: str, request_id: str) -> grpc.Status:
    if isinstance(error, DspyGrpcError):
        status = to_status(error, request_id=request_id)
        log.info("%s failed: %s %s (request_id=%s)", method, status.code.name, error.reason, request_id)
        return status
    log.error("%s crashed (request_id=%s)", method, request_id, exc_info=error)
    return internal_status(request_id)


#: What a block needs when there is nothing to set up (one shared, reusable no-op).
_NOTHING: AbstractContextManager[None] = nullcontext()


def _on_behalf_of(caller: Caller | None) -> AbstractContextManager[None]:
    """Run the handler as ``caller``: visible to code below and charged in the usage ledger."""

    return _NOTHING if caller is None else _acting_for(caller)


@contextmanager
def _acting_for(caller: Caller) -> Iterator[None]:
    with acting_as(caller), attributed(api_key_id=caller.key_id):
        yield


class _Malformed:
    """What the decoder hands on instead of a request it could not decode."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.error = invalid("request", f"is not a valid {type_name} message ({type(error).__name__}: "
                             f"{str(error)[:200] or 'undecodable'})", reason="MALFORMED_REQUEST")


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning a :class:`_Malformed` for bytes it cannot decode (never raising)."""

    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(owner, "DESCRIPTOR", None)
    type_name = type_name.full_name if type_name is not None else "request"

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # noqa: BLE001 - any decoding failure is the caller's malformed message
            return _Malformed(type_name, error)

    return decode


def _decoded(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise request.error
    return request


async def _decoded_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


class _Call:
    """The per-call setup and teardown shared by unary and streaming handlers."""

    def __init__(self, interceptor: CallInterceptor, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method, self.context = method, context
        self.metadata = context.invocation_metadata() or ()
        self.request_id = _request_id(self.metadata)
        self._interceptor = interceptor
        self.status: grpc.Status | None = None

    def parent(self) -> Any:
        """The caller's trace context (W3C ``traceparent``), when spans are recorded at all."""

        if not self._interceptor.telemetry.tracing:
            return None
        carrier = {key: value for key, value in self.metadata if isinstance(value, str)}
        return propagate.extract(carrier)

    async def authorize(self, rpc: telemetry.RpcCall) -> AbstractContextManager[None]:
        """The block the handler runs in, on behalf of the caller's API key (authentication on)."""

        caller = await self._interceptor.authorizer.authorize(self.method, self.metadata)
        if caller is not None:
            rpc.span.set_attribute(telemetry.DSPY_API_KEY_ID, caller.key_id)
        return _on_behalf_of(caller)

    def fail(self, rpc: telemetry.RpcCall, error: BaseException) -> None:
        if not isinstance(error, Exception):  # cancelled by the client, generator closed, shutdown
            rpc.record_code("CANCELLED", grpc.StatusCode.CANCELLED.value[0])
            return
        if isinstance(error, grpc.aio.AbortError):
            code = self.context.code() or grpc.StatusCode.UNKNOWN
            rpc.record_code(code.name, code.value[0])
            return
        self.status = _status_for(error, self.method, self.request_id)
        reason = error.reason if isinstance(error, DspyGrpcError) else "INTERNAL"
        rpc.record_code(self.status.code.name, self.status.code.value[0], reason)

    async def send_headers(self) -> None:
        """A stream's response headers, carrying the request id."""

        await self.context.send_initial_metadata(((REQUEST_ID_KEY, self.request_id),))

    def set_trailer(self) -> None:
        """A unary call's request id, as trailing metadata: sent with the answer (or the error) in the
        call's last batch. Its headers then go with that batch too, not when the call starts: until a
        replica has sent headers, a proxy in front of it (nginx grpc_pass) reports the replica's death
        as UNAVAILABLE, which clients retry; after, only as a reset stream (INTERNAL)."""

        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))

    async def abort_if_failed(self, *, trailer: bool = False) -> None:
        if self.status is not None:
            status = self.status
            metadata = tuple(status.trailing_metadata or ())
            if trailer:
                metadata += ((REQUEST_ID_KEY, self.request_id),)
            await self.context.abort(status.code, status.details, metadata)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler (see the module docstring). ``authorizer`` defaults to auth off."""

    def __init__(self, telemetry_: telemetry.Telemetry | None = None, authorizer: Authorizer | None = None) -> None:
        self.telemetry = telemetry_ or telemetry.current()
        self.authorizer = authorizer or Authorizer(None)
        #: Per method: the service's handler and its wrapped form (built once, not per call).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None or wrapped[0] is not handler:
            wrapped = self._wrapped[method] = (handler, self._wrap(handler, method))
        return wrapped[1]

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        for kind, make, wrap in (
            ("unary_unary", grpc.unary_unary_rpc_method_handler, self._unary),
            ("unary_stream", grpc.unary_stream_rpc_method_handler, self._stream),
            ("stream_unary", grpc.stream_unary_rpc_method_handler, self._unary),
            ("stream_stream", grpc.stream_stream_rpc_method_handler, self._stream),
        ):
            behavior = getattr(handler, kind)
            if behavior:
                return make(wrap(behavior, method, streaming_requests=kind.startswith("stream_")),
                            request_deserializer=_tolerant(handler.request_deserializer),
                            response_serializer=handler.response_serializer)
        return handler

    def _scope(self) -> AbstractContextManager[Any]:
        """Record into this server's telemetry: nothing to do when the running code records into it
        already (it is the process default, as in a served process)."""

        return _NOTHING if telemetry.current() is self.telemetry else telemetry.scope(self.telemetry)

    def _unary(self, behavior, method: str, *, streaming_requests: bool):
        authorizer = self.authorizer

        async def wrapper(request: Any, context: grpc.aio.ServicerContext):
            call = _Call(self, method, context)
            token = request_id_var.set(call.request_id)
            try:
                with self._scope(), telemetry.rpc_call(method, parent=call.parent()) as rpc:
                    try:
                        rpc.span.set_attribute(telemetry.DSPY_REQUEST_ID, call.request_id)
                        with await call.authorize(rpc) if authorizer.enabled else _NOTHING:
                            request = _decoded_stream(request) if streaming_requests else _decoded(request)
                            response = await behavior(request, context)
                        call.set_trailer()
                        return response
                    except BaseException as error:  # noqa: BLE001 - this is the one place errors are mapped
                        call.fail(rpc, error)
                        if call.status is None:
                            raise
                await call.abort_if_failed(trailer=True)
            finally:
                request_id_var.reset(token)

        return wrapper

    def _stream(self, behavior, method: str, *, streaming_requests: bool):
        # A coroutine writing each response (grpc's reader/writer form), not an async generator: grpc
        # drops a generator it stops iterating (client cancelled while it waits at a yield), and its
        # finalizer would close it in another task and context -- the context variables set here and
        # the span's context could then not be reset ("Task exception was never retrieved"). Here the
        # handler's generator is always closed in the call's own task.
        authorizer = self.authorizer

        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> None:
            call = _Call(self, method, context)
            token = request_id_var.set(call.request_id)
            try:
                with self._scope(), telemetry.rpc_call(method, parent=call.parent()) as rpc:
                    try:
                        rpc.span.set_attribute(telemetry.DSPY_REQUEST_ID, call.request_id)
                        await call.send_headers()
                        with await call.authorize(rpc) if authorizer.enabled else _NOTHING:
                            request = _decoded_stream(request) if streaming_requests else _decoded(request)
                            responses = behavior(request, context)
                            try:
                                async for response in responses:
                                    await context.write(response)
                            finally:
                                await responses.aclose()
                    except BaseException as error:  # noqa: BLE001
                        call.fail(rpc, error)
                        if call.status is None:
                            raise
                await call.abort_if_failed()
            finally:
                request_id_var.reset(token)

        return wrapper
