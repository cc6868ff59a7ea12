"""Soft pools: a pool with ``overflow`` goes above its capacity, by at most that much, only for
a step that would otherwise end after the latest time it may end (its ``deadline``, or the
workflow's less the estimated work after it); each time is recorded as an ``overflow`` event.

Schedules run on the virtual clock and are checked from the StepRecords: a step holds its
demand over [start, end).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.backends import VirtualBackend
from counterpoint.store import Entry, MemoryStore, SqliteStore, Store

GUARD_S = 2.0  # real seconds: a simulation that livelocks fails instead of hanging
EPS = 1e-9
GiB = 2**30


def workflow(
    steps: list[dict[str, Any]],
    pools: Mapping[str, object],
    deadline: object = None,
) -> cp.Workflow:
    data: dict[str, object] = {
        "name": "soft",
        "resources": {"pools": dict(pools)},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    if deadline is not None:
        data["deadline"] = deadline
    return cp.loads(json.dumps(data))


def simulate(wf: cp.Workflow) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf), GUARD_S)

    result = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED, result.error
    for rec in result.steps.values():
        assert rec.status is cp.StepState.SUCCEEDED, rec
    return result


def steps_of(n: int, uses: object, estimate: float = 10, prefix: str = "s") -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{k}", "agent": "w", "estimate": estimate, "uses": uses} for k in range(n)
    ]


def overflows(result: cp.RunResult) -> list[Any]:
    return [e for e in result.events if e.name == "overflow"]


def demands_of(wf: cp.Workflow) -> dict[str, dict[tuple[str, str], float]]:
    """Each step's demand per (pool, dimension)."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    pools = wf.resources.pools
    for step in wf.steps:
        mine: dict[tuple[str, str], float] = {}
        for name, amount in step.uses.items():
            if isinstance(amount, dict):
                for dim, n in amount.items():
                    mine[name, dim] = n
            else:
                (dim,) = pools[name].capacity
                mine[name, dim] = amount
        out[step.id] = mine
    return out


def held(
    wf: cp.Workflow, result: cp.RunResult
) -> dict[tuple[str, str], list[tuple[float, float, float, str]]]:
    """(start, end, amount, step) of every demand on each pool dimension."""
    out: dict[tuple[str, str], list[tuple[float, float, float, str]]] = defaultdict(list)
    for sid, mine in demands_of(wf).items():
        rec = result.steps[sid]
        assert rec.start is not None and rec.end is not None
        for key, n in mine.items():
            out[key].append((rec.start, rec.end, n, sid))
    return out


def usage_at(intervals: Sequence[tuple[float, float, float, str]], t: float) -> float:
    return sum(n for s, e, n, _ in intervals if s <= t < e)


def peak(intervals: Sequence[tuple[float, float, float, str]]) -> float:
    return max((usage_at(intervals, s) for s, _, _, _ in intervals), default=0.0)


def peaks(wf: cp.Workflow, result: cp.RunResult) -> dict[tuple[str, str], float]:
    return {key: peak(iv) for key, iv in held(wf, result).items()}


def sorted_starts(result: cp.RunResult) -> list[float]:
    return sorted(r.start for r in result.steps.values() if r.start is not None)


# --- only when waiting would miss the deadline --------------------------------------------------

FOUR = steps_of(4, {"db": 1})
SOFT = {"db": {"capacity": 2, "overflow": 1}}


def test_the_pool_overflows_when_waiting_would_miss_the_deadline() -> None:
    wf = workflow(FOUR, SOFT, deadline="15s")
    result = simulate(wf)
    # two fit; a third waiting until 10 would end at 20 > 15: it overflows; a fourth may not
    # (capacity 2 + overflow 1), and starts when the first three end
    assert sorted_starts(result) == [0.0, 0.0, 0.0, 10.0]
    assert peaks(wf, result) == {("db", "slots"): 3.0}
    (event,) = overflows(result)
    assert result.steps[event.step_id].start == 0.0
    assert event.time == 0.0
    assert event.data == {
        "pool": "db",
        "dimension": "slots",
        "over": 1.0,
        "capacity": 2.0,
        "must_end_by_s": 15.0,
    }


