"""Circuit breaker, limiter, cache keys, usage recorder and the [[models]]/[cache]/[[budgets]] config."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from dspy_grpc_server.app.config import load_config
from dspy_grpc_server.core.errors import InvalidArgument, ResourceExhausted
from dspy_grpc_server.lm.attribution import Attribution, attributed, current_attribution
from dspy_grpc_server.lm.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from dspy_grpc_server.lm.cache import BoundedMemoryCache, cache_key
from dspy_grpc_server.lm.config import BudgetConfig
from dspy_grpc_server.lm.deadline import Deadline
from dspy_grpc_server.lm.limiter import RateLimiter
from dspy_grpc_server.lm.types import LMOptions, LMRequest, Usage
from dspy_grpc_server.lm.usage import UsageRecorder

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_after_consecutive_failures_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=clock)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.record_success()  # a success resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow() and breaker.retry_after() == 10
    clock.now += 10
    assert breaker.state == HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_failure()
    assert breaker.state == OPEN and breaker.times_opened == 2
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()


async def test_a_cancelled_probe_frees_the_half_open_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


async def test_rate_limiter_refuses_early_when_capacity_returns_after_the_deadline() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=2, name="d", clock=clock)
    for _ in range(2):
        (await limiter.acquire(Deadline.within(5))).release()
    with pytest.raises(ResourceExhausted) as caught:
        await limiter.acquire(Deadline.within(5))
    assert caught.value.reason == "LM_CAPACITY_EXHAUSTED" and caught.value.retry_after == pytest.approx(30)
    clock.now += 30
    (await limiter.acquire(Deadline.within(5))).release()
    assert limiter.headroom().requests == 0


async def test_token_limit_is_corrected_with_real_usage() -> None:
    clock = Clock()
    limiter = RateLimiter(tpm=600, clock=clock)
    lease = await limiter.acquire(Deadline.within(5), estimated_tokens=100)
    assert limiter.headroom().tokens == 500
    lease.release(actual_tokens=700)  # the call used more than estimated: the bucket goes into debt
    assert limiter.headroom().tokens == -100
    assert limiter.wait_time(1) == pytest.approx(10.1)  # 101 tokens at 10 tokens/s


async def test_in_flight_limit_hands_the_slot_to_the_next_waiter() -> None:
    limiter = RateLimiter(max_in_flight=1)
    first = await limiter.acquire(Deadline.within(5))
    waiter = asyncio.ensure_future(limiter.acquire(Deadline.within(5)))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    first.release()
    second = await waiter
    assert limiter.in_flight == 1
    with pytest.raises(ResourceExhausted):
        await limiter.acquire(Deadline.within(0.05))
    second.release()
    assert limiter.in_flight == 0


async def test_cache_key_covers_what_changes_the_answer_and_nothing_else() -> None:
    request = LMRequest(({"role": "user", "content": "hi"},), LMOptions(temperature=0.0))
    key = cache_key("gpt", request)
    assert key == cache_key("gpt", LMRequest(({"role": "user", "content": "hi"},), LMOptions(temperature=0.0)))
    assert key != cache_key("other", request)
    assert key != cache_key("gpt", request.with_options(rollout_id=1))
    assert key != cache_key("gpt", request.with_options(temperature=0.5))
    assert key == cache_key("gpt", request.with_options(cache="refresh"))  # the policy is not part of it


async def test_memory_cache_is_bounded_least_recently_used_first() -> None:
    cache = BoundedMemoryCache(2)
    await cache.set("a", {"v": 1})
    await cache.set("b", {"v": 2})
    assert await cache.get("a") == {"v": 1}  # "a" is now the most recently used
    await cache.set("c", {"v": 3})
    assert await cache.get("b") is None and await cache.get("a") == {"v": 1} and len(cache) == 2


class FakeLedger:
    def __init__(self, spent: float = 0.0) -> None:
        self.spent = spent
        self.rows: list[dict] = []
        self.fail = False

    async def add(self, rows) -> None:
        if self.fail:
            raise OSError("database down")
        self.rows.append(dict(rows))

    async def spent_usd(self, *, program_id=None, api_key_id=None, since=None) -> float:
        return self.spent


async def test_usage_recorder_flushing() -> None:
    ledger = FakeLedger(spent=0.5)
    recorder = UsageRecorder(ledger, today=lambda: date(2026, 11, 23))
    qa = Attribution(program_id="qa")
    recorder.record("gpt", Usage(10, 5, 15), 0.6, cache_hit=False, who=qa)
    ledger.fail = True
    await recorder.flush()  # kept for the next attempt
    ledger.fail = False
    recorder.record("gpt", Usage(1, 1, 2, estimated=True), 0.0, cache_hit=True, who=qa)
    await recorder.flush()
    (rows,) = ledger.rows
    (totals,) = rows.values()
    assert (totals.calls, totals.cache_hits, totals.prompt_tokens, totals.estimated_calls) == (1, 1, 11, 1)
    assert totals.cost_usd == pytest.approx(0.6)


async def test_attribution_nests_and_keeps_unset_parts() -> None:
    with attributed(api_key_id="k1"):
        with attributed(program_id="qa"):
            assert current_attribution() == Attribution("qa", "k1")
        assert current_attribution() == Attribution("", "k1")
    assert current_attribution() == Attribution()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


async def test_toml_models_with_deployments_cache_and_budgets(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '''
[lm]
default_model = "gpt"

[[models]]
alias = "local"
provider = "openai"
model = "llama3.1"
base_url = "http://127.0.0.1:11434/v1"
rpm = 60

[[models]]
alias = "gpt"
routing = "weighted"
fallbacks = ["local"]
temperature = 0.0
[[models.deployments]]
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
weight = 3
input_price_per_1m = 0.15
output_price_per_1m = 0.6
[[models.deployments]]
name = "claude"
provider = "anthropic"
model = "claude-3-5-haiku-latest"
api_key_env = "ANTHROPIC_API_KEY"

[cache]
max_entries = 5
ttl_s = 60
redis_url = "redis://127.0.0.1:6390/1"

[[budgets]]
program = "qa"
limit_usd = 5.0
'''), environ={})
    local, gpt, dummy = config.models
    assert local.deployments[0].rpm == 60 and local.deployments[0].name == "local/0"
    assert gpt.routing == "weighted" and gpt.fallbacks == ("local",) and gpt.temperature == 0.0
    assert [d.name for d in gpt.deployments] == ["gpt/0", "claude"]
    assert gpt.deployments[0].weight == 3 and gpt.deployments[1].provider == "anthropic"
    assert dummy.alias == "dummy"
    assert config.cache.redis_url == "redis://127.0.0.1:6390/1" and config.cache.max_entries == 5
    assert config.budgets == (BudgetConfig(limit_usd=5.0, program="qa", period="day"),)


@pytest.mark.parametrize(("toml", "field"), [
    ('[[models]]\nalias = "a"\nprovider = "openai"\nmodel = "m"\nrpm = -1', "models[0].deployments[0].rpm"),
    ('[[models]]\nalias = "a"\nmodel = "m"\n[[models.deployments]]\nprovider = "openai"\nmodel = "m"',
     "models[0].model"),
    ('[[models]]\nalias = "a"\n[[models.deployments]]\nmodel = "m"', "models[0].deployments[0].provider"),
    ('[[models]]\nalias = "a"\nprovider = "openai"\nmodel = "m"\nfallbacks = ["nope"]', "models[0].fallbacks"),
    ('[[models]]\nalias = "a"', "models[0].deployments"),
    ('[cache]\nredis_url = "http://x"', "cache.redis_url"),
    ('[[budgets]]\nlimit_usd = 1.0', "budgets[0]"),
    ('[[budgets]]\nprogram = "qa"\nlimit_usd = 1.0\nperiod = "week"', "budgets[0].period"),
    ('[[models]]\nalias = "e"\nkind = "vectors"\nprovider = "openai"\nmodel = "m"', "models[0].kind"),
    ('[[models]]\nalias = "e"\nkind = "embedding"\nprovider = "anthropic"\nmodel = "m"',
     "models[0].deployments[0].provider"),
    ('[[models]]\nalias = "c"\nprovider = "openai"\nmodel = "m"\n[[models]]\nalias = "e"\nkind = "embedding"\n'
     'provider = "openai"\nmodel = "m2"\nfallbacks = ["c"]', "models[1].fallbacks"),
    ('[[models]]\nalias = "c"\nprovider = "openai"\nmodel = "m"\nfallbacks = ["e"]\n[[models]]\nalias = "e"\n'
     'kind = "embedding"\nprovider = "openai"\nmodel = "m2"', "models[0].fallbacks"),
])
async def test_toml_errors_name_the_field(tmp_path: Path, toml: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_config(write(tmp_path, toml), environ={})
    assert caught.value.violations[0].field == field


async def test_toml_declares_embedding_models(tmp_path: Path) -> None:
    toml = ('[[models]]\nalias = "vectors"\nkind = "embedding"\nprovider = "openai"\nmodel = "text-embedding-3-small"\n'
            'api_key_env = "OPENAI_API_KEY"\ninput_price_per_1m = 0.02')
    config = load_config(write(tmp_path, toml), environ={})
    model = next(m for m in config.models if m.alias == "vectors")
    assert model.kind == "embedding" and model.deployments[0].model == "text-embedding-3-small"
    assert next(m for m in config.models if m.alias == "dummy").kind == "chat"
