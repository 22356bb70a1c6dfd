"""Who is calling: the authenticated API key of the current request, for attribution and audit.

The API layer sets it (see ``api/interceptors.py``) once a call's key is verified; code below reads
it with :func:`current_caller` — ``None`` when authentication is off or outside a request.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: Scopes an API key can hold. ``admin`` implies every other one.
SCOPES = ("infer", "programs", "jobs", "admin")


@dataclass(frozen=True)
class Caller:
    """An authenticated API key: its public id, its name and its scopes."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("dspy_grpc_caller", default=None)


def current_caller() -> Caller | None:
    return _caller.get()


@contextmanager
def acting_as(caller: Caller | None) -> Iterator[None]:
    """Run the block (and tasks started from it) on behalf of ``caller``."""

    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)
