"""The interceptor every RPC passes through: request ids and error mapping.

It gives each call a request id (the caller's ``x-request-id`` metadata, or a new one), sends it
back as initial metadata, and turns exceptions into statuses in one place: domain errors through
:mod:`.errors`, client cancellation left alone, anything else logged with the request id and
reported as INTERNAL.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..core.errors import DspyGrpcError
from .errors import internal_status, to_status

log = logging.getLogger("dspy_grpc_server.api")

REQUEST_ID_KEY = "x-request-id"

#: The request id of the RPC being served (for log lines below the API layer too).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and value:
            return str(value)[:128]
    return uuid.uuid4().hex


async def _abort(context: grpc.aio.ServicerContext, error: BaseException, method: str, request_id: str):
    if isinstance(error, DspyGrpcError):
        status = to_status(error, request_id=request_id)
        log.info("%s failed: %s %s (request_id=%s)", method, status.code.name, error.reason, request_id)
    else:
        log.exception("%s crashed (request_id=%s)", method, request_id, exc_info=error)
        status = internal_status(request_id)
    await context.abort_with_status(status)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler so that exceptions become rich statuses."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, behavior, method: str):
        async def wrapper(request: Any, context: grpc.aio.ServicerContext):
            request_id = _request_id(context)
            token = request_id_var.set(request_id)
            await context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
            try:
                return await behavior(request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as error:  # noqa: BLE001 - this is the one place errors are mapped
                await _abort(context, error, method, request_id)
            finally:
                request_id_var.reset(token)

        return wrapper

    def _stream(self, behavior, method: str):
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request_id = _request_id(context)
            token = request_id_var.set(request_id)
            await context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
            try:
                async for response in behavior(request, context):
                    yield response
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as error:  # noqa: BLE001
                await _abort(context, error, method, request_id)
            finally:
                request_id_var.reset(token)

        return wrapper
