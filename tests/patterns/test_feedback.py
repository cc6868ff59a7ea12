"""Feedback analysis and the coordination adjustments triggers make with it."""

from __future__ import annotations

import asyncio

import pytest

import counterpoint as cp
from counterpoint.events.feedback import analyse
from counterpoint.scheduler.engine import Engine


@pytest.mark.parametrize(
    ("text", "sentiment", "priority"),
    [
        ("Great work, thanks!", "positive", "normal"),
        ("This is wrong and confusing. Please fix the intro ASAP.", "negative", "urgent"),
        ("The summary is not good.", "negative", "normal"),
        ("Minor nit: rename the title later.", "neutral", "low"),
        ("Important: the numbers must match the report.", "neutral", "high"),
        ("ok", "neutral", "normal"),
    ],
)
def test_sentiment_and_priority(text: str, sentiment: str, priority: str) -> None:
    got = analyse(text)
    assert (got["sentiment"], got["priority"]) == (sentiment, priority)


def test_direction_is_the_sentences_that_ask_for_a_change() -> None:
    got = analyse("Nice layout. Please use a table instead of bullets. The rest is fine.")
    assert got["direction"] == ["Please use a table instead of bullets."]
    assert got["sentiment"] == "positive"
    assert "nice" in got["because"]  # type: ignore[operator]


WORKFLOW = """\
name: feedback
agents:
  draft: {kind: python, function: "feedback_agents:echo"}
  careful: {kind: python, function: "feedback_agents:careful"}
  listen: {kind: wait, event: feedback_received, timeout: 60}
triggers:
  - on: feedback_received
    when: "event.data.analysis.sentiment == 'negative'"
    use: {rewrite: careful}
    instruct: rewrite
    prioritise: [rewrite]
steps:
  - {id: ask, agent: listen}
  - {id: filler, agent: draft}
  - {id: rewrite, agent: draft, needs: ask}
"""

AGENTS = """\
async def echo(ctx):
    return {"agent": "draft", "instructions": ctx.instructions}

async def careful(ctx):
    return {"agent": "careful", "instructions": ctx.instructions}
"""


def test_negative_feedback_reselects_the_agent_and_adds_its_direction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "feedback_agents.py").write_text(AGENTS)
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    wf = cp.load(path)

    def send(engine: Engine) -> None:
        data = {"text": "Too long and unclear. Please cut it to one page."}
        asyncio.get_event_loop().call_soon(engine.send, "feedback_received", data, "test")

    result = asyncio.run(cp.run(wf, on_engine=send))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["rewrite"].output == {
        "agent": "careful",
        "instructions": ["Please cut it to one page."],
    }
    feedback = next(e for e in result.events if e.name == "feedback_received")
    analysis = feedback.data["analysis"]
    assert isinstance(analysis, dict) and analysis["sentiment"] == "negative"
    adjusted = next(e for e in result.events if e.name == "adjusted")
    assert adjusted.data["changes"] == [
        {"step": "rewrite", "agent": "careful"},
        {"step": "rewrite", "instruction": "Please cut it to one page."},
        {"step": "rewrite", "priority": "first"},
    ]


def test_positive_feedback_changes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "feedback_agents.py").write_text(AGENTS)
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    wf = cp.load(path)

    def send(engine: Engine) -> None:
        data = {"text": "Looks great, thanks."}
        asyncio.get_event_loop().call_soon(engine.send, "feedback_received", data, "test")

    result = asyncio.run(cp.run(wf, on_engine=send))
    assert result.steps["rewrite"].output == {"agent": "draft", "instructions": []}
    assert not [e for e in result.events if e.name == "adjusted"]


def test_trigger_adjustments_name_steps_and_agents_that_exist() -> None:
    text = """\
name: x
agents: {w: {kind: noop}}
triggers:
  - {on: feedback_received, use: {nope: w, a: ww}, instruct: [b], prioritise: c}
steps:
  - {id: a, agent: w}
"""
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, "wf.yaml")
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [
        "trigger on 'feedback_received': unknown agent 'ww' (did you mean 'w'?)",
        "trigger on 'feedback_received': unknown step 'b' in instruct",
        "trigger on 'feedback_received': unknown step 'c' in prioritise",
        "trigger on 'feedback_received': unknown step 'nope' in use",
    ]
