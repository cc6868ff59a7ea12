"""Error recovery orchestration: classification, impact, and every option in its order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.model.workflow import RecoveryOption
from counterpoint.patterns.recovery import RecoveryPlan, classify
from counterpoint.scheduler.engine import Engine


@pytest.mark.parametrize(
    ("error", "timed_out", "retryable", "expected"),
    [
        ("ConnectionError: connection refused", False, True, ("communication", True)),
        ("HTTP 503 Service Unavailable", False, False, ("communication", True)),
        ("checkpoint after 'a': missing required key 'x'", False, False, ("process", False)),
        ("rejected by cli: no", False, False, ("process", False)),
        ("timed out after 2s", True, True, ("technical", True)),
        ("ValueError: bad", False, True, ("technical", True)),
        ("ValueError: bad", False, False, ("technical", False)),
    ],
)
def test_errors_are_classified(
    error: str, timed_out: bool, retryable: bool, expected: tuple[str, bool]
) -> None:
    assert classify(error, timed_out, retryable) == expected


def test_options_are_taken_in_order_and_skip_respects_critical() -> None:
    options = [
        RecoveryOption.model_validate(o)
        for o in [{"retry": {"times": 2}}, {"alternative": "b"}, "skip", "escalate", "rollback"]
    ]
    plan = RecoveryPlan(options, critical=True)
    taken = [plan.decide("technical", True).name for _ in range(6)]
    assert taken == ["retry", "retry", "alternative", "escalate", "rollback", "none"]
    assert "skip (not taken: the step is critical)" in plan.tried
    plan = RecoveryPlan(options, critical=False)
    assert [plan.decide("technical", True).name for _ in range(7)] == [
        "retry",
        "retry",
        "alternative",
        "skip",
        "escalate",
        "rollback",
        "none",
    ]


def _run(wf: cp.Workflow, on_engine: Callable[[Engine], None] | None = None) -> cp.RunResult:
    return asyncio.run(cp.run(wf, on_engine=on_engine))


def _recoveries(result: cp.RunResult) -> list[tuple[str, object]]:
    return [(e.step_id, e.data["option"]) for e in result.events if e.name == "recovery"]


def test_retry_then_alternative_with_the_error_classified_and_impact_shown() -> None:
    calls: list[str] = []

    async def flaky(ctx: cp.StepContext) -> object:
        calls.append(f"flaky:{ctx.attempt}")
        raise ConnectionError("connection refused")

    async def backup(ctx: cp.StepContext) -> object:
        calls.append(f"backup:{ctx.attempt}")
        return {"from": "backup"}

    async def after(ctx: cp.StepContext) -> object:
        return ctx.upstream

    b = cp.WorkflowBuilder("recover")
    b.agent("flaky", function=flaky)
    b.agent("backup", function=backup)
    b.agent("after", function=after)
    b.add(
        cp.step("fetch", agent="flaky", retries=0)
        | {"recovery": [{"retry": {"times": 1}}, {"alternative": "backup"}]}
    )
    b.step("use", agent="after", needs="fetch")
    result = _run(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert calls == ["flaky:1", "flaky:2", "backup:3"]
    assert _recoveries(result) == [("fetch", "retry"), ("fetch", "alternative")]
    first = next(e for e in result.events if e.name == "recovery")
    assert first.data["class"] == "communication"
    assert first.data["transient"] is True
    assert first.data["impact"] == {"steps": ["use"], "streams": []}
    assert result.steps["use"].output == {"fetch": {"from": "backup"}}


def _failing_workflow(recovery: list[Any], critical: bool = True) -> cp.Workflow:
    async def boom(ctx: cp.StepContext) -> object:
        raise ValueError("bad data")

    async def ok(ctx: cp.StepContext) -> object:
        return {"step": ctx.step_id, "up": dict(ctx.upstream)}

    b = cp.WorkflowBuilder("recover")
    b.agent("boom", function=boom)
    b.agent("ok", function=ok)
    b.step("first", agent="ok")
    b.add(
        cp.step("risky", agent="boom", needs="first", retries=0)
        | {"recovery": recovery, "critical": critical}
    )
    b.step("last", agent="ok", needs="risky")
    return b.build()


def test_skip_lets_the_dependents_go_on_for_a_non_critical_step() -> None:
    result = _run(_failing_workflow(["skip"], critical=False))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["risky"].status is cp.StepState.SKIPPED
    assert (result.steps["risky"].error or "").startswith(
        "skipped by recovery: ValueError: bad data"
    )
    assert result.steps["last"].output == {"step": "last", "up": {"risky": None}}


def test_skip_is_not_taken_for_a_critical_step() -> None:
    result = _run(_failing_workflow(["skip"], critical=True))
    assert result.status is cp.RunStatus.FAILED
    (event,) = [e for e in result.events if e.name == "recovery"]
    assert event.data["option"] == "none"
    assert result.steps["last"].status is cp.StepState.SKIPPED


@pytest.mark.parametrize("approved", [True, False])
def test_escalate_pauses_for_a_person(approved: bool) -> None:
    attempts: list[int] = []

    async def once_bad(ctx: cp.StepContext) -> object:
        attempts.append(ctx.attempt)
        if len(attempts) == 1:
            raise ValueError("needs a look")
        return "fixed"

    b = cp.WorkflowBuilder("escalate")
    b.agent("work", function=once_bad)
    b.add(cp.step("job", agent="work", retries=0) | {"recovery": [{"escalate": {"timeout": 30}}]})
    wf = b.build()

    def answer(engine: Engine) -> None:
        def on_event(event: cp.Event) -> None:
            if event.name == "escalated":
                data = {"step": "job", "approved": approved, "comment": "ok" if approved else "no"}
                asyncio.get_running_loop().call_soon(engine.send, "approval_given", data, "test")

        engine.bus.subscribe("escalated", on_event)

    result = _run(wf, answer)
    escalated = [e for e in result.events if e.name == "escalated"]
    assert len(escalated) == 1
    assert str(escalated[0].data["error"]).startswith("ValueError: needs a look")
    if approved:
        assert result.status is cp.RunStatus.SUCCEEDED
        assert result.steps["job"].output == "fixed"
    else:
        assert result.status is cp.RunStatus.FAILED
        assert result.steps["job"].error == "escalation rejected by test: no"


def test_rollback_runs_the_compensations_in_reverse_order() -> None:
    undone: list[str] = []

    async def do(ctx: cp.StepContext) -> object:
        return {"made": ctx.step_id}

    async def undo(ctx: cp.StepContext) -> object:
        assert isinstance(ctx.input, dict)
        undone.append(ctx.input["made"])
        return None

    async def boom(ctx: cp.StepContext) -> object:
        raise ValueError("payment declined")

    b = cp.WorkflowBuilder("saga")
    b.agent("do", function=do)
    b.agent("undo", function=undo)
    b.agent("boom", function=boom)
    b.add(cp.step("reserve", agent="do") | {"compensate": "undo"})
    b.add(cp.step("hold", agent="do", needs="reserve") | {"compensate": "undo"})
    b.step("note", agent="do", needs="hold")  # nothing to undo
    b.add(cp.step("pay", agent="boom", needs="note", retries=0) | {"recovery": ["rollback"]})
    result = _run(b.build())
    assert result.status is cp.RunStatus.FAILED
    assert undone == ["hold", "reserve"]
    names = [(e.name, e.step_id) for e in result.events if e.name in ("rollback", "compensated")]
    assert names == [("rollback", "pay"), ("compensated", "hold"), ("compensated", "reserve")]


def test_workflow_defaults_apply_and_unknown_agents_are_load_errors() -> None:
    text = """\
name: x
agents: {w: {kind: noop}}
defaults: {recovery: [{alternative: nope}]}
steps:
  - {id: a, agent: w, compensate: undo, recovery: [retry, {alternative: ww}]}
"""
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, "wf.yaml")
    assert [str(p) for p in info.value.problems] == [
        "wf.yaml:3:23: defaults: unknown agent 'nope' in recovery",
        "wf.yaml:5:35: step 'a': unknown agent 'undo' to compensate",
        "wf.yaml:5:59: step 'a': unknown agent 'ww' in recovery (did you mean 'w'?)",
    ]