@pytest.mark.parametrize("deadline", ["20s", "25s", "1h"])
def test_a_deadline_that_waiting_meets_does_not_overflow(deadline: str) -> None:
    # waiting until 10 ends the last two at 20: 20s is just enough
    wf = workflow(FOUR, SOFT, deadline=deadline)
    result = simulate(wf)
    assert sorted_starts(result) == [0.0, 0.0, 10.0, 10.0]
    assert peaks(wf, result) == {("db", "slots"): 2.0}
    assert overflows(result) == []


def test_without_a_deadline_a_soft_pool_is_a_hard_one() -> None:
    wf = workflow(steps_of(10, {"db": 1}), {"db": {"capacity": 2, "overflow": 5}})
    result = simulate(wf)
    assert sorted_starts(result) == [10.0 * (k // 2) for k in range(10)]
    assert peaks(wf, result) == {("db", "slots"): 2.0}
    assert overflows(result) == []


def test_a_deadline_without_a_soft_pool_changes_nothing() -> None:
    wf = workflow(FOUR, {"db": 2}, deadline="1s")
    result = simulate(wf)
    assert sorted_starts(result) == [0.0, 0.0, 10.0, 10.0]
    assert overflows(result) == []


# --- never more than capacity + overflow ---------------------------------------------------------


@pytest.mark.parametrize(("overflow", "per_wave"), [(1, 3), (2, 4)])
def test_never_more_than_capacity_plus_overflow(overflow: int, per_wave: int) -> None:
    wf = workflow(
        steps_of(10, {"db": 1}), {"db": {"capacity": 2, "overflow": overflow}}, deadline="1s"
    )
    result = simulate(wf)
    # every wave is as big as the overflow allows (the deadline is missed anyway)
    assert sorted_starts(result) == [10.0 * (k // per_wave) for k in range(10)]
    assert peaks(wf, result) == {("db", "slots"): 2.0 + overflow}
    events = overflows(result)
    for e in events:
        assert e.data["capacity"] == 2.0
        assert 0 < e.data["over"] <= overflow
        assert e.time == result.steps[e.step_id].start
    # one event per step that started above capacity
    waves = [10 // per_wave * [per_wave], [10 % per_wave] if 10 % per_wave else []]
    expected = sum(max(0, w - 2) for w in [*waves[0], *waves[1]])
    assert len(events) == len({e.step_id for e in events}) == expected


def test_over_is_what_goes_above_the_capacity() -> None:
    # a holds 2 of 3; b needs 2 and would miss its deadline waiting: 1 fits, 1 is above
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 10, "uses": {"db": 2}, "priority": 1},
            {"id": "b", "agent": "w", "estimate": 10, "uses": {"db": 2}, "deadline": "15s"},
        ],
        {"db": {"capacity": 3, "overflow": 2}},
    )
    result = simulate(wf)
    assert (result.steps["a"].start, result.steps["b"].start) == (0.0, 0.0)
    (event,) = overflows(result)
    assert event.step_id == "b"
    assert event.data["over"] == 1.0
    assert peaks(wf, result) == {("db", "slots"): 4.0}


def test_overflow_of_one_dimension_of_a_weighted_pool() -> None:
    pools = {"m": {"cpu": 4, "memory": "8GiB", "overflow": {"cpu": 2}}}
    cpu_bound = workflow(steps_of(4, {"m": {"cpu": 2, "memory": "1GiB"}}), pools, deadline="1s")
    result = simulate(cpu_bound)
    assert sorted_starts(result) == [0.0, 0.0, 0.0, 10.0]
    (event,) = overflows(result)
    assert {k: event.data[k] for k in ("pool", "dimension", "over", "capacity")} == {
        "pool": "m",
        "dimension": "cpu",
        "over": 2.0,
        "capacity": 4.0,
    }
    got = peaks(cpu_bound, result)
    assert got == {("m", "cpu"): 6.0, ("m", "memory"): 3.0 * GiB}
    # memory has no overflow: it stays a hard limit whatever the deadline
    memory_bound = workflow(steps_of(3, {"m": {"cpu": 1, "memory": "4GiB"}}), pools, deadline="1s")
    result = simulate(memory_bound)
    assert sorted_starts(result) == [0.0, 0.0, 10.0]
    assert overflows(result) == []
    assert peaks(memory_bound, result)[("m", "memory")] == 8.0 * GiB


# --- a step's own deadline; the run's less the work after ------------------------------------


def test_a_step_deadline_lets_only_that_step_overflow() -> None:
    wf = workflow(
        [
            *steps_of(3, {"db": 1}),
            {
                "id": "urgent",
                "agent": "w",
                "estimate": 10,
                "uses": {"db": 1},
                "deadline": "12s",
                "priority": -5,  # last in line: only its deadline gets it in
            },
        ],
        SOFT,
    )
    result = simulate(wf)
    got = {k: r.start for k, r in result.steps.items()}
    assert got == {"s0": 0.0, "s1": 0.0, "s2": 10.0, "urgent": 0.0}
    (event,) = overflows(result)
    assert event.step_id == "urgent"
    assert event.data["must_end_by_s"] == 12.0


@pytest.mark.parametrize(("deadline", "overflows_at"), [("25s", 15.0), ("40s", None)])
def test_a_deadline_downstream_applies_upstream(deadline: str, overflows_at: float | None) -> None:
    # a -> b; b must end by the deadline, so a by the deadline less b's 10 s. x holds the
    # pool until 20: a waiting ends at 30.
    wf = workflow(
        [
            {"id": "x", "agent": "w", "estimate": 20, "uses": {"db": 1}, "priority": 10},
            {"id": "a", "agent": "w", "estimate": 10, "uses": {"db": 1}},
            {"id": "b", "agent": "w", "estimate": 10, "needs": "a", "deadline": deadline},
        ],
        {"db": {"capacity": 1, "overflow": 1}},
    )
    result = simulate(wf)
    events = overflows(result)
    if overflows_at is None:
        assert events == []
        assert result.steps["a"].start == 20.0
    else:
        (event,) = events
        assert event.step_id == "a"
        assert event.data["must_end_by_s"] == overflows_at
        assert result.steps["a"].start == 0.0
        assert result.steps["b"].end == 20.0


@pytest.mark.parametrize(("deadline", "must_end_by"), [("40s", 20.0), ("60s", None)])
def test_the_run_deadline_less_the_work_after(deadline: str, must_end_by: float | None) -> None:
    # a -> b -> c, 10 s each: a must end by the deadline less 20 s. x holds the pool until 30.
    wf = workflow(
        [
            {"id": "x", "agent": "w", "estimate": 30, "uses": {"db": 1}, "priority": 10},
            {"id": "a", "agent": "w", "estimate": 10, "uses": {"db": 1}},
            {"id": "b", "agent": "w", "estimate": 10, "needs": "a"},
            {"id": "c", "agent": "w", "estimate": 10, "needs": "b"},
        ],
        {"db": {"capacity": 1, "overflow": 1}},
        deadline=deadline,
    )
    result = simulate(wf)
    events = overflows(result)
    if must_end_by is None:  # waiting: a ends at 40 = 60 - 20, just in time
        assert events == []
        assert result.steps["a"].start == 30.0
        assert result.makespan_s == 60.0
    else:
        (event,) = events
        assert (event.step_id, event.data["must_end_by_s"]) == ("a", must_end_by)
        assert result.makespan_s == 30.0


# --- journaled with a store ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_overflow_is_journaled_once_as_an_event(kind: str, tmp_path: Path) -> None:
    wf = workflow(FOUR, SOFT, deadline="15s")

    async def go() -> tuple[cp.RunResult, list[Entry]]:
        store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "s.db")
        try:
            result = await cp.run(
                wf,
                store=store,
                clock=cp.VirtualClock(),
                backend=VirtualBackend,  # type: ignore[arg-type]
            )
            return result, await store.entries(result.run_id)
        finally:
            await store.close()

    result, entries = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    (event,) = overflows(result)
    about = [e for e in entries if e.data is not None and "overflow" in e.data]
    assert [(e.kind, e.step) for e in about] == [("event", event.step_id)]
    assert json.loads(about[0].data or "") == {
        "name": "overflow",
        "kind": "custom",
        "source": event.step_id,
        "seq": 1,
        "data": {
            "pool": "db",
            "dimension": "slots",
            "over": 1.0,
            "capacity": 2.0,
            "must_end_by_s": 15.0,
        },
    }
    assert not [e for e in entries if e.kind == "overflow"]
    # the event is written before the step's attempt starts
    kinds = [(e.kind, e.step) for e in entries]
    assert kinds.index(("event", event.step_id)) < kinds.index(("started", event.step_id))


# --- mistakes ------------------------------------------------------------------------------------

TEMPLATE = """\
name: bad
resources:
  pools:
    {pool}
agents:
  w: {{kind: noop}}
steps:
  - {{id: a, agent: w, uses: {{db: {{cpu: 1, memory: 1GiB}}}}{extra}}}
"""


def problems(pool: str, extra: str = "") -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(TEMPLATE.format(pool=pool, extra=extra), "wf.yaml")
    return [str(p) for p in info.value.problems]


def test_an_overflow_of_several_dimensions_is_given_per_dimension() -> None:
    assert problems("db: {cpu: 2, memory: 4GiB, overflow: 1}") == [
        "wf.yaml:4:42: resources.pools.db.overflow: give the overflow per dimension "
        "({cpu: 2}) when the pool has several"
    ]


def test_an_overflow_of_a_dimension_the_pool_lacks() -> None:
    assert problems("db: {cpu: 2, memory: 4GiB, overflow: {gpu: 1}}") == [
        "wf.yaml:4:9: resources.pools.db: overflow of 'gpu', which the pool does not have "
        "(cpu, memory)"
    ]


def test_a_negative_overflow() -> None:
    assert problems("db: {cpu: 2, memory: 4GiB, overflow: {cpu: -1}}") == [
        "wf.yaml:4:48: resources.pools.db.overflow.cpu: bad amount -1: it cannot be negative"
    ]


def test_a_bad_step_deadline() -> None:
    assert problems("db: {cpu: 2, memory: 4GiB}", ", deadline: soon") == [
        "wf.yaml:8:69: step 'a': deadline: bad duration 'soon': write seconds (30, 1.5) or a "
        "number with a unit (250ms, 10s, 2m, 1h30m, 1d)"
    ]


def test_deadlines_are_durations() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "deadline": "1h30m", "uses": {"db": 1}}], SOFT, deadline="2h"
    )
    assert (wf.deadline, wf.step("a").deadline) == (7200.0, 5400.0)
    assert wf.resources.pools["db"].overflow == {"slots": 1.0}


