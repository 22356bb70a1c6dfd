"""A serving process runs on uvloop's event loop (a declared dependency on this platform)."""

from __future__ import annotations

import asyncio


from dspy_grpc_server.app.event_loop import run_serving


def test_serving_runs_on_uvloop_and_returns_the_result() -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert run_serving(main()).startswith("uvloop")
