"""Context efficiency in sequences: large values by reference, a size budget with a summarise
hook, and integration readiness (the next agent's input_schema)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace

CODE = """\
SEEN = {}

async def big(ctx):
    return {"small": 1, "blob": "x" * 100, "notes": ctx.input}

async def look(ctx):
    h = ctx.handoff
    SEEN[ctx.step_id] = {
        "context": dict(h.context),
        "resolved": h.resolve(h.context.get("blob")),
    }
    return {"seen": True}

def shorten(context, budget):
    SEEN.setdefault("summarise", []).append((sorted(context), budget))
    return {k: v for k, v in context.items() if k != "notes"}

async def emit_text(ctx):
    return {"count": "three"}

async def take_count(ctx):
    return ctx.input
"""


def test_large_values_are_passed_by_reference_and_resolve(ws: Workspace) -> None:
    wf = ws.load(
        """\
        name: refs
        agents:
          big: {kind: python, function: "MOD:big"}
          look: {kind: python, function: "MOD:look"}
        steps:
          - sequence:
              id: s
              context: {by_reference: 50}
              steps:
                - {id: a, agent: big, input: short}
                - {id: b, agent: look}
        """,
        CODE,
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    seen = ws.mod().SEEN["b"]  # type: ignore[attr-defined]
    assert seen["context"] == {
        "small": 1,
        "blob": "${{ steps.a.output.blob }}",
        "notes": "short",
    }
    assert seen["resolved"] == "x" * 100


def test_a_context_over_budget_is_summarised(ws: Workspace) -> None:
    wf = ws.load(
        """\
        name: budget
        agents:
          big: {kind: python, function: "MOD:big"}
          look: {kind: python, function: "MOD:look"}
        steps:
          - sequence:
              id: s
              context: {budget: 40, summarise: "MOD:shorten", by_reference: 1000}
              steps:
                - {id: a, agent: big, input: "a long note that takes room"}
                - {id: b, agent: look}
        """,
        CODE,
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    mod = ws.mod()
    # after a (over budget: notes dropped) and after b (still over: the blob is 100 bytes)
    assert mod.SEEN["summarise"] == [  # type: ignore[attr-defined]
        (["blob", "notes", "small"], 40),
        (["blob", "seen", "small"], 40),
    ]
    assert sorted(mod.SEEN["b"]["context"]) == ["blob", "small"]  # type: ignore[attr-defined]
    names = [(e.step_id, e.name) for e in result.events]
    assert ("a", "context-summarised") in names


def test_a_context_over_budget_without_summarise_is_reported(ws: Workspace) -> None:
    wf = ws.load(
        """\
        name: budget
        agents:
          big: {kind: python, function: "MOD:big"}
          look: {kind: python, function: "MOD:look"}
        steps:
          - sequence:
              id: s
              context: {budget: 40}
              steps:
                - {id: a, agent: big, input: note}
                - {id: b, agent: look}
        """,
        CODE,
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    over = [e for e in result.events if e.name == "context-over-budget"]
    assert [e.step_id for e in over] == ["a", "b"]  # each time the context is over
    assert over[0].data == {"bytes": 141, "budget": 40}


def test_integration_readiness_checks_the_next_agents_input_schema(ws: Workspace) -> None:
    wf = ws.load(
        """\
        name: ready
        agents:
          emit: {kind: python, function: "MOD:emit_text"}
          take:
            kind: python
            function: "MOD:take_count"
            input_schema:
              type: object
              properties: {count: {type: integer}}
              required: [count]
        steps:
          - sequence:
              id: s
              steps:
                - {id: a, agent: emit}
                - {id: b, agent: take}
        """,
        CODE,
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["a"].error or ""
    assert error.startswith(
        "integration readiness: agent 'take' of the next step 'b' does not accept this output: "
        "count: 'three' is not of type 'integer'"
    )
    assert result.steps["b"].status is cp.StepState.SKIPPED
