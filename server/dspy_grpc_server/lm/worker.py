"""One worker per deployment: it owns the HTTP client, circuit breaker, limiter and metrics.

The worker's :meth:`DeploymentWorker.run` is a supervised child: it opens the connection pool,
serves, and on exit cancels the calls it is running and closes the pool. When it dies, the
supervisor starts it again (a fresh connection pool; breaker, limits and metrics carry over) and
callers waiting for it continue on the new incarnation. Every upstream call runs as a task owned by
the worker, so a dying worker never leaves a call behind.

A call (:meth:`complete`, :meth:`stream`, :meth:`embed`) passes the breaker, waits for capacity within the
caller's deadline, then tries the provider, retrying transient failures with exponential backoff
and jitter (honouring ``Retry-After``) while the deadline allows, but never once streamed output
has begun. Each attempt is bounded by the deployment's ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ..core import telemetry
from ..core.errors import DspyGrpcError, ResourceExhausted, Unavailable
from .breaker import CircuitBreaker
from .config import DeploymentConfig
from .deadline import Deadline
from .limiter import Lease, RateLimiter
from .shared_limits import SharedLimits
from .providers import Provider, make_provider
from .providers.http import open_session
from .providers.base import estimate_tokens
from .retry import RetryPolicy, counts_against_breaker, is_retryable
from .types import EmbeddingResponse, LMRequest, LMResponse, LMStreamChunk, Usage, message_text

T = TypeVar("T")
R = TypeVar("R", LMResponse, EmbeddingResponse)


#: How many recent errors a worker remembers for the status report.
RECENT_ERRORS = 10


@dataclass(frozen=True)
class RecentError:
    at: float  # wall-clock seconds since the epoch
    reason: str
    message: str


@dataclass
class WorkerMetrics:
    calls: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    recent_errors: deque[RecentError] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))


class _StreamEnd:
    pass


@dataclass(frozen=True)
class _StreamFailure:
    error: BaseException


class _OwnedCall:
    """A unary provider call running in its caller's task (see ``DeploymentWorker._owned``)."""

    __slots__ = ("task", "stopped", "_left")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        assert task is not None, "provider calls run in tasks"
        self.task = task
        self.stopped = False
        self._left: asyncio.Future[None] | None = None

    def stop(self) -> asyncio.Future[None]:
        """Cancel the call (its task, at the provider call's await); done once it has left."""

        self.stopped = True
        self._left = asyncio.get_running_loop().create_future()
        self.task.cancel()
        return self._left

    def left(self) -> None:
        if self._left is not None and not self._left.done():
            self._left.set_result(None)


