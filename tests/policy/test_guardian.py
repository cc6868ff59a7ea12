"""The policy guardian: agents and programs allowed, output rules, approval above a risk
threshold; off, advisory and mandatory."""

from __future__ import annotations

import asyncio
import sys

import pytest

import counterpoint as cp
from counterpoint.scheduler.engine import Engine

PY = sys.executable


def _wf(policy: str, steps: str = "", agents: str = "") -> str:
    """A workflow with ``policy`` (YAML lines under policy:), two agents and ``steps``."""
    lines = ["name: guarded", "policy:"]
    lines += [f"  {line}" for line in policy.strip().splitlines()]
    lines += [
        "agents:",
        "  n: {kind: noop}",
        '  sh: {kind: program, argv: [/bin/sh, -c, "echo hi"]}',
    ]
    text = "\n".join(lines) + "\n" + agents + "steps:\n"
    return text + (steps or "  - {id: a, agent: n}\n")


def test_mandatory_refuses_agents_and_programs_it_does_not_allow_with_positions() -> None:
    text = _wf(
        "mode: mandatory\nagents: {allow: [n, 'kind:program']}\nprograms: {allow: [python3]}\n"
    )
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, "g.yaml")
    assert [str(p) for p in info.value.problems] == [
        "g.yaml:8:30: agent 'sh' runs 'sh', not an allowed program (allowed: python3) "
        "(policy mode: mandatory)"
    ]
    denied = _wf("mode: mandatory\nagents: {deny: ['kind:program']}\n")
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(denied, "g.yaml")
    assert [str(p) for p in info.value.problems] == [
        "g.yaml:7:14: agent 'sh' (program) is denied by the policy (policy mode: mandatory)"
    ]
    only = _wf("mode: mandatory\nagents: {allow: [sh]}\n")
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(only, "g.yaml")
    assert "agent 'n' (noop) is not allowed by the policy (allowed: sh)" in str(info.value)


def test_advisory_runs_and_says_what_it_would_refuse() -> None:
    wf = cp.loads(_wf("mode: advisory\nagents: {deny: ['kind:program']}\n"))
    result = cp.run_sync(wf, pattern="parallel")
    assert result.status is cp.RunStatus.SUCCEEDED
    said = [e.data for e in result.events if e.name == "policy_violation"]
    assert said == [
        {
            "rule": "agents.deny",
            "message": "agent 'sh' (program) is denied by the policy",
            "at": "agents.sh.kind",
        }
    ]


def test_off_checks_nothing() -> None:
    wf = cp.loads(_wf("mode: off\nagents: {deny: ['kind:program', 'kind:noop']}\n"))
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert not [e for e in result.events if e.name == "policy_violation"]


LEAKY = """\
  - id: a
    agent: say
    retries: {max: 1, backoff: 0}
"""
LEAK = "import os; print('-----BEGIN PRIVATE KEY-----' if os.environ.get('GUARD_LEAK') else 'ok')"
SAY = f'  say: {{kind: program, argv: [{PY}, -c, "{LEAK}"], output: text}}\n'


@pytest.mark.parametrize("mode", ["mandatory", "advisory"])
def test_an_output_with_a_forbidden_pattern(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_LEAK", "1")
    wf = cp.loads(_wf(f"mode: {mode}\noutputs: {{forbid: ['BEGIN PRIVATE KEY']}}\n", LEAKY, SAY))
    result = cp.run_sync(wf)
    said = [e.data["rule"] for e in result.events if e.name == "policy_violation"]
    if mode == "mandatory":
        assert result.status is cp.RunStatus.FAILED
        assert result.steps["a"].attempts == 2  # each attempt checked, each refused
        assert result.steps["a"].error == (
            "the output of 'a' matches the forbidden pattern 'BEGIN PRIVATE KEY'"
        )
        assert said == ["outputs.forbid", "outputs.forbid"]
    else:
        assert result.status is cp.RunStatus.SUCCEEDED
        assert said == ["outputs.forbid"]


def test_an_output_over_the_size_limit_fails_under_a_mandatory_policy() -> None:
    steps = "  - {id: a, agent: big}\n"
    agents = f'  big: {{kind: program, argv: [{PY}, -c, "print(\\"x\\" * 500)"], output: text}}\n'
    wf = cp.loads(_wf("mode: mandatory\noutputs: {max_bytes: 100}\n", steps, agents))
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.FAILED
    assert result.steps["a"].error == "the output of 'a' is 501 bytes, over the policy's 100"


RISKY = """\
  - {id: safe, agent: n}
  - {id: deploy, agent: n, risk: 0.8, needs: safe}
"""


def _answer(approved: bool, seen: list[float]) -> object:
    def on_engine(engine: Engine) -> None:
        def answer(event: cp.Event) -> None:
            seen.append(engine.clock.now())
            engine.send("approval_given", {"step": event.source, "approved": approved})

        engine.bus.subscribe("approval-requested", answer)

    return on_engine


@pytest.mark.parametrize("approved", [True, False])
def test_a_risky_step_waits_for_approval_under_a_mandatory_policy(approved: bool) -> None:
    wf = cp.loads(_wf("mode: mandatory\napproval_above: 0.5\n", RISKY))
    seen: list[float] = []
    result = asyncio.run(cp.run(wf, on_engine=_answer(approved, seen)))  # type: ignore[arg-type]
    asked = [e for e in result.events if e.name == "approval-requested"]
    assert [e.step_id for e in asked] == ["deploy"]  # only the risky one, after safe
    assert asked[0].data["risk"] == 0.8
    assert len(seen) == 1
    if approved:
        assert result.status is cp.RunStatus.SUCCEEDED
    else:
        assert result.status is cp.RunStatus.FAILED
        assert result.steps["deploy"].error == "rejected by api"


def test_an_advisory_policy_only_says_a_risky_step_would_wait() -> None:
    wf = cp.loads(_wf("mode: advisory\napproval_above: 0.5\n", RISKY))
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert not [e for e in result.events if e.name == "approval-requested"]
    said = [e for e in result.events if e.name == "policy_violation"]
    assert [(e.step_id, e.data["rule"]) for e in said] == [("deploy", "approval_above")]


def test_risk_is_between_0_and_1() -> None:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(_wf("mode: mandatory\n", "  - {id: a, agent: n, risk: 2}\n"))
    assert "risk" in str(info.value)
