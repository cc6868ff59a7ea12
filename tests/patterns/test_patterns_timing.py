"""Constructs on the virtual clock: sync points, independence of branches, chaining, needs on
constructs, nesting, references to constructs, shares and running one at a time."""

from __future__ import annotations

import itertools
import textwrap
from typing import TYPE_CHECKING

import pytest

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace

OK = "succeeded"


def load(text: str) -> cp.Workflow:
    return cp.loads(textwrap.dedent(text), "wf.yaml")


HEAD = """\
name: t
agents:
  work: {kind: sleep}
steps:
"""


def streams_block(sync: str = "") -> str:
    return (
        HEAD
        + """\
  - parallel:
      id: block
      streams:
        a:
          - {id: a1, agent: work, estimate: 2s}
          - {id: a2, agent: work, estimate: 1s}
        b:
          - {id: b1, agent: work, estimate: 5s}
          - {id: b2, agent: work, estimate: 1s}
        c:
          - {id: c1, agent: work, estimate: 1s}
          - {id: c2, agent: work, estimate: 1s}
          - {id: c3, agent: work, estimate: 1s}
"""
        + sync
    )


SYNC_AB = """\
      sync_points:
        contract: {streams: [a, b], after: {a: a1, b: b1}}
"""


# --- sync points ---------------------------------------------------------------------------


def test_streams_in_a_sync_point_wait_for_each_other(ws: Workspace) -> None:
    result = ws.simulate(load(streams_block(SYNC_AB)))
    t = ws.times(result)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert t["a1"] == (0.0, 2.0)
    assert t["b1"] == (0.0, 5.0)
    assert t["a2"] == (5.0, 6.0)  # waits for b1 at the sync point
    assert t["b2"] == (5.0, 6.0)  # b1 was the later milestone: b goes on at once
    assert t["block"] == (6.0, 6.0)


def test_a_stream_outside_a_sync_point_never_waits(ws: Workspace) -> None:
    synced = ws.times(ws.simulate(load(streams_block(SYNC_AB))))
    free = ws.times(ws.simulate(load(streams_block())))
    expected = {"c1": (0.0, 1.0), "c2": (1.0, 2.0), "c3": (2.0, 3.0)}
    assert {k: synced[k] for k in expected} == expected
    assert {k: free[k] for k in expected} == expected
    # and without the sync point, a is not held back either
    assert free["a2"] == (2.0, 3.0)


def test_sync_point_compiles_to_needs_on_the_other_milestones() -> None:
    wf = load(streams_block(SYNC_AB))
    assert set(wf.step("a2").needs) == {"a1", "b1"}
    assert set(wf.step("b2").needs) == {"b1", "a1"}
    assert wf.step("c2").needs == ("c1",)
    assert set(wf.step("block").needs) == {"a2", "b2", "c3"}


def test_sync_point_waits_for_the_later_milestone_either_way(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - parallel:
      id: block
      streams:
        a: [{id: a1, agent: work, estimate: 7s}, {id: a2, agent: work, estimate: 1s}]
        b: [{id: b1, agent: work, estimate: 3s}, {id: b2, agent: work, estimate: 2s}]
        c: [{id: c1, agent: work, estimate: 4s}]
      sync_points:
        meet: {streams: [a, b], after: {a: a1, b: b1}}
"""
    )
    t = ws.times(ws.simulate(load(text)))
    assert t["b2"] == (7.0, 9.0)
    assert t["a2"] == (7.0, 8.0)
    assert t["c1"] == (0.0, 4.0)
    assert t["block"] == (9.0, 9.0)


# --- independence -------------------------------------------------------------------------


def test_a_slow_stream_never_delays_a_fast_one(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - parallel:
      id: block
      streams:
        fast: [{id: f1, agent: work, estimate: 1s}, {id: f2, agent: work, estimate: 1s}]
        slow: [{id: s1, agent: work, estimate: 10s}]
      steps:
        - {id: loose, agent: work, estimate: 2s}
  - {id: after-f2, agent: work, needs: f2, estimate: 1s}
  - {id: after-block, agent: work, needs: block, estimate: 1s}
"""
    )
    t = ws.times(ws.simulate(load(text)))
    assert t["f1"] == (0.0, 1.0)
    assert t["f2"] == (1.0, 2.0)
    assert t["loose"] == (0.0, 2.0)
    assert t["after-f2"] == (2.0, 3.0)  # needs a step inside the block, not the block
    assert t["block"] == (10.0, 10.0)
    assert t["after-block"] == (10.0, 11.0)


