"""Handoff packages between the items of a sequence, and rollback to the last validated
state when a checkpoint fails for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace

CODE = """\
SEEN = {}
RUNS = []

def package(h):
    if h is None:
        return None
    return {
        "sequence": h.sequence,
        "position": h.position,
        "previous": h.previous,
        "previous_output": h.previous_output,
        "results": dict(h.results),
        "context": dict(h.context),
        "validation": dict(h.validation),
        "errors": list(h.errors),
    }

async def give(ctx):
    SEEN[ctx.step_id] = package(ctx.handoff)
    RUNS.append((ctx.step_id, ctx.attempt, package(ctx.handoff)))
    return ctx.input

async def draft(ctx):
    RUNS.append((ctx.step_id, ctx.attempt, package(ctx.handoff)))
    return {"draft": sum(1 for r in RUNS if r[0] == ctx.step_id), "tmp": ctx.step_id}

async def review(ctx):
    RUNS.append((ctx.step_id, ctx.attempt, package(ctx.handoff)))
    draft = ctx.handoff.context.get("draft", 0)
    return {"ok": draft >= NEEDED} if draft >= NEEDED else {"ok": None}

NEEDED = 99
"""


def test_each_item_gets_its_handoff_package(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      give: {kind: python, function: MOD:give}
    steps:
      - {id: alone, agent: give, input: {z: 0}}
      - sequence:
          id: seq
          needs: alone
          steps:
            - {id: a, agent: give, input: {x: 1, y: 1}}
            - id: b
              agent: give
              input: {y: 2, z: 3}
              validate: {required: [y]}
            - {id: c, agent: give, input: done}
            - {id: d, agent: give, input: {x: 4}}
      - parallel:
          id: par
          needs: seq
          steps: [{id: p, agent: give, input: {}}]
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    seen = ws.mod().SEEN  # type: ignore[attr-defined]
    assert seen["alone"] is None
    assert seen["p"] is None
    assert seen["a"] == {
        "sequence": "seq",
        "position": 0,
        "previous": None,
        "previous_output": None,
        "results": {},
        "context": {},
        "validation": {},
        "errors": [],
    }
    assert seen["b"] == {
        "sequence": "seq",
        "position": 1,
        "previous": "a",
        "previous_output": {"x": 1, "y": 1},
        "results": {"a": {"x": 1, "y": 1}},
        "context": {"x": 1, "y": 1},
        "validation": {"checkpoint": "a", "checked": False, "passed": True},
        "errors": [],
    }
    assert seen["c"] == {
        "sequence": "seq",
        "position": 2,
        "previous": "b",
        "previous_output": {"y": 2, "z": 3},
        "results": {"a": {"x": 1, "y": 1}, "b": {"y": 2, "z": 3}},
        "context": {"x": 1, "y": 2, "z": 3},  # later keys win
        "validation": {"checkpoint": "b", "checked": True, "passed": True},
        "errors": [],
    }
    assert seen["d"] == {
        "sequence": "seq",
        "position": 3,
        "previous": "c",
        "previous_output": "done",
        "results": {"a": {"x": 1, "y": 1}, "b": {"y": 2, "z": 3}, "c": "done"},
        "context": {"x": 1, "y": 2, "z": 3},  # a text output adds nothing to the context
        "validation": {"checkpoint": "c", "checked": False, "passed": True},
        "errors": [],
    }
    assert result.outputs["seq"] == {"x": 4}


def test_a_sequential_phase_hands_off_too(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      give: {kind: python, function: MOD:give}
    steps:
      - phases:
          id: project
          phases:
            - id: setup
              pattern: sequential
              steps:
                - {id: s1, agent: give, input: {k: 1}}
                - {id: s2, agent: give, input: {k: 2}}
            - id: wide
              pattern: parallel
              steps: [{id: w1, agent: give, input: {}}]
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    seen = ws.mod().SEEN  # type: ignore[attr-defined]
    assert seen["s2"]["sequence"] == "setup"
    assert seen["s2"]["position"] == 1
    assert seen["s2"]["previous_output"] == {"k": 1}
    assert seen["s2"]["context"] == {"k": 1}
    assert seen["w1"] is None


ROLLBACK = """\
name: t
agents:
  give: {kind: python, function: MOD:give}
  draft: {kind: python, function: MOD:draft}
  review: {kind: python, function: MOD:review}
steps:
  - sequence:
      id: seq
      rollback: ROLLBACK
      steps:
        - {id: p, agent: give, estimate: 1s, input: {base: 1}}
        - {id: a, agent: draft, estimate: 1s}
        - id: b
          agent: review
          estimate: 1s
          retries: 0
          validate: {required: [ok]}
  - {id: after, agent: give, needs: seq, input: {}}
