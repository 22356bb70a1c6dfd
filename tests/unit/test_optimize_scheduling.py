"""How a job shares its slots and its LM calls: priority order, cancellation that stays local, and
giving way to live calls."""

from __future__ import annotations

import asyncio
import math
import os

import pytest

from dspy_grpc_server.lm.types import LM, LMRequest, LMResponse, Usage
from dspy_grpc_server.optimize.journal import LMJournal
from dspy_grpc_server.optimize.live_traffic import LiveBoard, LiveTraffic
from dspy_grpc_server.optimize.runner import PrioritySlots

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiting_slots_go_to_the_lowest_priority_number_first_in_arrival_order():
    slots = PrioritySlots(1)
    await slots.acquire(0)
    served: list[str] = []

    async def waiter(name: str, priority: int) -> None:
        await slots.acquire(priority)
        served.append(name)
        await _settle()
        slots.release()

    waiters = [asyncio.ensure_future(waiter(name, priority))
               for name, priority in [("late-a", 5), ("soon-a", 1), ("late-b", 5), ("soon-b", 1), ("now", 0)]]
    await _settle()
    slots.release()
    await asyncio.gather(*waiters)
    assert served == ["now", "soon-a", "soon-b", "late-a", "late-b"]


async def test_slots_shrink_to_the_floor_while_live_calls_run_and_grow_back_in_priority_order():
    live = LiveTraffic(threads_while_live=1, quiet_s=0)
    slots = PrioritySlots(4, live)
    holding: list[str] = []
    done = asyncio.Event()

    async def worker(name: str, priority: int) -> None:
        await slots.acquire(priority)
        holding.append(name)
        await done.wait()
        slots.release()

    with live.call():
        workers = [asyncio.ensure_future(worker(name, priority))
                   for name, priority in [("c", 3), ("a", 1), ("d", 3), ("b", 2)]]
        await _settle()
        assert holding == ["c"]  # one slot of four while the live call runs (first come: nothing waited yet)
    await _settle()
    assert holding == ["c", "a", "b", "d"]  # the rest once it ended, lowest priority number first
    done.set()
    await asyncio.gather(*workers)


async def test_slots_already_held_are_kept_when_live_calls_start_and_new_ones_wait():
    live = LiveTraffic(threads_while_live=2, quiet_s=0)
    slots = PrioritySlots(3, live)
    for _ in range(3):
        await slots.acquire(0)
    with live.call():
        slots.release()
        slots.release()  # three held, two released: one held, under the floor of two
        await slots.acquire(0)
        late = asyncio.ensure_future(slots.acquire(0))
        await _settle()
        assert not late.done()  # two held: the limit while live
    await _settle()
    assert late.done()


async def test_a_cancelled_waiter_takes_no_slot_and_a_slot_granted_to_a_cancelled_waiter_is_handed_on():
    slots = PrioritySlots(1)
    await slots.acquire(0)
    gone = asyncio.ensure_future(slots.acquire(0))
    granted_then_cancelled = asyncio.ensure_future(slots.acquire(1))
    last = asyncio.ensure_future(slots.acquire(2))
    await _settle()
    gone.cancel()
    await _settle()
    slots.release()  # skips the cancelled waiter: granted to the next one ...
    granted_then_cancelled.cancel()  # ... cancelled before it could run: the slot moves on
    await asyncio.wait_for(last, 1)
    assert gone.cancelled() and granted_then_cancelled.cancelled()
    slots.release()
    await asyncio.wait_for(slots.acquire(0), 1)  # nothing leaked: the single slot is free again


class SlowLM(LM):
    """Answers every request with its own text after ``delay`` seconds, counting the calls it gets."""

    name = "slow"
    supports_json_schema = False

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return LMResponse(texts=(request.messages[-1]["content"],), usage=Usage(1, 1, 2), model="slow")


async def test_a_caller_sharing_an_lm_call_makes_it_itself_when_the_caller_making_it_is_cancelled():
    saved: dict[str, object] = {}

    async def persist(calls):
        saved.update(calls)

    journal = LMJournal({}, persist)
    lm = journal.wrap(SlowLM(0.05), "slow")
    request = LMRequest(({"role": "user", "content": "hello"},))
    maker = asyncio.ensure_future(lm.complete(request))
    await _settle()
    sharer = asyncio.ensure_future(lm.complete(request))
    await _settle()
    maker.cancel()
    response = await asyncio.wait_for(sharer, 2)
    assert response.texts == ("hello",)
    assert maker.cancelled()
    assert len(saved) == 1 and journal.calls_made == 1
    # A later identical request is answered from the journal.
    assert (await lm.complete(request)).texts == ("hello",) and journal.calls_made == 1


async def test_a_job_runner_s_slots_shrink_while_a_serving_process_on_the_board_has_live_calls():
    board = LiveBoard(2)
    serving = LiveTraffic(threads_while_live=1, quiet_s=0, board=board, cell=1)
    runner = LiveTraffic(threads_while_live=1, quiet_s=0, board=board)  # reads the board only
    slots = PrioritySlots(3, runner)
    holding: list[int] = []
    grown = asyncio.Event()

    async def worker(index: int) -> None:
        await slots.acquire(0)
        holding.append(index)
        if len(holding) == 3:
            grown.set()

    with serving.call():
        assert board.busy() and runner.busy() and runner.limit(3) == 1
        workers = [asyncio.ensure_future(worker(i)) for i in range(3)]
        await _settle()
        assert holding == [0]  # the serving process's live call holds the runner's job to one slot
    assert not board.busy()
    await asyncio.wait_for(grown.wait(), 10)  # the runner looks at the board again and grows back
    assert holding == [0, 1, 2]
    await asyncio.gather(*workers)


async def test_the_board_is_shared_with_forked_processes():
    board = LiveBoard(1)
    pid = os.fork()
    if pid == 0:  # a serving process in the middle of a live call
        board.publish(0, math.inf)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.busy()
    board.publish(0, 0.0)  # what the parent does when that process dies
    assert not board.busy()
