"""The asyncio supervisor: restart policies, restart intensity, escalation and nesting."""

from __future__ import annotations

import asyncio

import pytest

from dspy_grpc_server.core.supervisor import ChildSpec, Restart, Supervisor, SupervisorEscalation

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Child:
    """A child body that records its runs and does what the test tells it to."""

    def __init__(self, behaviour: str = "serve") -> None:
        self.behaviour = behaviour
        self.runs = 0
        self.started = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        self.started.set()
        if self.behaviour == "crash":
            raise RuntimeError(f"crash {self.runs}")
        if self.behaviour == "return":
            return
        await asyncio.Future()


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_dying_permanent_child_is_restarted_and_its_siblings_are_untouched() -> None:
    supervisor = Supervisor("test")
    supervisor.start()
    worker, sibling = Child(), Child()
    supervisor.start_child(ChildSpec("worker", worker))
    sibling_state = supervisor.start_child(ChildSpec("sibling", sibling))
    await until(lambda: worker.runs == 1 and sibling.runs == 1)
    first_sibling_task = sibling_state.task

    supervisor.child("worker").task.cancel()  # killed from outside: an abnormal exit
    await until(lambda: worker.runs == 2)
    state = supervisor.child("worker")
    assert state.restarts == 1 and state.running and state.last_error == "cancelled"
    assert sibling_state.task is first_sibling_task and sibling.runs == 1  # one-for-one
    await supervisor.stop()
    assert not state.running and state.task.done()


async def test_transient_and_temporary_children() -> None:
    supervisor = Supervisor("test")
    supervisor.start()
    done = Child("return")
    supervisor.start_child(ChildSpec("done", done, restart=Restart.TRANSIENT))
    crashing = Child("crash")
    supervisor.start_child(ChildSpec("transient-crash", crashing, restart=Restart.TRANSIENT))
    once = Child("crash")
    supervisor.start_child(ChildSpec("temporary", once, restart=Restart.TEMPORARY))
    await until(lambda: crashing.runs >= 3)
    await asyncio.sleep(0.02)
    assert done.runs == 1 and "done" not in supervisor.children  # a normal exit ends a transient child
    assert once.runs == 1 and "temporary" not in supervisor.children
    await supervisor.stop()


async def test_too_many_restarts_escalate_and_stop_every_child() -> None:
    escalations: list[SupervisorEscalation] = []
    supervisor = Supervisor("fragile", max_restarts=3, period_s=60, on_escalation=escalations.append)
    supervisor.start()
    steady, crashing = Child(), Child("crash")
    supervisor.start_child(ChildSpec("steady", steady))
    supervisor.start_child(ChildSpec("crashing", crashing))
    await until(lambda: bool(escalations))
    assert crashing.runs == 4  # the first run and three restarts
    assert "more than 3 restarts" in str(escalations[0])
    assert supervisor.escalated is escalations[0]
    assert not supervisor.child("steady").running and supervisor.child("steady").task.done()
    await supervisor.stop()


async def test_a_nested_supervisor_is_restarted_by_its_parent_with_its_children() -> None:
    parent = Supervisor("parent", max_restarts=5, period_s=60)
    parent.start()
    child_supervisor = Supervisor("child", max_restarts=1, period_s=60)
    crashing = Child("crash")
    child_supervisor.start_child(ChildSpec("crashing", crashing))
    parent.start_child(ChildSpec("child-supervisor", child_supervisor.run))
    # The inner supervisor escalates after 2 restarts; its parent restarts it, which runs the child again.
    await until(lambda: parent.child("child-supervisor").restarts >= 1)
    await until(lambda: crashing.runs >= 4)
    await parent.stop()
    assert child_supervisor.child("crashing").task.done()


async def test_restarts_outside_the_period_do_not_add_up() -> None:
    supervisor = Supervisor("slow", max_restarts=1, period_s=0.05)
    supervisor.start()
    worker = Child()
    supervisor.start_child(ChildSpec("worker", worker))
    for expected in (2, 3, 4):
        await until(lambda: worker.runs == expected - 1)
        await asyncio.sleep(0.06)
        supervisor.child("worker").task.cancel()
        await until(lambda: worker.runs == expected)
    assert supervisor.escalated is None
    await supervisor.stop()
