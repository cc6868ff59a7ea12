"""The five patterns as policies of one engine, each run with ``run(wf, pattern=P)`` on the
virtual clock: who starts when."""

from __future__ import annotations

import pytest
from selkit import PACKED, SLOW_LEVEL, level_barriers_hold, most_at_once, times, vrun

import counterpoint as cp
from counterpoint.selection import PATTERNS, Policy, policy

# a: 1s, b: 5s; c after a, d after b, e after c. Levels: {a, b}, {c, d}, {e}.
UNBALANCED = """\
name: unbalanced
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 5}
  - {id: c, agent: n, estimate: 1, needs: a}
  - {id: d, agent: n, estimate: 2, needs: b}
  - {id: e, agent: n, estimate: 1, needs: c}
"""

# two short steps written first, a long chain after them, two workers
ORDER = """\
name: order
max_concurrency: 2
agents:
  n: {kind: noop}
steps:
  - {id: x1, agent: n, estimate: 1}
  - {id: x2, agent: n, estimate: 1}
  - {id: long, agent: n, estimate: 5}
  - {id: tail, agent: n, estimate: 1, needs: long}
"""

# an approval at the end of a short path, two long steps competing with it for the worker
ASK = """\
name: ask
agents:
  n: {kind: noop}
  ok: {kind: approval}
steps:
  - {id: big1, agent: n, estimate: 5}
  - {id: big2, agent: n, estimate: 5}
  - {id: prep, agent: n, estimate: 1}
  - {id: sign, agent: ok, estimate: 1, needs: prep}
  - {id: ship, agent: n, estimate: 1, needs: sign}
"""

CPUS = {"t0": 3.0, "t1": 2.0, "t2": 1.0, "t3": 2.0, "t4": 1.0}


def test_the_patterns_in_order_from_the_simplest() -> None:
    assert PATTERNS == ("sequential", "parallel", "hybrid", "event-driven", "resource-aware")


@pytest.mark.parametrize(
    ("pattern", "fields"),
    [
        ("sequential", (1, "critical-path", False, False, False)),
        ("parallel", (None, "fifo", False, False, False)),
        ("hybrid", (None, "critical-path", False, True, False)),
        ("event-driven", (None, "critical-path", False, False, True)),
        ("resource-aware", (None, "planned", False, False, False)),
    ],
)
def test_each_pattern_has_its_options(
    pattern: cp.selection.PatternName, fields: tuple[object, ...]
) -> None:
    pol = policy(pattern)
    assert isinstance(pol, Policy)
    assert pol.pattern == pattern
    assert (pol.max_concurrency, pol.priority, pol.fail_fast, pol.barriers, pol.ask_early) == fields
    assert pol.hedge == frozenset()
    assert pol.summary
    assert pol.to_json() == {
        "pattern": pattern,
        "max_concurrency": fields[0],
        "priority": fields[1],
        "fail_fast": False,
        "barriers": fields[3],
        "ask_early": fields[4],
        "hedge": [],
        "summary": pol.summary,
    }


def test_only_the_resource_aware_pattern_races_flaky_agents() -> None:
    flaky = frozenset({"f", "g"})
    assert policy("resource-aware", flaky).hedge == flaky
    assert policy("resource-aware", flaky).to_json()["hedge"] == ["f", "g"]
    for p in ("sequential", "parallel", "hybrid", "event-driven"):
        assert policy(p, flaky).hedge == frozenset()


def test_an_unknown_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pattern 'chaotic'"):
        policy("chaotic")  # type: ignore[arg-type]


def test_sequential_runs_one_step_at_a_time_longest_path_first() -> None:
    result = vrun(cp.loads(UNBALANCED), pattern="sequential")
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.pattern == "sequential"
    # b heads the longest path (7s); then a (3s) before d and c (2s each, d released first)
    assert times(result) == {
        "b": (0.0, 5.0),
        "a": (5.0, 6.0),
        "d": (6.0, 8.0),
        "c": (8.0, 9.0),
        "e": (9.0, 10.0),
    }
    assert most_at_once(result) == 1
    assert result.makespan_s == 10.0
    assert result.adaptations == []


def test_parallel_starts_everything_ready_at_once() -> None:
    result = vrun(cp.loads(UNBALANCED), pattern="parallel")
    assert times(result) == {
        "a": (0.0, 1.0),
        "b": (0.0, 5.0),
        "c": (1.0, 2.0),  # no barrier: c goes as soon as a is done
        "d": (5.0, 7.0),
        "e": (2.0, 3.0),
    }
    assert result.makespan_s == 7.0


