"""Aging: a step that needs a whole pool is not starved by a stream of small steps.

The stream: two chains of one-second steps, each taking 1 of a pool of 2, the second chain
half a second behind the first, so the pool is never empty and a step ends every 0.5 s. The
big step needs the whole pool and is ready from the start. Each take() in which a step of
lower priority starts while it waits (overtakes it) counts; after ``AGING_AFTER`` of them the
steps competing for the pool wait behind it, so it starts as soon as the steps running then
have ended: at most 0.5 x AGING_AFTER + 1 s after the start. Waiting with nothing
overtaking does not count.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.scheduler.engine import Priority
from counterpoint.scheduler.resources import AGING_AFTER

GUARD_S = 2.0  # real seconds: a simulation that livelocks fails instead of hanging
CHAIN = 30


def simulate(
    wf: cp.Workflow, workers: int | None = None, priority: Priority = "planned"
) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, workers=workers, priority=priority), GUARD_S)

    try:
        result = asyncio.run(go())
    except TimeoutError:
        pytest.fail(f"the simulation did not finish in {GUARD_S:g} s (a livelock?)")
    assert result.status is cp.RunStatus.SUCCEEDED
    return result


def stream_with_a_big_step(big_first: bool) -> cp.Workflow:
    steps: list[dict[str, Any]] = []
    for chain, first in (("a", 1.0), ("b", 0.5)):
        for k in range(CHAIN):
            step: dict[str, Any] = {
                "id": f"{chain}{k}",
                "agent": "w",
                "estimate": first if k == 0 else 1.0,
                "uses": {"p": 1},
            }
            if k:
                step["needs"] = [f"{chain}{k - 1}"]
            steps.append(step)
    big = {"id": "big", "agent": "w", "estimate": 1.0, "uses": {"p": 2}}
    steps.insert(0 if big_first else len(steps), big)
    data = {
        "name": "aging",
        "resources": {"pools": {"p": 2}},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    return cp.loads(json.dumps(data))


def test_without_competition_the_big_step_starts_at_once() -> None:
    result = simulate(stream_with_a_big_step(big_first=True), priority="fifo")
    assert result.steps["big"].start == 0.0
    assert result.steps["a0"].start == 1.0


def test_fifo_the_big_step_starts_right_after_it_is_aged() -> None:
    # Released after a0 and b0 (which take the pool at 0, before it is examined: not an
    # overtaking), examined before every later chain step, which overtakes it every 0.5 s:
    # the AGING_AFTER-th time is a4 starting at 0.5 x AGING_AFTER = 4 s. Then b's next step
    # is held back at 4.5 s; a4 ends at 5 s and the pool is free.
    result = simulate(stream_with_a_big_step(big_first=False), priority="fifo")
    steps = result.steps
    aged_at = 0.5 * AGING_AFTER
    assert steps["a4"].start == aged_at
    assert steps["big"].start == aged_at + 1.0
    # before that the stream went on (backfilling): b's steps at 0.5, 1.5, 2.5, 3.5
    assert [steps[f"b{k}"].start for k in range(1, 5)] == [0.5, 1.5, 2.5, 3.5]
    assert steps["b5"].start == steps["a5"].start == aged_at + 2.0  # after big
    assert result.makespan_s == CHAIN + 1.0


@pytest.mark.parametrize("priority", ["fifo", "critical-path", "planned"])
def test_the_big_step_is_not_starved_whatever_the_priority(priority: Priority) -> None:
    # The big step has the higher priority of its own (``priority: 1``), so under every rule
    # it is examined first in every take; the chain steps fit where it does not and
    # overtake it, until aging holds them back.
    wf = stream_with_a_big_step(big_first=False)
    data = json.loads(wf.model_dump_json(by_alias=True, exclude_defaults=True))
    for step in data["steps"]:
        if step["id"] == "big":
            step["priority"] = 1
    result = simulate(cp.loads(json.dumps(data)), priority=priority)
    big = result.steps["big"].start
    assert big is not None
    bound = 0.5 * AGING_AFTER + 1.0
    assert big <= bound, f"big started at {big:g} s; aged by {bound:g} s"


def test_waiting_behind_higher_priority_steps_is_not_aging() -> None:
    # Under critical-path priority every chain step outranks the big one; they start first
    # because of their rank, not by overtaking it, so the big step keeps its place in the
    # order (and starts once the chains' ranks fall to its own).
    result = simulate(stream_with_a_big_step(big_first=False), priority="critical-path")
    big = result.steps["big"].start
    assert big is not None and big > 0.5 * AGING_AFTER + 1.0
    assert result.makespan_s == CHAIN + 1.0


def test_a_full_pool_keeps_the_planned_order() -> None:
    # Eight independent steps of different lengths on a pool of 2 and a chain that needs
    # them: the engine runs the order the planner chose, so it ends exactly when the plan
    # expected (waiting for a full pool does not age a step out of its place).
    steps: list[dict[str, Any]] = [
        {"id": f"s{k}", "agent": "w", "estimate": d, "uses": {"p": 1}}
        for k, d in enumerate([5, 1, 1, 4, 2, 3, 1, 6])
    ]
    steps += [
        {"id": "t0", "agent": "w", "estimate": 4, "needs": ["s0", "s3"], "uses": {"p": 1}},
        {"id": "t1", "agent": "w", "estimate": 2, "needs": ["t0"], "uses": {"p": 1}},
    ]
    data = {
        "name": "full-pool",
        "resources": {"pools": {"p": 2}},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    result = simulate(cp.loads(json.dumps(data)))
    assert result.planning is not None
    assert result.makespan_s == result.planning["expected_makespan_s"]


def test_an_aged_step_holding_back_a_rate_limited_one_does_not_stop_the_clock() -> None:
    # L holds half the pool for 10 s. R waits for the rate limit (A0 took the only call of
    # the first second) and also needs the pool. A chain of short steps makes the engine
    # take() often enough to age B, which needs the whole pool; from then R, competing for
    # the pool, waits behind B. At 1 s the limit would allow R: nothing may start then, but
    # time must go on to 10 s, when L ends and B starts.
    steps: list[dict[str, Any]] = [
        {"id": "L", "agent": "w", "estimate": 10, "uses": {"p": 1}},
        {"id": "A0", "agent": "w", "estimate": 0.05, "uses": {"api": 1}},
        {"id": "B", "agent": "w", "estimate": 1, "uses": {"p": 2}},
        {"id": "R", "agent": "w", "estimate": 1, "uses": {"p": 1, "api": 1}},
    ]
    steps += [
        {"id": f"c{k}", "agent": "w", "estimate": 0.1, "needs": [f"c{k - 1}"] if k else []}
        for k in range(10)
    ]
    data = {
        "name": "aged-and-rate",
        "resources": {"pools": {"p": 2}, "rate_limits": {"api": "1/s"}},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    result = simulate(cp.loads(json.dumps(data)), priority="fifo")
    assert result.steps["B"].start == 10.0
    r_start = result.steps["R"].start
    assert r_start is not None and r_start >= 11.0
