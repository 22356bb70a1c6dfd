"""Wire protocols of the supported providers, one attempt at a time (see :class:`.base.Provider`)."""

from __future__ import annotations

from collections.abc import Mapping

from ..config import DeploymentConfig
from .anthropic import AnthropicProvider
from .base import Provider
from .dummy import DummyProvider
from .http import Clients
from .openai import OpenAIProvider


def make_provider(deployment: DeploymentConfig, client: Clients, *,
                  environ: Mapping[str, str] | None = None) -> Provider:
    """The provider speaking ``deployment.provider``'s protocol over ``client`` (or several clients)."""

    if deployment.provider == "anthropic":
        return AnthropicProvider(deployment, client, environ=environ)
    if deployment.provider == "dummy":
        return DummyProvider(deployment)
    return OpenAIProvider(deployment, client, environ=environ)


__all__ = ["AnthropicProvider", "DummyProvider", "OpenAIProvider", "Provider", "make_provider"]
