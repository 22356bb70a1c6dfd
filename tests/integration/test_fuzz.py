"""Property-based fuzzing of the whole gRPC surface.

Every method of every service is found through server reflection (as a stranger would), and hypothesis
sends each of them random, malformed and boundary requests: random bytes, messages built field by
field from the method's descriptor (boundary integers, NaN and infinities, odd strings, deep and
empty nesting), and valid messages with bytes flipped or cut. For every call:

* the status is never INTERNAL or UNKNOWN (every refusal is typed);
* an INVALID_ARGUMENT names at least one field (google.rpc.BadRequest);
* the server stays up and answers health checks, and its log holds no crash.

The server runs as a subprocess (``dspy-grpc serve``) on a fresh SQLite database. The number of
requests is bounded for CI (``DSPY_GRPC_FUZZ_EXAMPLES``, default 600) and derandomized so a run is
reproducible; set ``DSPY_GRPC_FUZZ_RANDOM=1`` to explore with fresh randomness.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("DSPY_GRPC_FUZZ_EXAMPLES", "600"))
CALL_TIMEOUT_S = 5.0
SKIPPED_SERVICES = {"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection",
                    "grpc.health.v1.Health"}
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@dataclass(frozen=True)
class Method:
    path: str
    request: descriptor.Descriptor
    client_streaming: bool
    server_streaming: bool


@dataclass
class FuzzServer:
    process: subprocess.Popen
    channel: grpc.Channel
    methods: list[Method]
    log: Path


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[FuzzServer]:
    workdir = tmp_path_factory.mktemp("fuzz")
    log = workdir / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0",
             "--database-url", f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}"],
            stdout=subprocess.PIPE, stderr=sink, env={**os.environ, "DSPY_GRPC_CONFIG": ""},
        )
    port = None
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode()
        if line.startswith("dspy-grpc listening on"):
            port = int(line.rsplit(":", 1)[1])
            break
    assert port is not None, "server exited before listening: " + log.read_text()[-2000:]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield FuzzServer(process, channel, reflected_methods(channel), log)
    finally:
        channel.close()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reflected_methods(channel: grpc.Channel) -> list[Method]:
    """Every method of every service the server lists through reflection (none known in advance)."""

    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    methods = []
    for service_name in database.get_services():
        if service_name in SKIPPED_SERVICES:
            continue
        service = pool.FindServiceByName(service_name)
        for method in service.methods:
            methods.append(Method(f"/{service.full_name}/{method.name}", method.input_type,
                                  method.client_streaming, method.server_streaming))
    return methods


# --------------------------------------------------------------------------- request strategies

INT32 = [0, 1, -1, 2, 7, 100, 1000, 2**31 - 1, -(2**31)]
INT64 = INT32 + [2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, -(2**63)]
UINT = [0, 1, 2, 100, 2**32 - 1]
DOUBLES = [0.0, -0.0, 0.5, 1.0, -1.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan, 100.0, 101.0]
WORDS = ["", "x", "dummy", "mock", "programs/p1", "programs/p1@r0001", "datasets/d1", "evaluations/e1",
         "optimizations/o1", "question -> answer", "a, b: list[int] -> c: bool", "question", "answer",
         "light", "heavy", "chat", "json", "{}", "{\"a\": 1}", "[1, 2]", "\u0000", "é" * 3, "a" * 300,
         "programs/" + "a" * 70, "programs/UPPER", "../../etc/passwd", "🙂", "r0001"]


def text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(WORDS), st.text(max_size=40))


def scalar(field: FieldDescriptor) -> st.SearchStrategy:
    kind = field.type
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(INT32), st.integers(-(2**31), 2**31 - 1))
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(INT64), st.integers(-(2**63), 2**63 - 1))
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.sampled_from(UINT)
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.sampled_from(UINT + [2**64 - 1])
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        values = st.one_of(st.sampled_from(DOUBLES), st.floats(allow_nan=True, allow_infinity=True))
        return values if kind == FieldDescriptor.TYPE_DOUBLE else values.map(lambda v: max(min(v, 3e38), -3e38)
                                                                              if math.isfinite(v) else v)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return text()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.sampled_from([-1, 99]))
    raise AssertionError(kind)


@st.composite
def message(draw, message_type: descriptor.Descriptor, depth: int = 0):
    """A message of ``message_type``: each field set or not, with boundary values; nesting ends at 4."""

    built = message_factory.GetMessageClass(message_type)()
    if message_type.full_name in ("google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"):
        return _json_like(draw, built, depth)
    oneofs_done: set[str] = set()
    for field in message_type.fields:
        if field.containing_oneof is not None:
            if field.containing_oneof.name in oneofs_done or not draw(st.booleans()):
                continue
            oneofs_done.add(field.containing_oneof.name)
        elif not draw(st.integers(0, 2)):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 2))):
                key = draw(scalar(key_field))
                target = getattr(built, field.name)
                if value_field.message_type is not None:
                    if depth < 4:
                        target[key].CopyFrom(draw(message(value_field.message_type, depth + 1)))
                else:
                    target[key] = draw(scalar(value_field))
            continue
        if field.is_repeated:
            count = draw(st.integers(0, 3))
            container = getattr(built, field.name)
            for _ in range(count):
                if field.message_type is not None:
                    if depth < 4:
                        container.add().CopyFrom(draw(message(field.message_type, depth + 1)))
                else:
                    container.append(draw(scalar(field)))
            continue
        if field.message_type is not None:
            if depth < 4:
                getattr(built, field.name).CopyFrom(draw(message(field.message_type, depth + 1)))
            else:
                getattr(built, field.name).SetInParent()
            continue
        setattr(built, field.name, draw(scalar(field)))
    return built


def _json_like(draw, built, depth: int):
    from google.protobuf import json_format

    leaves = st.one_of(st.none(), st.booleans(), st.sampled_from(DOUBLES[:8] + [2.0**53, 1e20]), text())
    values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(text(), inner, max_size=3)),
                          max_leaves=6 if depth < 3 else 1)
    name = built.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        data = draw(st.dictionaries(st.sampled_from(["question", "answer", "items", "x", "completions", ""]) | text(),
                                    values, max_size=3))
    elif name == "google.protobuf.ListValue":
        data = draw(st.lists(values, max_size=3))
    else:
        data = draw(values)
    if isinstance(data, float) and not math.isfinite(data):
        data = 0.0  # JSON parsing refuses them; the wire can still carry them (see DOUBLES in scalars)
    try:
        json_format.ParseDict(data, built)
    except json_format.ParseError:
        pass  # e.g. a NaN nested in a list: leave the message empty
    return built


@st.composite
def payload(draw, method: Method) -> bytes:
    """Bytes for one request message: a built message, a mangled one, or noise."""

    kind = draw(st.sampled_from(["message", "message", "message", "mangled", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=64))
    data = draw(message(method.request)).SerializeToString()
    if kind == "mangled" and data:
        position = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            return data[:position]
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1:]
    return data


# --------------------------------------------------------------------------- the property


def call(channel: grpc.Channel, method: Method, messages: list[bytes]) -> grpc.RpcError | None:
    """Send ``messages`` (one for unary requests); read every response. The error, if any."""

    kind = ("stream" if method.client_streaming else "unary") + "_" + ("stream" if method.server_streaming else "unary")
    stub = getattr(channel, kind)(method.path, request_serializer=None, response_deserializer=None)
    request = iter(messages) if method.client_streaming else messages[0]
    try:
        if method.server_streaming:
            for _ in stub(request, timeout=CALL_TIMEOUT_S):
                pass
        else:
            stub(request, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        return error
    return None


def check(method: Method, error: grpc.RpcError | None, log: Path) -> None:
    if error is None:
        return
    code = error.code()
    assert code not in FORBIDDEN, f"{method.path}: {code.name} {error.details()}\n{log.read_text()[-4000:]}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        status = rpc_status.from_call(error)
        assert status is not None, f"{method.path}: INVALID_ARGUMENT without a google.rpc.Status: {error.details()}"
        fields = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields += [violation.field for violation in bad.field_violations]
        assert fields and all(fields), f"{method.path}: INVALID_ARGUMENT naming no field: {error.details()}"


def test_reflection_lists_every_service(fuzz_server):
    services = {method.path.split("/")[1] for method in fuzz_server.methods}
    assert {"dspy_grpc.v1.InferenceService", "dspy_grpc.v1.ProgramService", "dspy_grpc.v1.DatasetService",
            "dspy_grpc.v1.LMService", "dspy_grpc.v1.EvaluationService",
            "dspy_grpc.v1.OptimizationService"} <= services
    assert len(fuzz_server.methods) >= 30


@pytest.mark.timeout(600)  # a few hundred calls: about a minute on a busy 2-core machine
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("DSPY_GRPC_FUZZ_RANDOM"),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture], database=None)
@given(data=st.data())
def test_no_request_gets_an_untyped_error_or_hurts_the_server(fuzz_server, data):
    method = data.draw(st.sampled_from(fuzz_server.methods), label="method")
    count = data.draw(st.integers(1, 3), label="messages") if method.client_streaming else 1
    messages = [data.draw(payload(method), label="payload") for _ in range(count)]
    check(method, call(fuzz_server.channel, method, messages), fuzz_server.log)
    assert fuzz_server.process.poll() is None, "the server died: " + fuzz_server.log.read_text()[-3000:]


def test_the_server_is_healthy_and_logged_no_crash_after_the_fuzzing(fuzz_server):
    health = health_pb2_grpc.HealthStub(fuzz_server.channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    log = fuzz_server.log.read_text()
    for marker in ("crashed", "Traceback", "never retrieved", "ContextVar"):
        assert marker not in log, log[log.index(marker) - 2000:log.index(marker) + 2000]
