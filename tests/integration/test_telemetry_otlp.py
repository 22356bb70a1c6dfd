"""Telemetry over OTLP/gRPC to a loopback collector: the spans nest as the README says, a failed
call's spans carry its reason as error.type, and gauges report every deployment at every export."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2_grpc

from tests.integration.otlp_collector import otlp_collector
from tests.integration.test_predict import predict_request
from tests.integration.test_telemetry import ANSWER, NESTING, PREDICT
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")


def attributes(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


async def test_spans_and_gauges_reach_an_otlp_collector(server_factory, mock_lm):
    async with otlp_collector() as collector:
        running = await server_factory(otlp_endpoint=collector.endpoint, metrics_export_interval_s=0.2)
        mock_lm.enqueue(ANSWER)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            await stub.Predict(predict_request(PREDICT), timeout=10)
            mock_lm.enqueue(MockReply.error(503), MockReply.error(503))
            with pytest.raises(grpc.aio.AioRpcError):  # another question: not a cache hit
                await stub.Predict(predict_request({**PREDICT, "inputs": {"question": "Capital of Peru?"}}), timeout=10)
        # Two exports after the calls, each with every deployment's breaker state.
        exports_before = len(collector.metric_exports)
        await collector.wait_for(lambda: len(collector.metric_exports) >= exports_before + 2)
        await running.stop(grace=0)  # flushes the span batch

    spans = collector.spans()
    traces: dict[bytes, list] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    assert len(traces) == 2
    ok, failed = sorted(traces.values(), key=lambda t: any(s.status.code == s.status.STATUS_CODE_ERROR for s in t))
    by_id = {span.span_id: span for span in ok}
    parents = {span.name: by_id[span.parent_span_id].name if span.parent_span_id else None for span in ok}
    assert parents == NESTING

    rpc = next(span for span in failed if span.name == "dspy_grpc.v1.InferenceService/Predict")
    assert attributes(rpc)["error.type"] == "PROVIDER_UNAVAILABLE"
    assert attributes(rpc)["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    lm = next(span for span in failed if span.name == "chat mock")
    assert attributes(lm)["error.type"] == "PROVIDER_UNAVAILABLE"

    deployments = {"mock/0", "dummy/0"}
    with_breakers = [points for points in collector.gauge_points("dspy_grpc.lm.breaker.state") if points]
    assert len(with_breakers) >= 2
    for points in with_breakers:  # every export reports every deployment, healthy ones as 0 (closed)
        states = {attributes(point)["dspy_grpc.provider"]: point.as_int for point in points}
        assert states == dict.fromkeys(deployments, 0)
