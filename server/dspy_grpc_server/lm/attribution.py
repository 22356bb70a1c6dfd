"""Who an LM call is made for: the program being run and the caller's API key.

The app layer sets it around a run (``with attributed(program_id="qa"): ...``); every LM call made
inside (including calls in tasks started there, which copy the context) is recorded in the usage
ledger under it and checked against its budgets. The API-key part stays empty until requests
carry an authenticated key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Attribution:
    program_id: str = ""
    api_key_id: str = ""


_current: ContextVar[Attribution] = ContextVar("dspy_grpc_lm_attribution", default=Attribution())


def current_attribution() -> Attribution:
    return _current.get()


@contextmanager
def attributed(*, program_id: str | None = None, api_key_id: str | None = None) -> Iterator[Attribution]:
    """Attribute the LM calls made inside the block; unset parts keep their current value."""

    changes = {k: v for k, v in (("program_id", program_id), ("api_key_id", api_key_id)) if v is not None}
    value = replace(_current.get(), **changes)
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)
