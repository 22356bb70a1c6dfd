"""Cost of the telemetry path of one Predict (RPC span, program, predictor, adapter, LM request, metrics,
dashboard activity), without and with spans recorded and metrics collected.

    python -m bench.telemetry
"""

from __future__ import annotations

import time

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dspy_grpc_server.app.activity import Activity
from dspy_grpc_server.app.config import Config
from dspy_grpc_server.app.telemetry import TelemetrySetup
from dspy_grpc_server.core import telemetry


def per_call_us(target: telemetry.Telemetry, calls: int) -> float:
    started = time.perf_counter()
    with telemetry.scope(target):
        for _ in range(calls):
            with telemetry.rpc_call("/dspy_grpc.v1.InferenceService/Predict"):
                with telemetry.program_call("qa", "predict"), telemetry.span("dspy.predictor self"), \
                        telemetry.span("dspy.adapter chat"):
                    with telemetry.span("dspy.adapter.format"):
                        pass
                    with telemetry.lm_call(system="openai", model="m") as call:
                        call.record_response(model="m", input_tokens=100, output_tokens=20, finish_reasons=("stop",))
                        with telemetry.http_call("POST", "http://127.0.0.1:1/v1/chat/completions") as http:
                            http.record_status(200)
                    with telemetry.span("dspy.adapter.parse"):
                        pass
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    default = TelemetrySetup(Config())
    default.telemetry.sinks.append(Activity())
    recorded = TelemetrySetup(Config(prometheus_enabled=True))
    recorded.add_span_exporter(InMemorySpanExporter())
    recorded.telemetry.sinks.append(Activity())
    print(f"telemetry per Predict, default (nothing exported):        {per_call_us(default.telemetry, 20_000):7.1f} µs")
    print(f"telemetry per Predict, 8 spans recorded + metrics on:     {per_call_us(recorded.telemetry, 5_000):7.1f} µs")


if __name__ == "__main__":
    main()