def test_a_slow_construct_never_delays_an_unrelated_one(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - sequence:
      id: slow
      steps: [{id: x1, agent: work, estimate: 10s}]
  - sequence:
      id: quick
      steps:
        - {id: y1, agent: work, estimate: 1s}
        - {id: y2, agent: work, estimate: 1s}
  - parallel:
      id: par
      needs: quick
      steps:
        - {id: p1, agent: work, estimate: 1s}
  - {id: z, agent: work, needs: par, estimate: 1s}
"""
    )
    t = ws.times(ws.simulate(load(text)))
    assert t["x1"] == (0.0, 10.0)
    assert t["y1"] == (0.0, 1.0)
    assert t["y2"] == (1.0, 2.0)
    assert t["quick"] == (2.0, 2.0)
    assert t["p1"] == (2.0, 3.0)
    assert t["z"] == (3.0, 4.0)
    assert t["slow"] == (10.0, 10.0)


# --- sequences and needs ----------------------------------------------------------------------


def test_sequence_chains_its_items(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - sequence:
      id: seq
      steps:
        - {id: s1, agent: work, estimate: 1s}
        - {id: s2, agent: work, estimate: 2s}
        - {id: s3, agent: work, estimate: 3s}
"""
    )
    wf = load(text)
    assert [s.id for s in wf.steps] == ["s1", "s2", "s3", "seq"]
    assert wf.step("s1").needs == ()
    assert wf.step("s2").needs == ("s1",)
    assert wf.step("s3").needs == ("s2",)
    assert wf.step("seq").needs == ("s3",)
    result = ws.simulate(wf)
    assert ws.times(result) == {
        "s1": (0.0, 1.0),
        "s2": (1.0, 3.0),
        "s3": (3.0, 6.0),
        "seq": (6.0, 6.0),
    }
    assert result.steps["seq"].agent == "<sequence>"
    assert result.makespan_s == 6.0