# --- property: random workflows with soft pools ---------------------------------------------------

POOLS = {
    "db": {"capacity": 3, "overflow": 1},
    "m": {"cpu": 8, "memory": "32GiB", "overflow": {"cpu": 4}},
    "gpu": 2,  # hard
}
LIMIT = {("db", "slots"): 4.0, ("m", "cpu"): 12.0, ("m", "memory"): 32.0 * GiB, ("gpu", "slots"): 2}
CAPACITY = {("db", "slots"): 3.0, ("m", "cpu"): 8.0, ("m", "memory"): 32.0 * GiB}


def random_soft_workflow(seed: int, deadlines: bool) -> cp.Workflow:
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for i in range(30):
        lo = max(0, i - 10)
        needs = rng.sample(range(lo, i), min(i - lo, rng.randint(0, 2)))
        uses: dict[str, object] = {}
        for pool in rng.sample(["db", "m", "gpu"], rng.randint(1, 2)):
            if pool == "db":
                uses["db"] = rng.randint(1, 3)
            elif pool == "gpu":
                uses["gpu"] = rng.randint(1, 2)
            else:
                uses["m"] = {"cpu": rng.randint(1, 6), "memory": f"{rng.randint(1, 16)}GiB"}
        step: dict[str, Any] = {
            "id": f"s{i}",
            "agent": "w",
            "estimate": rng.randint(1, 16) / 4,
            "needs": [f"s{j}" for j in sorted(needs)],
            "uses": uses,
        }
        if deadlines and rng.random() < 0.2:
            step["deadline"] = rng.randint(1, 20)
        steps.append(step)
    return workflow(steps, POOLS, deadline=rng.randint(5, 25) if deadlines else None)


