"""Turns a predictor's :class:`LMChoice` into the LM to call, for one request."""

from __future__ import annotations

from ..core.errors import invalid
from ..lm.dummy import DummyLM, DummySpec
from ..lm.registry import LMRegistry
from ..lm.types import LM
from .spec import LMChoice


class LMResolver:
    """Resolves LM choices in this order: the predictor's own, the request's, the server default.

    Inline dummy LMs are created once per request and script, so their scripted responses are
    consumed in order across the calls of one request and start afresh for the next request.
    """

    def __init__(self, registry: LMRegistry, *, request_choice: LMChoice, default_model: str) -> None:
        self._registry = registry
        self._request_choice = request_choice
        self._default_model = default_model
        self._dummies: dict[int, tuple[DummySpec, DummyLM]] = {}

    def choose(self, own: LMChoice) -> LMChoice:
        """The choice that applies to a predictor whose own choice is ``own``."""

        if own.is_set:
            return own
        if self._request_choice.is_set:
            return self._request_choice
        if self._default_model:
            return LMChoice(model=self._default_model, options=own.options)
        raise invalid(
            "lm",
            "no LM given: set lm on the request or the predictor, or configure lm.default_model",
            reason="NO_LM",
        )

    def lm_for(self, choice: LMChoice) -> LM:
        if choice.dummy is not None:
            key = id(choice.dummy)
            if key not in self._dummies:
                self._dummies[key] = (choice.dummy, DummyLM(choice.dummy))
            return self._dummies[key][1]
        return self._registry.get(choice.model)
