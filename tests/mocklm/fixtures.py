"""pytest fixtures for the mock LM server (registered by tests/conftest.py).

- ``mock_lm_server``: one server per test session (started on the session event loop);
- ``mock_lm``: that server, reset to an empty script before each test — use this one in tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import MockLMServer


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mock_lm_server() -> AsyncIterator[MockLMServer]:
    server = MockLMServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def mock_lm(mock_lm_server: MockLMServer) -> AsyncIterator[MockLMServer]:
    mock_lm_server.reset()
    yield mock_lm_server
    mock_lm_server.reset()
