"""Pools on the virtual clock: running demands never exceed a capacity, in any dimension, and
atomic admission cannot deadlock.

Every schedule is checked from the StepRecords alone: a step holds its demand over
[start, end), so at each instant the sum of the demands of the steps running then must fit.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.scheduler.core import Scheduler
from counterpoint.scheduler.engine import Priority
from counterpoint.scheduler.resources import ResourceManager, compile_demands

GiB = 2**30
GUARD_S = 10.0  # real seconds: a simulation that livelocks fails instead of hanging
EPS = 1e-9


def workflow(steps: list[dict[str, Any]], pools: Mapping[str, object]) -> cp.Workflow:
    data = {
        "name": "pools",
        "resources": {"pools": dict(pools)},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    return cp.loads(json.dumps(data))


def simulate(
    wf: cp.Workflow, workers: int | None = None, priority: Priority = "planned"
) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, workers=workers, priority=priority), GUARD_S)

    result = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    for rec in result.steps.values():
        assert rec.status is cp.StepState.SUCCEEDED, rec
        assert rec.start is not None and rec.end is not None
    return result


def peak(intervals: Sequence[tuple[float, float, float]]) -> float:
    """The most held at once by intervals (start, end, amount), each held over [start, end)."""
    events = sorted(
        [(s, 1, n) for s, _, n in intervals] + [(e, 0, -n) for _, e, n in intervals]
    )  # at the same instant, ends (0) come before starts (1)
    held = best = 0.0
    for _, _, n in events:
        held += n
        best = max(best, held)
    return best


def demands_of(wf: cp.Workflow) -> dict[str, dict[tuple[str, str], float]]:
    """Each step's demand per (pool, dimension), read from the workflow as written."""
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


def check_capacities(wf: cp.Workflow, result: cp.RunResult) -> dict[tuple[str, str], float]:
    """Assert no pool dimension is ever over capacity; returns the peaks."""
    held: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for sid, mine in demands_of(wf).items():
        rec = result.steps[sid]
        assert rec.start is not None and rec.end is not None
        for key, n in mine.items():
            held[key].append((rec.start, rec.end, n))
    peaks = {}
    for (name, dim), intervals in held.items():
        cap = wf.resources.pools[name].capacity[dim]
        peaks[name, dim] = top = peak(intervals)
        assert top <= cap + EPS, f"{name}.{dim}: {top:g} held at once, capacity {cap:g}"
    return peaks


def check_needs_and_workers(wf: cp.Workflow, result: cp.RunResult, workers: int | None) -> None:
    for step in wf.steps:
        rec = result.steps[step.id]
        assert rec.start is not None
        for need in step.needs:
            end = result.steps[need].end
            assert end is not None and end <= rec.start + EPS, (need, step.id)
    if workers is not None:
        ones = [(r.start, r.end, 1.0) for r in result.steps.values()]
        assert peak(ones) <= workers  # type: ignore[arg-type]


def random_workflow(seed: int, n: int = 60) -> cp.Workflow:
    """A random DAG whose steps use up to three of: a count of 3, a count of 2, a weighted
    machine {cpu: 8, memory: 32GiB} (any subset of its dimensions) and a weighted
    {io: 100, space: 1TB}."""
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for i in range(n):
        lo = max(0, i - 12)
        needs = sorted(rng.sample(range(lo, i), min(i - lo, rng.randint(0, 3))))
        uses: dict[str, object] = {}
        for pool in rng.sample(["db", "gpu", "machine", "disk"], rng.randint(0, 3)):
            if pool == "db":
                uses["db"] = rng.randint(1, 3)
            elif pool == "gpu":
                uses["gpu"] = rng.randint(1, 2)
            elif pool == "machine":
                dims = rng.sample(["cpu", "memory"], rng.randint(1, 2))
                uses["machine"] = {
                    d: rng.randint(1, 8) if d == "cpu" else f"{rng.randint(1, 32)}GiB" for d in dims
                }
            else:
                uses["disk"] = {"io": rng.randint(10, 100), "space": f"{rng.randint(1, 9)}00GB"}
        step: dict[str, Any] = {
            "id": f"s{i}",
            "agent": "w",
            "estimate": rng.randint(1, 12) / 4,  # quarters: exact binary fractions
            "needs": [f"s{j}" for j in needs],
        }
        if uses:
            step["uses"] = uses
        steps.append(step)
    pools = {
        "db": 3,
        "gpu": 2,
        "machine": {"cpu": 8, "memory": "32GiB"},
        "disk": {"io": 100, "space": "1TB"},
    }
    return workflow(steps, pools)


