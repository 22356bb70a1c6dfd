"""The LM call journal: what makes a job resumable without repeating finished LM calls.

Embedding calls (KNNFewShot) are journaled the same way, keyed by the model alias and the texts.

Every LM a job uses is wrapped so that each call is keyed by a hash of the request (model alias,
messages, sampling options, rollout id) and its response is persisted (group-committed with the
other calls finishing at the same moment) before the caller sees it. A job that restarts replays
responses from the journal instead of calling the LM again. Identical requests within one job get
one LM call (like DSPy's cache, which is on by default); concurrent identical requests share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..lm.types import LM, EmbeddingResponse, LMRequest, LMResponse, Usage
from . import timeline

R = TypeVar("R", LMResponse, EmbeddingResponse)

Persist = Callable[[Mapping[str, Mapping[str, Any]]], Awaitable[None]]

#: Options that never reach the provider nor change its answer.
_IGNORED_OPTIONS = {"cache"}


def call_key(alias: str, request: LMRequest) -> str:
    options = {
        key: value for key, value in dataclasses.asdict(request.options).items()
        if key not in _IGNORED_OPTIONS and value not in (None, (), [])
    }
    payload = {"model": alias, "messages": list(request.messages), "options": options}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def response_to_dict(response: LMResponse) -> dict[str, Any]:
    return {
        "texts": list(response.texts),
        "model": response.model,
        "finish_reasons": list(response.finish_reasons),
        "usage": [response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens],
    }


def response_from_dict(data: Mapping[str, Any]) -> LMResponse:
    prompt, completion, total = data.get("usage", [0, 0, 0])
    return LMResponse(
        texts=tuple(data["texts"]), usage=Usage(prompt, completion, total), model=data.get("model", ""),
        finish_reasons=tuple(data.get("finish_reasons", ())),
    )


def embed_key(alias: str, texts: tuple[str, ...]) -> str:
    text = json.dumps({"model": alias, "embed": list(texts)}, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embeddings_to_dict(response: EmbeddingResponse) -> dict[str, Any]:
    usage = response.usage
    return {"vectors": [list(v) for v in response.vectors], "model": response.model,
            "usage": [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens]}


def embeddings_from_dict(data: Mapping[str, Any]) -> EmbeddingResponse:
    prompt, completion, total = data.get("usage", [0, 0, 0])
    return EmbeddingResponse(vectors=tuple(tuple(v) for v in data["vectors"]), usage=Usage(prompt, completion, total),
                             model=data.get("model", ""))


class _CallerCancelled(Exception):
    """What the sharers of an LM call see when the task making it was cancelled."""


class LMJournal:
    """The finished LM calls of one job: ``known`` (loaded at start) plus those finished since."""

    def __init__(
        self, known: Mapping[str, Mapping[str, Any]], persist: Persist,
        on_call: Callable[[bool], None] = lambda replayed: None,
    ) -> None:
        self._known: dict[str, Mapping[str, Any]] = dict(known)
        #: Calls journaled by earlier runs of the job and not yet replayed by this one: each counts as done
        #: from the start (:attr:`replayed_at_start`), so its first replay is not counted a second time.
        self._counted_at_start: set[str] = set(self._known)
        self._start_count = len(self._known)
        self._persist = persist
        self._on_call = on_call
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._batch: dict[str, Mapping[str, Any]] = {}
        self._batch_done: asyncio.Future[None] | None = None
        self._flush_lock = asyncio.Lock()
        #: LM calls really made (not replayed) by this incarnation of the job.
        self.calls_made = 0

    @property
    def replayed_at_start(self) -> int:
        """How many calls earlier runs of the job finished (done before this run made any)."""

        return self._start_count

    def wrap(self, lm: LM, alias: str) -> LM:
        return JournaledLM(lm, alias, self)

    async def complete(self, lm: LM, alias: str, request: LMRequest, timeout: float | None) -> LMResponse:
        return await self._journaled(call_key(alias, request), lambda: lm.complete(request, timeout=timeout),
                                     response_to_dict, response_from_dict)

    async def embed(self, lm: LM, alias: str, texts: tuple[str, ...], timeout: float | None) -> EmbeddingResponse:
        return await self._journaled(embed_key(alias, texts), lambda: lm.embed(texts, timeout=timeout),
                                     embeddings_to_dict, embeddings_from_dict)

    async def _journaled(self, key: str, call: Callable[[], Awaitable[R]], to_dict: Callable[[R], dict[str, Any]],
                         from_dict: Callable[[Mapping[str, Any]], R]) -> R:
        while True:
            known = self._known.get(key)
            if known is not None:
                if key in self._counted_at_start:
                    self._counted_at_start.discard(key)
                else:
                    self._on_call(True)
                return from_dict(known)
            shared = self._inflight.get(key)
            if shared is None:
                break
            try:
                return await asyncio.shield(shared)
            except _CallerCancelled:
                continue  # whoever was making the call was cancelled, not us: make it ourselves
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            started = timeline.now()
            response = await call()
            answered = timeline.now()
            self.calls_made += 1
            record = to_dict(response)
            await self._save(key, record)
            timeline.note_call(started, answered, timeline.now())
            self._known[key] = record
            self._on_call(False)
            future.set_result(response)
            return response
        except BaseException as error:
            if not future.done():
                future.set_exception(_CallerCancelled() if isinstance(error, asyncio.CancelledError) else error)
                future.exception()  # retrieved: sharers see it, no "never retrieved" warning
            raise
        finally:
            self._inflight.pop(key, None)

    async def _save(self, key: str, record: Mapping[str, Any]) -> None:
        if self._batch_done is None:
            self._batch_done = asyncio.get_running_loop().create_future()
            asyncio.ensure_future(self._flush())
        self._batch[key] = record
        await asyncio.shield(self._batch_done)

    async def _flush(self) -> None:
        async with self._flush_lock:
            batch, done = self._batch, self._batch_done
            self._batch, self._batch_done = {}, None
            if done is None:
                return
            try:
                await self._persist(batch)
            except BaseException as error:
                # The callers waiting on the batch get the error (e.g. a job that lost its lease);
                # this task, which nobody awaits, ends quietly unless it was cancelled.
                done.set_exception(error)
                done.exception()
                if isinstance(error, asyncio.CancelledError):
                    raise
                return
            done.set_result(None)


class JournaledLM(LM):
    """An LM whose completions go through a job's :class:`LMJournal`."""

    def __init__(self, inner: LM, alias: str, journal: LMJournal) -> None:
        self._inner = inner
        self._alias = alias
        self._journal = journal
        self.name = inner.name
        self.supports_json_schema = inner.supports_json_schema

    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        return await self._journal.complete(self._inner, self._alias, request, timeout)

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> EmbeddingResponse:
        return await self._journal.embed(self._inner, self._alias, tuple(texts), timeout)


class JournaledRegistry:
    """A view of an LM registry whose LMs are journaled (what the job's engine is built on)."""

    def __init__(self, registry: Any, journal: LMJournal) -> None:
        self._registry = registry
        self._journal = journal
        self._wrapped: dict[str, LM] = {}

    def get(self, alias: str) -> LM:
        wrapped = self._wrapped.get(alias)
        if wrapped is None:
            wrapped = self._wrapped[alias] = self._journal.wrap(self._registry.get(alias), alias)
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)
