"""Choosing a deployment for each call: load balancing, then ordered fail-over.

Deployments that can take a call at once (serving, breaker closed, capacity free) come first, in the
model's routing order: ``least-busy`` (fewest calls in flight relative to weight; ties broken at
random) or ``weighted`` (random, proportional to ``weight``). The others follow, soonest available
first; trying one of them either waits for its capacity within the caller's deadline or is refused
at once. When a deployment fails in a way another might not (unreachable, 5xx, rate limited, open
circuit, ...), the next one is tried; after the model's own deployments come those of its
``fallbacks`` models, in the configured order. Streams fail over only before their first chunk.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from ..core.errors import DspyGrpcError, ResourceExhausted, Unavailable
from .deadline import Deadline
from .retry import can_fail_over
from .types import EmbeddingResponse, LMRequest, LMResponse, LMStreamChunk
from .worker import DeploymentWorker

R = TypeVar("R", LMResponse, EmbeddingResponse)


class Router:
    def __init__(self, alias: str, workers: Sequence[DeploymentWorker], routing: str = "least-busy",
                 fallbacks: Sequence[Router] = ()) -> None:
        self.alias = alias
        self.workers = list(workers)
        self.routing = routing
        self.fallbacks = list(fallbacks)

    def _ordered_own(self, estimated_tokens: int) -> list[DeploymentWorker]:
        ready = [w for w in self.workers if w.accepting(estimated_tokens)]
        waiting = sorted((w for w in self.workers if w not in ready), key=lambda w: w.wait_estimate(estimated_tokens))
        if self.routing == "weighted":
            ready = _weighted_shuffle(ready)
        else:
            random.shuffle(ready)
            ready.sort(key=lambda w: w.limiter.in_flight / w.deployment.weight)
        return ready + waiting

    def candidates(self, estimated_tokens: int = 0) -> list[DeploymentWorker]:
        """Every deployment to try, in order: this model's, then each fallback model's."""

        if len(self.workers) == 1 and not self.fallbacks:
            return list(self.workers)  # one way to go: no need to rank it
        ordered = self._ordered_own(estimated_tokens)
        for fallback in self.fallbacks:
            ordered += [w for w in fallback._ordered_own(estimated_tokens) if w not in ordered]
        return ordered

    def _give_up(self, failures: list[DspyGrpcError]) -> DspyGrpcError:
        if len(failures) == 1:
            return failures[0]
        if all(isinstance(f, ResourceExhausted) for f in failures):
            return min(failures, key=lambda f: f.retry_after if f.retry_after is not None else float("inf"))
        summary = "; ".join(f"{f.metadata.get('deployment', '?')}: {f.reason}" for f in failures)
        delays = [f.retry_after for f in failures if f.retry_after is not None]
        return Unavailable(
            f"no deployment of model {self.alias} could answer ({summary})",
            reason="NO_DEPLOYMENT_AVAILABLE",
            metadata={"model": self.alias, "deployments": str(len(failures))},
            retry_after=min(delays) if delays else None,
        )

    async def complete(self, request: LMRequest, deadline: Deadline, estimated_tokens: int = 0) -> LMResponse:
        return await self._failing_over(lambda worker: worker.complete(request, deadline), deadline, estimated_tokens)

    async def embed(self, texts: tuple[str, ...], deadline: Deadline) -> EmbeddingResponse:
        return await self._failing_over(lambda worker: worker.embed(texts, deadline), deadline, 0)

    async def _failing_over(self, call: Callable[[DeploymentWorker], Awaitable[R]], deadline: Deadline,
                            estimated_tokens: int) -> R:
        failures: list[DspyGrpcError] = []
        for worker in self.candidates(estimated_tokens):
            if failures and deadline.expired():
                break
            try:
                return await call(worker)
            except DspyGrpcError as error:
                if not can_fail_over(error):
                    raise
                failures.append(error)
        raise self._give_up(failures)

    async def stream(self, request: LMRequest, deadline: Deadline,
                     estimated_tokens: int = 0) -> AsyncIterator[LMStreamChunk]:
        failures: list[DspyGrpcError] = []
        for worker in self.candidates(estimated_tokens):
            if failures and deadline.expired():
                break
            chunks = worker.stream(request, deadline)
            try:
                try:
                    first = await anext(chunks)
                except DspyGrpcError as error:
                    if not can_fail_over(error):
                        raise
                    failures.append(error)
                    continue
                yield first
                async for chunk in chunks:
                    yield chunk
                return
            finally:
                await chunks.aclose()
        raise self._give_up(failures)


def _weighted_shuffle(workers: list[DeploymentWorker]) -> list[DeploymentWorker]:
    """A random order in which heavier deployments tend to come first (weighted sampling without
    replacement: sort by ``u ** (1 / weight)``, largest first)."""

    return sorted(workers, key=lambda w: random.random() ** (1.0 / w.deployment.weight), reverse=True)
