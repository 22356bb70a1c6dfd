"""Traces and metrics of real calls: nested spans down to the provider HTTP call, GenAI attributes,
content capture only on request, trace context continued from the caller, the Prometheus endpoint."""

from __future__ import annotations

import grpc
import httpx
import pytest
from dspy_grpc.v1 import inference_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.integration.test_predict import predict_request
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"}}
ANSWER = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"


async def traced_server(server_factory, **overrides):
    running = await server_factory(**overrides)
    exporter = InMemorySpanExporter()
    running.app.telemetry_setup.add_span_exporter(exporter)
    return running, exporter


#: RPC -> program -> predictor -> adapter (its format and parse steps) -> LM request -> HTTP attempt.
NESTING = {
    "dspy_grpc.v1.InferenceService/Predict": None,
    "dspy.program inline": "dspy_grpc.v1.InferenceService/Predict",
    "dspy.predictor self": "dspy.program inline",
    "dspy.adapter chat": "dspy.predictor self",
    "dspy.adapter.format": "dspy.adapter chat",
    "chat mock": "dspy.adapter chat",
    "POST": "chat mock",
    "dspy.adapter.parse": "dspy.adapter chat",
}


def tree(spans) -> dict:
    """span name -> (span, parent name), for one trace."""

    by_id = {span.context.span_id: span for span in spans}
    return {span.name: (span, by_id[span.parent.span_id].name if span.parent and span.parent.span_id in by_id
                        else None) for span in spans}


async def test_a_traced_predict_nests_spans_down_to_the_provider_http_call(server_factory, mock_lm):
    running, exporter = await traced_server(server_factory)
    mock_lm.enqueue(ANSWER)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)

    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1
    nodes = tree(spans)
    parents = {name: parent for name, (_, parent) in nodes.items()}
    assert parents == NESTING
    # Inside the adapter: format, then the LM request, then parse.
    format_, lm_, parse_ = (nodes[name][0] for name in ("dspy.adapter.format", "chat mock", "dspy.adapter.parse"))
    assert format_.end_time <= lm_.start_time and lm_.end_time <= parse_.start_time
    rpc = nodes["dspy_grpc.v1.InferenceService/Predict"][0]
    assert rpc.kind is SpanKind.SERVER
    assert rpc.attributes["rpc.system"] == "grpc" and rpc.attributes["rpc.method"] == "Predict"
    assert rpc.attributes["rpc.grpc.status_code"] == 0 and rpc.attributes["dspy_grpc.request_id"]

    lm = nodes["chat mock"][0]
    assert lm.kind is SpanKind.CLIENT
    assert lm.attributes["gen_ai.operation.name"] == "chat"
    assert lm.attributes["gen_ai.system"] == "openai"
    assert lm.attributes["gen_ai.request.model"] == "mock"
    assert lm.attributes["gen_ai.response.model"] == "mock-model"
    assert lm.attributes["gen_ai.usage.input_tokens"] > 0 and lm.attributes["gen_ai.usage.output_tokens"] > 0
    assert tuple(lm.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert "gen_ai.input.messages" not in lm.attributes and "gen_ai.output.messages" not in lm.attributes

    http = nodes["POST"][0]
    assert http.kind is SpanKind.CLIENT
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["url.full"] == f"{mock_lm.base_url}/chat/completions"
    assert http.attributes["server.address"] == "127.0.0.1"


async def test_prompts_and_completions_are_recorded_only_when_the_operator_opts_in(server_factory, mock_lm):
    running, exporter = await traced_server(server_factory, telemetry_capture_content=True)
    mock_lm.enqueue(ANSWER)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)
    lm = tree(exporter.get_finished_spans())["chat mock"][0]
    assert "Capital of France?" in lm.attributes["gen_ai.input.messages"]
    assert "Paris" in lm.attributes["gen_ai.output.messages"]