def test_construct_needs_apply_to_its_first_items(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - {id: pre, agent: work, estimate: 2s}
  - {id: other, agent: work, estimate: 4s}
  - sequence:
      id: seq
      needs: pre
      steps:
        - {id: s1, agent: work, estimate: 1s}
        - {id: s2, agent: work, estimate: 1s}
  - parallel:
      id: par
      needs: [pre, other]
      streams:
        left: [{id: l1, agent: work, estimate: 1s}, {id: l2, agent: work, estimate: 1s}]
        right: [{id: r1, agent: work, estimate: 1s}]
"""
    )
    wf = load(text)
    assert wf.step("s1").needs == ("pre",)
    assert wf.step("s2").needs == ("s1",)
    assert wf.step("l1").needs == ("pre", "other")
    assert wf.step("l2").needs == ("l1",)
    assert wf.step("r1").needs == ("pre", "other")
    t = ws.times(ws.simulate(wf))
    assert t["s1"] == (2.0, 3.0)
    assert t["s2"] == (3.0, 4.0)
    assert t["l1"] == (4.0, 5.0)
    assert t["r1"] == (4.0, 5.0)
    assert t["l2"] == (5.0, 6.0)
    assert t["par"] == (6.0, 6.0)


def test_needs_on_a_construct_waits_for_all_of_it(ws: Workspace) -> None:
    text = (
        HEAD
        + """\
  - parallel:
      id: build
      streams:
        one: [{id: o1, agent: work, estimate: 1s}]
        two: [{id: t1, agent: work, estimate: 2s}, {id: t2, agent: work, estimate: 3s}]
  - {id: deploy, agent: work, needs: build, estimate: 1s}
  - sequence:
      id: release
      needs: [build]
      steps: [{id: r1, agent: work, estimate: 1s}]
  - {id: notify, agent: work, needs: [release], estimate: 1s}
"""
    )
    wf = load(text)
    assert wf.step("deploy").needs == ("build",)
    assert set(wf.step("build").needs) == {"o1", "t2"}
    assert wf.step("build").agent == "@join"
    t = ws.times(ws.simulate(wf))
    assert t["build"] == (5.0, 5.0)
    assert t["deploy"] == (5.0, 6.0)
    assert t["r1"] == (5.0, 6.0)
    assert t["release"] == (6.0, 6.0)
    assert t["notify"] == (6.0, 7.0)


NESTED = """\
  - {id: start, agent: work, estimate: 1s}
  - phases:
      id: project
      needs: start
      phases:
        - id: setup
          pattern: sequential
          steps:
            - {id: init, agent: work, estimate: 1s}
        - id: build
          steps:
            - parallel:
                id: par
                streams:
                  left:
                    - sequence:
                        id: seq-l
                        steps:
                          - {id: l1, agent: work, estimate: 2s}
                          - {id: l2, agent: work, estimate: 3s}
                    - {id: l3, agent: work, estimate: 1s}
                  right:
                    - {id: r1, agent: work, estimate: 1s}
            - {id: side, agent: work, estimate: 2s}
        - id: finish
          pattern: sequential
          steps:
            - {id: final, agent: work, estimate: 1s}
"""


def test_phases_containing_parallel_containing_sequence(ws: Workspace) -> None:
    wf = load(HEAD + NESTED)
    assert set(wf.plan.parts) == {"project", "setup", "build", "par", "seq-l", "finish"}
    assert wf.plan.part_of["seq-l"] == "par"
    assert wf.plan.part_of["par"] == "build"
    assert wf.plan.part_of["build"] == "project"
    assert wf.plan.part_of["l1"] == "seq-l"
    result = ws.simulate(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert ws.times(result) == {
        "start": (0.0, 1.0),
        "init": (1.0, 2.0),
        "setup": (2.0, 2.0),
        "l1": (2.0, 4.0),
        "l2": (4.0, 7.0),
        "seq-l": (7.0, 7.0),
        "l3": (7.0, 8.0),
        "r1": (2.0, 3.0),
        "par": (8.0, 8.0),
        "side": (2.0, 4.0),
        "build": (8.0, 8.0),
        "final": (8.0, 9.0),
        "finish": (9.0, 9.0),
        "project": (9.0, 9.0),
    }


def test_nested_constructs_run_with_real_agents_and_join_outputs(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      echo: {kind: python, function: MOD:echo}
    steps:
      - phases:
          id: project
          phases:
            - id: setup
              pattern: sequential
              steps:
                - {id: init, agent: echo, estimate: 1s, input: {stage: init}}
            - id: build
              pattern: parallel
              streams:
                left:
                  - sequence:
                      id: seq-l
                      steps:
                        - {id: l1, agent: echo, estimate: 2s, input: {l: 1}}
                        - {id: l2, agent: echo, estimate: 3s, input: {l: 2}}
                right:
                  - {id: r1, agent: echo, estimate: 1s, input: {r: 1}}
            - id: finish
              pattern: sequential
              steps:
                - id: final
                  agent: echo
                  estimate: 1s
                  input: {got: "${{ steps.build.output }}", seq: "${{ steps.seq-l.output }}"}
    """
    code = """\
    async def echo(ctx):
        return ctx.input
    """
    wf = ws.load(text, code)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    t = ws.times(result)
    assert t["l2"] == (3.0, 6.0)
    assert t["final"] == (6.0, 7.0)
    assert result.outputs["seq-l"] == {"l": 2}
    assert result.outputs["build"] == {"l": 2, "r": 1}
    expected = {"got": {"l": 2, "r": 1}, "seq": {"l": 2}}
    assert result.outputs["final"] == expected
    assert result.outputs["finish"] == expected
    assert result.outputs["project"] == expected


def test_references_to_constructs_give_their_join_outputs(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      echo: {kind: python, function: MOD:echo}
      text: {kind: python, function: MOD:text}
    steps:
      - sequence:
          id: seq
          steps:
            - {id: s1, agent: echo, input: {x: 1, keep: a}}
            - {id: s2, agent: echo, input: {y: 2}}
      - parallel:
          id: par
          streams:
            one: [{id: p1, agent: echo, input: {k: 1, same: 0}}]
            two: [{id: p2, agent: echo, input: {j: 2, same: 0}}]
      - parallel:
          id: plain
          steps:
            - {id: q1, agent: text, input: hello}
            - {id: q2, agent: echo, input: {n: 3}}
      - phases:
          id: ph
          phases:
            - {id: ph1, pattern: sequential, steps: [{id: h1, agent: echo, input: {h: 1}}]}
            - {id: ph2, pattern: sequential, steps: [{id: h2, agent: echo, input: {h: 2}}]}
      - id: use
        agent: echo
        needs: [seq, par, plain, ph]
        input:
          seq: "${{ steps.seq.output }}"
          par: "${{ steps.par.output }}"
          k: "${{ steps.par.output.k }}"
          plain: "${{ steps.plain.output }}"
          ph: "${{ steps.ph.output }}"
          ph1: "${{ steps.ph1.output.h }}"
    """
    code = """\
    async def echo(ctx):
        return ctx.input

    async def text(ctx):
        return ctx.input + "!"
    """
    result = ws.run(ws.load(text, code))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["use"] == {
        "seq": {"y": 2},
        "par": {"k": 1, "same": 0, "j": 2},
        "k": 1,
        "plain": {"q1": "hello!", "q2": {"n": 3}},
        "ph": {"h": 2},
        "ph1": 1,
    }


def test_a_reference_to_a_construct_not_upstream_is_rejected() -> None:
    text = (
        HEAD
        + """\
  - sequence:
      id: seq
      steps: [{id: s1, agent: work}]
  - {id: use, agent: work, input: {x: "${{ steps.seq.output }}"}}
"""
    )
    with pytest.raises(cp.WorkflowInvalid, match="not upstream"):
        load(text)


# --- shares ----------------------------------------------------------------------------------

SHARES = """\
name: t
max_concurrency: 3
agents:
  work: {kind: sleep}
steps:
  - parallel:
      id: build
      streams:
        backend:
          - parallel:
              id: be
              steps:
                - {id: b1, agent: work, estimate: 2s}
                - {id: b2, agent: work, estimate: 2s}
                - {id: b3, agent: work, estimate: 2s}
                - {id: b4, agent: work, estimate: 2s}
        frontend:
          - parallel:
              id: fe
              steps:
                - {id: f1, agent: work, estimate: 1s}
                - {id: f2, agent: work, estimate: 1s}
                - {id: f3, agent: work, estimate: 1s}
"""


def _most_at_once(result: cp.RunResult, ids: list[str]) -> int:
    """The largest number of ``ids`` running at one moment (zero-length steps count too)."""
    spans = [result.steps[i] for i in ids]
    moments = {r.start for r in spans}
    return max(
        sum(1 for r in spans if r.start is not None and r.end is not None and r.start <= m < r.end)
        for m in moments
    )


def test_shares_cap_each_stream(ws: Workspace) -> None:
    wf = load(SHARES + "      shares: {backend: 2, frontend: 1}\n")
    result = ws.simulate(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    t = ws.times(result)
    backend = ["b1", "b2", "b3", "b4"]
    frontend = ["f1", "f2", "f3"]
    assert _most_at_once(result, backend) == 2
    assert _most_at_once(result, frontend) == 1
    assert sorted(t[b] for b in backend) == [(0.0, 2.0), (0.0, 2.0), (2.0, 4.0), (2.0, 4.0)]
    assert sorted(t[f] for f in frontend) == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert t["fe"] == (3.0, 3.0)
    assert t["be"] == (4.0, 4.0)
    assert t["build"] == (4.0, 4.0)


def test_shares_with_workers_given_at_run_time(ws: Workspace) -> None:
    text = SHARES.replace("max_concurrency: 3\n", "") + "      shares: {backend: 2, frontend: 1}\n"
    result = ws.simulate(load(text), workers=3)
    assert _most_at_once(result, ["b1", "b2", "b3", "b4"]) == 2
    assert _most_at_once(result, ["f1", "f2", "f3"]) == 1
    assert result.makespan_s == 4.0


def test_without_shares_one_stream_may_take_every_slot(ws: Workspace) -> None:
    result = ws.simulate(load(SHARES))
    # the backend is on the critical path: it takes the three slots first
    assert _most_at_once(result, ["b1", "b2", "b3", "b4"]) == 3
    assert result.steps["f1"].start == 2.0


def test_shares_name_existing_streams() -> None:
    with pytest.raises(cp.WorkflowInvalid, match="no stream 'mobile'"):
        load(SHARES + "      shares: {backend: 2, mobile: 1}\n")


# --- one at a time ----------------------------------------------------------------------------

EVERYTHING = """\
name: t
agents:
  work: {kind: sleep}
steps:
  - {id: plan, agent: work, estimate: 1s}
  - parallel:
      id: build
      needs: plan
      streams:
        backend:
          - {id: api, agent: work, estimate: 3s}
          - {id: api-tests, agent: work, estimate: 2s}
        frontend:
          - {id: ui, agent: work, estimate: 1s}
          - {id: ui-tests, agent: work, estimate: 1s}
        docs:
          - {id: guide, agent: work, estimate: 4s}
      sync_points:
        contract: {streams: [backend, frontend], after: {backend: api, frontend: ui}}
      shares: {backend: 2, frontend: 1}
  - phases:
      id: integrate
      needs: build
      lookahead: true
      phases:
        - id: p1
          pattern: parallel
          steps:
            - {id: x1, agent: work, estimate: 1s}
            - {id: x2, agent: work, estimate: 2s}
        - id: p2
          pattern: sequential
          steps:
            - {id: y1, agent: work, estimate: 1s, needs: x1}
            - {id: y2, agent: work, estimate: 1s}
  - sequence:
      id: release
      needs: integrate
      steps:
        - {id: package, agent: work, estimate: 1s}
        - {id: publish, agent: work, estimate: 1s}
"""


def _no_overlap(result: cp.RunResult) -> None:
    spans = sorted(
        (r.start, r.end, sid)
        for sid, r in result.steps.items()
        if r.start is not None and r.end is not None
    )
    for (s1, e1, a), (s2, _e2, b) in itertools.pairwise(spans):
        assert s2 >= e1, f"{a} ({s1}-{e1}) overlaps {b} (from {s2})"


def test_one_worker_runs_every_construct_as_a_sequence(ws: Workspace) -> None:
    wf = load(EVERYTHING)
    result = ws.simulate(wf, workers=1)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert set(ws.statuses(result).values()) == {OK}
    _no_overlap(result)
    total = sum(s.estimate or 0.0 for s in wf.steps)
    assert total == 19.0
    assert result.makespan_s == total
    t = ws.times(result)
    # the dependencies still hold
    assert t["api"][1] <= t["api-tests"][0] and t["ui"][1] <= t["api-tests"][0]
    assert t["api"][1] <= t["ui-tests"][0]
    assert t["x1"][1] <= t["y1"][0]
    assert t["build"][1] <= min(t["x1"][0], t["x2"][0])
    assert t["integrate"][1] <= t["package"][0] < t["publish"][0]


def test_one_worker_with_real_agents(ws: Workspace) -> None:
    text = """\
    name: t
    max_concurrency: 1
    agents:
      echo: {kind: python, function: MOD:echo}
    steps:
      - parallel:
          id: build
          streams:
            a: [{id: a1, agent: echo, estimate: 1s, input: {a: 1}}]
            b: [{id: b1, agent: echo, estimate: 2s, input: {b: 1}}]
          shares: {a: 1, b: 1}
          gate: {required: [a, b]}
      - sequence:
          id: seq
          needs: build
          steps:
            - {id: s1, agent: echo, estimate: 1s, input: {s: 1}}
            - {id: s2, agent: echo, estimate: 1s, input: {s: 2}, validate: {required: [s]}}
    """
    code = """\
    async def echo(ctx):
        return ctx.input
    """
    result = ws.run(ws.load(text, code))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    _no_overlap(result)
    assert result.makespan_s == 5.0
    assert result.outputs["build"] == {"a": 1, "b": 1}
    assert result.outputs["seq"] == {"s": 2}


def test_sync_points_must_name_streams_and_their_steps() -> None:
    bad_stream = streams_block(
        "      sync_points:\n        s: {streams: [a, z], after: {a: a1, z: z1}}\n"
    )
    with pytest.raises(cp.WorkflowInvalid, match="no stream 'z'"):
        load(bad_stream)
    bad_step = streams_block(
        "      sync_points:\n        s: {streams: [a, b], after: {a: a1, b: a2}}\n"
    )
    with pytest.raises(cp.WorkflowInvalid, match="stream 'b' has no step 'a2'"):
        load(bad_step)
    missing = streams_block("      sync_points:\n        s: {streams: [a, b], after: {a: a1}}\n")
    with pytest.raises(cp.WorkflowInvalid, match="say after which step of 'b'"):
        load(missing)
