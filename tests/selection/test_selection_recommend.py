"""Choosing the pattern: hard constraints, simulated makespans, soft constraints for ties,
flaky agents, the user's override with its cost, what history measured and preferences."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from selkit import PACKED, vrun

import counterpoint as cp
from counterpoint.history import agent_stats
from counterpoint.selection import PATTERNS, Recommendation, recommend, select
from counterpoint.selection.learning import Learned, Outcome, Preference
from counterpoint.selection.select import SIMULATE_UP_TO

CHAIN = """\
name: chain
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 2, needs: a}
  - {id: c, agent: n, estimate: 3, needs: b}
"""

FAN = (
    "name: fan\nagents:\n  n: {kind: noop}\nsteps:\n  - {id: root, agent: n, estimate: 1}\n"
    + "".join(f"  - {{id: w{i}, agent: n, estimate: {i + 1}, needs: root}}\n" for i in range(6))
    + "  - {id: join, agent: n, estimate: 1, needs: [w0, w1, w2, w3, w4, w5]}\n"
)


TWO_LEVELS = """\
name: two
agents:
  n: {kind: noop}
  w: {kind: wait, event: go}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: b, agent: n, estimate: 3}
  - {id: c, agent: n, estimate: 1, needs: [a, b]}
"""

FLAKY = """\
name: flaky
max_concurrency: 10
defaults:
  retries: {max: 2, backoff: 1, jitter: 0}
agents:
  f: {kind: noop, idempotent: true}
  n: {kind: noop}
steps:
  - {id: a, agent: f, estimate: 4}
  - {id: b, agent: n, estimate: 2}
  - {id: c, agent: n, estimate: 1, needs: [a, b]}
"""


def rec(yaml_text: str, **kw: object) -> Recommendation:
    return asyncio.run(recommend(cp.loads(yaml_text), **kw))  # type: ignore[arg-type]


def makespans(r: Recommendation) -> dict[str, float | None]:
    return {a.pattern: a.makespan_s for a in r.alternatives}


def ruled_out(r: Recommendation) -> dict[str, str | None]:
    return {a.pattern: a.why_not for a in r.alternatives if not a.admissible}


# --- the shape decides ------------------------------------------------------------------------


def test_a_chain_recommends_sequential() -> None:
    r = rec(CHAIN)
    assert (r.pattern, r.recommended, r.how) == ("sequential", "sequential", "selected")
    assert r.policy.pattern == "sequential"
    assert makespans(r) == dict.fromkeys(PATTERNS, 6.0)  # nothing to overlap: all the same
    assert r.method == "exact"
    assert r.cost_s is None
    assert r.reasons == [
        "3 steps, 3 levels, widest 1; critical path 6s of 6s work (parallelism 1.00)",
        "sequential is as fast as parallel, hybrid, event-driven, resource-aware (expected 6s); "
        "the simplest coordination wins a tie",
    ]


def test_a_wide_fan_out_recommends_parallel() -> None:
    r = rec(FAN)
    assert r.pattern == "parallel"
    assert makespans(r) == {
        "sequential": 23.0,
        "parallel": 8.0,
        "hybrid": 8.0,
        "event-driven": 8.0,
        "resource-aware": 8.0,
    }
    assert all(a.admissible for a in r.alternatives)
    assert r.reasons[1].startswith("parallel is as fast as hybrid, event-driven, resource-aware")


def test_a_contended_pool_recommends_resource_aware() -> None:
    r = rec(PACKED)
    assert (r.pattern, r.how, r.method) == ("resource-aware", "selected", "simulated")
    assert makespans(r) == {
        "sequential": 14.0,
        "parallel": 11.0,
        "hybrid": 11.0,
        "event-driven": 11.0,
        "resource-aware": 9.0,
    }
    assert r.analysis.contention == 2.25
    assert r.reasons[1:] == [
        "resource-aware is expected to take 9s, 22% less than the next best, parallel (11s)",
        "pools are contended: 2.25x their capacity over the critical path",
    ]
    assert r.policy.priority == "planned"


def test_the_expected_makespans_are_what_runs_of_each_pattern_take() -> None:
    wf = cp.loads(PACKED)
    r = asyncio.run(recommend(wf))
    for p in PATTERNS:
        assert vrun(wf, pattern=p, adapt=False).makespan_s == r.alternative(p).makespan_s, p


def test_a_tie_with_contended_pools_goes_to_resource_aware() -> None:
    steps = "".join(
        f"  - {{id: s{i}, agent: n, estimate: 1, uses: {{gpu: 1}}}}\n" for i in range(10)
    )
    r = rec(
        "name: busy\nresources:\n  pools:\n    gpu: 2\nagents:\n  n: {kind: noop}\nsteps:\n"
        + steps
        + "  - {id: long, agent: n, estimate: 4, uses: {gpu: 1}}\n"
        + "  - {id: after, agent: n, estimate: 4, needs: long, uses: {gpu: 1}}\n"
    )
    assert makespans(r) == {
        "sequential": 18.0,
        "parallel": 13.0,
        "hybrid": 11.0,
        "event-driven": 9.0,
        "resource-aware": 9.0,
    }
    assert r.pattern == "resource-aware"
    assert r.reasons[1] == (
        "resource-aware is as fast as event-driven (expected 9s); pools, limits or flaky "
        "agents favour planning around them"
    )


def test_a_tie_with_events_goes_to_event_driven() -> None:
    r = rec(
        """\
