"""What every provider implements: one completion attempt, whole or streamed, for one deployment
(and, for providers that serve them, one embeddings attempt)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence

from ...core.errors import FailedPrecondition
from ..config import DeploymentConfig
from ..deadline import Deadline
from ..types import EmbeddingResponse, LMRequest, LMResponse, LMStreamChunk, Usage, message_text


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters per token), used when a provider reports no usage."""

    return (len(text) + 3) // 4


def estimated_usage(request: LMRequest, completions: tuple[str, ...] | list[str]) -> Usage:
    """Usage estimated from the prompt and completion texts, marked ``estimated``."""

    prompt = sum(estimate_tokens(message_text(m)) for m in request.messages)
    completion = sum(estimate_tokens(text) for text in completions)
    return Usage(prompt, completion, prompt + completion, estimated=True)


class Provider(ABC):
    """One deployment's wire protocol. ``request.options`` are already merged with the model's
    defaults; nothing here retries, limits or caches (the worker around it does)."""

    def __init__(self, deployment: DeploymentConfig, *, environ: Mapping[str, str] | None = None) -> None:
        self.deployment = deployment
        env = os.environ if environ is None else environ
        self.api_key: str | None = env.get(deployment.api_key_env) if deployment.api_key_env else None
        self.metadata = {"model": deployment.model, "deployment": deployment.name}

    def check_configured(self) -> None:
        """Fail with ``PROVIDER_NOT_CONFIGURED`` when the configured key variable is not set."""

        if self.deployment.api_key_env and not self.api_key:
            raise FailedPrecondition(
                f"deployment {self.deployment.name}: environment variable {self.deployment.api_key_env} "
                "holding the API key is not set",
                reason="PROVIDER_NOT_CONFIGURED",
                metadata=self.metadata,
            )

    @abstractmethod
    async def complete(self, request: LMRequest, deadline: Deadline) -> LMResponse:
        """One attempt at a whole completion."""

    @abstractmethod
    def stream(self, request: LMRequest, deadline: Deadline) -> AsyncIterator[LMStreamChunk]:
        """One attempt at a streamed completion: text deltas, then a final chunk with
        ``finish_reason``, usage (estimated when the provider sent none) and tool calls."""

    async def embed(self, texts: Sequence[str], deadline: Deadline) -> EmbeddingResponse:
        """One attempt at embedding ``texts`` (one vector each, in order). Providers without an
        embeddings API refuse (model config validation keeps embedding models off them)."""

        raise FailedPrecondition(f"deployment {self.deployment.name}: provider {self.deployment.provider} "
                                 "does not serve embeddings", reason="EMBEDDINGS_NOT_SUPPORTED",
                                 metadata=self.metadata)
