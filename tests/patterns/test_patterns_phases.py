"""Phases: in order, each after the previous one's gate; lookahead for steps that say what
they need."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace


def load(text: str) -> cp.Workflow:
    return cp.loads(textwrap.dedent(text), "wf.yaml")


PHASES = """\
name: t
agents:
  make: {kind: python, function: MOD:make}
steps:
  - phases:
      id: project
      phases:
        - id: design
          pattern: sequential
          steps:
            - {id: d1, agent: make, estimate: 1s, input: {draft: 1}}
            - {id: d2, agent: make, estimate: 2s, input: {SPEC}}
          gate: {required: [spec]}
        - id: build
          pattern: parallel
          steps:
            - {id: b1, agent: make, estimate: 1s, input: {b1: done}}
            - {id: b2, agent: make, estimate: 3s, input: {b2: done}}
          gate: {required: [b1, b2]}
        - id: ship
          steps:
            - {id: s1, agent: make, estimate: 1s, input: {shipped: true}}
  - {id: after, agent: make, needs: project, estimate: 1s, input: {}}
"""

MAKE = """\
CALLS = []

async def make(ctx):
    CALLS.append(ctx.step_id)
    return ctx.input
"""


def test_phases_run_in_order_through_their_gates(ws: Workspace) -> None:
    wf = ws.load(PHASES.replace("{SPEC}", "{spec: [a, b]}"), MAKE)
    assert wf.step("b1").needs == ("design",)
    assert wf.step("s1").needs == ("build",)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert ws.times(result) == {
        "d1": (0.0, 1.0),
        "d2": (1.0, 3.0),
        "design": (3.0, 3.0),
        "b1": (3.0, 4.0),
        "b2": (3.0, 6.0),
        "build": (6.0, 6.0),
        "s1": (6.0, 7.0),
        "ship": (7.0, 7.0),
        "project": (7.0, 7.0),
        "after": (7.0, 8.0),
    }
    assert result.outputs["design"] == {"spec": ["a", "b"]}
    assert result.outputs["build"] == {"b1": "done", "b2": "done"}
    assert result.outputs["project"] == {"shipped": True}
    assert result.steps["design"].agent == "<phase>"
    assert result.steps["project"].agent == "<phases>"


def test_a_failing_gate_fails_its_phase_and_skips_the_later_ones(ws: Workspace) -> None:
    wf = ws.load(PHASES.replace("{SPEC}", "{notes: only notes}"), MAKE)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.FAILED
    design = result.steps["design"]
    assert design.status is cp.StepState.FAILED
    assert design.attempts == 1  # a gate is not retried
    assert design.error is not None
    assert "gate of phase 'design'" in design.error
    assert "missing or empty: spec" in design.error
    assert '{"notes": "only notes"}' in design.error  # the output is shown
    assert ws.statuses(result) == {
        "d1": "succeeded",
        "d2": "succeeded",
        "design": "failed",
        "b1": "skipped",
        "b2": "skipped",
        "build": "skipped",
        "s1": "skipped",
        "ship": "skipped",
        "project": "skipped",
        "after": "skipped",
    }
    assert ws.mod().CALLS == ["d1", "d2"]  # type: ignore[attr-defined]


def test_a_failing_gate_of_a_parallel_phase_shows_the_merged_output(ws: Workspace) -> None:
    text = PHASES.replace("{SPEC}", "{spec: [a]}").replace("{b2: done}", "{other: 1}")
    result = ws.run(ws.load(text, MAKE))
    build = result.steps["build"]
    assert build.status is cp.StepState.FAILED
    assert build.error is not None
    assert "gate of phase 'build'" in build.error
    assert "missing or empty: b2" in build.error
    assert '"b1": "done"' in build.error and '"other": 1' in build.error
    assert result.steps["s1"].status is cp.StepState.SKIPPED
    assert result.steps["b2"].status is cp.StepState.SUCCEEDED


def test_gate_on_a_sequence_and_a_parallel_block(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      make: {kind: python, function: MOD:make}
    steps:
      - sequence:
          id: seq
          steps:
            - {id: a, agent: make, input: {x: 1}}
          gate: {quality: {score: "${{ output.x }}", at_least: 2}}
      - parallel:
          id: par
          steps:
            - {id: p, agent: make, input: {y: 1}}
          gate: {required: [y]}
      - {id: z, agent: make, needs: [seq], input: {}}
    """
    result = ws.run(ws.load(text, MAKE))
    seq = result.steps["seq"]
    assert seq.status is cp.StepState.FAILED
    assert seq.error is not None
    assert "gate of sequence 'seq'" in seq.error
    assert "quality score 1 is below 2" in seq.error
    assert result.steps["par"].status is cp.StepState.SUCCEEDED
    assert result.steps["z"].status is cp.StepState.SKIPPED


