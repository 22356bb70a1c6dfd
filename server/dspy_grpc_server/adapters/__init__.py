"""Adapters: signatures + values -> chat messages, and LM completions -> typed values (DSPy 3.4.1 formats)."""

from __future__ import annotations

from functools import cache

from ..core.errors import invalid
from .base import Adapter, Message, normalize_demo, validate_inputs
from .chat import ChatAdapter


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``: "chat", "json", "xml" or "two_step" (InvalidArgument otherwise).

    Adapters hold no per-call state, so each name has one shared instance."""

    return _adapter((name or "chat").strip().lower())


@cache
def _adapter(key: str) -> Adapter:
    from .json_adapter import JSONAdapter
    from .two_step import TwoStepAdapter
    from .xml import XMLAdapter

    factories = {"chat": ChatAdapter, "json": JSONAdapter, "xml": XMLAdapter, "two_step": TwoStepAdapter}
    if key not in factories:
        raise invalid("adapter", f"unknown adapter {key!r}; expected one of: {', '.join(factories)}")
    return factories[key]()


__all__ = ["Adapter", "ChatAdapter", "Message", "get_adapter", "normalize_demo", "validate_inputs"]