def test_parallel_is_first_in_first_out_when_workers_run_short() -> None:
    parallel = vrun(cp.loads(ORDER), pattern="parallel")
    # the two short steps were written first: they take both workers; the long chain waits
    assert times(parallel) == {
        "x1": (0.0, 1.0),
        "x2": (0.0, 1.0),
        "long": (1.0, 6.0),
        "tail": (6.0, 7.0),
    }
    critical = vrun(cp.loads(ORDER), pattern="event-driven")
    assert times(critical) == {
        "x1": (0.0, 1.0),
        "x2": (1.0, 2.0),
        "long": (0.0, 5.0),
        "tail": (5.0, 6.0),
    }


def test_hybrid_waits_for_each_level_to_end_before_the_next() -> None:
    wf = cp.loads(UNBALANCED)
    result = vrun(wf, pattern="hybrid", adapt=False)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {
        "a": (0.0, 1.0),
        "b": (0.0, 5.0),
        "c": (5.0, 6.0),  # its need a ended at 1, but level 0 ends with b at 5
        "d": (5.0, 7.0),
        "e": (7.0, 8.0),  # c ended at 6, level 1 with d at 7
    }
    assert result.makespan_s == 8.0
    assert level_barriers_hold(wf, result)
    assert result.adaptations == []


def test_hybrid_barriers_on_a_wide_unbalanced_graph() -> None:
    wf = cp.loads(SLOW_LEVEL)
    result = vrun(wf, pattern="hybrid", adapt=False)
    assert {k: v.start for k, v in result.steps.items()} == {
        "a1": 0.0,
        "a2": 0.0,
        "a3": 0.0,
        "a4": 0.0,
        "slow": 0.0,
        "c1": 10.0,
        "c2": 10.0,
        "c3": 10.0,
        "c4": 10.0,
        "d": 10.0,
    }
    assert result.makespan_s == 13.0
    assert level_barriers_hold(wf, result)
    unbarred = vrun(wf, pattern="event-driven")
    assert unbarred.steps["c1"].start == 1.0
    assert unbarred.makespan_s == 11.0
    assert not level_barriers_hold(wf, unbarred)


def test_hybrid_leaves_steps_started_by_events_out_of_its_phases() -> None:
    wf = cp.loads(
        """\
name: reactive
agents:
  n: {kind: noop}
triggers:
  - {on: task_completion, when: "event.data.step == 'a'", run: [x]}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 3}
  - {id: x, agent: n, estimate: 1, needs: [a]}
  - {id: y, agent: n, estimate: 1, needs: [x]}
  - {id: z, agent: n, estimate: 1, needs: [b]}
"""
    )
    result = vrun(wf, pattern="hybrid", adapt=False)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {
        "a": (0.0, 1.0),
        "b": (0.0, 3.0),
        "x": (1.0, 2.0),  # started by the event, whatever the phases
        "y": (2.0, 3.0),  # after x: in no phase either
        "z": (3.0, 4.0),  # level 1: after level 0 (b) ended
    }


def test_event_driven_asks_people_first_along_the_path_to_them() -> None:
    wf = cp.loads(ASK)
    asked = vrun(wf, pattern="event-driven", max_concurrency=1)
    assert times(asked) == {
        "big1": (2.0, 7.0),
        "big2": (7.0, 12.0),
        "prep": (0.0, 1.0),  # leads to the approval: it goes before the longer steps
        "sign": (1.0, 2.0),
        "ship": (12.0, 13.0),
    }
    # the critical path alone (resource-aware here plans it) leaves the approval for last
    planned = vrun(wf, pattern="resource-aware", max_concurrency=1)
    assert planned.steps["prep"].start == 10.0
    assert planned.steps["sign"].start == 11.0


def test_resource_aware_plans_the_order_around_the_pool() -> None:
    wf = cp.loads(PACKED)
    planned = vrun(wf, pattern="resource-aware")
    assert planned.status is cp.RunStatus.SUCCEEDED
    assert planned.planning is not None
    assert planned.planning["rule"] == "critical-path and efficiency"
    assert planned.planning["expected_makespan_s"] == 9.0
    assert planned.planning["lower_bound_s"] == 9.0
    assert times(planned) == {
        "t0": (5.0, 9.0),
        "t1": (1.0, 5.0),
        "t2": (0.0, 3.0),
        "t3": (0.0, 1.0),
        "t4": (3.0, 5.0),
    }
    assert most_at_once(planned, weights=CPUS) == 3.0
    for p in ("parallel", "hybrid", "event-driven"):
        other = vrun(wf, pattern=p, adapt=False)
        assert other.planning is None  # not planned
        assert other.makespan_s == 11.0, p
        assert most_at_once(other, weights=CPUS) <= 3.0


def test_the_run_reports_the_pattern_it_was_given() -> None:
    wf = cp.loads(UNBALANCED)
    for p in PATTERNS:
        result = vrun(wf, pattern=p, adapt=False)
        assert result.pattern == p
        assert result.selection is None  # given, not selected
        assert result.to_json()["pattern"] == p
