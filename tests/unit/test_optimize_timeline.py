"""The pieces of GEPA's and SIMBA's scheduling that must be exact: the critical-path bound of a job's
dependency levels, and which SIMBA winners are finalists whatever the remaining steps produce (their
final runs start early, so a wrong answer would make LM calls DSPy never makes)."""

from __future__ import annotations

import asyncio

import pytest

from dspy_grpc_server.optimize import timeline
from dspy_grpc_server.optimize.simba import Simba, SimbaConfig
from dspy_grpc_server.optimize.timeline import Timeline

async def _calls(count: int) -> None:
    async def one() -> None:
        await asyncio.sleep(0)
        timeline.note_call(timeline.now(), timeline.now(), timeline.now())

    await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.asyncio(loop_scope="session")
async def test_calls_count_in_the_level_of_the_task_that_made_them_and_the_bound_is_the_longest_chain():
    line = Timeline()
    line.declare("a")
    line.declare("b", after=("a",))
    line.declare("c", after=("a",))
    line.declare("d", after=("b", "c"))
    with line.level("a"):
        await _calls(33)
    with line.level("b"):
        b = asyncio.ensure_future(_calls(1))  # started in b, still counted there while c runs
    with line.level("c"):
        await asyncio.gather(b, _calls(20))
    with line.level("d"):
        await _calls(5)
    await _calls(7)  # outside any level: not counted

    assert {name: level.calls for name, level in line.levels.items()} == {"a": 33, "b": 1, "c": 20, "d": 5}
    # a: 3 rounds of 16; then c (2 rounds) is longer than b (1); then d (1).
    assert line.bound_rounds(16) == 6
    assert line.bound_rounds(1) == 33 + 20 + 5
    summary = line.summary(16)
    assert summary["calls"] == 59 and summary["bound_rounds"] == 6 and summary["level_count"] == 4
    assert [level["name"] for level in summary["levels"]] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("num_candidates", "max_steps"), [(6, 8), (2, 1), (3, 10), (1, 5), (6, 3)])
def test_a_winner_is_called_a_certain_finalist_only_if_it_is_one_for_every_reachable_count(num_candidates, max_steps):
    simba = Simba(None, SimbaConfig(num_candidates=num_candidates, max_steps=max_steps))  # type: ignore[arg-type]
    for steps_done in range(max_steps + 1):
        for count in range(steps_done + 1):  # winners so far (a step may produce none)
            left = max_steps - steps_done
            certain = simba.certain_finalists(count, left)
            assert 0 in certain
            for final in range(count, count + left + 1):
                assert certain <= set(simba.finalist_indexes(final))
            if left == 0:
                assert certain == set(simba.finalist_indexes(count))


def test_with_dspys_defaults_winners_1_4_5_and_7_start_before_the_last_step():
    simba = Simba(None, SimbaConfig())  # type: ignore[arg-type]
    assert simba.finalist_indexes(8) == [0, 1, 3, 4, 5, 7, 8]
    known = set()
    for step in range(8):  # every step produces a winner
        known |= simba.certain_finalists(step + 1, 8 - step - 1)
    assert known == {0, 1, 3, 4, 5, 7, 8}
    # Before the last step only winner 8 (not yet known) and the uncertain 2, 3 and 6 wait.
    assert simba.certain_finalists(7, 1) == {0, 1, 4, 5, 7}
