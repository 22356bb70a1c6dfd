"""Bytes that are not a valid request message get INVALID_ARGUMENT (reason MALFORMED_REQUEST, field
"request") on every kind of method -- unary, server stream, client stream and bidi -- never UNKNOWN
or INTERNAL, and the server logs no crash."""

from __future__ import annotations

import logging

import grpc
import pytest

from tests.integration.grpc_helpers import error_details

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_inputs(levels: int) -> bytes:
    """A PredictRequest whose inputs Struct nests ``levels`` deep (past protobuf's recursion limit),
    encoded by hand: protobuf itself refuses to build it."""

    struct = b""
    for _ in range(levels):
        value = _field(5, struct)  # Value.struct_value
        struct = _field(1, _field(1, b"x") + _field(2, value))  # Struct.fields entry {key, value}
    return _field(1, b"programs/qa") + _field(3, struct)


MALFORMED = {
    "garbage": b"\xff\xff\xff\xff",
    "invalid_utf8": b"\x0a\x02\xc3\x28",  # field 1 (a string in every request used here): not UTF-8
    "truncated": b"\x0a\x10abc",
    "too_deep": deep_inputs(40),
}

#: One method of each kind.
METHODS = {
    "unary": ("/dspy_grpc.v1.InferenceService/Predict", "unary_unary"),
    "server_stream": ("/dspy_grpc.v1.InferenceService/StreamPredict", "unary_stream"),
    "client_stream": ("/dspy_grpc.v1.DatasetService/AppendExamples", "stream_unary"),
    "bidi": ("/dspy_grpc.v1.InferenceService/Run", "stream_stream"),
}


async def call_raw(channel: grpc.aio.Channel, method: str, kind: str, payload: bytes) -> None:
    callable_ = getattr(channel, kind)(method, request_serializer=None, response_deserializer=None)
    if kind == "unary_unary":
        await callable_(payload, timeout=10)
    elif kind == "unary_stream":
        async for _ in callable_(payload, timeout=10):
            pass
    elif kind == "stream_unary":
        await callable_(iter([payload]), timeout=10)
    else:
        async for _ in callable_(iter([payload]), timeout=10):
            pass


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("method", METHODS.values(), ids=METHODS.keys())
async def test_an_undecodable_request_is_a_typed_invalid_argument(channel, method, payload, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(channel, *method, payload)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    details = error_details(caught.value)
    assert details["reason"] == "MALFORMED_REQUEST"
    assert "request" in details["violations"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
