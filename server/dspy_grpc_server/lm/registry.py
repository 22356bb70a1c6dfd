"""The models a server knows, by alias."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx

from ..core.errors import FieldViolation, InvalidArgument, NotFound
from .config import ModelConfig
from .dummy import DummyLM, DummySpec
from .openai_compatible import OpenAICompatibleLM
from .types import LM


class LMRegistry:
    """Maps aliases from the app config's model table to :class:`LM` instances.

    LMs are created on first use and cached. All OpenAI-compatible LMs share one
    ``httpx.AsyncClient`` (connection pool), which :meth:`aclose` closes. A ``"dummy"`` model answers
    DSPy prompts with deterministic placeholder values (``DummySpec(auto=True)``).
    """

    def __init__(
        self,
        models: Iterable[ModelConfig],
        *,
        environ: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._configs: dict[str, ModelConfig] = {}
        for index, config in enumerate(models):
            config.validate(f"models[{index}]")
            if config.alias in self._configs:
                description = f"duplicate alias {config.alias!r}"
                raise InvalidArgument(
                    f"models[{index}].alias: {description}",
                    reason="INVALID_MODEL_CONFIG",
                    violations=[FieldViolation(f"models[{index}].alias", description)],
                )
            self._configs[config.alias] = config
        self._environ = environ
        self._client = client
        self._owns_client = client is None
        self._lms: dict[str, LM] = {}

    def aliases(self) -> list[str]:
        """Every configured alias, in config order."""

        return list(self._configs)

    def config(self, alias: str) -> ModelConfig:
        """The configuration of ``alias``; unknown -> :class:`NotFound` (``MODEL_NOT_FOUND``)."""

        try:
            return self._configs[alias]
        except KeyError:
            raise self._not_found(alias) from None

    def get(self, alias: str) -> LM:
        """The LM known as ``alias``, created on first use; unknown -> :class:`NotFound`."""

        lm = self._lms.get(alias)
        if lm is None:
            lm = self._lms[alias] = self._create(self.config(alias))
        return lm

    def _create(self, config: ModelConfig) -> LM:
        if config.provider == "dummy":
            return DummyLM(DummySpec(auto=True), name=config.alias, model=config.model or "dummy")
        if self._client is None:
            self._client = httpx.AsyncClient()
        return OpenAICompatibleLM(config, client=self._client, environ=self._environ)

    def _not_found(self, alias: str) -> NotFound:
        known = ", ".join(self._configs) or "none"
        description = f"no model is configured under the alias {alias!r} (known: {known})"
        return NotFound(
            f"lm.model: {description}",
            reason="MODEL_NOT_FOUND",
            metadata={"model": alias},
            violations=[FieldViolation("lm.model", description)],
        )

    async def aclose(self) -> None:
        """Close every created LM and the shared HTTP client (if the registry made it)."""

        lms, self._lms = list(self._lms.values()), {}
        for lm in lms:
            await lm.aclose()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