# --- the checker itself ----------------------------------------------------------------------


def test_peak_counts_overlaps_and_not_touching_intervals() -> None:
    assert peak([(0, 1, 2), (1, 2, 2)]) == 2  # one ends as the other starts
    assert peak([(0, 1, 2), (0.5, 2, 2)]) == 4
    assert peak([(0, 3, 1), (1, 2, 1), (1.5, 4, 1), (3, 5, 1)]) == 3


def test_a_schedule_over_capacity_is_caught() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 1, "uses": {"m": {"cpu": 5}}},
            {"id": "b", "agent": "w", "estimate": 1, "uses": {"m": {"cpu": 4}}},
        ],
        {"m": {"cpu": 8, "memory": "1GiB"}},
    )
    result = simulate(wf)
    assert result.steps["b"].start == 1.0
    result.steps["b"].start = 0.5  # forge an overlap: the check must see it
    with pytest.raises(AssertionError, match=r"m\.cpu: 9 held at once, capacity 8"):
        check_capacities(wf, result)


# --- capacities are never exceeded -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize(
    ("workers", "priority"),
    [(None, "planned"), (None, "fifo"), (1, "critical-path"), (2, "fifo"), (3, "critical-path")],
)
def test_random_dags_never_exceed_a_capacity(
    seed: int, workers: int | None, priority: Priority
) -> None:
    wf = random_workflow(seed)
    result = simulate(wf, workers, priority)
    peaks = check_capacities(wf, result)
    check_needs_and_workers(wf, result, workers)
    assert peaks  # the pools were used
    if workers is None:  # the pools are what limits the run: they are used to the full
        assert max(peaks[key] / wf.resources.pools[key[0]].capacity[key[1]] for key in peaks) == 1


def test_weighted_pool_admits_what_fits_in_every_dimension() -> None:
    # 8 cpu, 32GiB: a and b fit together (6 cpu, 32GiB); c (1 cpu, 1GiB) waits for memory
    # though cpu is free; d (2 cpu, no memory) starts at once beside a and b.
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 2, "uses": {"m": {"cpu": 4, "memory": "16GiB"}}},
            {"id": "b", "agent": "w", "estimate": 1, "uses": {"m": {"cpu": 2, "memory": "16GiB"}}},
            {"id": "c", "agent": "w", "estimate": 1, "uses": {"m": {"cpu": 1, "memory": "1GiB"}}},
            {"id": "d", "agent": "w", "estimate": 3, "uses": {"m": {"cpu": 2}}},
        ],
        {"m": {"cpu": 8, "memory": "32GiB"}},
    )
    result = simulate(wf, priority="fifo")
    starts = {k: r.start for k, r in result.steps.items()}
    assert starts == {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0}
    check_capacities(wf, result)


def test_a_count_pool_runs_waves() -> None:
    wf = workflow(
        [{"id": f"d{i}", "agent": "w", "estimate": 1, "uses": {"db": 1}} for i in range(5)],
        {"db": 2},
    )
    result = simulate(wf, priority="fifo")
    assert [result.steps[f"d{i}"].start for i in range(5)] == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert result.makespan_s == 3.0


def test_pools_are_given_back_when_a_step_fails() -> None:
    wf = cp.loads(
        json.dumps(
            {
                "name": "fails",
                "resources": {"pools": {"db": 1}},
                "agents": {
                    "bad": {"kind": "program", "argv": ["false"]},
                    "w": {"kind": "noop"},
                },
                "steps": [
                    {"id": "a", "agent": "bad", "uses": {"db": 1}},
                    {"id": "b", "agent": "w", "uses": {"db": 1}},
                    {"id": "c", "agent": "w", "uses": {"db": 1}},
                ],
            }
        )
    )

    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.run(wf, priority="fifo"), GUARD_S)

    result = asyncio.run(go())
    assert result.steps["a"].status is cp.StepState.FAILED
    assert result.steps["b"].status is cp.StepState.SUCCEEDED
    assert result.steps["c"].status is cp.StepState.SUCCEEDED


