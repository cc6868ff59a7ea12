"""What selection looks at: shape, constraints, pools and their contention, people and events,
risk from failure rates, and each step's expected time with its retries."""

from __future__ import annotations

import json

import pytest

import counterpoint as cp
from counterpoint.selection import analyse
from counterpoint.selection.analysis import FLAKY, FLAKY_EVIDENCE, Risk, effective_estimates

FULL = """\
name: full
resources:
  pools:
    gpu: 2
    mem: {capacity: {gb: 16}}
  rate_limits:
    api: 10/min
agents:
  n: {kind: noop}
  ok: {kind: approval}
  w: {kind: wait, event: go}
triggers:
  - {on: go, run: [later]}
steps:
  - phases:
      id: ship
      phases:
        - id: prep
          pattern: sequential
          gate: {required: [x]}
          steps:
            - {id: a, agent: n, estimate: 2, uses: {gpu: 1}}
            - id: b
              agent: n
              estimate: 3
              uses: {gpu: 2, mem: {gb: 8}}
              validate: {required: [y]}
        - id: roll
          pattern: parallel
          steps:
            - {id: c, agent: n, estimate: 4, uses: {gpu: 1}}
            - {id: d, agent: n, estimate: 1}
            - {id: e, agent: n, estimate: 1}
  - {id: sign, agent: ok, estimate: 1, needs: ship}
  - {id: listen, agent: w, estimate: 1}
  - {id: later, agent: n, estimate: 1}
"""

DIAMOND = """\
name: diamond
deadline: 30s
max_concurrency: 3
agents:
  n: {kind: noop}
steps:
  - {id: top, agent: n, estimate: 1}
  - {id: l, agent: n, estimate: 2, needs: top}
  - {id: m, agent: n, estimate: 6, needs: top}
  - {id: r, agent: n, estimate: 3, needs: top}
  - {id: bottom, agent: n, estimate: 1, needs: [l, m, r]}
  - {id: loose, agent: n}
"""


def test_the_shape_of_the_dependencies() -> None:
    a = analyse(cp.loads(DIAMOND))
    assert a.steps == 6
    assert a.depth == 3
    assert a.width == 3  # levels {top, loose}, {l, m, r}, {bottom}
    assert a.critical_path_s == 8.0  # top, m, bottom
    assert a.work_s == 14.0  # loose has no estimate: 1 s
    assert a.parallelism == pytest.approx(14.0 / 8.0)
    assert a.unestimated == 1
    assert a.max_concurrency == 3
    assert a.deadline_s == 30.0
    assert a.size == "small"
    assert (a.pools, a.contention, a.rate_limits, a.budgets, a.windows) == ({}, 0.0, 0, 0, 0)
    assert (a.gates, a.phases, a.fixed) == (0, 0, {})
    assert (a.approvals, a.waits, a.triggers, a.interaction) == (0, 0, 0, 0)
    assert a.risks == [] and a.flaky == []


def test_a_chain_is_one_wide_and_as_deep_as_it_is_long() -> None:
    wf = cp.loads(
        """\
name: chain
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 2, needs: a}
  - {id: c, agent: n, estimate: 3, needs: b}
"""
    )
    a = analyse(wf)
    assert (a.steps, a.depth, a.width) == (3, 3, 1)
    assert a.critical_path_s == a.work_s == 6.0
    assert a.parallelism == 1.0


def test_pools_constructs_people_and_events() -> None:
    a = analyse(cp.loads(FULL))
    # join steps of the constructs are not counted as steps
    assert a.steps == 8
    assert a.critical_path_s == 10.0  # a, b (sequential phase), c, then sign
    assert a.work_s == 14.0
    # gpu: 12 gpu-seconds over 2 gpus over the 10 s critical path; 4 asked for at once
    assert a.pools == {
        "gpu": {"slots": 0.6, "slots_all_at_once": 2.0},
        "mem": {"gb": 0.15, "gb_all_at_once": 0.5},
    }
    assert a.contention == 0.6
    assert a.rate_limits == 1
    assert a.gates == 2  # the phase's gate and b's checkpoint
    assert a.phases == 2
    assert a.fixed == {"prep": "sequential", "roll": "parallel"}
    assert (a.approvals, a.waits, a.triggers) == (1, 1, 1)
    assert a.interaction == 3


