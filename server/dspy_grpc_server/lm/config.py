"""How models, their deployments, the response cache and budgets are configured.

A *model* is what callers name (an alias such as ``"gpt"``). It has one or more *deployments*: a
provider endpoint serving a provider model, each with its own limits, circuit breaker settings and
price. Calls to the alias are balanced over the deployments (``routing``) and, when every deployment
is open-circuited, exhausted or failing, passed on to the ``fallbacks`` aliases in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from ..core.errors import InvalidArgument, invalid
from .types import CACHE_POLICIES, CachePolicy, LMOptions

Provider = Literal["openai", "anthropic", "dummy"]
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "dummy")
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"

#: What a model serves: chat completions, or embeddings (``POST /embeddings``, OpenAI-compatible only).
ModelKind = Literal["chat", "embedding"]
MODEL_KINDS: tuple[str, ...] = ("chat", "embedding")

Routing = Literal["least-busy", "weighted"]
ROUTINGS: tuple[str, ...] = ("least-busy", "weighted")

BudgetPeriod = Literal["day", "month", "total"]
BUDGET_PERIODS: tuple[str, ...] = ("day", "month", "total")


def _fail(prefix: str, name: str, description: str) -> InvalidArgument:
    return invalid(f"{prefix}.{name}" if prefix else name, description, reason="INVALID_MODEL_CONFIG")


@dataclass(frozen=True)
class DeploymentConfig:
    """One provider endpoint behind a model alias.

    ``provider`` is ``"openai"`` (any OpenAI-compatible ``/chat/completions``: OpenAI, vLLM, Ollama,
    llama.cpp server, LiteLLM, ...), ``"anthropic"`` (the Messages API) or ``"dummy"`` (the built-in
    offline model). An empty ``base_url`` means the provider's public endpoint. ``api_key_env`` names
    the environment variable holding the key; the key itself never appears in config.

    Limits (0 = unlimited): ``rpm`` requests and ``tpm`` tokens per minute, ``max_in_flight``
    concurrent calls. ``weight`` steers ``"weighted"`` routing. The circuit breaker opens after
    ``breaker_failures`` consecutive failures and lets one probe call through after
    ``breaker_reset_s``. Prices are in USD per million input (prompt) and output (completion) tokens.
    """

    provider: Provider
    model: str = ""
    #: Unique name shown in status and errors; defaults to "<alias>/<index>".
    name: str = ""
    base_url: str = ""
    api_key_env: str = ""
    timeout_s: float = 60.0
    max_retries: int = 2
    rpm: int = 0
    tpm: int = 0
    max_in_flight: int = 0
    weight: float = 1.0
    input_price_per_1m: float = 0.0
    output_price_per_1m: float = 0.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0

    def endpoint(self) -> str:
        """The base URL calls go to (the provider's default when none is configured)."""

        if self.base_url:
            return self.base_url.rstrip("/")
        return DEFAULT_ANTHROPIC_BASE_URL if self.provider == "anthropic" else DEFAULT_OPENAI_BASE_URL

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of a call with these token counts."""

        return (prompt_tokens * self.input_price_per_1m + completion_tokens * self.output_price_per_1m) / 1e6

    def validate(self, prefix: str) -> None:
        if self.provider not in PROVIDERS:
            raise _fail(prefix, "provider", f"must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        if self.provider != "dummy" and not self.model:
            raise _fail(prefix, "model", "must name the provider's model")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise _fail(prefix, "base_url", "must be an http:// or https:// URL")
        if not self.timeout_s > 0:
            raise _fail(prefix, "timeout_s", "must be positive")
        for name in ("max_retries", "rpm", "tpm", "max_in_flight", "breaker_failures"):
            if getattr(self, name) < 0:
                raise _fail(prefix, name, "must not be negative")
        for name in ("input_price_per_1m", "output_price_per_1m", "breaker_reset_s"):
            value = getattr(self, name)
            if value < 0 or not math.isfinite(value):
                raise _fail(prefix, name, "must be a finite number >= 0")
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise _fail(prefix, "weight", "must be positive")


@dataclass(frozen=True)
class ModelConfig:
    """One model known to the server under ``alias``, served by ``deployments``.

    The sampling fields are the defaults a request's own options fall back to. ``supports_json_schema``
    tells the JSON adapter whether ``response_format`` may carry a strict schema (else it asks for
    ``{"type": "json_object"}``).

    ``kind = "embedding"`` makes the alias an embedding model: its deployments (OpenAI-compatible)
    answer ``POST /embeddings`` and it cannot complete chat (nor can a chat model embed). An embedding
    model has no fallbacks: another model's vectors are not comparable with its own.
    """

    alias: str
    deployments: tuple[DeploymentConfig, ...] = ()
    kind: ModelKind = "chat"
    routing: Routing = "least-busy"
    #: Aliases tried in order when none of this model's deployments can answer.
    fallbacks: tuple[str, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    #: The cache policy of requests that set none (``"use"`` when unset).
    cache: CachePolicy | None = None
    supports_json_schema: bool = True

    def __post_init__(self) -> None:
        named = tuple(
            d if d.name else replace(d, name=f"{self.alias}/{index}") for index, d in enumerate(self.deployments)
        )
        object.__setattr__(self, "deployments", named)

    @classmethod
    def single(cls, alias: str, deployment: DeploymentConfig, **model_settings) -> ModelConfig:
        """A model with exactly one deployment (the common case)."""

        return cls(alias=alias, deployments=(deployment,), **model_settings)

    def default_options(self) -> LMOptions:
        """The sampling defaults of this model as :class:`LMOptions`."""

        return LMOptions(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            top_p=self.top_p,
            stop=tuple(self.stop),
            seed=self.seed,
            n=self.n,
            cache=self.cache,
        )

    def validate(self, field_prefix: str = "model") -> None:
        """Raise :class:`InvalidArgument` naming the first wrong field, if any."""

        if not self.alias:
            raise _fail(field_prefix, "alias", "must not be empty")
        if not self.deployments:
            raise _fail(field_prefix, "deployments", "must list at least one deployment")
        names: set[str] = set()
        for index, deployment in enumerate(self.deployments):
            deployment.validate(f"{field_prefix}.deployments[{index}]")
            if deployment.name in names:
                raise _fail(f"{field_prefix}.deployments[{index}]", "name", f"duplicate name {deployment.name!r}")
            names.add(deployment.name)
        if self.routing not in ROUTINGS:
            raise _fail(field_prefix, "routing", f"must be one of {', '.join(ROUTINGS)}, got {self.routing!r}")
        if self.kind not in MODEL_KINDS:
            raise _fail(field_prefix, "kind", f"must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.kind == "embedding":
            for index, deployment in enumerate(self.deployments):
                if deployment.provider != "openai":
                    raise _fail(f"{field_prefix}.deployments[{index}]", "provider",
                                "an embedding model needs OpenAI-compatible deployments (provider \"openai\")")
            if self.fallbacks:
                raise _fail(field_prefix, "fallbacks",
                            "an embedding model cannot fall back: another model's vectors are not comparable")
        if self.alias in self.fallbacks:
            raise _fail(field_prefix, "fallbacks", "must not name the model itself")
        if self.n < 1:
            raise _fail(field_prefix, "n", "must be at least 1")
        if self.cache is not None and self.cache not in CACHE_POLICIES:
            raise _fail(field_prefix, "cache", f"must be one of {', '.join(CACHE_POLICIES)}")


def validate_models(models: tuple[ModelConfig, ...] | list[ModelConfig], prefix: str = "models") -> None:
    """Validate every model, unique aliases and deployment names, and that fallbacks exist."""

    aliases = [model.alias for model in models]
    deployment_names: set[str] = set()
    for index, model in enumerate(models):
        model.validate(f"{prefix}[{index}]")
        if model.alias in aliases[:index]:
            raise _fail(f"{prefix}[{index}]", "alias", f"duplicate alias {model.alias!r}")
        for d_index, deployment in enumerate(model.deployments):
            if deployment.name in deployment_names:
                raise _fail(f"{prefix}[{index}].deployments[{d_index}]", "name",
                            f"duplicate deployment name {deployment.name!r}")
            deployment_names.add(deployment.name)
        for fallback in model.fallbacks:
            if fallback not in aliases:
                raise _fail(f"{prefix}[{index}]", "fallbacks", f"{fallback!r} is not a configured model alias")
            if models[aliases.index(fallback)].kind != model.kind:
                raise _fail(f"{prefix}[{index}]", "fallbacks", f"{fallback!r} is an embedding model, not a chat model")


@dataclass(frozen=True)
class CacheConfig:
    """The response cache: in memory (bounded by ``max_entries``) unless ``redis_url`` is set.

    ``ttl_s`` is how long an entry lives (0: until evicted). ``enabled = False`` turns caching
    (and the coalescing of identical in-flight requests) off for every model.
    """

    enabled: bool = True
    max_entries: int = 10_000
    ttl_s: float = 24 * 3600.0
    redis_url: str = ""

    def validate(self, prefix: str = "cache") -> None:
        if self.max_entries < 1:
            raise invalid(f"{prefix}.max_entries", "must be at least 1")
        if self.ttl_s < 0 or not math.isfinite(self.ttl_s):
            raise invalid(f"{prefix}.ttl_s", "must be a finite number >= 0")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise invalid(f"{prefix}.redis_url", "must be a redis://, rediss:// or unix:// URL")


@dataclass(frozen=True)
class BudgetConfig:
    """A spending limit for one program or one API key, per ``period`` (calendar day or month in
    UTC, or the total ever spent). Exactly one of ``program`` and ``api_key`` is set."""

    limit_usd: float
    program: str = ""
    api_key: str = ""
    period: BudgetPeriod = "day"

    @property
    def scope(self) -> str:
        return "program" if self.program else "api_key"

    @property
    def subject(self) -> str:
        return self.program or self.api_key

    @property
    def name(self) -> str:
        """How errors and logs name the budget, e.g. ``program:qa/day``."""

        return f"{self.scope}:{self.subject}/{self.period}"

    def validate(self, prefix: str) -> None:
        if bool(self.program) == bool(self.api_key):
            raise invalid(prefix, "set exactly one of program and api_key")
        if not (self.limit_usd >= 0 and math.isfinite(self.limit_usd)):
            raise invalid(f"{prefix}.limit_usd", "must be a finite number >= 0")
        if self.period not in BUDGET_PERIODS:
            raise invalid(f"{prefix}.period", f"must be one of {', '.join(BUDGET_PERIODS)}")