name: tr
agents:
  n: {kind: noop}
triggers:
  - {on: task_completion, when: "event.data.step == 'a'", run: [x]}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 1}
  - {id: x, agent: n, estimate: 1, needs: [a]}
"""
    )
    assert r.pattern == "event-driven"
    assert "people and events are involved: ask them first, react as they answer" in r.reasons[1]
    assert "0 approval(s), 0 wait(s) and 1 trigger(s) involve people or events" in r.reasons


def test_declared_phases_do_not_decide_a_tie() -> None:
    r = rec(
        """\
name: ph
agents:
  n: {kind: noop}
steps:
  - phases:
      id: all
      phases:
        - id: one
          pattern: parallel
          steps: [{id: a, agent: n, estimate: 1}, {id: b, agent: n, estimate: 1}]
        - id: two
          pattern: parallel
          steps: [{id: c, agent: n, estimate: 1}, {id: d, agent: n, estimate: 1}]
"""
    )
    # hybrid's barriers cost when durations vary: the simplest of the tied patterns wins
    assert r.analysis.phases == 2
    assert makespans(r)["hybrid"] == makespans(r)["parallel"] == 2.0
    assert r.pattern == "parallel"
    assert r.reasons[1].endswith("the simplest coordination wins a tie")


def test_the_reason_for_a_tie_says_what_decided_it() -> None:
    r = rec(
        """\
name: pooled
resources:
  pools:
    gpu: 2
agents:
  n: {kind: noop}
steps:
  - {id: a1, agent: n, estimate: 1, uses: {gpu: 1}}
  - {id: a2, agent: n, estimate: 1, uses: {gpu: 1}}
  - {id: a3, agent: n, estimate: 1, uses: {gpu: 1}}
  - {id: a4, agent: n, estimate: 1, uses: {gpu: 1}}
  - {id: long, agent: n, estimate: 4, uses: {gpu: 1}}
  - {id: after, agent: n, estimate: 4, needs: long, uses: {gpu: 1}}
"""
    )
    assert (r.analysis.phases, r.analysis.gates, r.analysis.contention) == (0, 0, 0.75)
    assert r.pattern == "hybrid"  # as fast as event-driven and resource-aware, and simpler
    assert r.reasons[1].endswith("the simplest coordination wins a tie")


# --- hard constraints ------------------------------------------------------------------------


def test_the_workflow_may_fix_its_pattern() -> None:
    r = rec(TWO_LEVELS.replace("name: two\n", "name: two\npattern: hybrid\n"))
    assert (r.pattern, r.recommended, r.how) == ("hybrid", "hybrid", "workflow")
    why = "the workflow fixes its pattern: hybrid"
    assert ruled_out(r) == {p: why for p in PATTERNS if p != "hybrid"}
    assert makespans(r) == {p: (4.0 if p == "hybrid" else None) for p in PATTERNS}
    assert f"not parallel: {why}" in r.reasons


def test_one_step_at_a_time_leaves_only_sequential() -> None:
    r = rec(TWO_LEVELS.replace("name: two\n", "name: two\nmax_concurrency: 1\n"))
    assert r.pattern == "sequential"
    why = "the workflow allows one step at a time (max_concurrency: 1)"
    assert ruled_out(r) == {p: why for p in PATTERNS if p != "sequential"}
    assert makespans(r)["sequential"] == 6.0


def test_a_wait_step_rules_out_sequential() -> None:
    r = rec(TWO_LEVELS + "  - {id: listen, agent: w, estimate: 1}\n")
    assert ruled_out(r) == {
        "sequential": "1 step(s) wait for events: one at a time, a wait could hold up the step "
        "that would send its event"
    }
    assert r.pattern == "event-driven"  # the tie among the others: events are involved
    assert r.alternative("sequential").makespan_s is None  # not even simulated


def test_a_deadline_shorter_than_the_work_rules_out_sequential() -> None:
    r = rec(TWO_LEVELS.replace("name: two\n", "name: two\ndeadline: 5s\n"))
    assert ruled_out(r) == {
        "sequential": "one step at a time needs 6s of work, more than the deadline (5s)"
    }
    assert r.pattern == "parallel"
    met = rec(TWO_LEVELS.replace("name: two\n", "name: two\ndeadline: 6s\n"))
    assert ruled_out(met) == {}  # the whole work fits in it exactly


def test_one_level_rules_out_hybrid() -> None:
    r = rec(
        """\
