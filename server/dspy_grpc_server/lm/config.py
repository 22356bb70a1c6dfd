"""How one model is configured: the entries of the app config's model table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..core.errors import InvalidArgument, invalid
from .types import LMOptions

Provider = Literal["openai", "dummy"]
PROVIDERS: tuple[str, ...] = ("openai", "dummy")
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class ModelConfig:
    """One model known to the server under ``alias``.

    ``provider`` is ``"openai"`` for any OpenAI-compatible chat completions endpoint (OpenAI itself,
    vLLM, Ollama, LiteLLM proxy, ...) or ``"dummy"`` for the built-in scripted model. An empty
    ``base_url`` means OpenAI's own endpoint (:data:`DEFAULT_OPENAI_BASE_URL`). ``api_key_env``
    names the environment variable holding the API key; the key itself never appears in config.
    The sampling fields are the defaults a request's own options fall back to.
    """

    alias: str
    provider: Provider
    model: str
    base_url: str = ""
    api_key_env: str = ""
    timeout_s: float = 60.0
    max_retries: int = 2
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    #: Whether the endpoint accepts ``response_format`` with a strict JSON schema; when False the
    #: JSON adapter asks for ``{"type": "json_object"}`` instead.
    supports_json_schema: bool = True

    def default_options(self) -> LMOptions:
        """The sampling defaults of this model as :class:`LMOptions`."""

        return LMOptions(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            top_p=self.top_p,
            stop=tuple(self.stop),
            seed=self.seed,
            n=self.n,
        )

    def validate(self, field_prefix: str = "model") -> None:
        """Raise :class:`InvalidArgument` naming the first wrong field, if any."""

        def fail(name: str, description: str) -> InvalidArgument:
            return invalid(f"{field_prefix}.{name}", description, reason="INVALID_MODEL_CONFIG")

        if not self.alias:
            raise fail("alias", "must not be empty")
        if self.provider not in PROVIDERS:
            raise fail("provider", f"must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        if self.provider == "openai":
            if not self.model:
                raise fail("model", "must name the provider's model")
            if self.base_url and not self.base_url.startswith(("http://", "https://")):
                raise fail("base_url", "must be an http:// or https:// URL")
        if self.timeout_s <= 0:
            raise fail("timeout_s", "must be positive")
        if self.max_retries < 0:
            raise fail("max_retries", "must not be negative")
        if self.n < 1:
            raise fail("n", "must be at least 1")