async def test_failures_mark_spans_with_the_error_reason_and_every_attempt_is_a_span(server_factory, mock_lm):
    running, exporter = await traced_server(server_factory)
    mock_lm.enqueue(MockReply.error(503), MockReply.error(503))  # the model allows one retry
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    spans = exporter.get_finished_spans()
    attempts = [span for span in spans if span.name == "POST"]
    assert [span.attributes["http.response.status_code"] for span in attempts] == [503, 503]
    lm = tree(spans)["chat mock"][0]
    assert lm.status.status_code is StatusCode.ERROR and lm.attributes["error.type"] == "PROVIDER_UNAVAILABLE"
    rpc = tree(spans)["dspy_grpc.v1.InferenceService/Predict"][0]
    assert rpc.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert rpc.attributes["error.type"] == "PROVIDER_UNAVAILABLE"  # the reason the caller gets in ErrorInfo
    assert rpc.status.description == "PROVIDER_UNAVAILABLE"
    assert error_details(raised.value)["reason"] == "PROVIDER_UNAVAILABLE"
    assert not any(event.name == "exception" for span in spans for event in span.events)


async def test_the_callers_trace_context_is_continued(server_factory, mock_lm):
    running, exporter = await traced_server(server_factory)
    mock_lm.enqueue(ANSWER)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(
            predict_request(PREDICT), metadata=metadata, timeout=10)
    rpc = tree(exporter.get_finished_spans())["dspy_grpc.v1.InferenceService/Predict"][0]
    assert format(rpc.context.trace_id, "032x") == trace_id
    assert format(rpc.parent.span_id, "016x") == "00f067aa0ba902b7"


async def test_nothing_is_recorded_or_exported_by_default(server):
    setup = server.app.telemetry_setup
    assert setup.tracer_provider is None and setup.meter_provider is None
    assert server.ops.prometheus_port is None and server.ops.dashboard_port is None


async def test_prometheus_endpoint_serves_request_lm_and_token_metrics(server_factory, mock_lm):
    running = await server_factory(prometheus_enabled=True, prometheus_port=0)
    mock_lm.enqueue(ANSWER)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{running.ops.prometheus_port}/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'rpc_server_call_duration_seconds_bucket{' in text and 'rpc_method="Predict"' in text
    assert 'gen_ai_client_operation_duration_seconds_count{' in text
    assert 'dspy_grpc_program_duration_seconds_count{dspy_grpc_program="inline"} 1.0' in text
    token_lines = [line for line in text.splitlines() if line.startswith("dspy_grpc_lm_tokens_total{")]
    assert any('gen_ai_token_type="input"' in line and 'gen_ai_request_model="mock"' in line for line in token_lines)
    assert any('gen_ai_token_type="output"' in line for line in token_lines)
    assert "rpc_server_active_requests" in text


async def test_each_tool_call_of_an_agent_is_a_span_and_a_failed_tool_marks_its_span(server_factory, mock_lm):
    from tests.integration.test_modules import chat, predictor

    running, exporter = await traced_server(server_factory)
    mock_lm.enqueue(
        chat(next_thought="Add.", next_tool_name="calculator", next_tool_args={"expression": "2+3"}),
        chat(next_thought="Divide.", next_tool_name="calculator", next_tool_args={"expression": "1/0"}),
        chat(next_thought="Done.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="It is 5.", answer="5"),
    )
    request = {"module": {"react": {"predictor": predictor("question -> answer"),
                                    "tools": [{"name": "calculator", "builtin": "calculator"}]}},
               "inputs": {"question": "2+3, then 1/0?"}, "lm": {"model": "mock"}}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(request), timeout=10)

    tools = [span for span in exporter.get_finished_spans() if span.name.startswith("execute_tool ")]
    assert [span.name for span in tools] == ["execute_tool calculator"] * 2 + ["execute_tool finish"]
    by_id = {span.context.span_id: span for span in exporter.get_finished_spans()}
    assert {by_id[span.parent.span_id].name for span in tools} == {"dspy.program inline"}
    assert tools[0].attributes["gen_ai.operation.name"] == "execute_tool"
    assert tools[0].attributes["gen_ai.tool.name"] == "calculator" and tools[0].attributes["gen_ai.tool.call.id"]
    assert tools[0].status.status_code is StatusCode.UNSET
    assert tools[1].status.status_code is StatusCode.ERROR and tools[1].attributes["error.type"] == "TOOL_ERROR"
    assert not any("1/0" in str(value) for span in tools for value in span.attributes.values())


