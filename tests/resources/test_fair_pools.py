"""Fair pools: the streams of a parallel block that compete for a pool with ``fair: true`` are
held to their weighted share of it (the block's ``shares``, 1 by default) while another stream
has a ready step that wants it; an idle stream's share is used by the others; a weighted pool
is shared by dominant share (the largest fraction of any of its dimensions).

Each stream below is one nested parallel block of independent steps, so a stream may run
several steps at once and all of them are ready from the start. Runs are on the virtual clock
(no ``max_concurrency``: only the pool limits them); concurrency is read from the
StepRecords, a step running over [start, end).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

import counterpoint as cp

GUARD_S = 2.0  # real seconds: a simulation that livelocks fails instead of hanging
EPS = 1e-9
GiB = 2**30


def stream(name: str, n: int, uses: object = None, estimate: float = 10) -> list[dict[str, Any]]:
    """A stream of ``n`` independent steps ``{name}0``... (one parallel block)."""
    steps = [
        {"id": f"{name}{k}", "agent": "w", "estimate": estimate, "uses": uses or {"gpu": 1}}
        for k in range(n)
    ]
    return [{"parallel": {"id": f"{name}-work", "steps": steps}}]


def workflow(
    streams: Mapping[str, list[dict[str, Any]]],
    pools: Mapping[str, object],
    shares: Mapping[str, int] | None = None,
) -> cp.Workflow:
    block: dict[str, object] = {"id": "block", "streams": dict(streams)}
    if shares:
        block["shares"] = dict(shares)
    data = {
        "name": "fair",
        "resources": {"pools": dict(pools)},
        "agents": {"w": {"kind": "noop"}},
        "steps": [{"parallel": block}],
    }
    return cp.loads(json.dumps(data))


def simulate(wf: cp.Workflow, start: datetime | None = None) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, start_at=start), GUARD_S)

    result = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED, result.error
    return result


def running(result: cp.RunResult, prefix: str, t: float) -> int:
    """How many of the steps whose id starts with ``prefix`` run at ``t``."""
    return sum(
        1
        for k, r in result.steps.items()
        if k.startswith(prefix) and r.start is not None and r.end is not None
        if r.start <= t < r.end and r.end > r.start
    )


def profile(result: cp.RunResult, *prefixes: str) -> list[tuple[float, ...]]:
    """(t, running of each prefix) at every start and end."""
    times = sorted(
        {r.start for r in result.steps.values() if r.start is not None}
        | {r.end for r in result.steps.values() if r.end is not None}
    )
    return [(t, *(running(result, p, t) for p in prefixes)) for t in times]


GPU4 = {"gpu": {"capacity": 4, "fair": True}}


def test_shares_3_to_1_give_3_and_1_slots_while_both_have_work() -> None:
    wf = workflow({"a": stream("a", 12), "b": stream("b", 12)}, GPU4, {"a": 3, "b": 1})
    result = simulate(wf)
    # a: 3 at a time, done at 40; b: 1 at a time meanwhile (4 done), then the whole pool
    assert profile(result, "a", "b") == [
        (0.0, 3, 1),
        (10.0, 3, 1),
        (20.0, 3, 1),
        (30.0, 3, 1),
        (40.0, 0, 4),
        (50.0, 0, 4),
        (60.0, 0, 0),
    ]
    assert result.makespan_s == 60.0


def test_equal_weights_by_default() -> None:
    wf = workflow({"a": stream("a", 12), "b": stream("b", 12)}, GPU4)
    result = simulate(wf)
    assert profile(result, "a", "b") == [(10.0 * k, 2, 2) for k in range(6)] + [(60.0, 0, 0)]


def test_an_idle_streams_share_is_used_by_the_others() -> None:
    wf = workflow({"a": stream("a", 12), "b": stream("b", 4)}, GPU4)
    result = simulate(wf)
    # 2 and 2 until b has no more work (at 20); then a has the whole pool
    assert profile(result, "a", "b") == [
        (0.0, 2, 2),
        (10.0, 2, 2),
        (20.0, 4, 0),
        (30.0, 4, 0),
        (40.0, 0, 0),
    ]


def test_a_bigger_share_is_used_by_the_other_stream_when_idle() -> None:
    wf = workflow({"a": stream("a", 3), "b": stream("b", 9)}, GPU4, {"a": 3, "b": 1})
    result = simulate(wf)
    # a's three steps take its 3 slots; b has 1, then all 4 once a has no more work
    assert profile(result, "a", "b") == [(0.0, 3, 1), (10.0, 0, 4), (20.0, 0, 4), (30.0, 0, 0)]


def test_a_pool_that_is_not_fair_keeps_pure_priority_order() -> None:
    def urgent(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for s in steps[0]["parallel"]["steps"]:
            s["priority"] = 5
        return steps

    streams = {"a": stream("a", 12), "b": urgent(stream("b", 12))}
    plain = simulate(workflow(streams, {"gpu": 4}))
    # b's steps are more urgent: b has the whole pool until its work is done
    assert profile(plain, "a", "b") == [
        (0.0, 0, 4),
        (10.0, 0, 4),
        (20.0, 0, 4),
        (30.0, 4, 0),
        (40.0, 4, 0),
        (50.0, 4, 0),
        (60.0, 0, 0),
    ]
    fair = simulate(workflow(streams, GPU4))
    assert profile(fair, "a", "b") == [(10.0 * k, 2, 2) for k in range(6)] + [(60.0, 0, 0)]


def test_a_weighted_pool_is_shared_by_dominant_share() -> None:
    # a's steps take half the memory (1/8 of the cpu); b's 1/8 of the cpu (1/32 of the
    # memory). Half each by dominant share: a runs 1 step at a time and b 4 (counting steps,
    # or cpu, would give 2 and 2 or more to a)
    machine = {"m": {"cpu": 8, "memory": "32GiB", "fair": True}}
    wf = workflow(
        {
            "a": stream("a", 4, {"m": {"cpu": 1, "memory": "16GiB"}}),
            "b": stream("b", 16, {"m": {"cpu": 1, "memory": "1GiB"}}),
        },
        machine,
    )
    result = simulate(wf)
    assert profile(result, "a", "b") == [(10.0 * k, 1, 4) for k in range(4)] + [(40.0, 0, 0)]


def test_dominant_shares_with_weights() -> None:
    # shares 1:3: b may hold 3/4 (6 of its steps); a's step alone is above a's quarter, and
    # still one runs at a time
    machine = {"m": {"cpu": 8, "memory": "32GiB", "fair": True}}
    wf = workflow(
        {
            "a": stream("a", 2, {"m": {"cpu": 1, "memory": "16GiB"}}),
            "b": stream("b", 12, {"m": {"cpu": 1, "memory": "1GiB"}}),
        },
        machine,
        {"a": 1, "b": 3},
    )
    result = simulate(wf)
    assert profile(result, "a", "b") == [(0.0, 1, 6), (10.0, 1, 6), (20.0, 0, 0)]


def test_every_stream_gets_a_step_in_even_one_bigger_than_its_share() -> None:
    # b's share is 1 slot of 4; its one step needs 2: it still runs, from the start, and a
    # uses what is left
    wf = workflow({"b": stream("b", 1, {"gpu": 2}), "a": stream("a", 12)}, GPU4, {"a": 3, "b": 1})
    result = simulate(wf)
    assert result.steps["b0"].start == 0.0
    assert profile(result, "a", "b") == [
        (0.0, 2, 1),
        (10.0, 4, 0),
        (20.0, 4, 0),
        (30.0, 2, 0),
        (40.0, 0, 0),
    ]


def test_a_big_step_of_a_small_share_is_not_starved() -> None:
    wf = workflow({"a": stream("a", 12), "b": stream("b", 1, {"gpu": 2})}, GPU4, {"a": 3, "b": 1})
    result = simulate(wf)
    last_a = max(result.steps[f"a{k}"].start or 0.0 for k in range(12))
    assert (result.steps["b0"].start or 0.0) < last_a


def test_a_pool_of_three_shared_by_two_equal_streams_is_used_fully() -> None:
    wf = workflow(
        {"a": stream("a", 6), "b": stream("b", 6)}, {"gpu": {"capacity": 3, "fair": True}}
    )
    result = simulate(wf)
    assert running(result, "a", 0.0) + running(result, "b", 0.0) == 3
    assert result.makespan_s == 40.0


def test_a_stream_waiting_for_a_window_does_not_hold_the_others_back() -> None:
    night = {"gpu": 1, "night": 1}
    wf = workflow(
        {"a": stream("a", 4, night), "b": stream("b", 8)},
        {**GPU4, "night": {"capacity": 4, "available": "22:00-06:00"}},
    )
    result = simulate(wf, start=datetime(2026, 11, 27, 12, tzinfo=UTC))
    assert running(result, "b", 0.0) == 4
    assert max(result.steps[f"b{k}"].end or 0.0 for k in range(8)) == 20.0


def test_shares_also_cap_the_concurrency_with_max_concurrency() -> None:
    # with max_concurrency, shares also split the workers (3 and 1 of 4); a fair pool of 8
    # does not change that
    wf = workflow(
        {"a": stream("a", 6), "b": stream("b", 6)},
        {"gpu": {"capacity": 8, "fair": True}},
        {"a": 3, "b": 1},
    )

    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, workers=4), GUARD_S)

    result = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert profile(result, "a", "b")[:2] == [(0.0, 3, 1), (10.0, 3, 1)]


# --- property: two streams on a fair pool ------------------------------------------------------


def random_streams(seed: int) -> tuple[cp.Workflow, dict[str, float], dict[str, dict[str, float]]]:
    """Two streams of independent steps of random sizes on a fair weighted pool; returns the
    workflow, each stream's weighted share and each step's dominant share."""
    rng = random.Random(seed)
    cap = {"cpu": 8.0, "memory": 32.0}
    weights = {"a": rng.randint(1, 4), "b": rng.randint(1, 4)}
    streams: dict[str, list[dict[str, Any]]] = {}
    dominant: dict[str, dict[str, float]] = {"a": {}, "b": {}}
    for name in ("a", "b"):
        steps = []
        for k in range(rng.randint(4, 14)):
            cpu, mem = rng.randint(1, 6), rng.randint(1, 20)
            steps.append(
                {
                    "id": f"{name}{k}",
                    "agent": "w",
                    "estimate": rng.randint(1, 12) / 4,
                    "uses": {"m": {"cpu": cpu, "memory": f"{mem}GiB"}},
                }
            )
            dominant[name][f"{name}{k}"] = max(cpu / cap["cpu"], mem / cap["memory"])
        streams[name] = [{"parallel": {"id": f"{name}-work", "steps": steps}}]
    wf = workflow(
        streams,
        {"m": {"cpu": 8, "memory": "32GiB", "fair": True}},
        {"a": weights["a"], "b": weights["b"]},
    )
    total = sum(weights.values())
    return wf, {g: w / total for g, w in weights.items()}, dominant


@pytest.mark.parametrize("seed", range(20))
def test_random_streams_hold_to_their_share_while_the_other_waits(seed: int) -> None:
    wf, share, dominant = random_streams(seed)
    result = simulate(wf)
    span: dict[str, tuple[float, float]] = {}
    for of_stream in dominant.values():
        for sid in of_stream:
            rec = result.steps[sid]
            assert rec.start is not None and rec.end is not None
            span[sid] = (rec.start, rec.end)
    times = sorted({t for pair in span.values() for t in pair})
    last_start = {g: max(span[s][0] for s in dominant[g]) for g in dominant}
    for t in times:
        run = {g: [s for s in dominant[g] if span[s][0] <= t < span[s][1]] for g in dominant}
        cpu = memory = 0.0
        for names in run.values():
            for s in names:
                uses = wf.step(s).uses["m"]
                assert isinstance(uses, dict)
                cpu += uses["cpu"]
                memory += uses["memory"]
        assert cpu <= 8 + EPS and memory <= 32 * GiB + EPS  # the capacity, always
        for g, other in (("a", "b"), ("b", "a")):
            if t >= last_start[other]:
                continue  # the other stream is not waiting any more: g may use any of it
            # shares are rounded up to whole steps: without its largest step, a stream holds
            # less than its share
            held = sum(dominant[g][s] for s in run[g])
            largest = max((dominant[g][s] for s in run[g]), default=0.0)
            assert held - largest < share[g] + EPS, (
                f"t={t}: stream {g} holds {held:.3f} (share {share[g]:.3f}) while {other} waits"
            )
