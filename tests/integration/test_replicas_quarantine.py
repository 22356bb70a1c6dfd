"""Quarantine across replicas: failures count together, a quarantine and a clear hold everywhere."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_admin_pb2, program_admin_pb2_grpc
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.integration.test_modules import predictor
from tests.integration.test_program_runtime import create
from tests.integration.test_replicas_programs import eventually
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def reason(channel, question: str) -> str:
    request = json_format.ParseDict({"program": "programs/fragile", "inputs": {"question": question}},
                                    inference_pb2.PredictRequest())
    try:
        await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=10)
        return "OK"
    except grpc.aio.AioRpcError as error:
        return error_details(error)["reason"]


async def test_quarantine_and_clear_hold_on_every_replica(server_factory, mock_lm, postgres_url):
    # An hour of polling: what the second replica sees comes from the store and the change feed.
    shared = dict(database_url=postgres_url, quarantine_failures=3, active_revision_refresh_s=3600.0,
                  cache_enabled=False)  # every call reaches the mock: no cached bad answer after the clear
    first, second = await server_factory(**shared), await server_factory(**shared)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a, \
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b:
        await create(a, "fragile", {"predict": {"predictor": predictor("question -> answer", lm={"model": "mock"})}})
        assert await reason(b, "warm") == "OK"  # b has loaded the program and its (empty) quarantine
        mock_lm.default_reply = MockReply(text="I will not use your format.")
        # Failures on both replicas count into one window: a, b, a.
        assert [await reason(a, "poison"), await reason(b, "poison"), await reason(a, "poison")] == [
            "PARSE_ERROR"] * 3
        # The replica that recorded the third failure refuses at once; the other once the change feed
        # (PostgreSQL NOTIFY, asynchronous) has reached it: until then it may still send the input on.
        sent = len(mock_lm.completion_requests)
        assert await reason(a, "poison") == "QUARANTINED"
        assert len(mock_lm.completion_requests) == sent
        assert await eventually(lambda: reason(b, "poison"), "QUARANTINED") == "QUARANTINED"
        sent = len(mock_lm.completion_requests)
        assert [await reason(b, "poison"), await reason(a, "poison")] == ["QUARANTINED"] * 2
        assert len(mock_lm.completion_requests) == sent

        mock_lm.default_reply = None
        admin = program_admin_pb2_grpc.ProgramAdminServiceStub(a)
        cleared = await admin.ClearQuarantinedInputs(
            program_admin_pb2.ClearQuarantinedInputsRequest(name="programs/fragile"))
        assert cleared.cleared_count == 1
        assert await eventually(lambda: reason(b, "poison"), "OK") == "OK"
        assert await reason(a, "poison") == "OK"
