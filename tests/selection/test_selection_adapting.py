"""Adapting the coordination during a run, on the virtual clock: capacity changes, failure
cascades, coordination bottlenecks, resource contention, added steps; ``adapt=False``; the
journal; and resumed runs that go on as they were switched to."""

from __future__ import annotations

import asyncio
import json

import pytest
import selkit
from selkit import SLOW_LEVEL as UNBALANCED
from selkit import aresume, events, level_barriers_hold, most_at_once, times

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.scheduler.engine import Engine

TWELVE = "".join(
    f"  - {{id: s{i:02d}, agent: n, estimate: 2, uses: {{p: 1}}}}\n" for i in range(12)
)
POOLED = (
    "name: pooled\nresources:\n  pools:\n    p: 4\nagents:\n  n: {kind: noop}\nsteps:\n" + TWELVE
)


RESOURCE_CHANGE = "resource availability change"


# A pattern given to ``run`` does not adapt unless asked: these runs ask (``adapt=False`` to
# see what the run would do without).


def vrun(wf: cp.Workflow, **kw: object) -> cp.RunResult:
    kw.setdefault("adapt", True)
    return selkit.vrun(wf, **kw)


async def arun(wf: cp.Workflow, **kw: object) -> cp.RunResult:
    kw.setdefault("adapt", True)
    return await selkit.arun(wf, **kw)  # type: ignore[arg-type]


def capacity(data: dict[str, object], at: float = 3.0) -> dict[str, object]:
    return {"send": {at: ("capacity_changed", data)}}


def adapted(result: cp.RunResult) -> list[tuple[float, dict[str, object]]]:
    return events(result, "pattern_adapted")


# --- resource availability change ------------------------------------------------------------


