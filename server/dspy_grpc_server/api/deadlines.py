"""The caller's gRPC deadline, as the domain's Deadline."""

from __future__ import annotations

import grpc

from ..lm.deadline import Deadline


def deadline_of(context: grpc.aio.ServicerContext) -> Deadline | None:
    """The call's deadline, or None when the client set none."""

    remaining = context.time_remaining()
    return None if remaining is None else Deadline.within(remaining)