LOOKAHEAD = """\
name: t
agents:
  work: {kind: sleep}
steps:
  - {id: pre, agent: work, estimate: 1s}
  - phases:
      id: project
      needs: pre
      lookahead: LOOK
      phases:
        - id: one
          pattern: parallel
          steps:
            - {id: quick, agent: work, estimate: 1s}
            - {id: slow, agent: work, estimate: 5s}
        - id: two
          steps:
            - {id: early, agent: work, needs: quick, estimate: 1s}
            - {id: late, agent: work, estimate: 1s}
  - {id: after, agent: work, needs: project, estimate: 1s}
"""

THIRD = """\
        - id: three
          pattern: sequential
          steps:
            - {id: t1, agent: work, needs: early, estimate: 1s}
            - {id: t2, agent: work, estimate: 1s}
"""


def with_third_phase(text: str) -> str:
    return text.replace("  - {id: after", THIRD + "  - {id: after")


def test_lookahead_lets_steps_with_needs_start_early(ws: Workspace) -> None:
    wf = load(LOOKAHEAD.replace("LOOK", "true"))
    result = ws.simulate(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert ws.times(result) == {
        "pre": (0.0, 1.0),
        "quick": (1.0, 2.0),
        "slow": (1.0, 6.0),
        "one": (6.0, 6.0),
        "early": (2.0, 3.0),  # as soon as quick is done, before phase one ends
        "late": (6.0, 7.0),  # no needs of its own: waits for phase one
        "two": (7.0, 7.0),
        "project": (7.0, 7.0),
        "after": (7.0, 8.0),
    }


def test_without_lookahead_every_step_waits_for_the_previous_phase(ws: Workspace) -> None:
    wf = load(LOOKAHEAD.replace("LOOK", "false"))
    result = ws.simulate(wf)
    t = ws.times(result)
    assert t["one"] == (6.0, 6.0)
    assert t["early"] == (6.0, 7.0)
    assert t["late"] == (6.0, 7.0)
    assert t["two"] == (7.0, 7.0)
    assert t["project"] == (7.0, 7.0)


def test_lookahead_keeps_the_blocks_own_needs(ws: Workspace) -> None:
    wf = load(LOOKAHEAD.replace("LOOK", "true"))
    # a lookahead step still waits for what the whole block waits for
    assert set(wf.step("early").needs) == {"quick", "pre"}
    assert set(wf.step("late").needs) == {"pre", "one"}
    wf = load(LOOKAHEAD.replace("LOOK", "false"))
    assert set(wf.step("early").needs) == {"quick", "one"}
    assert wf.step("late").needs == ("one",)


def test_lookahead_a_phases_block_completes_only_after_every_phase(ws: Workspace) -> None:
    # phase three's steps may all go early, but phase two is still running: the block (and
    # what needs it) must wait for phase two too
    wf = load(with_third_phase(LOOKAHEAD.replace("LOOK", "true")))
    t = ws.times(ws.simulate(wf))
    assert t["two"] == (7.0, 7.0)
    assert t["t1"] == (3.0, 4.0)  # its own needs are done
    last_phase_end = max(t[p][1] or 0.0 for p in ("one", "two", "three"))
    assert last_phase_end >= 7.0
    assert t["project"] == (last_phase_end, last_phase_end)
    assert t["after"] == (last_phase_end, last_phase_end + 1.0)


def test_lookahead_the_rest_of_a_sequential_phase_follows_its_chain(
    ws: Workspace,
) -> None:
    # t1 declares its needs and goes early; t2 follows t1 in its sequential phase: its input
    # (t1's output) is ready at 4, so it goes on; the phase ends, and the block waits for
    # every phase (two ends at 7)
    wf = load(with_third_phase(LOOKAHEAD.replace("LOOK", "true")))
    t = ws.times(ws.simulate(wf))
    assert t["t1"] == (3.0, 4.0)
    assert t["t2"] == (4.0, 5.0)
    assert t["three"] == (5.0, 5.0)
    assert t["project"] == (7.0, 7.0)


def test_without_lookahead_three_phases_in_order(ws: Workspace) -> None:
    wf = load(with_third_phase(LOOKAHEAD.replace("LOOK", "false")))
    t = ws.times(ws.simulate(wf))
    assert t["t1"] == (7.0, 8.0)
    assert t["t2"] == (8.0, 9.0)
    assert t["three"] == (9.0, 9.0)
    assert t["project"] == (9.0, 9.0)
    assert t["after"] == (9.0, 10.0)
