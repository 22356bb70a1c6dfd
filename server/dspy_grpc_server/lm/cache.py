"""The response cache (aiocache): bounded in-memory by default, Redis when a URL is configured.

Keys are the sha256 of the normalized request: model alias, messages and every option that changes
the answer (sampling options, ``n``, ``response_format``, tools, ``rollout_id``). Deployments, base
URLs and keys are never part of it, so the deployments of one alias share entries. A cache that
fails (Redis down) is treated as a miss and logged; it never fails a call. With Redis, replicas claim
a missing key before calling upstream (:meth:`ResponseCache.claim`), so identical concurrent misses on
different replicas make one upstream call: the others wait for its answer in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from .config import CacheConfig
from .types import EmbeddingResponse, LMRequest, LMResponse, ToolCall, Usage

log = logging.getLogger("dspy_grpc_server.lm.cache")

KEY_VERSION = "v1"
REDIS_NAMESPACE = "dspy-grpc:lm:"
#: Where replicas claim an upstream call, so that identical concurrent misses make one.
CLAIM_PREFIX = "dspy-grpc:lm-claim:"
# Delete the claim only if it is still ours: KEYS = claim; ARGV = token.
_UNCLAIM = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
#: A cache operation slower than this counts as a miss (seconds).
OPERATION_TIMEOUT_S = 1.0


def cache_key(alias: str, request: LMRequest) -> str:
    """The cache key of ``request`` sent to ``alias`` (options already merged with the defaults)."""

    options = request.options
    normalized = {
        "version": KEY_VERSION,
        "model": alias,
        "messages": [dict(m) for m in request.messages],
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "top_p": options.top_p,
        "stop": list(options.stop),
        "seed": options.seed,
        "n": options.n,
        "response_format": options.response_format,
        "tools": [dict(t) for t in options.tools],
        "tool_choice": options.tool_choice,
        "rollout_id": options.rollout_id,
    }
    encoded = json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def embeddings_cache_key(alias: str, texts: tuple[str, ...]) -> str:
    """The cache key of embedding ``texts`` with ``alias`` (never equal to a chat request's key)."""

    normalized = {"version": KEY_VERSION, "model": alias, "embed": list(texts)}
    encoded = json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def response_to_entry(response: LMResponse) -> dict[str, Any]:
    return {
        "texts": list(response.texts),
        "finish_reasons": list(response.finish_reasons),
        "model": response.model,
        "response_id": response.response_id,
        "tool_calls": [[[c.id, c.name, c.arguments] for c in calls] for calls in response.tool_calls],
    }


def entry_to_response(entry: Mapping[str, Any], key: str = "") -> LMResponse:
    """A cached answer (read under ``key``): marked ``cache_hit``, with zero usage and cost."""

    return LMResponse(
        texts=tuple(entry["texts"]),
        usage=Usage(),
        model=str(entry.get("model", "")),
        finish_reasons=tuple(entry.get("finish_reasons", ())),
        response_id=str(entry.get("response_id", "")),
        cache_hit=True,
        tool_calls=tuple(tuple(ToolCall(*call) for call in calls) for calls in entry.get("tool_calls", ())),
        cache_key=key,
    )


class BoundedMemoryCache(SimpleMemoryCache):
    """aiocache's memory cache, holding at most ``max_entries`` (least recently used go first)."""

    def __init__(self, max_entries: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_entries = max_entries

    async def _get(self, key, encoding="utf-8", _conn=None):
        return self.lookup(key)

    def lookup(self, key: str) -> Any:
        """The entry under ``key`` (None if absent), marked most recently used: what ``get`` returns,
        without aiocache's per-operation wrappers (about 8 us of a cache hit's path)."""

        value = self._cache.get(key)
        if value is not None:
            self._cache[key] = self._cache.pop(key)  # most recently used goes last
        return value

    async def _set(self, key, value, ttl=None, _cas_token=None, _conn=None):
        self._cache.pop(key, None)
        result = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        while len(self._cache) > self.max_entries:
            await self._delete(next(iter(self._cache)))
        return result

    def __len__(self) -> int:
        return len(self._cache)


def _redis_cache(url: str) -> BaseCache:
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return RedisCache(
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db),
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        namespace=REDIS_NAMESPACE,
        serializer=JsonSerializer(),
        timeout=OPERATION_TIMEOUT_S,
        create_connection_timeout=OPERATION_TIMEOUT_S,
    )


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""

    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@")


class ResponseCache:
    """Get and store :class:`LMResponse` s (and embedding vectors) by key."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.backend = "redis" if config.redis_url else "memory"
        self._store: BaseCache = (
            _redis_cache(config.redis_url) if config.redis_url
            else BoundedMemoryCache(config.max_entries, timeout=None)  # memory operations cannot hang
        )
        self.errors = 0

    @property
    def shared(self) -> bool:
        """Whether replicas share this cache (Redis): identical misses then make one upstream call."""

        return self.backend == "redis"

    async def claim(self, key: str, ttl_s: float) -> str | None:
        """Claim the upstream call for ``key`` among replicas: a token to :meth:`unclaim` when this
        replica should make it (also when Redis fails: a broken cache never blocks a call), None when
        another replica holds the claim."""

        token = secrets.token_hex(8)
        if not self.shared:
            return token
        try:
            taken = await self._store.client.set(CLAIM_PREFIX + key, token, nx=True,
                                                 px=max(1, int(ttl_s * 1000)))
        except Exception as error:  # noqa: BLE001
            self._failed("claim", error)
            return token
        return token if taken else None

    async def claimed(self, key: str) -> bool:
        """Whether another replica still holds the claim on ``key``."""

        if not self.shared:
            return False
        try:
            return bool(await self._store.client.exists(CLAIM_PREFIX + key))
        except Exception as error:  # noqa: BLE001
            self._failed("claim", error)
            return False

    async def unclaim(self, key: str, token: str) -> None:
        if not self.shared:
            return
        try:
            await self._store.client.eval(_UNCLAIM, 1, CLAIM_PREFIX + key, token)
        except Exception as error:  # noqa: BLE001 - the claim expires by itself
            self._failed("unclaim", error)

    def describe(self) -> str:
        if self.backend == "redis":
            return f"redis at {redacted(self.config.redis_url)}"
        return f"memory (at most {self.config.max_entries} entries)"

    async def get(self, key: str) -> LMResponse | None:
        entry = await self._read(key)
        return entry_to_response(entry, key) if entry else None

    async def set(self, key: str, response: LMResponse) -> None:
        await self._write(key, response_to_entry(response))

    async def get_embeddings(self, key: str) -> EmbeddingResponse | None:
        entry = await self._read(key)
        if not entry:
            return None
        return EmbeddingResponse(vectors=tuple(tuple(v) for v in entry["vectors"]), usage=Usage(),
                                 model=str(entry.get("model", "")), cache_hit=True)

    async def set_embeddings(self, key: str, response: EmbeddingResponse) -> None:
        await self._write(key, {"vectors": [list(v) for v in response.vectors], "model": response.model})

    async def _read(self, key: str) -> Any:
        if isinstance(self._store, BoundedMemoryCache):  # memory reads cannot fail
            return self._store.lookup(key)
        try:
            return await self._store.get(key)
        except Exception as error:  # noqa: BLE001 - a broken cache is a miss
            self._failed("read", error)
            return None

    async def _write(self, key: str, entry: Mapping[str, Any]) -> None:
        try:
            await self._store.set(key, entry, ttl=self.config.ttl_s or None)
        except Exception as error:  # noqa: BLE001
            self._failed("write", error)

    def _failed(self, operation: str, error: Exception) -> None:
        self.errors += 1
        log.warning("LM cache %s failed (%s): %s", operation, self.describe(), type(error).__name__)

    async def aclose(self) -> None:
        try:
            if isinstance(self._store, RedisCache):
                await self._store.client.aclose()
            else:
                await self._store.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not fail shutdown
            pass
