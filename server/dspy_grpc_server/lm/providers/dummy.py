"""The built-in offline model as a provider: DSPy prompts get deterministic placeholder answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..config import DeploymentConfig
from ..deadline import Deadline
from ..dummy import DummyLM, DummySpec
from ..types import LMRequest, LMResponse, LMStreamChunk
from .base import Provider


class DummyProvider(Provider):
    """Answers like ``DummySpec(auto=True)``: no network, no key."""

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment, environ={})
        self._lm = DummyLM(DummySpec(auto=True), name=deployment.name, model=deployment.model or "dummy")

    async def complete(self, request: LMRequest, deadline: Deadline) -> LMResponse:
        return await self._lm.complete(request, timeout=deadline.remaining())

    async def stream(self, request: LMRequest, deadline: Deadline) -> AsyncIterator[LMStreamChunk]:
        async for chunk in self._lm.stream_chunks(request, timeout=deadline.remaining()):
            yield chunk