def test_a_pool_halved_mid_run_is_planned_for() -> None:
    result = vrun(
        cp.loads(POOLED),
        pattern="parallel",
        **capacity({"pool": "p", "capacity": {"slots": 2}}),
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    change = {
        "trigger": RESOURCE_CHANGE,
        "from": "parallel",
        "to": "resource-aware",
        "reason": "p 4 -> 2: the rest is planned for it",
        "at_s": 3.0,
        "steps_left": 8,  # four running, four not started
    }
    assert adapted(result) == [(3.0, change)]
    assert result.adaptations == [change]
    assert [name for _, name in ((e.time, e.name) for e in result.events)] == [
        "capacity_changed",
        "replanned",
        "pattern_adapted",
    ]
    # the four running steps keep what they hold and end at 4; then two at a time
    assert most_at_once(result, after=4.0) == 2
    assert sorted(r.start for r in result.steps.values()) == [0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 6, 6]
    assert result.makespan_s == 8.0


def test_a_count_pool_takes_a_plain_capacity() -> None:
    result = vrun(cp.loads(POOLED), pattern="parallel", **capacity({"pool": "p", "capacity": 2}))
    assert events(result, "adaptation_refused") == []
    assert [d["trigger"] for _, d in adapted(result)] == [RESOURCE_CHANGE]
    assert most_at_once(result, after=4.0) == 2
    assert result.makespan_s == 8.0


def test_room_for_one_step_at_a_time_degrades_to_sequential() -> None:
    result = vrun(
        cp.loads(POOLED),
        pattern="parallel",
        **capacity({"pool": "p", "capacity": {"slots": 1}}),
    )
    assert result.adaptations == [
        {
            "trigger": RESOURCE_CHANGE,
            "from": "parallel",
            "to": "sequential",
            "reason": "p 4 -> 1: room for one step at a time",
            "at_s": 3.0,
            "steps_left": 8,
            "max_concurrency": 1,
        }
    ]
    assert most_at_once(result, after=4.0) == 1
    assert result.makespan_s == 12.0  # s08..s11 one after the other, from 4


def test_a_capacity_below_what_a_step_needs_is_refused() -> None:
    wf = cp.loads(
        """\
name: needy
resources:
  pools:
    p: 4
agents:
  n: {kind: noop}
steps:
  - {id: big, agent: n, estimate: 2, uses: {p: 3}}
  - {id: small, agent: n, estimate: 2, uses: {p: 1}}
  - {id: big2, agent: n, estimate: 2, uses: {p: 3}, needs: big}
  - {id: small2, agent: n, estimate: 2, uses: {p: 1}, needs: small}
"""
    )
    result = vrun(wf, pattern="parallel", **capacity({"pool": "p", "capacity": {"slots": 2}}, 1.0))
    assert events(result, "adaptation_refused") == [
        (1.0, {"reason": "a step needs 3 of p; capacity stays"})
    ]
    assert adapted(result) == []
    assert result.adaptations == []
    assert times(result) == {  # the capacity stayed 4: big2 and small2 together
        "big": (0.0, 2.0),
        "small": (0.0, 2.0),
        "big2": (2.0, 4.0),
        "small2": (2.0, 4.0),
    }


def test_a_capacity_change_of_an_unknown_pool_is_refused() -> None:
    result = vrun(
        cp.loads(POOLED), pattern="parallel", **capacity({"pool": "q", "capacity": {"slots": 1}})
    )
    assert events(result, "adaptation_refused") == [(3.0, {"reason": "no pool q.slots"})]
    assert result.adaptations == []
    assert result.makespan_s == 6.0  # four at a time, as declared


FAN = """\
name: fan
agents:
  n: {kind: noop}
steps:
  - {id: root, agent: n, estimate: 1}
""" + "".join(f"  - {{id: w{i}, agent: n, estimate: 2, needs: root}}\n" for i in range(6))


def test_workers_change_how_many_steps_run_at_once() -> None:
    result = vrun(cp.loads(FAN), pattern="parallel", **capacity({"workers": 2}, 0.5))
    assert result.adaptations == [
        {
            "trigger": RESOURCE_CHANGE,
            "from": "parallel",
            "to": "resource-aware",
            "reason": "workers any -> 2: the rest is planned for it",
            "at_s": 0.5,
            "steps_left": 7,
        }
    ]
    assert most_at_once(result) == 2
    assert sorted(r.start for r in result.steps.values()) == [0, 1, 1, 3, 3, 5, 5]
    assert result.makespan_s == 7.0


def test_one_worker_degrades_to_sequential() -> None:
    result = vrun(cp.loads(FAN), pattern="parallel", **capacity({"workers": 1}, 0.5))
    assert [(d["to"], d["max_concurrency"]) for _, d in adapted(result)] == [("sequential", 1)]
    assert most_at_once(result) == 1
    assert result.makespan_s == 13.0


def test_without_adapting_the_capacity_changes_but_the_pattern_does_not() -> None:
    result = vrun(
        cp.loads(POOLED),
        pattern="parallel",
        adapt=False,
        **capacity({"pool": "p", "capacity": {"slots": 1}}),
    )
    assert adapted(result) == []
    assert result.adaptations == []
    assert [e.name for e in result.events] == ["capacity_changed"]
    assert most_at_once(result, after=4.0) == 1  # the pool has one slot from now on
    assert result.makespan_s == 12.0
    workers = vrun(cp.loads(FAN), pattern="parallel", adapt=False, **capacity({"workers": 2}, 0.5))
    assert workers.adaptations == []
    assert most_at_once(workers) == 2
    assert workers.makespan_s == 7.0


# --- failure cascade ---------------------------------------------------------------------------

CASCADE = "name: cascade\nmax_concurrency: 3\nagents:\n  n: {kind: noop}\nsteps:\n" + "".join(
    f"  - {{id: s{i}, agent: n, estimate: {1 + i % 3}}}\n" for i in range(10)
)


def first_four_fail(job: Job) -> str | None:
    return "boom" if job.step_id in ("s0", "s1", "s2", "s3") else None


def test_a_failure_cascade_switches_to_one_step_at_a_time() -> None:
    result = vrun(cp.loads(CASCADE), pattern="parallel", fail=first_four_fail)
    assert result.status is cp.RunStatus.FAILED
    assert result.adaptations == [
        {
            "trigger": "failure cascade",
            "from": "parallel",
            "to": "sequential",
            "reason": "3 of the last 3 steps failed: one step at a time, so a failing step stops "
            "the least work",
            "at_s": 2.0,
            "steps_left": 7,
            "max_concurrency": 1,
        }
    ]
    # s2 was running and goes on; from then on, one step at a time
    assert times(result) == {
        "s0": (0.0, 1.0),
        "s1": (0.0, 2.0),
        "s2": (0.0, 3.0),
        "s3": (1.0, 2.0),
        "s4": (3.0, 5.0),
        "s5": (5.0, 8.0),
        "s6": (8.0, 9.0),
        "s7": (9.0, 11.0),
        "s8": (11.0, 14.0),
        "s9": (14.0, 15.0),
    }


def test_failures_that_retries_recover_are_no_cascade() -> None:
    wf = cp.loads(
        CASCADE.replace(
            "max_concurrency: 3\n",
            "max_concurrency: 3\ndefaults:\n  retries: {max: 1, backoff: 0.5, jitter: 0}\n",
        )
    )

    def first_attempts_fail(job: Job) -> str | None:
        return "flaked" if job.attempt == 1 and job.step_id in ("s0", "s1", "s2", "s3") else None

    result = vrun(wf, pattern="parallel", fail=first_attempts_fail)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.adaptations == []


def test_a_failure_cascade_is_left_alone_without_adapting() -> None:
    result = vrun(cp.loads(CASCADE), pattern="parallel", fail=first_four_fail, adapt=False)
    assert result.adaptations == []
    assert most_at_once(result, after=2.0) == 3


# --- coordination bottleneck -------------------------------------------------------------------


def test_a_barrier_holding_back_ready_work_is_dropped() -> None:
    wf = cp.loads(UNBALANCED)
    result = vrun(wf, pattern="hybrid")
    assert result.adaptations == [
        {
            "trigger": "coordination bottleneck",
            "from": "hybrid",
            "to": "event-driven",
            "reason": "the phase barrier held back 12s of ready work while workers were idle: "
            "steps now start as soon as their needs are done",
            "at_s": 1.0,
            "steps_left": 6,
        }
    ]
    assert {s: r.start for s, r in result.steps.items() if s.startswith("c")} == {
        "c1": 1.0,
        "c2": 1.0,
        "c3": 1.0,
        "c4": 1.0,
    }
    assert result.makespan_s == 11.0
    kept = vrun(wf, pattern="hybrid", adapt=False)
    assert kept.adaptations == []
    assert kept.steps["c1"].start == 10.0
    assert kept.makespan_s == 13.0
    assert level_barriers_hold(wf, kept)


def test_a_barrier_that_held_nothing_back_is_no_bottleneck() -> None:
    wf = cp.loads(
        """\
name: balanced
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: b, agent: n, estimate: 2}
  - {id: c, agent: n, estimate: 2}
  - {id: d, agent: n, estimate: 2}
  - {id: e, agent: n, estimate: 2, needs: [a, b]}
  - {id: f, agent: n, estimate: 2, needs: [c, d]}
"""
    )
    result = vrun(wf, pattern="hybrid")
    assert result.makespan_s == 4.0  # the barrier cost nothing
    assert result.adaptations == []


# --- resource contention -----------------------------------------------------------------------

CONTENDED = (
    "name: contended\nresources:\n  pools:\n    p: 2\nagents:\n  n: {kind: noop}\nsteps:\n"
    + "".join(f"  - {{id: s{i:02d}, agent: n, estimate: 1, uses: {{p: 1}}}}\n" for i in range(16))
)


@pytest.mark.parametrize("pattern", ["parallel", "event-driven"])
def test_contention_with_an_unplanned_order_switches_to_resource_aware(pattern: str) -> None:
    result = vrun(cp.loads(CONTENDED), pattern=pattern)
    reason = (
        "4 ready steps waited for pools at 3 checks in a row: the rest is planned around the pools"
    )
    # checks every 4 completions: at 2, 4 and 6 steps wait for the pool
    assert result.adaptations == [
        {
            "trigger": "resource contention",
            "from": pattern,
            "to": "resource-aware",
            "reason": reason,
            "at_s": 6.0,
            "steps_left": 4,
        }
    ]
    assert [(t, d["reason"]) for t, d in events(result, "replanned")] == [(6.0, reason)]
    assert result.makespan_s == 8.0
    assert most_at_once(result) == 2


def test_a_planned_order_is_not_switched_for_contention() -> None:
    result = vrun(cp.loads(CONTENDED), pattern="resource-aware")
    assert result.adaptations == []
    assert result.makespan_s == 8.0


# --- requirement change ------------------------------------------------------------------------

GROWING = """\
name: growing
agents:
  n: {kind: noop}
triggers:
  - on: task_completion
    when: "event.data.step == 'scan'"
    add:
      - {id: fix, agent: n, needs: scan, estimate: 2}
steps:
  - {id: scan, agent: n, estimate: 1}
  - {id: other, agent: n, estimate: 5}
"""


def test_steps_added_by_a_trigger_are_a_requirement_change() -> None:
    result = vrun(cp.loads(GROWING), pattern="parallel")
    assert result.adaptations == [
        {
            "trigger": "requirement change",
            "from": "parallel",
            "to": "resource-aware",
            "reason": "steps were added: the rest is planned again",
            "at_s": 1.0,
            "steps_left": 2,
        }
    ]
    assert times(result) == {"scan": (0.0, 1.0), "other": (0.0, 5.0), "fix": (1.0, 3.0)}
    quiet = vrun(cp.loads(GROWING), pattern="parallel", adapt=False)
    assert quiet.adaptations == []
    assert times(quiet) == times(result)
    assert "replanned" not in [e.name for e in quiet.events]


# --- efficiency degradation ------------------------------------------------------------------


def test_steps_slower_when_many_run_lower_the_concurrency() -> None:
    # nine steps one after the other, then eight at once, then four more
    chain = "".join(
        f"  - {{id: c{i}, agent: n, estimate: 1" + (f", needs: c{i - 1}" if i > 1 else "") + "}\n"
        for i in range(1, 10)
    )
    wide = "".join(f"  - {{id: b{i}, agent: n, estimate: 1, needs: c9}}\n" for i in range(1, 9))
    after = "".join(
        f"  - {{id: d{i}, agent: n, estimate: 1, needs: [b1, b2, b3, b4, b5, b6, b7, b8]}}\n"
        for i in range(1, 5)
    )
    wf = cp.loads("name: crowded\nagents:\n  n: {kind: noop}\nsteps:\n" + chain + wide + after)
    engines: list[Engine] = []

    def crowded(job: Job) -> float:
        # a step started while more than 4 run takes twice its estimate
        return 2.0 if engines[0].scheduler.running > 4 else 1.0

    result = vrun(wf, pattern="parallel", duration=crowded, engines=engines)
    assert result.adaptations == [
        {
            "trigger": "efficiency degradation",
            "from": "parallel",
            "to": "parallel",
            "reason": "steps started with more than 1 running took 2.00x longer against their "
            "estimates: at most 1 at once from now",
            "at_s": 11.0,
            "steps_left": 5,
            "max_concurrency": 1,
        }
    ]
    assert {s: r.start for s, r in result.steps.items() if s.startswith("d")} == {
        "d1": 11.0,
        "d2": 12.0,
        "d3": 13.0,
        "d4": 14.0,
    }
    engines.clear()
    steady = vrun(wf, pattern="parallel", duration=crowded, engines=engines, adapt=False)
    assert steady.adaptations == []
    assert steady.steps["d1"].start == steady.steps["d4"].start == 11.0


# --- the journal and resumed runs ------------------------------------------------------------


def journaled(store: cp.Store, run_id: str, name: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for e in asyncio.run(store.entries(run_id)):
        if e.kind == "event" and e.data is not None:
            event = json.loads(e.data)
            if event["name"] == name:
                found.append(event["data"])
    return found


def test_each_adaptation_is_journaled_with_its_trigger() -> None:
    store = cp.MemoryStore()
    result = vrun(cp.loads(CASCADE), pattern="parallel", fail=first_four_fail, store=store)
    assert journaled(store, result.run_id, "pattern_adapted") == result.adaptations
    assert [d["trigger"] for d in journaled(store, result.run_id, "pattern_adapted")] == [
        "failure cascade"
    ]
    capacity_store = cp.MemoryStore()
    changed = vrun(
        cp.loads(POOLED),
        pattern="parallel",
        store=capacity_store,
        **capacity({"pool": "p", "capacity": {"slots": 2}}),
    )
    assert [d["trigger"] for d in journaled(capacity_store, changed.run_id, "pattern_adapted")] == [
        RESOURCE_CHANGE
    ]
    assert journaled(capacity_store, changed.run_id, "capacity_changed") == [
        {"pool": "p", "capacity": {"slots": 2}}
    ]


def test_a_resumed_run_goes_on_one_step_at_a_time_after_a_cascade() -> None:
    wf = cp.loads(CASCADE)

    async def main() -> tuple[cp.RunResult, cp.RunResult]:
        store = cp.MemoryStore()
        first = await arun(
            wf, pattern="parallel", fail=first_four_fail, store=store, interrupt_at=6.5
        )
        again = await aresume(first.run_id, store, wf)  # nothing fails any more
        return first, again

    first, again = asyncio.run(main())
    assert first.status is cp.RunStatus.INTERRUPTED
    assert [a["trigger"] for a in first.adaptations] == ["failure cascade"]
    assert again.status is cp.RunStatus.SUCCEEDED
    assert again.adaptations == first.adaptations  # the earlier switch, taken over
    assert most_at_once(again) == 1  # not the workflow's 3
    assert again.steps["s4"].restored
    assert times(again) == {
        "s0": (0.0, 1.0),
        "s1": (1.0, 3.0),
        "s2": (3.0, 6.0),
        "s3": (6.0, 7.0),
        "s4": (None, None),
        "s5": (7.0, 10.0),
        "s6": (10.0, 11.0),
        "s7": (11.0, 13.0),
        "s8": (13.0, 16.0),
        "s9": (16.0, 17.0),
    }


@pytest.mark.parametrize(("slots", "at_once", "makespan"), [(2, 2, 6.0), (1, 1, 14.0)])
def test_a_resumed_run_keeps_a_changed_capacity(slots: int, at_once: int, makespan: float) -> None:
    wf = cp.loads(POOLED)

    async def main() -> tuple[cp.RunResult, cp.RunResult]:
        store = cp.MemoryStore()
        first = await arun(
            wf,
            pattern="parallel",
            store=store,
            interrupt_at=5.0,
            **capacity({"pool": "p", "capacity": {"slots": slots}}, 1.0),
        )
        return first, await aresume(first.run_id, store, wf)

    first, again = asyncio.run(main())
    assert first.status is cp.RunStatus.INTERRUPTED
    assert again.status is cp.RunStatus.SUCCEEDED
    assert [a["trigger"] for a in again.adaptations] == [RESOURCE_CHANGE]
    assert most_at_once(again) == at_once  # the pool's declared 4 would run them all at once
    assert again.makespan_s == makespan
    assert adapted(again) == []  # said in the first session; not said again


def test_a_resumed_run_keeps_the_barriers_it_dropped() -> None:
    wf = cp.loads(
        UNBALANCED
        + "".join(f"  - {{id: e{i}, agent: n, estimate: 1, needs: c{i}}}\n" for i in range(1, 5))
    )

    async def main(adapt: bool) -> tuple[cp.RunResult, cp.RunResult]:
        store = cp.MemoryStore()
        first = await arun(
            wf, pattern="hybrid", adapt=adapt, store=store, interrupt_at=2.0, learn=False
        )
        return first, await aresume(first.run_id, store, wf)

    first, again = asyncio.run(main(True))
    assert [a["trigger"] for a in first.adaptations] == ["coordination bottleneck"]
    # slow runs again from 0 to 10; without barriers the e's follow their c's at once
    assert {s: r.start for s, r in again.steps.items() if s.startswith("e")} == {
        "e1": 3.0,
        "e2": 3.0,
        "e3": 3.0,
        "e4": 3.0,
    }
    assert again.makespan_s == 11.0
    _, barred = asyncio.run(main(False))
    assert barred.adaptations == []
    # the barriers hold after the resume: slow 0-10, then level 1 (the c's 10-13, d 10-11)
    assert barred.steps["e1"].start == 13.0


def test_a_resumed_hybrid_run_keeps_its_barriers() -> None:
    wf = cp.loads(UNBALANCED)

    async def main() -> cp.RunResult:
        store = cp.MemoryStore()
        first = await arun(wf, pattern="hybrid", adapt=False, store=store, interrupt_at=2.0)
        assert first.status is cp.RunStatus.INTERRUPTED
        assert {s for s, r in first.steps.items() if r.status is cp.StepState.SUCCEEDED} == {
            "a1",
            "a2",
            "a3",
            "a4",
        }
        return await aresume(first.run_id, store, wf)

    again = asyncio.run(main())
    assert again.steps["slow"].start == 0.0
    assert again.steps["c1"].start == 10.0
    assert again.makespan_s == 13.0


# --- when a run adapts by default --------------------------------------------------------------


def test_a_selected_pattern_adapts_and_a_given_one_does_not_by_default() -> None:
    wf = cp.loads(POOLED)
    halve = capacity({"pool": "p", "capacity": {"slots": 2}})
    selected = selkit.vrun(wf, **halve)
    assert selected.selection is not None
    assert selected.selection["how"] == "selected"
    assert [a["trigger"] for a in selected.adaptations] == [RESOURCE_CHANGE]
    given = selkit.vrun(wf, pattern=selected.pattern, **halve)
    assert given.adaptations == []
    assert most_at_once(given, after=4.0) == 2  # the capacity changed all the same
    assert selkit.vrun(cp.loads(UNBALANCED), pattern="hybrid").steps["c1"].start == 10.0


def test_an_override_passed_as_a_selection_does_not_adapt_by_default() -> None:
    wf = cp.loads(UNBALANCED)
    chosen = asyncio.run(cp.selection.recommend(wf, pattern="hybrid"))
    assert chosen.how == "override"
    result = selkit.vrun(wf, selection=chosen)
    assert result.adaptations == []
    assert result.steps["c1"].start == 10.0
    asked = selkit.vrun(wf, selection=chosen, adapt=True)
    assert [a["trigger"] for a in asked.adaptations] == ["coordination bottleneck"]
