"""The caller's gRPC deadline, as the domain's Deadline -- a little earlier than the caller's own.

The server stops its own work :data:`MARGIN_S` before the caller's deadline (never more than a
quarter of the time left), so the typed error of a call its deadline ends (DEADLINE_EXCEEDED, or
the provider timeout's reason, with ErrorInfo) reaches the caller before the caller's own clock
ends the call with a bare DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import time

import grpc

from ..lm.deadline import Deadline

#: How long before the caller's deadline the server gives up, at most.
MARGIN_S = 0.25


def seconds_left(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds the server may still work on the call, or None when the client set no deadline."""

    remaining = context.time_remaining()
    if remaining is None:
        return None
    return max(0.0, remaining - min(MARGIN_S, remaining / 4))


def deadline_of(context: grpc.aio.ServicerContext) -> Deadline | None:
    """The call's deadline (with the margin), or None when the client set none."""

    left = seconds_left(context)
    return None if left is None else Deadline(time.monotonic() + left, left)  # Deadline.within(left), directly
