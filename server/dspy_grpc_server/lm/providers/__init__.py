"""Wire protocols of the supported providers, one attempt at a time (see :class:`.base.Provider`)."""

from __future__ import annotations

from collections.abc import Mapping

from ..config import DeploymentConfig
from .anthropic import AnthropicProvider
from .base import Provider
from .dummy import DummyProvider
from .http import Session
from .openai import OpenAIProvider


def make_provider(deployment: DeploymentConfig, session: Session, *,
                  environ: Mapping[str, str] | None = None) -> Provider:
    """The provider speaking ``deployment.provider``'s protocol over ``session``."""

    if deployment.provider == "anthropic":
        return AnthropicProvider(deployment, session, environ=environ)
    if deployment.provider == "dummy":
        return DummyProvider(deployment)
    return OpenAIProvider(deployment, session, environ=environ)


__all__ = ["AnthropicProvider", "DummyProvider", "OpenAIProvider", "Provider", "make_provider"]
