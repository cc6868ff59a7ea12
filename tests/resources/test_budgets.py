"""Budgets: reserved at admission, charged what a step measured, never cutting a running step,
and added up again when a paused run is resumed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import counterpoint as cp

CODE = """\
CALLS = []

async def work(ctx):
    CALLS.append(ctx.step_id)
    cost = ctx.input.get("cost") if isinstance(ctx.input, dict) else None
    if cost is not None:
        ctx.charge("cost", cost)
    return ctx.step_id
"""


def _workflow(tmp_path: Path, budget: str, steps: str, name: str) -> Path:
    (tmp_path / f"{name}.py").write_text(CODE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""\
name: budgeted
resources:
  budgets:
    cost: {budget}
agents:
  w: {{kind: python, function: "{name}:work"}}
steps:
{steps}"""
    )
    return path


STEPS = """\
  - {id: a, agent: w, uses: {cost: 0.3}, input: {cost: 0.25}}
  - {id: b, agent: w, uses: {cost: 0.3}, input: {cost: 0.25}}
  - {id: c, agent: w, uses: {cost: 0.3}, input: {cost: 0.25}}
  - {id: d, agent: w, uses: {cost: 0.3}, needs: [a, b, c], input: {cost: 0.25}}
  - {id: e, agent: w, uses: {cost: 0.3}, needs: d, input: {cost: 0.25}}
"""


def test_a_budget_that_cannot_cover_the_next_step_pauses_the_run(tmp_path: Path) -> None:
    path = _workflow(tmp_path, "1.0", STEPS, "budget_pause")
    result = cp.run_sync(path)
    assert result.status is cp.RunStatus.PAUSED
    assert result.status.exit_code == 1
    assert [r.status for r in result.steps.values()] == [cp.StepState.SUCCEEDED] * 3 + [
        cp.StepState.CANCELLED
    ] * 2
    # charged what they measured (0.25 each), not what they declared (0.3)
    assert result.error == (
        "budget 'cost' has 0.25 left of 1, less than step 'd' needs (0.3): "
        "no new step starts; raise it and resume"
    )


def test_when_spent_fail_ends_the_run_failed(tmp_path: Path) -> None:
    path = _workflow(tmp_path, "{limit: 1.0, when_spent: fail}", STEPS, "budget_fail")
    assert cp.run_sync(path).status is cp.RunStatus.FAILED


def test_a_running_step_is_never_cut_and_is_charged_in_full(tmp_path: Path) -> None:
    steps = """\
  - {id: a, agent: w, input: {cost: 0.9}}
  - {id: b, agent: w, input: {cost: 0.9}}
  - {id: c, agent: w, needs: [a, b], input: {cost: 0.1}}
"""
    path = _workflow(tmp_path, "1.0", steps, "budget_cut")
    result = cp.run_sync(path)
    # a and b ran at once and charged 1.8 of 1.0: both finished; nothing new started
    assert result.steps["a"].status is cp.StepState.SUCCEEDED
    assert result.steps["b"].status is cp.StepState.SUCCEEDED
    assert result.steps["c"].status is cp.StepState.CANCELLED
    assert result.status is cp.RunStatus.PAUSED
    assert (
        result.error == "budget 'cost' is spent (1.8 of 1): no new step starts; raise it and resume"
    )


def test_resume_after_raising_the_budget_counts_what_was_spent(tmp_path: Path) -> None:
    path = _workflow(tmp_path, "1.0", STEPS, "budget_resume")
    store = cp.open_store(tmp_path / "store")
    try:
        first = asyncio.run(cp.run(path, store=store))
        assert first.status is cp.RunStatus.PAUSED
        # 0.75 spent; with 1.2 the remaining 0.45 covers d (0.3 reserved, 0.25 charged) but
        # then 0.2 is left, not enough for e
        path.write_text(path.read_text().replace("cost: 1.0", "cost: 1.2"))
        second = asyncio.run(cp.resume(first.run_id, store=store, force=True))
        assert second.status is cp.RunStatus.PAUSED
        assert second.steps["d"].status is cp.StepState.SUCCEEDED
        assert second.steps["e"].status is cp.StepState.CANCELLED
        path.write_text(path.read_text().replace("cost: 1.2", "cost: 2.0"))
        third = asyncio.run(cp.resume(first.run_id, store=store, force=True))
        assert third.status is cp.RunStatus.SUCCEEDED
        entries = asyncio.run(store.entries(first.run_id))
        charged = [e for e in entries if e.kind == "charged"]
        assert len(charged) == 5  # each step charged once, across the three sessions
    finally:
        asyncio.run(store.close())


def test_budget_demands_over_the_limit_are_load_errors(tmp_path: Path) -> None:
    steps = "  - {id: a, agent: w, uses: {cost: 3}}\n"
    path = _workflow(tmp_path, "2", steps, "budget_over")
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    (problem,) = info.value.problems
    assert str(problem) == (
        f"{path}:8:36: step 'a' needs 3 of budget 'cost', which is 2 in all: it could never start"
    )
