"""A point in (monotonic) time after which an LM call must give up."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """An absolute deadline on the monotonic clock, built from one or more relative timeouts."""

    at: float
    #: The length of the budget when the deadline was made (for messages).
    span: float = 0.0

    @classmethod
    def within(cls, *timeouts: float | None) -> Deadline:
        """The earliest of the given timeouts (seconds from now); ``None`` entries are ignored."""

        if len(timeouts) == 1 and timeouts[0] is not None:  # the usual case, on every LM call
            span = max(0.0, timeouts[0])
            return cls(time.monotonic() + span, span)
        given = [t for t in timeouts if t is not None]
        if not given:
            raise ValueError("Deadline.within needs at least one timeout")
        span = max(0.0, min(given))
        return cls(time.monotonic() + span, span)

    def capped(self, seconds: float) -> Deadline:
        """This deadline or ``seconds`` from now, whichever comes first."""

        at = time.monotonic() + max(0.0, seconds)
        return Deadline(at, max(0.0, seconds)) if at < self.at else self

    def remaining(self) -> float:
        """Seconds left, never negative."""

        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0
