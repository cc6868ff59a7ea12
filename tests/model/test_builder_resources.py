"""The Python builder declares resources, deadlines and step demands as the YAML does."""

from __future__ import annotations

import pytest

import counterpoint as cp

YAML = """\
name: x
deadline: 2h
agents: {w: {kind: noop}, v: {kind: noop}}
resources:
  timezone: Europe/Paris
  pools:
    db: {capacity: 2, overflow: 1}
    machine: {cpu: 8, memory: 32GiB, fair: true}
    gpu: {capacity: 1, available: mon-fri 09:00-17:00}
  rate_limits:
    api: {requests: 10/s, burst: 5}
    llm: {requests: 500/min, tokens: 90k/min, available: ["22:00-06:00", "sat,sun"]}
  budgets:
    cost: 20
    tokens: {limit: 1M, when_spent: fail}
steps:
  - id: a
    agent: w
    uses: {db: 1, machine: {cpu: 2, memory: 4GiB}, cost: 0.5}
    priority: 2
    deadline: 1h
  - {id: b, agent: w, needs: a, uses: {gpu: 1, llm: {requests: 1, tokens: 2k}}, race: [v],
     cache: false}
"""


def build() -> cp.WorkflowBuilder:
    b = cp.WorkflowBuilder("x", deadline="2h")
    b.agent("w", kind="noop")
    b.agent("v", kind="noop")
    b.timezone("Europe/Paris")
    b.pool("db", 2, overflow=1)
    b.pool("machine", cpu=8, memory="32GiB", fair=True)
    b.pool("gpu", 1, available="mon-fri 09:00-17:00")
    b.rate_limit("api", "10/s", burst=5)
    b.rate_limit("llm", requests="500/min", tokens="90k/min", available=["22:00-06:00", "sat,sun"])
    b.budget("cost", 20)
    b.budget("tokens", "1M", when_spent="fail")
    a = b.step(
        "a",
        agent="w",
        uses={"db": 1, "machine": {"cpu": 2, "memory": "4GiB"}, "cost": 0.5},
        priority=2,
        deadline="1h",
    )
    b.step(
        "b",
        agent="w",
        needs=a,
        uses={"gpu": 1, "llm": {"requests": 1, "tokens": "2k"}},
        race=["v"],
        cache=False,
    )
    return b


def test_the_builder_gives_the_yaml_workflow() -> None:
    assert build().build() == cp.loads(YAML)


def test_the_builder_reports_resource_mistakes() -> None:
    b = build()
    b.step("c", agent="w", uses={"db": 3})
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    assert [str(p) for p in info.value.problems] == [
        "<python>: steps[2].uses.db: step 'c' needs 3 slots of pool 'db', which has 2: "
        "it could never start"
    ]


def test_a_bad_window_from_the_builder() -> None:
    b = cp.WorkflowBuilder("x")
    b.agent("w", kind="noop")
    b.pool("gpu", 1, available="mon-fri 9-17")
    b.step("a", agent="w", uses={"gpu": 1})
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    (problem,) = info.value.problems
    assert "bad hours" in str(problem) or "bad days" in str(problem)
    assert str(problem).startswith("<python>: resources.pools.gpu.available")


def test_the_builder_declares_triggers_as_the_yaml_does() -> None:
    text = """\
name: t
agents: {w: {kind: noop}, v: {kind: noop}}
triggers:
  - {on: feedback_received, when: "event.data.analysis.sentiment == 'negative'", run: fix,
     use: {fix: v}, instruct: fix, prioritise: [fix]}
  - {on: task_completion, add: [{id: extra, agent: w, needs: a}]}
  - {on: stop, end: true}
steps:
  - {id: a, agent: w}
  - {id: fix, agent: w, needs: a}
"""
    b = cp.WorkflowBuilder("t")
    b.agent("w", kind="noop")
    b.agent("v", kind="noop")
    b.trigger(
        "feedback_received",
        when="event.data.analysis.sentiment == 'negative'",
        run="fix",
        use={"fix": "v"},
        instruct="fix",
        prioritise=["fix"],
    )
    b.trigger("task_completion", add=[cp.step("extra", agent="w", needs="a")])
    b.trigger("stop", end=True)
    a = b.step("a", agent="w")
    b.step("fix", agent="w", needs=a)
    assert b.build() == cp.loads(text)