def test_contention_over_one_means_the_pool_cannot_keep_up_with_the_critical_path() -> None:
    steps = "".join(
        f"  - {{id: s{i}, agent: n, estimate: 1, uses: {{gpu: 1}}}}\n" for i in range(10)
    )
    wf = cp.loads(
        "name: busy\nresources:\n  pools:\n    gpu: 2\nagents:\n  n: {kind: noop}\nsteps:\n"
        + steps
        + "  - {id: long, agent: n, estimate: 4, uses: {gpu: 1}}\n"
        + "  - {id: after, agent: n, estimate: 4, needs: long, uses: {gpu: 1}}\n"
    )
    a = analyse(wf)
    assert a.critical_path_s == 8.0
    assert a.pools == {"gpu": {"slots": 1.125, "slots_all_at_once": 6.0}}  # 18 / 2 / 8
    assert a.contention == 1.125


def test_flaky_agents_come_from_failure_rates_with_enough_evidence() -> None:
    a = analyse(
        cp.loads(FULL),
        failure_rates={
            "n": (10, 0.3),  # flaky
            "ok": (FLAKY_EVIDENCE - 1, 0.9),  # too few attempts to believe it
            "w": (10, 0.0),  # never fails: no risk
            "ghost": (10, 0.5),  # not an agent of this workflow
        },
    )
    assert a.risks == [Risk("n", 10, 0.3)]
    assert a.flaky == ["n"]


def test_risks_are_worst_first_and_only_from_the_flaky_threshold_flaky() -> None:
    wf = cp.loads(FULL)
    a = analyse(wf, failure_rates={"n": (20, 0.05), "ok": (5, FLAKY), "w": (8, 0.5)})
    assert [(r.agent, r.failure_rate) for r in a.risks] == [("w", 0.5), ("ok", FLAKY), ("n", 0.05)]
    assert a.flaky == ["w", "ok"]  # 5 % is a risk, not flaky


def test_learned_durations_are_kept() -> None:
    a = analyse(cp.loads(DIAMOND), learned={"n": 2.5})
    assert a.learned == {"n": 2.5}


def test_the_json_of_an_analysis() -> None:
    a = analyse(cp.loads(FULL), failure_rates={"n": (10, 0.3)})
    out = a.to_json()
    json.dumps(out)  # plain JSON
    assert set(out) == {
        "steps",
        "depth",
        "width",
        "critical_path_s",
        "work_s",
        "parallelism",
        "unestimated",
        "max_concurrency",
        "pools",
        "contention",
        "rate_limits",
        "budgets",
        "windows",
        "deadline_s",
        "gates",
        "phases",
        "fixed",
        "approvals",
        "waits",
        "triggers",
        "learned",
        "risks",
        "flaky",
        "size",
        "interaction",
    }
    assert out["risks"] == [{"agent": "n", "attempts": 10, "failure_rate": 0.3}]
    assert out["flaky"] == ["n"]
    assert out["size"] == "small"
    assert out["interaction"] == 3


RETRIED = """\
name: retried
defaults:
  retries: {max: 2, backoff: 1, jitter: 0}
agents:
  f: {kind: noop}
  n: {kind: noop}
steps:
  - {id: a, agent: f, estimate: 4}
  - {id: b, agent: n, estimate: 2}
  - {id: c, agent: f, estimate: 1, needs: [a, b], retries: 0}
"""


def test_effective_estimates_add_the_expected_failed_attempts_and_backoffs() -> None:
    wf = cp.loads(RETRIED)
    # a: 4 + 0.5 (4 + 1) + 0.25 (4 + 2) = 8; c has no retries: its estimate
    assert effective_estimates(wf, wf.graph, {"f": 0.5}) == [8.0, 2.0, 1.0]
    # raced against a second attempt of itself, an attempt fails with 0.5 ** 2
    assert effective_estimates(wf, wf.graph, {"f": 0.5}, frozenset({"f"})) == [5.625, 2.0, 1.0]
    assert effective_estimates(wf, wf.graph, {}) == [4.0, 2.0, 1.0]


def test_effective_estimates_use_the_jittered_backoff_on_average() -> None:
    wf = cp.loads(RETRIED.replace("jitter: 0", "jitter: 0.5"))
    # the backoffs are shortened by a quarter on average: 0.75 s, then 1.5 s
    assert effective_estimates(wf, wf.graph, {"f": 0.5}) == [
        pytest.approx(4 + 0.5 * 4.75 + 0.25 * 5.5),
        2.0,
        1.0,
    ]