class DeploymentWorker:
    def __init__(
        self,
        deployment: DeploymentConfig,
        *,
        environ: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
        shared_limits: SharedLimits | None = None,
    ) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self.breaker = CircuitBreaker(deployment.breaker_failures, deployment.breaker_reset_s)
        self.limiter = RateLimiter(
            rpm=deployment.rpm, tpm=deployment.tpm, max_in_flight=deployment.max_in_flight, name=deployment.name,
            shared=shared_limits,
        )
        self.metrics = WorkerMetrics()
        # The deployment decides how many retries; ``retry_policy`` (if given) only the delays.
        self.retry_policy = replace(retry_policy or RetryPolicy(), max_retries=deployment.max_retries)
        self._environ = environ
        self._provider: Provider | None = None
        self._ready = asyncio.Event()
        #: Stream reading tasks (see :class:`_Pipe`) and unary calls under way (see :meth:`_owned`).
        self._calls: set[asyncio.Task[object]] = set()
        self._owned_calls: set[_OwnedCall] = set()
        #: How many times :meth:`run` has started (1 for a worker that never died).
        self.incarnations = 0

    @property
    def metadata(self) -> dict[str, str]:
        return {"deployment": self.name, "model": self.deployment.model}

    # ------------------------------------------------------------------ the supervised child

    async def run(self) -> None:
        """Serve until cancelled. Started (and restarted) by the supervisor."""

        session = open_session()
        try:
            self._provider = make_provider(self.deployment, session, environ=self._environ)
            self.incarnations += 1
            self._ready.set()
            await asyncio.Future()  # serve until cancelled
        finally:
            self._ready.clear()
            self._provider = None
            calls = list(self._calls)
            for call in calls:
                call.cancel()
            owned = [call.stop() for call in list(self._owned_calls)]
            if calls:
                await asyncio.gather(*calls, return_exceptions=True)
            if owned:
                await asyncio.wait(owned)  # each unary call has left the provider (and the session)
            await session.close()

    @property
    def serving(self) -> bool:
        return self._ready.is_set()

    def accepting(self, estimated_tokens: int = 0) -> bool:
        """Whether a call would start at once (serving, breaker closed, capacity free)."""

        return self.serving and self.breaker.would_allow() and self.limiter.available_now(estimated_tokens)

    def wait_estimate(self, estimated_tokens: int = 0) -> float:
        """Roughly how long until this worker would take a call (for ordering unavailable workers)."""

        return max(self.breaker.retry_after(), self.limiter.wait_time(estimated_tokens))

    async def _serving_provider(self, deadline: Deadline) -> Provider:
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(deadline.remaining()):
                    await self._ready.wait()
            except TimeoutError:
                raise Unavailable(
                    f"deployment {self.name} is restarting", reason="WORKER_UNAVAILABLE",
                    metadata=self.metadata, retry_after=1.0,
                ) from None
        assert self._provider is not None
        return self._provider

    async def _owned(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (a provider call) in the calling task, registered with this worker: if
        the worker stops meanwhile, the call is cancelled and fails with WORKER_UNAVAILABLE, while a
        cancellation of the caller itself passes through. (No task per call: this is every LM call's path.)"""

        call = _OwnedCall(asyncio.current_task())
        self._owned_calls.add(call)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if call.stopped and call.task.uncancel() == 0:
                raise self._worker_died() from None
            raise  # (also) our caller is being cancelled
        finally:
            self._owned_calls.discard(call)
            call.left()

    def _worker_died(self) -> Unavailable:
        return Unavailable(f"deployment {self.name}: the worker stopped during the call",
                           reason="WORKER_UNAVAILABLE", metadata=self.metadata, retry_after=0.1)

    # ------------------------------------------------------------------ bookkeeping

    def _estimate(self, request: LMRequest) -> int:
        return sum(estimate_tokens(message_text(m)) for m in request.messages)

    def _note_error(self, error: DspyGrpcError) -> None:
        self.metrics.failures += 1
        self.metrics.recent_errors.append(RecentError(time.time(), error.reason, error.message))

    def _settle_failure(self, error: DspyGrpcError) -> None:
        if isinstance(error, ResourceExhausted) and error.reason == "PROVIDER_RATE_LIMITED":
            self.limiter.cooldown(error.retry_after if error.retry_after is not None else 1.0)
        before = self.breaker.state
        if counts_against_breaker(error):
            self.breaker.record_failure()
        else:
            self.breaker.release()
        self._note_error(error)
        self._breaker_moved(before)

    def _settle_success(self) -> None:
        before = self.breaker.state
        self.breaker.record_success()
        self.metrics.successes += 1
        self._breaker_moved(before)

    def _breaker_moved(self, before: str) -> None:
        if self.breaker.state != before:
            telemetry.record_breaker_state(self.name, self.breaker.state)

    def _admit(self) -> None:
        if not self.breaker.allow():
            retry_after = self.breaker.retry_after()
            raise Unavailable(
                f"deployment {self.name}: circuit open after {self.breaker.consecutive_failures} consecutive "
                f"failures; next probe in {retry_after:.2g}s",
                reason="CIRCUIT_OPEN", metadata=self.metadata, retry_after=retry_after,
            )

    async def _acquire(self, estimated_tokens: int, deadline: Deadline) -> Lease:
        self._admit()
        try:
            return await self.limiter.acquire(deadline, estimated_tokens)
        except BaseException:
            self.breaker.release()
            raise

    def _priced(self, response: R) -> R:
        usage = response.usage
        cost = self.deployment.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        return replace(response, deployment=self.name, cost_usd=cost)

    async def _retrying(self, attempt: Callable[[int], Awaitable[T]], deadline: Deadline) -> T:
        retry = 0
        while True:
            try:
                return await attempt(retry)
            except DspyGrpcError as error:
                if not is_retryable(error) or retry >= self.retry_policy.max_retries:
                    raise
                if self.breaker.state != "closed":
                    raise  # the breaker opened: let the router try elsewhere
                retry += 1
                delay = self.retry_policy.delay_before_retry(retry, error)
                if delay >= deadline.remaining():
                    raise
                self.metrics.retries += 1
                await asyncio.sleep(delay)

    # ------------------------------------------------------------------ calls

    async def complete(self, request: LMRequest, deadline: Deadline) -> LMResponse:
        """One completion on this deployment (with retries); see the module documentation."""

        return await self._unary(self._estimate(request), deadline,
                                 lambda provider, within: provider.complete(request, within))

    async def embed(self, texts: tuple[str, ...], deadline: Deadline) -> EmbeddingResponse:
        """Embeddings of ``texts`` on this deployment, with the same breaker, limits and retries as
        a completion (the texts count as prompt tokens)."""

        return await self._unary(sum(estimate_tokens(text) for text in texts), deadline,
                                 lambda provider, within: provider.embed(texts, within))

    async def _unary(self, estimated_tokens: int, deadline: Deadline,
                     call: Callable[[Provider, Deadline], Awaitable[R]]) -> R:
        async def attempt(_: int) -> R:
            lease = await self._acquire(estimated_tokens, deadline)
            self.metrics.calls += 1
            attempt_deadline = deadline.capped(self.deployment.timeout_s)
            try:
                provider = await self._serving_provider(attempt_deadline)
                response = await self._owned(call(provider, attempt_deadline))
            except DspyGrpcError as error:
                lease.release()
                self._settle_failure(error)
                raise
            except BaseException:
                lease.release()
                self.breaker.release()
                raise
            lease.release(response.usage.total_tokens)
            self._settle_success()
            return self._priced(response)

        return await self._retrying(attempt, deadline)

    async def stream(self, request: LMRequest, deadline: Deadline) -> AsyncIterator[LMStreamChunk]:
        """The completion as chunks. Failures before the first chunk are retried like
        :meth:`complete`; afterwards they end the stream with the error."""

        async def open_stream(_: int) -> tuple[_Pipe, LMStreamChunk, Lease]:
            lease = await self._acquire(self._estimate(request), deadline)
            self.metrics.calls += 1
            attempt_deadline = deadline.capped(self.deployment.timeout_s)
            pipe: _Pipe | None = None
            try:
                provider = await self._serving_provider(attempt_deadline)
                pipe = _Pipe(provider.stream(request, attempt_deadline), self._calls, self._worker_died)
                first = await pipe.next()
            except BaseException as error:
                lease.release()
                if pipe is not None:
                    pipe.close()
                if isinstance(error, DspyGrpcError):
                    self._settle_failure(error)
                else:
                    self.breaker.release()
                raise
            return pipe, first, lease

        pipe, chunk, lease = await self._retrying(open_stream, deadline)
        settled = False
        try:
            while chunk.finish_reason is None:
                yield chunk
                chunk = await pipe.next()
            usage = chunk.usage or Usage()
            lease.release(usage.total_tokens)
            self._settle_success()
            settled = True
            yield replace(chunk, deployment=self.name,
                          cost_usd=self.deployment.cost_usd(usage.prompt_tokens, usage.completion_tokens))
        except DspyGrpcError as error:
            if not settled:
                settled = True
                lease.release()
                self._settle_failure(error)
            raise
        finally:
            if not settled:
                lease.release()
                self.breaker.release()
            pipe.close()


class _Pipe:
    """Reads an upstream chunk stream in a worker-owned task, at most two chunks ahead of the
    caller, so a slow client slows the upstream read (backpressure). Closing the pipe cancels the
    task, which closes the upstream HTTP response."""

    def __init__(self, chunks: AsyncIterator[LMStreamChunk], owner: set[asyncio.Task[object]],
                 worker_died: Callable[[], DspyGrpcError]) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._credits = asyncio.Semaphore(2)
        self._chunks = chunks
        self._worker_died = worker_died
        self._closed = False
        self._task = asyncio.ensure_future(self._produce())
        owner.add(self._task)
        self._task.add_done_callback(owner.discard)
        self._task.add_done_callback(self._on_done)

    async def _produce(self) -> None:
        try:
            async for chunk in self._chunks:
                await self._credits.acquire()
                self._queue.put_nowait(chunk)
            self._queue.put_nowait(_StreamEnd())
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # handed to the consumer
            self._queue.put_nowait(_StreamFailure(error))
        finally:
            await self._chunks.aclose()  # type: ignore[attr-defined]

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() and not self._closed:
            self._queue.put_nowait(_StreamFailure(self._worker_died()))

    async def next(self) -> LMStreamChunk:
        item = await self._queue.get()
        if isinstance(item, LMStreamChunk):
            self._credits.release()
            return item
        if isinstance(item, _StreamFailure):
            raise item.error
        raise Unavailable("the provider stream ended without a final chunk", reason="PROVIDER_UNAVAILABLE")

    def close(self) -> None:
        self._closed = True
        self._task.cancel()
