"""Deployment limits shared by every replica through Redis (when ``cache.redis_url`` is configured).

The rpm/tpm token buckets and the in-flight count of a deployment live in Redis under
``dspy-grpc:limits:{deployment name}:...`` and change only inside Lua scripts, which Redis runs
atomically, timed by Redis's own clock: all replicas draw from one bucket and one in-flight cap.
Replicas must therefore configure a deployment under the same name with the same limits.

An in-flight slot is a member of a sorted set scored by its expiry (the call's deadline plus a
margin), so a replica that dies holding slots gives them back when they expire. Redis being
unreachable fails the call with ``UNAVAILABLE`` (reason ``REDIS_UNAVAILABLE``): the limits cannot be
honoured without it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from ..core.errors import Unavailable

log = logging.getLogger("dspy_grpc_server.lm.shared_limits")

PREFIX = "dspy-grpc:limits:"
#: Seconds an in-flight slot outlives its call's deadline if its replica never gives it back.
SLOT_MARGIN_S = 30.0
#: Seconds a Redis operation may take before the call fails with UNAVAILABLE.
REDIS_TIMEOUT_S = 2.0

# Token buckets: KEYS = requests bucket, tokens bucket; ARGV = rpm, tpm, tokens. Returns "0" when the
# capacity was taken, else the seconds to wait (as a string: Lua numbers would be truncated).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, per_minute)
  if per_minute <= 0 then return nil end
  local stored = redis.call('HMGET', key, 'level', 'at')
  local lvl = tonumber(stored[1])
  local at = tonumber(stored[2])
  if lvl == nil then return per_minute end
  return math.min(per_minute, lvl + (now - at) * per_minute / 60)
end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local requests = level(KEYS[1], rpm)
local budget = level(KEYS[2], tpm)
local wait = 0
if requests ~= nil and requests < 1 then wait = math.max(wait, (1 - requests) * 60 / rpm) end
if budget ~= nil then
  local need = math.min(math.max(tokens, 1), tpm)
  if budget < need then wait = math.max(wait, (need - budget) * 60 / tpm) end
end
if wait > 0 then return tostring(wait) end
if requests ~= nil then
  redis.call('HSET', KEYS[1], 'level', tostring(requests - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], 120)
end
if budget ~= nil then
  redis.call('HSET', KEYS[2], 'level', tostring(budget - tokens), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[2], 120)
end
return '0'
"""

# Correct the tokens bucket by (actual - estimated) tokens: KEYS = tokens bucket; ARGV = delta.
_CORRECT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'level', -tonumber(ARGV[1]))
end
return 0
"""

# Take an in-flight slot: KEYS = slot set; ARGV = cap, slot id, seconds to hold. 1 if taken, else 0.
_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""


class SharedLimits:
    """One Redis connection pool and the limit scripts, shared by every deployment of a replica."""

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as redis

        self._client: Any = redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                           socket_connect_timeout=REDIS_TIMEOUT_S)
        self._take = self._client.register_script(_TAKE)
        self._correct = self._client.register_script(_CORRECT)
        self._enter = self._client.register_script(_ENTER)
        self._background: set[asyncio.Task[Any]] = set()

    async def _run(self, operation: Any, deployment: str) -> Any:
        try:
            return await operation
        except Exception as error:  # noqa: BLE001 - any Redis failure
            log.warning("shared limits of %s: Redis failed: %s", deployment, type(error).__name__)
            raise Unavailable(
                f"deployment {deployment}: its limits are shared through Redis, which is unreachable "
                f"({type(error).__name__}); retry later",
                reason="REDIS_UNAVAILABLE", metadata={"deployment": deployment}, retry_after=1.0,
            ) from error

    async def take(self, deployment: str, *, rpm: int, tpm: int, tokens: int) -> float:
        """Take one request and ``tokens`` tokens: 0.0 when taken, else the seconds to wait first."""

        keys = [f"{PREFIX}{deployment}:requests", f"{PREFIX}{deployment}:tokens"]
        result = await self._run(self._take(keys=keys, args=[rpm, tpm, tokens]), deployment)
        return float(result)

    async def enter(self, deployment: str, *, cap: int, hold_s: float) -> str | None:
        """Take an in-flight slot (the slot id) or None when ``cap`` calls are in flight everywhere."""

        slot = secrets.token_hex(8)
        taken = await self._run(self._enter(keys=[f"{PREFIX}{deployment}:in-flight"], args=[cap, slot, hold_s]),
                                deployment)
        return slot if int(taken) == 1 else None

    def leave(self, deployment: str, slot: str | None, token_delta: int, *, tpm: int) -> None:
        """Give back a slot and correct the tokens bucket, in the background (the call is done)."""

        async def give_back() -> None:
            try:
                if slot is not None:
                    await self._client.zrem(f"{PREFIX}{deployment}:in-flight", slot)
                if tpm and token_delta:
                    await self._correct(keys=[f"{PREFIX}{deployment}:tokens"], args=[token_delta])
            except Exception as error:  # noqa: BLE001 - the slot expires by itself
                log.warning("giving back a shared slot of %s failed: %s", deployment, type(error).__name__)

        task = asyncio.ensure_future(give_back())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            await self._client.aclose()
        except Exception:  # noqa: BLE001
            pass
