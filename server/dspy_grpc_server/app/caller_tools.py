"""Tools run by the caller of InferenceService.Run: calls go out as events, answers come back in.

The engine calls :meth:`CallerTools.call`; that puts a :class:`ToolCallRequest` on the run's event
queue (the API layer sends it to the client) and waits for :meth:`CallerTools.answer` with the same
call id — at most ``timeout_s`` seconds, and never past the run's deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import DeadlineExceeded, DspyGrpcError
from ..modules.tools import ToolError


@dataclass(frozen=True)
class ToolCallRequest:
    """A call the client must run and answer."""

    call_id: str
    tool: str
    args: dict[str, Any]


class CallerTools:
    def __init__(self, names: Iterable[str], send: Callable[[ToolCallRequest], None], *,
                 timeout_s: float | None = None) -> None:
        self._names = set(names)
        self._send = send
        self._timeout_s = timeout_s
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._failure: DspyGrpcError | None = None

    def offers(self, name: str) -> bool:
        return name in self._names

    async def call(self, call_id: str, name: str, args: Mapping[str, Any], timeout: float | None) -> Any:
        if self._failure is not None:
            raise self._failure
        limits = [t for t in (timeout, self._timeout_s) if t is not None]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._send(ToolCallRequest(call_id, name, dict(args)))
        try:
            return await asyncio.wait_for(future, min(limits) if limits else None)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the caller did not answer the call {call_id} of tool {name!r} in time",
                reason="TOOL_TIMEOUT", metadata={"tool": name, "call_id": call_id},
            ) from None
        finally:
            self._pending.pop(call_id, None)

    def answer(self, call_id: str, *, output: Any = None, error: str | None = None) -> bool:
        """Resolve a pending call; False when no call with that id is waiting (e.g. it timed out)."""

        future = self._pending.get(call_id)
        if future is None or future.done():
            return False
        if error is not None:
            future.set_exception(ToolError(error or "the tool failed"))
        else:
            future.set_result(output)
        return True

    def fail(self, error: DspyGrpcError) -> None:
        """Fail every waiting and future call (the client broke the protocol or went away)."""

        self._failure = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
