"""A provider key planted in the environment never leaves the server: not in responses, errors,
logs, exported spans (with content capture on), Prometheus metrics or the dashboard."""

from __future__ import annotations

import io
import json
import logging

import grpc
import httpx
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import MOCK_KEY
from tests.integration.test_predict import predict_request
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"}}


async def exercise(stub, mock_lm) -> list[str]:
    """Successful and failing calls; returns everything the caller got back, as text."""

    outputs: list[str] = []

    async def call(method, request) -> None:
        rpc = method(request, timeout=10)
        try:
            outputs.append(str(await rpc))
        except grpc.aio.AioRpcError as error:
            outputs.append(f"{error.code()} {error.details()} {error.debug_error_string()}")
        outputs.append(str(await rpc.initial_metadata()) + str(await rpc.trailing_metadata()))

    mock_lm.enqueue("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]")
    await call(stub.Predict, predict_request({**PREDICT, "includeTrace": True}))
    for replies in ([MockReply.error(401, f"Incorrect API key provided: {MOCK_KEY}")],
                    [MockReply.error(400, f"bad request from key {MOCK_KEY}")],
                    [MockReply(text="no fields here")] * 2):  # ChatAdapter, then its JSON fallback
        mock_lm.enqueue(*replies)
        await call(stub.Predict, predict_request(PREDICT))
    mock_lm.enqueue(MockReply.error(503, f"overloaded ({MOCK_KEY})"), MockReply.error(503, f"still {MOCK_KEY}"))
    await call(stub.Predict, predict_request(PREDICT))
    await call(stub.Predict, predict_request({**PREDICT, "lm": {"model": "nope"}}))
    await call(stub.RenderPrompt, json_request(inference_pb2.RenderPromptRequest, PREDICT))
    return outputs


def json_request(kind, body: dict):
    from google.protobuf import json_format

    return json_format.ParseDict({k: v for k, v in body.items() if k != "lm"}, kind())


async def test_a_planted_provider_key_appears_in_no_output(server_factory, mock_lm):
    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        running = await server_factory(dashboard_enabled=True, dashboard_port=0, prometheus_enabled=True,
                                       prometheus_port=0, telemetry_capture_content=True)
        exporter = InMemorySpanExporter()
        running.app.telemetry_setup.add_span_exporter(exporter)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            outputs = await exercise(inference_pb2_grpc.InferenceServiceStub(channel), mock_lm)
        async with httpx.AsyncClient() as http:
            dashboard = f"http://127.0.0.1:{running.ops.dashboard_port}"
            outputs.append((await http.get(f"{dashboard}/")).text)
            outputs.append((await http.get(f"{dashboard}/api/snapshot")).text)
            async with http.stream("GET", f"{dashboard}/api/events") as events:
                async for line in events.aiter_lines():
                    if line.startswith("data:"):
                        outputs.append(line)
                        break
            outputs.append((await http.get(f"http://127.0.0.1:{running.ops.prometheus_port}/metrics")).text)
        spans = [span.to_json() for span in exporter.get_finished_spans()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    # The key really was in play: the provider received it, and the calls produced real output.
    assert any(r.headers.get("authorization") == f"Bearer {MOCK_KEY}" for r in mock_lm.requests)
    assert any("Paris" in output for output in outputs)
    assert any("PROVIDER_AUTH_FAILED" in output or "UNAUTHENTICATED" in output or "401" in output
               for output in outputs + [log_text.getvalue()])
    assert len(spans) > 20 and any("gen_ai.input.messages" in span for span in spans)

    everything = {"responses": "\n".join(outputs), "log": log_text.getvalue(), "spans": "\n".join(spans)}
    for name, text in everything.items():
        assert MOCK_KEY not in text, f"the planted key leaked into the {name}"
        assert json.dumps(MOCK_KEY)[1:-1] not in text
