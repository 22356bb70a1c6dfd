"""The LM a model alias resolves to: cache, coalescing, budgets and usage around a :class:`Router`.

For each call: the request's options are merged over the model's defaults; with cache policy
``use`` a cached answer is returned at once (``cache_hit``, zero usage) and an identical request
already in flight is joined instead of sent again (the joiners' answer also counts as a cache hit);
otherwise the budgets that apply to the caller are checked, the router sends the request to a
deployment, the usage is recorded, and the answer is stored (policies ``use`` and ``refresh``).
Streams are cached like whole completions but never joined.

An embedding model (``kind = "embedding"``) answers :meth:`GatewayLM.embed` the same way: cached
per list of texts (under the model's cache policy), budgets checked, usage recorded; it refuses chat,
as chat models refuse to embed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from ..core import telemetry
from ..core.errors import DeadlineExceeded
from ..core.money import usd_to_micros
from .attribution import Attribution, current_attribution
from .cache import ResponseCache, cache_key, embeddings_cache_key
from .config import ModelConfig
from .deadline import Deadline
from .providers.base import estimated_usage
from .router import Router
from .types import LM, EmbeddingResponse, LMOptions, LMRequest, LMResponse, LMStreamChunk, Usage, wrong_model_kind
from .budgets import HOLD_MARGIN_S, BudgetBook, Hold
from .usage import UsageRecorder

#: The time budget of a call whose caller set no deadline (each attempt is still bounded by the
#: deployment's own ``timeout_s``).
NO_DEADLINE_S = 3600.0
#: Longest a replica's claim on an upstream call lasts (seconds; a longer call may be duplicated).
MAX_CLAIM_S = 300.0
#: How often a replica waiting for another's identical call looks for its answer (seconds).
CLAIM_POLL_S = 0.02


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0

    @property
    def hit_ratio(self) -> float:
        """Share of cache-eligible calls answered without an upstream call of their own."""

        served = self.hits + self.coalesced
        total = served + self.misses
        return served / total if total else 0.0


class _Shared:
    """One upstream call awaited by every identical request that arrived while it ran."""

    def __init__(self, task: asyncio.Task[LMResponse]) -> None:
        self.task = task
        self.waiters = 0

    async def wait(self, deadline: Deadline) -> LMResponse:
        self.waiters += 1
        try:
            async with asyncio.timeout(deadline.remaining()):
                return await asyncio.shield(self.task)
        except TimeoutError:
            if self.task.done() and not self.task.cancelled() and self.task.exception() is None:
                return self.task.result()
            raise DeadlineExceeded("the request's deadline passed while waiting for an identical call",
                                   reason="DEADLINE_EXCEEDED") from None
        finally:
            self.waiters -= 1
            if self.waiters == 0 and not self.task.done():
                self.task.cancel()  # nobody wants the answer any more


class GatewayLM(LM):
    def __init__(self, config: ModelConfig, router: Router, *, cache: ResponseCache | None,
                 usage: UsageRecorder, budgets: BudgetBook | None = None) -> None:
        self.name = config.alias
        self.config = config
        self.supports_json_schema = config.supports_json_schema
        self.defaults = config.default_options()
        self.router = router
        self.cache_stats = CacheStats()
        self._cache = cache
        self.recalls = cache is not None
        self._usage = usage
        self._budgets = budgets
        #: What the last call cost (micro-dollars): the estimate a budget reserves for the next one.
        self._estimate_micros = 0
        self._inflight: dict[str, _Shared] = {}
        #: The provider named in telemetry (that of the first deployment).
        self._system = config.deployments[0].provider

    def __repr__(self) -> str:
        return f"GatewayLM(name={self.name!r}, deployments={[w.name for w in self.router.workers]})"

    def _prepare(self, request: LMRequest, timeout: float | None) -> tuple[LMRequest, Deadline, str | None]:
        if self.config.kind != "chat":
            raise wrong_model_kind(self.name, wanted="chat", field_name="lm.model")
        options = request.options.merged_over(self.defaults)
        if options is not request.options:
            request = replace(request, options=options)
        deadline = Deadline.within(timeout if timeout is not None else NO_DEADLINE_S)
        use_cache = self._cache is not None and request.options.cache_policy != "bypass"
        return request, deadline, cache_key(self.name, request) if use_cache else None

    def _record_hit(self, who: Attribution) -> None:
        telemetry.record_cache(hit=True, model=self.name)
        self._usage.record(self.name, Usage(), 0.0, cache_hit=True, who=who)

    def _record_cache_answer(self, who: Attribution) -> None:
        """An answer read from the cache (not one shared with a call in flight: see ``coalesced``)."""

        self.cache_stats.hits += 1
        self._record_hit(who)

    def _record_miss(self) -> None:
        self.cache_stats.misses += 1
        telemetry.record_cache(hit=False, model=self.name)

    def _record_call(self, usage: Usage, cost_usd: float, who: Attribution) -> None:
        self._usage.record(self.name, usage, cost_usd, cache_hit=False, who=who)
        telemetry.record_cost(self.name, cost_usd)

    async def _reserve(self, who: Attribution, deadline: Deadline) -> Hold | None:
        """Reserve the call's estimated cost in every budget that applies (refused when one is spent)."""

        if self._budgets is None:
            return None
        return await self._budgets.reserve(who, estimate_micros=self._estimate_micros,
                                           hold_s=deadline.remaining() + HOLD_MARGIN_S)

    async def _settle(self, hold: Hold | None, cost_usd: float) -> None:
        cost = usd_to_micros(cost_usd)
        if cost:
            self._estimate_micros = cost
        if hold is not None:
            await asyncio.shield(hold.settle(cost))

    # ------------------------------------------------------------------ whole completions

    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        request, deadline, key = self._prepare(request, timeout)
        options = request.options
        with telemetry.lm_call(system=self._system, model=self.name, temperature=options.temperature,
                               max_tokens=options.max_tokens) as call:
            call.record_prompt(request.messages)
            response = await self._complete(request, deadline, key)
            _record_answer(call, response)
        return response

    async def recall(self, key: str, options: LMOptions) -> LMResponse | None:
        """The answer cached under ``key`` -- the ``cache_key`` of an earlier cache hit of this LM,
        for a request with ``options`` -- recorded exactly as :meth:`complete` records a cache hit
        (statistics, usage ledger, telemetry); None when the cache no longer holds it (then send
        the request with :meth:`complete`). Lets a caller that remembers which request it would
        send skip building it (``modules.predictor``)."""

        if self._cache is None:
            return None
        cached = await self._cache.get(key)
        if cached is None:
            return None
        options = options.merged_over(self.defaults)
        with telemetry.lm_call(system=self._system, model=self.name, temperature=options.temperature,
                               max_tokens=options.max_tokens) as call:
            self._record_cache_answer(current_attribution())
            _record_answer(call, cached)
        return cached

    async def _complete(self, request: LMRequest, deadline: Deadline, key: str | None) -> LMResponse:
        who = current_attribution()
        if key is None or request.options.cache_policy != "use":
            if key is not None:
                self._record_miss()
            return await self._fetch(request, deadline, key, who)
        assert self._cache is not None
        cached = await self._cache.get(key)
        if cached is not None:
            self._record_cache_answer(who)
            return cached
        shared = self._inflight.get(key)
        if shared is not None:
            self.cache_stats.coalesced += 1
            response = await shared.wait(deadline)
            self._record_hit(who)
            return replace(response, usage=Usage(), cost_usd=0.0, cache_hit=True, deployment="")
        self._record_miss()
        shared = _Shared(asyncio.ensure_future(self._fetch_once(request, deadline, key, who)))
        self._inflight[key] = shared
        shared.task.add_done_callback(lambda _: self._forget(key, shared))
        return await shared.wait(deadline)

    def _forget(self, key: str, shared: _Shared) -> None:
        if self._inflight.get(key) is shared:
            del self._inflight[key]

    async def _fetch_once(self, request: LMRequest, deadline: Deadline, key: str, who: Attribution) -> LMResponse:
        """:meth:`_fetch`, unless another replica is making the identical call (shared cache): then
        its answer is awaited in the cache."""

        cache = self._cache
        assert cache is not None
        if not cache.shared:
            return await self._fetch(request, deadline, key, who)
        while True:
            token = await cache.claim(key, min(deadline.remaining(), MAX_CLAIM_S))
            if token is not None:
                try:
                    cached = await cache.get(key)  # answered between our miss and our claim
                    if cached is not None:
                        return self._answered_elsewhere(cached, who)
                    return await self._fetch(request, deadline, key, who)
                finally:
                    await asyncio.shield(cache.unclaim(key, token))
            while await cache.claimed(key):
                if deadline.remaining() <= CLAIM_POLL_S:
                    raise DeadlineExceeded("the request's deadline passed while another replica made the "
                                           "identical call", reason="DEADLINE_EXCEEDED")
                await asyncio.sleep(CLAIM_POLL_S)
                cached = await cache.get(key)
                if cached is not None:
                    return self._answered_elsewhere(cached, who)
            cached = await cache.get(key)
            if cached is not None:
                return self._answered_elsewhere(cached, who)
            # The other replica gave up without an answer: claim the call ourselves.

    def _answered_elsewhere(self, cached: LMResponse, who: Attribution) -> LMResponse:
        self.cache_stats.coalesced += 1
        self._usage.record(self.name, Usage(), 0.0, cache_hit=True, who=who)
        return cached

    async def _fetch(self, request: LMRequest, deadline: Deadline, key: str | None, who: Attribution) -> LMResponse:
        hold = await self._reserve(who, deadline)
        cost = 0.0
        try:
            response = await self.router.complete(request, deadline)
            cost = response.cost_usd
        finally:
            await self._settle(hold, cost)
        self._record_call(response.usage, response.cost_usd, who)
        if key is not None and self._cache is not None:
            await self._cache.set(key, response)
        return response

    # ------------------------------------------------------------------ embeddings

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> EmbeddingResponse:
        if self.config.kind != "embedding":
            raise wrong_model_kind(self.name, wanted="embedding", field_name="embedding_model")
        texts = tuple(texts)
        deadline = Deadline.within(timeout if timeout is not None else NO_DEADLINE_S)
        policy = self.defaults.cache_policy
        key = embeddings_cache_key(self.name, texts) if self._cache is not None and policy != "bypass" else None
        who = current_attribution()
        with telemetry.lm_call(system=self._system, model=self.name, operation="embeddings") as call:
            if key is not None and policy == "use":
                assert self._cache is not None
                cached = await self._cache.get_embeddings(key)
                if cached is not None:
                    self._record_cache_answer(who)
                    call.record_response(model=cached.model, cache_hit=True)
                    return cached
            if key is not None:
                self._record_miss()
            hold = await self._reserve(who, deadline)
            cost = 0.0
            try:
                response = await self.router.embed(texts, deadline)
                cost = response.cost_usd
            finally:
                await self._settle(hold, cost)
            self._record_call(response.usage, response.cost_usd, who)
            if key is not None and self._cache is not None:
                await self._cache.set_embeddings(key, response)
            call.record_response(model=response.model, input_tokens=response.usage.prompt_tokens)
        return response

    # ------------------------------------------------------------------ streams

    async def stream_chunks(self, request: LMRequest, *, timeout: float | None = None) -> AsyncIterator[LMStreamChunk]:
        request, deadline, key = self._prepare(request, timeout)
        who = current_attribution()
        if key is not None:
            assert self._cache is not None
            cached = await self._cache.get(key) if request.options.cache_policy == "use" else None
            if cached is not None:
                self._record_cache_answer(who)
                yield LMStreamChunk(
                    text=cached.text, finish_reason=cached.finish_reasons[0] if cached.finish_reasons else "stop",
                    usage=Usage(), model=cached.model, cache_hit=True,
                    tool_calls=cached.tool_calls[0] if cached.tool_calls else (),
                )
                return
            self._record_miss()
        hold = await self._reserve(who, deadline)
        cost = 0.0
        texts: list[str] = []
        finished = False
        try:
            async for chunk in self.router.stream(request, deadline):
                texts.append(chunk.text)
                if chunk.finish_reason is not None:
                    finished = True
                    usage = chunk.usage or Usage()
                    cost = chunk.cost_usd
                    self._record_call(usage, chunk.cost_usd, who)
                    if key is not None and self._cache is not None and request.options.n == 1:
                        await self._cache.set(key, LMResponse(
                            texts=("".join(texts),), usage=usage, model=chunk.model,
                            finish_reasons=(chunk.finish_reason,),
                            tool_calls=(chunk.tool_calls,) if chunk.tool_calls else (),
                        ))
                yield chunk
        finally:
            await self._settle(hold, cost)
            if not finished and any(texts):
                # Cut short (client cancel or a broken stream): the tokens were still spent.
                self._record_call(estimated_usage(request, ["".join(texts)]), 0.0, who)


def _record_answer(call: telemetry.LMCall, response: LMResponse) -> None:
    call.record_response(model=response.model, input_tokens=response.usage.prompt_tokens,
                         output_tokens=response.usage.completion_tokens, finish_reasons=response.finish_reasons,
                         response_id=response.response_id, cache_hit=response.cache_hit, texts=response.texts)
