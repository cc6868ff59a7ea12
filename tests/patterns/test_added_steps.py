"""Triggers that add new steps to a running workflow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import counterpoint as cp

WORKFLOW = """\
name: grow
agents:
  work: {kind: python, function: "grow_agents:work"}
  boom: {kind: python, function: "grow_agents:boom"}
triggers:
  - on: task_completion
    when: "event.data.step == 'scan'"
    add:
      - {id: fix-1, agent: work, needs: scan, input: "${{ steps.scan.output }}"}
      - {id: fix-2, agent: work, needs: fix-1}
  - on: error_encountered
    add:
      - {id: report, agent: work}
steps:
  - {id: scan, agent: work, input: found}
  - {id: other, agent: work, input: x}
"""

AGENTS = """\
CALLS = []

async def work(ctx):
    CALLS.append(ctx.step_id)
    return {"step": ctx.step_id, "input": ctx.input, "up": sorted(ctx.upstream)}

async def boom(ctx):
    raise ValueError("no")
"""


@pytest.fixture
def workflow(tmp_path: Path) -> cp.Workflow:
    (tmp_path / "grow_agents.py").write_text(AGENTS)
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return cp.load(path)


def test_a_trigger_adds_steps_that_run_after_their_needs(workflow: cp.Workflow) -> None:
    result = asyncio.run(cp.run(workflow))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert list(result.steps) == ["scan", "other", "fix-1", "fix-2"]
    assert result.steps["fix-1"].output == {
        "step": "fix-1",
        "input": {"step": "scan", "input": "found", "up": []},
        "up": ["scan"],
    }
    assert result.steps["fix-2"].output["up"] == ["fix-1"]  # type: ignore[index]
    (added,) = [e for e in result.events if e.name == "added"]
    assert added.data["steps"] == ["fix-1", "fix-2"]
    assert "report" not in result.steps  # no error: never added


def test_added_steps_are_journaled_and_not_run_again_on_resume(
    workflow: cp.Workflow, tmp_path: Path
) -> None:
    store = cp.open_store(tmp_path / "store")

    async def first() -> cp.RunResult:
        return await cp.run(workflow, store=store)

    result = asyncio.run(first())
    entries = asyncio.run(store.entries(result.run_id))
    started = [e.step for e in entries if e.kind == "started"]
    assert started.count("fix-1") == 1 and started.count("fix-2") == 1
    # make the run resumable: say fix-2 never finished
    asyncio.run(store.update_run(result.run_id, status="failed"))
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        agents = importlib.import_module("grow_agents")
        agents.CALLS.clear()
        again = asyncio.run(cp.resume(result.run_id, store=store, workflow=workflow))
    finally:
        sys.path.remove(str(tmp_path))
        asyncio.run(store.close())
    assert again.status is cp.RunStatus.SUCCEEDED
    assert again.steps["fix-2"].restored  # added again by the replayed event, not run again
    assert agents.CALLS == []


def test_added_steps_are_checked_at_load() -> None:
    text = """\
name: x
agents: {w: {kind: noop}}
triggers:
  - on: go
    add:
      - {id: a, agent: w}
      - {id: b, agent: ww, needs: [c]}
steps:
  - {id: a, agent: w}
"""
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, "wf.yaml")
    assert sorted(p.message for p in info.value.problems) == [
        "added step 'b' needs 'c', which is neither a step of the workflow nor added before "
        "it by this trigger",
        "added step 'b': unknown agent 'ww' (did you mean 'w'?)",
        "trigger adds step 'a', which exists already",
    ]