name: flat
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: b, agent: n, estimate: 3}
"""
    )
    assert ruled_out(r) == {"hybrid": "one level of steps: there are no phases to separate"}
    assert r.pattern == "parallel"
    assert "not hybrid: one level of steps: there are no phases to separate" in r.reasons


def test_a_single_step_leaves_nothing_to_coordinate() -> None:
    r = rec("name: one\nagents:\n  n: {kind: noop}\nsteps:\n  - {id: a, agent: n, estimate: 2}\n")
    assert set(ruled_out(r)) == {"hybrid", "event-driven", "resource-aware"}
    assert r.pattern == "sequential"


# --- the user's choice -----------------------------------------------------------------------


def test_an_override_wins_and_says_what_it_costs() -> None:
    r = rec(FAN, pattern="sequential")
    assert (r.pattern, r.recommended, r.how) == ("sequential", "parallel", "override")
    assert r.policy.pattern == "sequential"
    assert r.cost_s == 15.0  # 23 s instead of 8 s
    packed = rec(PACKED, pattern="parallel")
    assert (packed.pattern, packed.recommended) == ("parallel", "resource-aware")
    assert packed.cost_s == makespans(packed)["parallel"] - makespans(packed)["resource-aware"]
    assert packed.cost_s == 2.0


def test_overriding_with_the_recommended_pattern_costs_nothing() -> None:
    r = rec(FAN, pattern="parallel")
    assert (r.pattern, r.recommended, r.how, r.cost_s) == ("parallel", "parallel", "override", None)


def test_an_override_may_pick_a_ruled_out_pattern_and_is_told_so() -> None:
    r = rec(
        TWO_LEVELS.replace("name: two\n", "name: two\nmax_concurrency: 1\n"), pattern="parallel"
    )
    assert (r.pattern, r.recommended, r.how) == ("parallel", "sequential", "override")
    assert r.reasons[-1] == (
        "parallel was ruled out (the workflow allows one step at a time (max_concurrency: 1)); "
        "run as asked"
    )
    assert r.alternative("parallel").makespan_s == 6.0  # simulated for the cost
    assert not r.alternative("parallel").admissible
    assert r.cost_s == 0.0


def test_an_override_beats_the_pattern_the_workflow_fixes() -> None:
    r = rec(TWO_LEVELS.replace("name: two\n", "name: two\npattern: hybrid\n"), pattern="parallel")
    assert (r.pattern, r.recommended, r.how) == ("parallel", "hybrid", "override")
    assert r.cost_s == 0.0


# --- flaky agents ------------------------------------------------------------------------------


def test_flaky_agents_are_raced_by_resource_aware_when_that_is_fastest() -> None:
    r = rec(FLAKY, failure_rates={"f": (10, 0.5)})
    # a takes 4 + 0.5 (4 + 1) + 0.25 (4 + 2) = 8 s with its retries, 5.625 s raced
    assert makespans(r) == {
        "sequential": 11.0,
        "parallel": 9.0,
        "hybrid": 9.0,
        "event-driven": 9.0,
        "resource-aware": 6.625,
    }
    assert r.pattern == "resource-aware"
    assert r.policy.hedge == frozenset({"f"})
    assert r.policy.to_json()["hedge"] == ["f"]
    assert (
        "flaky agents (f fails 50%) race a second attempt; the first output valid at the "
        "handoff goes on"
    ) in r.reasons


def test_agents_not_marked_idempotent_are_not_raced() -> None:
    r = rec(FLAKY.replace("idempotent: true", "idempotent: false"), failure_rates={"f": (10, 0.5)})
    assert r.policy.hedge == frozenset()
    assert makespans(r)["resource-aware"] == 9.0  # the retries only
    assert r.pattern == "resource-aware"  # the tie: flaky agents favour it
    assert any(
        x.startswith("flaky agents: f (their retries are in the estimates") for x in r.reasons
    )


def test_agents_that_hold_pools_are_not_raced() -> None:
    pooled = FLAKY.replace("agents:", "resources:\n  pools:\n    p: 4\nagents:", 1).replace(
        "{id: a, agent: f, estimate: 4}", "{id: a, agent: f, estimate: 4, uses: {p: 1}}"
    )
    r = rec(pooled, failure_rates={"f": (10, 0.5)})
    assert r.policy.hedge == frozenset()
    assert makespans(r)["resource-aware"] == 9.0


def test_too_few_attempts_make_no_agent_flaky() -> None:
    r = rec(FLAKY, failure_rates={"f": (4, 0.5)})
    assert r.analysis.risks == []
    assert makespans(r)["parallel"] == 5.0
    assert r.pattern == "parallel"


def test_failure_rates_count_when_nothing_else_limits_the_workflow() -> None:
    unlimited = rec(FLAKY.replace("max_concurrency: 10\n", ""), failure_rates={"f": (10, 0.5)})
    assert unlimited.method == "exact"
    assert makespans(unlimited) == {
        "sequential": 11.0,
        "parallel": 9.0,
        "hybrid": 9.0,
        "event-driven": 9.0,
        "resource-aware": 6.625,
    }


def test_a_selection_that_races_is_what_the_run_does() -> None:
    wf = cp.loads(FLAKY)
    r = asyncio.run(recommend(wf, failure_rates={"f": (10, 0.5)}))
    store = cp.MemoryStore()
    result = vrun(wf, selection=r, store=store)
    assert result.pattern == "resource-aware"
    assert result.selection == r.to_json()
    info = asyncio.run(store.get_run(result.run_id))
    assert info.options["hedge"] == ["f"]
    assert info.options["selection"] == r.journal()
    assert r.journal() == {
        "chosen": "resource-aware",
        "recommended": "resource-aware",
        "how": "selected",
        "expected_s": {
            "sequential": 11.0,
            "parallel": 9.0,
            "hybrid": 9.0,
            "event-driven": 9.0,
            "resource-aware": 6.625,
        },
    }


HEDGE_AGENTS = """\
import itertools