# --- no deadlock: a step takes all it needs at once, or nothing ---------------------------------


def test_two_steps_each_needing_a_and_b_run_one_after_the_other() -> None:
    wf = workflow(
        [
            {"id": "x", "agent": "w", "estimate": 1, "uses": {"A": 1, "B": 1}},
            {"id": "y", "agent": "w", "estimate": 1, "uses": {"B": 1, "A": 1}},
        ],
        {"A": 1, "B": 1},
    )
    for workers in (None, 1, 2):
        result = simulate(wf, workers, "fifo")
        assert (result.steps["x"].start, result.steps["y"].start) == (0.0, 1.0)
        assert result.makespan_s == 2.0


@pytest.mark.parametrize("workers", [None, 3])
def test_many_steps_each_needing_a_and_b_run_one_at_a_time(workers: int | None) -> None:
    n = 30
    steps = [
        {
            "id": f"s{i}",
            "agent": "w",
            "estimate": 1,
            "uses": {"A": 1, "B": 1} if i % 2 else {"B": 1, "A": 1},  # both orders
        }
        for i in range(n)
    ]
    wf = workflow(steps, {"A": 1, "B": 1})
    result = simulate(wf, workers, "fifo")
    assert sorted(r.start for r in result.steps.values()) == [float(i) for i in range(n)]
    assert result.makespan_s == n
    check_capacities(wf, result)


def test_cyclic_demands_complete() -> None:
    # x wants A and B, y wants B and C, z wants C and A: each pair shares a pool, so one runs
    # at a time; a scheduler taking pools one by one could end with each holding one.
    wf = workflow(
        [
            {"id": "x", "agent": "w", "estimate": 1, "uses": {"A": 1, "B": 1}},
            {"id": "y", "agent": "w", "estimate": 1, "uses": {"B": 1, "C": 1}},
            {"id": "z", "agent": "w", "estimate": 1, "uses": {"C": 1, "A": 1}},
            {"id": "u", "agent": "w", "estimate": 1, "uses": {"B": 1, "A": 1}},
        ],
        {"A": 1, "B": 1, "C": 1},
    )
    for workers in (None, 2):
        result = simulate(wf, workers, "fifo")
        assert sorted(r.start for r in result.steps.values()) == [0.0, 1.0, 2.0, 3.0]
        check_capacities(wf, result)


def test_cyclic_demands_with_weights_complete() -> None:
    # Two-unit pools, every step takes 1 of one and 2 of the next: at most one at a time
    # holds all of a pool, so a partial-holding scheduler would deadlock with all four started.
    names = ["P", "Q", "R", "S"]
    steps = [
        {"id": f"s{k}", "agent": "w", "estimate": 1, "uses": {names[i]: 1, names[(i + 1) % 4]: 2}}
        for k in range(8)
        for i in [k % 4]
    ]
    wf = workflow(steps, dict.fromkeys(names, 2))
    result = simulate(wf, None, "fifo")
    check_capacities(wf, result)
    assert result.makespan_s <= 8


# --- the scheduler's admission, directly ---------------------------------------------------------


def test_admission_is_atomic_and_backfills() -> None:
    wf = workflow(
        [
            {"id": "h", "agent": "w", "estimate": 5, "uses": {"A": 1}},
            {"id": "x", "agent": "w", "estimate": 1, "uses": {"A": 1, "B": 1}},
            {"id": "y", "agent": "w", "estimate": 1, "uses": {"B": 1}},
        ],
        {"A": 1, "B": 1},
    )
    demands, problems = compile_demands(wf.resources, wf.steps)
    assert not problems
    res = ResourceManager(wf.resources, demands, 0.0)
    sched = Scheduler(wf.graph, [3.0, 2.0, 1.0], resources=res)
    started = sched.take(0.0)
    ids = wf.graph.ids
    assert [ids[i] for i in started] == ["h", "y"]  # x holds nothing, so y can take B
    assert res.skipped[wf.graph.index["x"]] == 1
    sched.succeeded(wf.graph.index["y"])
    assert sched.take(1.0) == []  # A is still held by h
    sched.succeeded(wf.graph.index["h"])
    assert [ids[i] for i in sched.take(5.0)] == ["x"]
    sched.succeeded(wf.graph.index["x"])
    assert sched.finished
