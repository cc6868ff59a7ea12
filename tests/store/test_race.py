"""Races: the first valid result wins, the others are cancelled, every contender's cost is
charged."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import counterpoint as cp

CODE = """\
import asyncio
SEEN = []

async def fast(ctx):
    await asyncio.sleep(0.01)
    ctx.charge("cost", 0.01)
    return {"answer": "quick", "confidence": 0.5}

async def careful(ctx):
    await asyncio.sleep(0.05)
    ctx.charge("cost", 0.05)
    return {"answer": "good", "confidence": 0.9}

async def slow(ctx):
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        SEEN.append("slow cancelled")
        raise
    return {"answer": "late", "confidence": 1.0}

async def broken(ctx):
    raise RuntimeError("no model")
"""


def _load(tmp_path: Path, name: str, race: str, validate: str = "") -> cp.Workflow:
    (tmp_path / f"{name}.py").write_text(CODE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""\
name: race
resources:
  budgets:
    cost: 10
agents:
  fast: {{kind: python, function: "{name}:fast"}}
  careful: {{kind: python, function: "{name}:careful"}}
  slow: {{kind: python, function: "{name}:slow"}}
  broken: {{kind: python, function: "{name}:broken"}}
steps:
  - id: answer
    agent: fast
    race: {race}
{validate}"""
    )
    return cp.load(path)


VALID = '    validate: {quality: {score: "${{ output.confidence }}", at_least: 0.8}}\n'


def test_the_first_valid_result_wins_and_the_others_are_cancelled(tmp_path: Path) -> None:
    wf = _load(tmp_path, "race_valid", "[careful, slow]", VALID)
    store = cp.MemoryStore()
    result = asyncio.run(cp.run(wf, store=store))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs["answer"] == {"answer": "good", "confidence": 0.9}
    races = [(e.data["agent"], e.data["outcome"]) for e in result.events if e.name == "race"]
    assert races == [("fast", "invalid"), ("careful", "won"), ("slow", "cancelled")]
    assert sys.modules["race_valid"].SEEN == ["slow cancelled"]  # type: ignore[attr-defined]
    # both contenders that finished charged their cost to the step
    charged = [e.data["amounts"] for e in result.events if e.name == "charged"]
    assert charged == [{"": 0.01}, {"": 0.05}]
    entries = asyncio.run(store.entries(result.run_id))
    spent = [e.data for e in entries if e.kind == "charged"]
    assert spent == ['{"budget": "cost", "amount": 0.01}', '{"budget": "cost", "amount": 0.05}']


def test_without_a_checkpoint_the_first_result_wins(tmp_path: Path) -> None:
    wf = _load(tmp_path, "race_first", "[careful, broken]")
    result = cp.run_sync(wf)
    assert result.outputs["answer"] == {"answer": "quick", "confidence": 0.5}


def test_when_no_contender_is_valid_the_attempt_fails_with_every_reason(tmp_path: Path) -> None:
    wf = _load(tmp_path, "race_none", "[broken]", VALID)
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["answer"].error or ""
    assert error.startswith("no contender of the race gave a valid result: ")
    assert "broken: RuntimeError: no model" in error
    assert "fast: checkpoint after 'answer' failed: quality score 0.5 is below 0.8" in error


def test_unknown_or_repeated_contenders_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(cp.WorkflowInvalid) as info:
        _load(tmp_path, "race_bad", "[carefull, fast]")
    messages = [p.message for p in info.value.problems]
    assert messages == [
        "step 'answer': unknown agent 'carefull' in race (did you mean 'careful'?)",
        "step 'answer' races 'fast' twice",
    ]
