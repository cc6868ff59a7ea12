"""Planning by simulation: the planner's makespans are the engine's, and it never does worse
than the critical-path rule."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.graph.analysis import upward_ranks
from counterpoint.scheduler.planning import choose_priority, list_makespan

STG = Path(__file__).resolve().parents[2].parent / "shared" / "benchdata" / "stg"


def _random_workflow(seed: int, n: int = 40) -> cp.Workflow:
    rng = random.Random(seed)
    b = cp.WorkflowBuilder(f"r{seed}")
    b.agent("w", kind="sleep")
    for i in range(n):
        needs = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        b.step(f"s{i}", agent="w", needs=needs, estimate=rng.randint(1, 9))
    return b.build()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_the_planners_makespan_is_the_engines(seed: int, workers: int) -> None:
    wf = _random_workflow(seed)
    rank = upward_ranks(wf.graph)
    expected = list_makespan(wf.graph, rank, workers)
    result = asyncio.run(cp.simulate(wf, workers=workers, priority="critical-path"))
    assert result.makespan_s == expected
    planned = asyncio.run(cp.simulate(wf, workers=workers, priority="planned"))
    assert planned.planning is not None
    assert planned.makespan_s == planned.planning["expected_makespan_s"]
    assert planned.makespan_s <= expected  # never worse than the critical-path rule


def test_planning_is_deterministic_and_reports_what_it_did() -> None:
    wf = _random_workflow(3, 60)
    a = choose_priority(wf.graph, 3)
    b = choose_priority(wf.graph, 3)
    assert (a.rule, a.makespan, a.tried, a.priority) == (b.rule, b.makespan, b.tried, b.priority)
    assert a.lower_bound <= a.makespan <= a.baseline_makespan
    assert a.tried >= 1


def test_unlimited_workers_need_no_search() -> None:
    wf = _random_workflow(1)
    choice = choose_priority(wf.graph, None)
    assert choice.rule == "critical-path"
    assert choice.tried == 0
    assert choice.makespan == choice.lower_bound == max(upward_ranks(wf.graph))


@pytest.mark.skipif(not STG.is_dir(), reason="../shared/benchdata is absent")
def test_planning_beats_the_critical_path_rule_on_stg_graphs() -> None:
    from counterpoint.importers import import_workflow
    from counterpoint.importers.stg import optimal_values

    best = optimal_values(STG)
    better = optimal = 0
    for k in range(12):
        rel = f"50/rand{k:04d}.stg"
        graph = import_workflow("stg", STG / rel).graph
        for workers in (2, 4):
            choice = choose_priority(graph, workers)
            assert choice.makespan <= choice.baseline_makespan
            assert (
                choice.makespan >= best[rel, workers] - 1e-9
                or choice.makespan >= choice.lower_bound
            )
            better += choice.makespan < choice.baseline_makespan
            optimal += choice.makespan <= best[rel, workers]
    assert better >= 3
    assert optimal >= 22  # of 24


@pytest.mark.parametrize("priority", ["planned", "critical-path", "fifo"])
def test_a_steps_own_priority_comes_before_any_rule(priority: str) -> None:
    b = cp.WorkflowBuilder("user")
    b.agent("w", kind="sleep")
    b.step("long", agent="w", estimate=5)
    b.step("short", agent="w", estimate=1)
    b.add({"id": "urgent", "agent": "w", "estimate": 2, "priority": 10})
    b.step("after", agent="w", estimate=1, needs=["short"])
    wf = b.build()
    result = asyncio.run(cp.simulate(wf, workers=1, priority=priority))  # type: ignore[arg-type]
    starts = sorted((r.start, sid) for sid, r in result.steps.items())
    assert starts[0] == (0.0, "urgent")  # first, although the rules would put long first
    if priority != "fifo":
        assert [sid for _, sid in starts] == ["urgent", "long", "short", "after"]