CALLS = itertools.count()


async def flaky(ctx):
    n = next(CALLS)
    if n % 2 == 0:  # every other call fails
        raise RuntimeError(f"flaked on call {n}")
    return {"call": n}
"""


def test_a_raced_step_succeeds_when_either_attempt_does(tmp_path: Path) -> None:
    module = "selection_hedge_agents_race"
    (tmp_path / f"{module}.py").write_text(HEDGE_AGENTS, encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(
        FLAKY.replace(
            "f: {kind: noop, idempotent: true}",
            f'f: {{kind: python, function: "{module}:flaky", idempotent: true}}',
        ).replace("retries: {max: 2, backoff: 1, jitter: 0}", "retries: 0"),
        encoding="utf-8",
    )
    wf = cp.load(tmp_path / "wf.yaml")
    r = asyncio.run(recommend(wf, failure_rates={"f": (10, 0.5)}))
    assert r.policy.hedge == frozenset({"f"})
    # the agents run (as tasks on the virtual clock): the first call fails, the second wins
    store = cp.MemoryStore()
    raced = asyncio.run(cp.run(wf, selection=r, clock=cp.VirtualClock(), store=store))
    assert raced.status is cp.RunStatus.SUCCEEDED
    assert raced.steps["a"].attempts == 1
    assert raced.steps["a"].output == {"call": 1}
    assert [(e.step_id, e.data["agent"], e.data["outcome"]) for e in raced.events] == [
        ("a", "f", "failed"),
        ("a", "f", "won"),
    ]
    # each contender counts as an attempt of the agent: one of two failed
    stats = asyncio.run(agent_stats(store, workflow="flaky"))
    assert (stats["f"].attempts, stats["f"].failure_rate) == (2, 0.5)
    # not raced, the same agent fails the step (no retries)
    alone = asyncio.run(cp.run(wf, pattern="parallel", clock=cp.VirtualClock()))
    assert alone.status is cp.RunStatus.FAILED
    assert alone.steps["a"].error is not None
    assert alone.steps["a"].error.startswith("RuntimeError: flaked on call 2")
    assert alone.steps["c"].status is cp.StepState.SKIPPED


# --- history ---------------------------------------------------------------------------------


def outcome(pattern: str, median: float | None, succeeded: int, runs: int | None = None) -> Outcome:
    return Outcome("fp", pattern, runs if runs is not None else succeeded, succeeded, median)


def test_a_pattern_past_runs_measured_clearly_faster_replaces_the_simulated_choice() -> None:
    history = Learned([outcome("parallel", 10.0, 2), outcome("event-driven", 9.4, 2)], [])
    r = rec(FAN, history=history)
    assert (r.pattern, r.recommended, r.how) == ("event-driven", "event-driven", "selected")
    assert r.reasons[-1] == (
        "past runs of this definition: event-driven took 9.4s (median of 2), parallel 10s: "
        "event-driven instead"
    )
    assert r.alternative("event-driven").measured_s == 9.4
    assert r.alternative("event-driven").measured_runs == 2
    assert r.alternative("hybrid").measured_runs == 0
    assert r.outcomes == history.outcomes


@pytest.mark.parametrize(
    "others",
    [
        [outcome("event-driven", 9.6, 2)],  # 4 % faster: not enough
        [outcome("event-driven", 5.0, 1, runs=3)],  # one successful run only
        [outcome("event-driven", None, 0, runs=2)],  # none succeeded
    ],
)
def test_history_needs_a_clear_gain_over_two_successful_runs(others: list[Outcome]) -> None:
    r = rec(FAN, history=Learned([outcome("parallel", 10.0, 2), *others], []))
    assert r.pattern == "parallel"
    assert not any(x.startswith("past runs") for x in r.reasons)


def test_history_of_the_other_patterns_alone_changes_nothing() -> None:
    # nothing measured for the simulated choice: nothing to compare with
    r = rec(FAN, history=Learned([outcome("event-driven", 1.0, 5)], []))
    assert r.pattern == "parallel"


def test_history_never_brings_back_a_ruled_out_pattern() -> None:
    history = Learned([outcome("parallel", 10.0, 2), outcome("hybrid", 1.0, 3)], [])
    r = rec(TWO_LEVELS.replace("name: two\n", "name: two\npattern: parallel\n"), history=history)
    assert r.pattern == "parallel"


def test_exactly_five_percent_faster_is_enough() -> None:
    history = Learned([outcome("parallel", 20.0, 2), outcome("event-driven", 19.0, 2)], [])
    assert rec(FAN, history=history).pattern == "event-driven"


def prefer(pattern: str, chosen: int, runs: int, confidence: float) -> Learned:
    return Learned([], [Preference("fan", pattern, chosen, runs, confidence)])


def test_a_confident_preference_is_applied() -> None:
    r = rec(FAN, history=prefer("hybrid", 6, 6, 0.857))
    assert (r.pattern, r.recommended, r.how) == ("hybrid", "parallel", "preference")
    assert r.policy.pattern == "hybrid"
    assert r.cost_s == 0.0  # hybrid is as fast here
    assert r.reasons[-1] == (
        "you chose hybrid over the recommendation in 6 of the last 6 runs (confidence 0.86): "
        "applied (--pattern overrides it)"
    )


def test_a_preference_costs_what_its_pattern_is_expected_to_lose() -> None:
    r = rec(FAN, history=prefer("sequential", 6, 6, 0.857))
    assert (r.pattern, r.how, r.cost_s) == ("sequential", "preference", 15.0)


def test_a_likely_preference_is_only_suggested() -> None:
    r = rec(FAN, history=prefer("hybrid", 2, 2, 0.667))
    assert (r.pattern, r.how) == ("parallel", "selected")
    assert r.reasons[-1] == (
        "suggestion: you chose hybrid in 2 of the last 2 runs (confidence 0.67); it is applied "
        "from 0.85"
    )


def test_a_weak_preference_is_not_mentioned() -> None:
    r = rec(FAN, history=prefer("hybrid", 1, 1, 0.5))
    assert (r.pattern, r.how) == ("parallel", "selected")
    assert not any("hybrid in" in x for x in r.reasons)
    assert [p.level for p in r.preferences] == ["observe"]


def test_the_user_s_choice_beats_a_preference() -> None:
    r = rec(FAN, history=prefer("hybrid", 6, 6, 0.9), pattern="event-driven")
    assert (r.pattern, r.how) == ("event-driven", "override")
    assert not any("you chose" in x for x in r.reasons)


def test_a_preference_for_a_ruled_out_pattern_is_ignored() -> None:
    r = rec(
        TWO_LEVELS.replace("name: two\n", "name: two\nmax_concurrency: 1\n"),
        history=prefer("parallel", 6, 6, 0.9),
    )
    assert (r.pattern, r.how) == ("sequential", "selected")


def test_a_pattern_the_workflow_fixes_beats_a_preference() -> None:
    r = rec(
        TWO_LEVELS.replace("name: two\n", "name: two\npattern: parallel\n"),
        history=prefer("hybrid", 6, 6, 0.9),
    )
    assert (r.pattern, r.how) == ("parallel", "workflow")


# --- the shape of the answer -----------------------------------------------------------------


def test_the_json_of_a_recommendation() -> None:
    history = Learned(
        [outcome("parallel", 10.0, 2, runs=3)],
        [Preference("fan", "hybrid", 2, 2, 0.6667)],
    )
    r = rec(FAN, history=history)
    out = r.to_json()
    json.dumps(out)
    assert set(out) == {
        "pattern",
        "recommended",
        "how",
        "policy",
        "reasons",
        "cost_s",
        "method",
        "alternatives",
        "analysis",
        "preferences",
        "outcomes",
    }
    assert (out["pattern"], out["recommended"], out["how"], out["method"]) == (
        "parallel",
        "parallel",
        "selected",
        "exact",
    )
    assert out["policy"] == r.policy.to_json()
    assert out["analysis"] == r.analysis.to_json()
    alternatives = out["alternatives"]
    assert isinstance(alternatives, list)
    assert [a["pattern"] for a in alternatives] == list(PATTERNS)
    assert alternatives[1] == {
        "pattern": "parallel",
        "admissible": True,
        "makespan_s": 8.0,
        "why_not": None,
        "tradeoffs": r.alternative("parallel").tradeoffs,
        "measured_s": 10.0,
        "measured_runs": 3,
    }
    assert out["preferences"] == [
        {"pattern": "hybrid", "chosen": 2, "runs": 2, "confidence": 0.667, "level": "suggest"}
    ]
    assert out["outcomes"] == [
        {"pattern": "parallel", "runs": 3, "succeeded": 2, "median_makespan_s": 10.0}
    ]


def test_each_alternative_says_its_trade_offs() -> None:
    r = rec(FAN)
    assert len({a.tradeoffs for a in r.alternatives}) == 5
    assert all(a.tradeoffs for a in r.alternatives)


def test_workers_limit_every_simulated_pattern() -> None:
    r = rec(FAN, workers=2)
    assert r.method == "simulated"
    assert makespans(r)["sequential"] == 23.0
    # 21 s of fan-out work on two workers, between the root and the join
    assert makespans(r)["event-driven"] == 13.0
    assert r.analysis.max_concurrency is None  # the workflow's own limit: none


def test_too_many_steps_to_simulate_are_compared_by_bounds() -> None:
    n = SIMULATE_UP_TO + 1
    r = rec(
        "name: big\nresources:\n  pools:\n    p: 10\nagents:\n  n: {kind: noop}\nsteps:\n"
        + "".join(f"  - {{id: s{i}, agent: n, estimate: 1, uses: {{p: 1}}}}\n" for i in range(n))
    )
    assert r.method == "bounds"
    # the whole work one at a time; else the pool's bound: n step-seconds over 10 slots
    assert makespans(r) == {
        "sequential": float(n),
        "parallel": n / 10,
        "hybrid": None,  # one level
        "event-driven": n / 10,
        "resource-aware": n / 10,
    }
    assert r.pattern == "resource-aware"  # the pool is contended: it wins the tie


def test_select_without_a_store_is_recommend() -> None:
    wf = cp.loads(PACKED)
    chosen = asyncio.run(select(wf))
    assert chosen.to_json() == asyncio.run(recommend(wf)).to_json()


def test_a_run_without_a_pattern_runs_the_selected_one() -> None:
    result = vrun(cp.loads(PACKED))
    assert result.pattern == "resource-aware"
    assert result.makespan_s == 9.0
    assert result.selection is not None
    assert result.selection["pattern"] == "resource-aware"
    assert result.selection["how"] == "selected"


def test_a_run_of_a_workflow_that_fixes_its_pattern_selects_nothing() -> None:
    result = vrun(cp.loads(TWO_LEVELS.replace("name: two\n", "name: two\npattern: hybrid\n")))
    assert result.pattern == "hybrid"
    assert result.selection is None