def latest_finish(wf: cp.Workflow) -> dict[str, float]:
    """When each step must end for every deadline to be met given the estimates after it."""
    steps = wf.steps  # in order: needs come first
    est = {s.id: float(s.estimate or 0.0) for s in steps}
    succs: dict[str, list[str]] = defaultdict(list)
    for s in steps:
        for n in s.needs:
            succs[n].append(s.id)
    tail: dict[str, float] = {}  # the longest estimated work after each step
    for s in reversed(steps):
        tail[s.id] = max((est[j] + tail[j] for j in succs[s.id]), default=0.0)
    inf = float("inf")
    run = wf.deadline if wf.deadline is not None else inf
    latest = {
        s.id: min(s.deadline if s.deadline is not None else inf, run - tail[s.id]) for s in steps
    }
    for s in reversed(steps):
        for j in succs[s.id]:
            latest[s.id] = min(latest[s.id], latest[j] - est[j])
    return latest


@pytest.mark.parametrize("seed", range(20))
def test_random_soft_pools_stay_within_their_overflow(seed: int) -> None:
    wf = random_soft_workflow(seed, deadlines=True)
    result = simulate(wf)
    usage = held(wf, result)
    for key, top in peaks(wf, result).items():
        assert top <= LIMIT[key] + EPS, f"{key}: {top} held at once"
    events = overflows(result)
    latest = latest_finish(wf)
    est = {s.id: float(s.estimate or 0.0) for s in wf.steps}
    over_by_step: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for e in events:
        key = (e.data["pool"], e.data["dimension"])
        rec = result.steps[e.step_id]
        assert rec.start == e.time
        assert e.data["capacity"] == CAPACITY[key]
        assert 0 < e.data["over"] <= LIMIT[key] - CAPACITY[key] + EPS
        assert e.data["must_end_by_s"] == pytest.approx(latest[e.step_id])
        others = [
            (s, end, n) for s, end, n, sid in usage[key] if s <= e.time < end and sid != e.step_id
        ]
        assert others, "above capacity with nothing else holding the pool"
        if all(s < e.time for s, _, _ in others):  # what was free when it came is known
            # it could not have waited: the pool comes back as the steps holding it end, and
            # by the time enough had come back it would have ended too late
            need = demands_of(wf)[e.step_id][key]
            free = CAPACITY[key] - sum(n for _, _, n in others)
            assert e.data["over"] == pytest.approx(need - max(free, 0.0))
            short, when = need - free, e.time
            for end, n in sorted((end, n) for _, end, n in others):
                short, when = short - n, end
                if short <= EPS:
                    break
            assert when + est[e.step_id] > e.data["must_end_by_s"] + EPS
        over_by_step[e.step_id][key] = e.data["over"]
    # above the capacity only by what the running overflowing steps added
    for key, intervals in usage.items():
        if key not in CAPACITY:
            continue
        for t in {s for s, _, _, _ in intervals}:
            excess = usage_at(intervals, t) - CAPACITY[key]
            allowed = sum(
                over_by_step[sid].get(key, 0.0) for s, e, _, sid in intervals if s <= t < e
            )
            assert excess <= allowed + EPS, (key, t, excess, allowed)


@pytest.mark.parametrize("seed", range(10))
def test_random_soft_pools_without_deadlines_never_overflow(seed: int) -> None:
    wf = random_soft_workflow(seed, deadlines=False)
    result = simulate(wf)
    assert overflows(result) == []
    for key, top in peaks(wf, result).items():
        assert top <= CAPACITY.get(key, LIMIT[key]) + EPS, f"{key}: {top} held at once"
