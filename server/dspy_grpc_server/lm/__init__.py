"""The LM provider layer: the :class:`LM` interface and the gateway behind model aliases.

- :mod:`.types`: requests, responses, usage, the :class:`LM` base class;
- :mod:`.config`: models, deployments, cache and budget settings;
- :mod:`.providers`: the OpenAI-compatible, Anthropic and dummy wire protocols (one attempt each);
- :mod:`.worker`, :mod:`.breaker`, :mod:`.limiter`, :mod:`.retry`: one supervised worker per
  deployment with its circuit breaker, limits and retries;
- :mod:`.router`: load balancing and fail-over over an alias's deployments and fallbacks;
- :mod:`.gateway`: cache, coalescing, budgets and usage around the router (the LM an alias names);
- :mod:`.registry`: every configured alias, the workers' supervisor and status snapshots;
- :mod:`.dummy`: a scripted offline LM for tests.
"""

from __future__ import annotations

from .config import (
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_OPENAI_BASE_URL,
    BudgetConfig,
    CacheConfig,
    DeploymentConfig,
    ModelConfig,
)
from .dummy import DummyLM, DummyResponse, DummyRule, DummySpec
from .registry import LMRegistry
from .retry import RetryPolicy
from .types import LM, LMOptions, LMRequest, LMResponse, LMStreamChunk, ToolCall, Usage

__all__ = [
    "DEFAULT_ANTHROPIC_BASE_URL",
    "DEFAULT_OPENAI_BASE_URL",
    "LM",
    "BudgetConfig",
    "CacheConfig",
    "DeploymentConfig",
    "DummyLM",
    "DummyResponse",
    "DummyRule",
    "DummySpec",
    "LMOptions",
    "LMRegistry",
    "LMRequest",
    "LMResponse",
    "LMStreamChunk",
    "ModelConfig",
    "RetryPolicy",
    "ToolCall",
    "Usage",
]
