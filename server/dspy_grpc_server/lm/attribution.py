"""Who an LM call is made for: the program being run and the caller's API key.

The app layer sets it around a run (``with attributed(program_id="qa"): ...``); every LM call made
inside (including calls in tasks started there, which copy the context) is recorded in the usage
ledger under it and checked against its budgets. The API-key part stays empty until requests
carry an authenticated key.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Attribution:
    program_id: str = ""
    api_key_id: str = ""


_current: ContextVar[Attribution] = ContextVar("dspy_grpc_lm_attribution", default=Attribution())


def current_attribution() -> Attribution:
    return _current.get()


class attributed:  # noqa: N801 - used like a function: ``with attributed(program_id=...):``
    """Attribute the LM calls made inside the block; unset parts keep their current value.
    (A class, not a generator: it wraps every call.)"""

    __slots__ = ("_program_id", "_api_key_id", "_token")

    def __init__(self, *, program_id: str | None = None, api_key_id: str | None = None) -> None:
        self._program_id, self._api_key_id = program_id, api_key_id

    def __enter__(self) -> Attribution:
        now = _current.get()
        value = Attribution(now.program_id if self._program_id is None else self._program_id,
                            now.api_key_id if self._api_key_id is None else self._api_key_id)
        self._token = _current.set(value)
        return value

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