"""


def runs_of(ws: Workspace, step: str) -> list[dict[str, object]]:
    return [h for s, _, h in ws.mod().RUNS if s == step]  # type: ignore[attr-defined]


def test_rollback_runs_the_previous_item_again_with_feedback(ws: Workspace) -> None:
    wf = ws.load(ROLLBACK.replace("ROLLBACK", "1"), CODE)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.FAILED
    # p, a, b (fails its checkpoint), back to a, b again (fails again: no rollback left)
    assert ws.backend is not None
    assert ws.backend.started == [
        ("p", 1, 0.0),
        ("a", 1, 1.0),
        ("b", 1, 2.0),
        ("a", 2, 3.0),
        ("b", 2, 4.0),
    ]
    a_runs = runs_of(ws, "a")
    assert len(a_runs) == 2
    # the context is restored to exactly what it was before a's first run
    assert a_runs[0]["context"] == {"base": 1}
    assert a_runs[1]["context"] == {"base": 1}
    assert a_runs[0]["errors"] == []
    (feedback,) = a_runs[1]["errors"]  # type: ignore[misc]
    assert "rolled back" in feedback
    assert "'b'" in feedback
    assert "checkpoint after 'b' failed: missing or empty: ok" in feedback
    # b sees a's new output, not the one rolled back
    b_runs = runs_of(ws, "b")
    assert b_runs[0]["context"] == {"base": 1, "draft": 1, "tmp": "a"}
    assert b_runs[1]["context"] == {"base": 1, "draft": 2, "tmp": "a"}
    assert b_runs[1]["previous_output"] == {"draft": 2, "tmp": "a"}
    b = result.steps["b"]
    assert b.status is cp.StepState.FAILED
    assert b.error is not None
    assert b.error.startswith("checkpoint after 'b' failed: missing or empty: ok")
    assert result.steps["a"].status is cp.StepState.SUCCEEDED
    assert result.steps["a"].attempts == 2
    assert result.steps["seq"].status is cp.StepState.SKIPPED
    assert result.steps["after"].status is cp.StepState.SKIPPED
    rolled = [e for e in result.events if e.name == "rolled-back"]
    assert len(rolled) == 1
    assert rolled[0].step_id == "b"
    assert rolled[0].time == 3.0
    assert rolled[0].data["to"] == "a"
    assert "missing or empty: ok" in str(rolled[0].data["error"])


def test_rollback_that_fixes_the_failure_lets_the_sequence_go_on(ws: Workspace) -> None:
    wf = ws.load(
        ROLLBACK.replace("ROLLBACK", "{max: 2}"), CODE.replace("NEEDED = 99", "NEEDED = 2")
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["b"] == {"ok": True}
    assert result.outputs["seq"] == {"ok": True}
    assert result.steps["a"].attempts == 2
    assert result.steps["b"].attempts == 2
    assert result.steps["b"].end == 5.0
    assert result.steps["after"].start == 5.0
    assert len([e for e in result.events if e.name == "rolled-back"]) == 1


def test_rollback_budget(ws: Workspace) -> None:
    wf = ws.load(ROLLBACK.replace("ROLLBACK", "{max: 2}"), CODE)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.FAILED
    rolled = [e for e in result.events if e.name == "rolled-back"]
    assert [e.time for e in rolled] == [3.0, 5.0]
    a_runs = runs_of(ws, "a")
    assert len(a_runs) == 3
    assert all(r["context"] == {"base": 1} for r in a_runs)
    assert len(a_runs[2]["errors"]) == 2  # type: ignore[arg-type]
    assert result.steps["b"].attempts == 3
    assert "checkpoint after 'b'" in (result.steps["b"].error or "")


def test_no_rollback_without_a_policy(ws: Workspace) -> None:
    text = ROLLBACK.replace("      rollback: ROLLBACK\n", "")
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.FAILED
    assert len(runs_of(ws, "a")) == 1
    assert [e for e in result.events if e.name == "rolled-back"] == []
    assert result.steps["b"].attempts == 1


def test_a_construct_inside_a_sequence_hands_off_its_join_output(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      give: {kind: python, function: MOD:give}
    steps:
      - sequence:
          id: seq
          steps:
            - {id: a, agent: give, input: {x: 1}}
            - parallel:
                id: par
                streams:
                  one: [{id: p1, agent: give, input: {y: 1}}]
                  two: [{id: p2, agent: give, input: {z: 1}}]
            - {id: c, agent: give, input: {x: 2}}
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    seen = ws.mod().SEEN  # type: ignore[attr-defined]
    assert seen["c"]["position"] == 2
    assert seen["c"]["previous"] == "par"
    assert seen["c"]["previous_output"] == {"y": 1, "z": 1}
    assert seen["c"]["results"] == {"a": {"x": 1}, "par": {"y": 1, "z": 1}}
    assert seen["c"]["context"] == {"x": 1, "y": 1, "z": 1}
    assert seen["p1"] is None  # a stream's item belongs to the parallel block
    assert result.outputs["seq"] == {"x": 2}


def test_retries_start_afresh_after_a_rollback(ws: Workspace) -> None:
    text = ROLLBACK.replace("ROLLBACK", "1").replace("retries: 0", "retries: {max: 1, backoff: 0}")
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.FAILED
    assert ws.backend is not None
    assert [(s, a) for s, a, _ in ws.backend.started] == [
        ("p", 1),
        ("a", 1),
        ("b", 1),
        ("b", 2),
        ("a", 2),
        ("b", 3),
        ("b", 4),
    ]
    b_runs = runs_of(ws, "b")
    assert len(b_runs[1]["errors"]) == 1  # type: ignore[arg-type]
    assert "checkpoint after 'b' failed" in b_runs[1]["errors"][0]  # type: ignore[index]
    assert len([e for e in result.events if e.name == "rolled-back"]) == 1