async def test_an_evaluation_job_is_one_span_with_a_span_per_example_holding_its_program_run(server_factory, mock_lm):
    from tests.integration.job_helpers import (
        create_dataset,
        create_evaluation,
        create_program,
        exact_match,
        wait_evaluation,
    )
    from tests.mocklm import arithmetic

    arithmetic.install(mock_lm)
    running, exporter = await traced_server(server_factory)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_dataset(channel, "traced-eval", arithmetic.examples(3))
        await create_program(channel, "traced-adder", demos=arithmetic.examples(1, start=100))
        created = await create_evaluation(channel, {"program": "programs/traced-adder", "dataset": "datasets/traced-eval",
                                                    "metric": exact_match(), "num_threads": 2})
        done = await wait_evaluation(channel, created.name)
    assert done.score == 100.0

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    (job,) = [span for span in spans if span.name == "dspy.job evaluation"]
    assert job.attributes["dspy_grpc.job"] == created.name.rsplit("/", 1)[1]
    examples = [span for span in spans if span.name == "dspy.evaluate.example"]
    assert sorted(span.attributes["dspy_grpc.example.index"] for span in examples) == [0, 1, 2]
    assert all(span.parent.span_id == job.context.span_id for span in examples)
    assert all(span.attributes["dspy_grpc.example.score"] == 1.0 for span in examples)
    runs = [span for span in spans if span.name == "dspy.predictor self"]
    assert len(runs) == 3 and {by_id[span.parent.span_id].name for span in runs} == {"dspy.evaluate.example"}
    # The job continues the trace of the call that created it.
    assert by_id[job.parent.span_id].name == "dspy_grpc.v1.EvaluationService/CreateEvaluation"


async def test_breaker_gauge_reports_every_deployment_at_every_scrape(server_factory, mock_lm):
    fragile = mock_model_config(mock_lm.base_url, breaker_failures=1, breaker_reset_s=600, max_retries=0)
    running = await server_factory(models=(fragile, BUILTIN_DUMMY), prometheus_enabled=True, prometheus_port=0)

    async def scrape() -> dict[str, float]:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{running.ops.prometheus_port}/metrics")).text
        return {line.split('dspy_grpc_provider="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line.startswith("dspy_grpc_lm_breaker_state{")}

    assert await scrape() == {"mock/0": 0.0, "dummy/0": 0.0}  # healthy, before any call: closed
    mock_lm.enqueue(MockReply.error(503))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)
    assert await scrape() == {"mock/0": 2.0, "dummy/0": 0.0}
    assert await scrape() == {"mock/0": 2.0, "dummy/0": 0.0}  # still reported, with no new change


async def test_a_parse_fallback_is_a_second_adapter_span_and_the_failed_parse_says_why(server_factory, mock_lm):
    running, exporter = await traced_server(server_factory)
    mock_lm.enqueue("no field markers at all", '{"answer": "Paris"}')
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(predict_request(PREDICT), timeout=10)
    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    adapters = sorted((s for s in spans if s.name.startswith("dspy.adapter ")), key=lambda s: s.start_time)
    assert [s.name for s in adapters] == ["dspy.adapter chat", "dspy.adapter json"]
    assert {by_id[s.parent.span_id].name for s in adapters} == {"dspy.predictor self"}
    chat, json_ = adapters
    assert chat.attributes["error.type"] == "PARSE_ERROR" and json_.status.status_code is not StatusCode.ERROR
    children = {adapter.name: sorted((s for s in spans if s.parent and s.parent.span_id == adapter.context.span_id),
                                     key=lambda s: s.start_time) for adapter in adapters}
    assert [s.name for s in children["dspy.adapter chat"]] == ["dspy.adapter.format", "chat mock", "dspy.adapter.parse"]
    assert children["dspy.adapter chat"][2].attributes["error.type"] == "PARSE_ERROR"
    assert [s.name for s in children["dspy.adapter json"]] == ["dspy.adapter.format", "chat mock", "dspy.adapter.parse"]
