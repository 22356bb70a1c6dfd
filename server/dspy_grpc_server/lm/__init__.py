"""The LM provider layer: the :class:`LM` interface and its implementations.

- :mod:`.types`: requests, responses, usage, the :class:`LM` base class;
- :mod:`.openai_compatible`: any OpenAI-compatible ``/chat/completions`` endpoint;
- :mod:`.dummy`: a scripted offline LM for tests;
- :mod:`.registry`: the configured models by alias.
"""

from __future__ import annotations

from .config import DEFAULT_OPENAI_BASE_URL, ModelConfig
from .dummy import DummyLM, DummyResponse, DummyRule, DummySpec
from .openai_compatible import OpenAICompatibleLM
from .registry import LMRegistry
from .retry import RetryPolicy
from .types import LM, LMOptions, LMRequest, LMResponse, LMStreamChunk, Usage

__all__ = [
    "DEFAULT_OPENAI_BASE_URL",
    "LM",
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
    "OpenAICompatibleLM",
    "RetryPolicy",
    "Usage",
]
