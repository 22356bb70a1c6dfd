"""An asyncio supervisor in the manner of Erlang/OTP: long-lived tasks that are restarted when they die.

A :class:`Supervisor` runs *children*, each described by a :class:`ChildSpec` (a name, a coroutine
function to run, a :class:`Restart` policy). Whenever a child's task ends, the supervisor decides:

* ``PERMANENT`` children are always restarted (a worker that must keep running);
* ``TRANSIENT`` children are restarted only when they ended abnormally (an exception, or a
  cancellation the supervisor did not ask for); returning normally means "done";
* ``TEMPORARY`` children are never restarted.

Restart intensity: when more than ``max_restarts`` restarts happen within ``period_s`` seconds the
supervisor gives up (escalates): it stops every child and :meth:`Supervisor.run` raises
:class:`SupervisorEscalation`. A supervisor is itself a coroutine (:meth:`Supervisor.run`), so it
can be the child of another supervisor, which then applies its own policy to it; at the top,
``on_escalation`` is told. The strategy is one-for-one: a dying child never affects its siblings.

Pure asyncio, no I/O: the LM workers, job runners and janitors of the server all run under it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("dspy_grpc_server.supervisor")


class Restart(enum.Enum):
    """When a child that ended is started again."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class SupervisorEscalation(RuntimeError):
    """A supervisor exceeded its restart intensity and stopped all of its children."""


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child: ``start()`` is awaited as the child's task, once per (re)start."""

    name: str
    start: Callable[[], Awaitable[object]]
    restart: Restart = Restart.PERMANENT
    #: How long a stopping child may take to finish after being cancelled.
    shutdown_timeout_s: float = 5.0


@dataclass
class ChildState:
    """What the supervisor knows about one child (read-only for callers)."""

    spec: ChildSpec
    task: asyncio.Task[object] | None = None
    #: How many times the child was restarted after ending.
    restarts: int = 0
    #: The last abnormal exit, as ``"ExceptionType: message"`` (empty when none).
    last_error: str = ""
    running: bool = False


@dataclass(frozen=True)
class _Exit:
    name: str
    task: asyncio.Task[object]


class Supervisor:
    """One-for-one supervision of named children; see the module documentation.

    Use :meth:`start` / :meth:`stop` for a top-level supervisor, or give :meth:`run` to a parent
    supervisor as a child's ``start``.
    """

    def __init__(
        self,
        name: str,
        *,
        max_restarts: int = 5,
        period_s: float = 10.0,
        on_escalation: Callable[[SupervisorEscalation], None] | None = None,
    ) -> None:
        if max_restarts < 0 or period_s <= 0:
            raise ValueError("max_restarts must be >= 0 and period_s > 0")
        self.name = name
        self.max_restarts = max_restarts
        self.period_s = period_s
        self._on_escalation = on_escalation
        self._children: dict[str, ChildState] = {}
        self._exits: asyncio.Queue[_Exit] = asyncio.Queue()
        self._restart_times: deque[float] = deque()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._escalation: SupervisorEscalation | None = None

    # ------------------------------------------------------------------ inspection

    @property
    def children(self) -> dict[str, ChildState]:
        """The current children by name (a copy of the mapping; the states are live)."""

        return dict(self._children)

    def child(self, name: str) -> ChildState:
        return self._children[name]

    @property
    def escalated(self) -> SupervisorEscalation | None:
        """The escalation that stopped this supervisor, if it gave up."""

        return self._escalation

    # ------------------------------------------------------------------ children

    def start_child(self, spec: ChildSpec) -> ChildState:
        """Start ``spec`` now (the supervisor must be running or about to run)."""

        if spec.name in self._children:
            raise ValueError(f"supervisor {self.name}: a child named {spec.name!r} already exists")
        if self._stopping:
            raise RuntimeError(f"supervisor {self.name} is stopping")
        state = ChildState(spec)
        self._children[spec.name] = state
        self._launch(state)
        return state

    async def terminate_child(self, name: str) -> None:
        """Stop a child for good (it is not restarted) and forget it."""

        state = self._children.pop(name, None)
        if state is not None:
            await self._cancel(state)

    def _launch(self, state: ChildState) -> None:
        task = asyncio.create_task(self._guard(state.spec), name=f"{self.name}/{state.spec.name}")
        state.task = task
        state.running = True
        task.add_done_callback(lambda t, name=state.spec.name: self._exits.put_nowait(_Exit(name, t)))

    @staticmethod
    async def _guard(spec: ChildSpec) -> object:
        return await spec.start()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run the supervision loop in a background task (for a top-level supervisor)."""

        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._top_level(), name=f"supervisor/{self.name}")

    async def _top_level(self) -> None:
        try:
            await self.run()
        except SupervisorEscalation as escalation:
            log.error("%s", escalation)
            if self._on_escalation is not None:
                self._on_escalation(escalation)

    async def stop(self) -> None:
        """Stop every child (cancel, then wait up to its shutdown timeout) and the loop."""

        self._stopping = True
        await self._stop_children()
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None

    async def run(self) -> None:
        """Supervise until cancelled; raise :class:`SupervisorEscalation` when intensity is exceeded.

        Children that are not running (a previous run escalated) are started again first.
        """

        self._stopping = False
        self._escalation = None
        self._restart_times.clear()
        for state in self._children.values():
            if not state.running:
                self._launch(state)
        try:
            while True:
                event = await self._exits.get()
                self._handle_exit(event)
        except SupervisorEscalation as escalation:
            self._escalation = escalation
            await self._stop_children()
            raise
        finally:
            if not self._stopping:
                # Cancelled by a parent: take the children down with us.
                self._stopping = True
                await asyncio.shield(self._stop_children())

    def _handle_exit(self, event: _Exit) -> None:
        state = self._children.get(event.name)
        if state is None or state.task is not event.task:
            return  # terminated on purpose, or an old incarnation
        state.running = False
        task = event.task
        abnormal = True
        if task.cancelled():
            state.last_error = "cancelled"
        elif (error := task.exception()) is not None:
            state.last_error = f"{type(error).__name__}: {error}"
            log.warning("supervisor %s: child %s died: %s", self.name, event.name, state.last_error,
                        exc_info=error)
        else:
            abnormal = False
        if self._stopping:
            return
        policy = state.spec.restart
        if policy is Restart.TEMPORARY or (policy is Restart.TRANSIENT and not abnormal):
            del self._children[event.name]
            return
        self._count_restart()
        state.restarts += 1
        log.info("supervisor %s: restarting %s (restart %d)", self.name, event.name, state.restarts)
        self._launch(state)

    def _count_restart(self) -> None:
        now = time.monotonic()
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > self.period_s:
            self._restart_times.popleft()
        if len(self._restart_times) > self.max_restarts:
            raise SupervisorEscalation(
                f"supervisor {self.name}: more than {self.max_restarts} restarts within "
                f"{self.period_s:g}s; stopping all children"
            )

    async def _stop_children(self) -> None:
        states = list(self._children.values())
        await asyncio.gather(*(self._cancel(state) for state in reversed(states)))

    @staticmethod
    async def _cancel(state: ChildState) -> None:
        task = state.task
        state.running = False
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=state.spec.shutdown_timeout_s)
        if not done:
            log.error("child %s did not stop within %.1fs", state.spec.name, state.spec.shutdown_timeout_s)
