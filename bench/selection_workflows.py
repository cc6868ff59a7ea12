"""The six workflows of the selection suite (see selection_suite.py): what the user wrote,
and how its agents really behave."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selection_common import Case, Truth


def _chain() -> Case:
    """A chain: a release note written step by step; nothing can overlap."""
    names = [
        ("collect", "collector", 20),
        ("classify", "classifier", 15),
        ("draft", "writer", 60),
        ("edit", "editor", 30),
        ("translate", "translator", 45),
        ("format", "formatter", 10),
        ("review", "reviewer", 40),
        ("publish", "publisher", 5),
    ]
    steps: list[dict[str, Any]] = []
    for k, (sid, agent, est) in enumerate(names):
        step: dict[str, Any] = {"id": sid, "agent": agent, "estimate": est}
        if k:
            step["needs"] = names[k - 1][0]
        steps.append(step)
    data = {
        "name": "chain",
        "agents": {a: {"kind": "noop"} for _, a, _ in names},
        "steps": steps,
    }
    bias = [1.2, 0.9, 1.4, 1.0, 1.3, 0.8, 1.1, 1.0]
    truth = {a: Truth(b, 0.3) for (_, a, _), b in zip(names, bias, strict=True)}
    return Case("chain", "chain of 8", data, truth)


def _fan_out() -> Case:
    """A wide fan-out: 24 documents split, extracted and summarised; 8 long ones also
    translated; one merge at the end."""
    steps: list[dict[str, Any]] = [{"id": "split", "agent": "splitter", "estimate": 10}]
    ends: list[str] = []
    for d in range(24):
        steps.append({"id": f"extract-{d}", "agent": "extractor", "needs": "split", "estimate": 20})
        steps.append(
            {"id": f"summary-{d}", "agent": "summariser", "needs": f"extract-{d}", "estimate": 30}
        )
        ends.append(f"summary-{d}")
        if d % 3 == 0:
            steps.append(
                {
                    "id": f"translate-{d}",
                    "agent": "translator",
                    "needs": f"summary-{d}",
                    "estimate": 40,
                }
            )
            ends[-1] = f"translate-{d}"
    steps.append({"id": "merge", "agent": "merger", "needs": ends, "estimate": 15})
    agents = ["splitter", "extractor", "summariser", "translator", "merger"]
    data = {"name": "fan-out", "agents": {a: {"kind": "noop"} for a in agents}, "steps": steps}
    truth = {
        "splitter": Truth(1.0, 0.25),
        "extractor": Truth(1.3, 0.3, 0.03),
        "summariser": Truth(0.9, 0.3),
        "translator": Truth(1.2, 0.3),
        "merger": Truth(1.0, 0.25),
    }
    return Case("fan-out", "fan-out of 24 (58 steps)", data, truth)


def _contended() -> Case:
    """A CI pipeline on 4 runners: 12 short checks (1 runner each) written before 3 long
    integration builds (all 4 runners), each build followed by a long end-to-end test that
    needs no runner, then a report."""
    steps: list[dict[str, Any]] = [
        {"id": f"check-{k}", "agent": "checker", "estimate": 6, "uses": {"runners": 1}}
        for k in range(12)
    ]
    for b in range(3):
        steps.append(
            {"id": f"build-{b}", "agent": "builder", "estimate": 20, "uses": {"runners": 4}}
        )
        steps.append({"id": f"e2e-{b}", "agent": "tester", "needs": f"build-{b}", "estimate": 30})
    needs = [f"check-{k}" for k in range(12)] + [f"e2e-{b}" for b in range(3)]
    steps.append({"id": "report", "agent": "reporter", "needs": needs, "estimate": 5})
    data = {
        "name": "contended-pool",
        "resources": {"pools": {"runners": {"capacity": 4}}},
        "agents": {a: {"kind": "noop"} for a in ("checker", "builder", "tester", "reporter")},
        "steps": steps,
    }
    truth = {
        "checker": Truth(1.1, 0.3),
        "builder": Truth(1.2, 0.25),
        "tester": Truth(0.9, 0.25),
        "reporter": Truth(1.0, 0.2),
    }
    return Case("contended-pool", "pool of 4: 12 x 1 unit before 3 x 4", data, truth)


def _flaky() -> Case:
    """Code generation whose generator fails 35 % of its attempts (a bad output caught at the
    handoff), five generations in a row on the critical path, retried with a backoff; docs
    written beside them by a reliable agent."""
    retries = {"max": 4, "backoff": "5s", "jitter": 0}
    steps: list[dict[str, Any]] = [{"id": "plan", "agent": "planner", "estimate": 10}]
    before = "plan"
    for k in range(5):
        steps.append(
            {
                "id": f"generate-{k}",
                "agent": "generator",
                "needs": before,
                "estimate": 20,
                "retries": retries,
            }
        )
        before = f"generate-{k}"
    for k in range(6):
        steps.append({"id": f"docs-{k}", "agent": "writer", "needs": "plan", "estimate": 30})
    steps.append(
        {
            "id": "ship",
            "agent": "shipper",
            "needs": [before, *(f"docs-{k}" for k in range(6))],
            "estimate": 5,
        }
    )
    agents: dict[str, Any] = {a: {"kind": "noop"} for a in ("planner", "writer", "shipper")}
    agents["generator"] = {"kind": "noop", "idempotent": True}  # two attempts at once are safe
    data = {"name": "flaky", "agents": agents, "steps": steps}
    truth = {
        "planner": Truth(1.0, 0.25),
        "generator": Truth(1.1, 0.3, 0.0, 0.35),
        "writer": Truth(1.0, 0.3),
        "shipper": Truth(1.0, 0.2),
    }
    return Case("flaky", "5 generations failing 35 % in a row", data, truth)


def _approvals() -> Case:
    """Four changes, each prepared on a machine, approved by a person (who takes minutes,
    not the 60 s written) and applied on a machine; 12 batch jobs written first compete for
    the two machines."""
    steps: list[dict[str, Any]] = [
        {"id": f"batch-{k}", "agent": "batch", "estimate": 20, "uses": {"machines": 1}}
        for k in range(12)
    ]
    for c in range(4):
        steps += [
            {"id": f"prepare-{c}", "agent": "preparer", "estimate": 10, "uses": {"machines": 1}},
            {"id": f"approve-{c}", "agent": "approver", "needs": f"prepare-{c}", "estimate": 60},
            {
                "id": f"apply-{c}",
                "agent": "applier",
                "needs": f"approve-{c}",
                "estimate": 15,
                "uses": {"machines": 1},
            },
        ]
    data = {
        "name": "approvals",
        "resources": {"pools": {"machines": {"capacity": 2}}},
        "agents": {
            "batch": {"kind": "noop"},
            "preparer": {"kind": "noop"},
            "approver": {"kind": "approval"},
            "applier": {"kind": "noop"},
        },
        "steps": steps,
    }
    truth = {
        "batch": Truth(1.0, 0.25),
        "preparer": Truth(1.2, 0.3),
        "approver": Truth(3.0, 0.4),  # a person answers in about 3 minutes
        "applier": Truth(1.0, 0.3),
    }
    return Case("approvals", "4 approvals, 2 machines", data, truth)


def _phased() -> Case:
    """An integration project in four phases, each behind a gate: sequential analysis,
    three design streams of different lengths, a parallel implementation, a sequential
    verification."""

    def st(sid: str, agent: str, est: float) -> dict[str, Any]:
        return {"id": sid, "agent": agent, "estimate": est}

    phases = [
        {
            "id": "analysis",
            "pattern": "sequential",
            "steps": [st("inventory", "analyst", 20), st("context", "analyst", 30)],
            "gate": {"required": ["flows"]},
        },
        {
            "id": "design",
            "pattern": "parallel",
            "streams": {
                "api": [st("api-draft", "architect", 40), st("api-review", "reviewer", 20)],
                "data": [st("flow-map", "architect", 25), st("data-mapping", "mapper", 50)],
                "security": [st("threats", "security", 30), st("controls", "security", 15)],
            },
            "gate": {"required": ["api", "data", "security"]},
        },
        {
            "id": "build",
            "pattern": "parallel",
            "steps": [st(f"adapter-{k}", "coder", 30 + 15 * (k % 3)) for k in range(6)],
            "gate": {"required": ["adapters"]},
        },
        {
            "id": "verify",
            "pattern": "sequential",
            "steps": [st("integration-test", "tester", 60), st("report", "analyst", 10)],
        },
    ]
    agents = ["analyst", "architect", "reviewer", "mapper", "security", "coder", "tester"]
    data = {
        "name": "phased",
        "agents": {a: {"kind": "noop"} for a in agents},
        "steps": [{"phases": {"id": "project", "phases": phases}}],
    }
    truth = {
        "analyst": Truth(1.2, 0.3),
        "architect": Truth(1.3, 0.3),
        "reviewer": Truth(0.8, 0.3),
        "mapper": Truth(1.1, 0.3, 0.05),
        "security": Truth(1.0, 0.25),
        "coder": Truth(1.4, 0.3, 0.05),
        "tester": Truth(1.0, 0.25),
    }
    return Case("phased", "4 phases with gates", data, truth)


SUITE: tuple[Callable[[], Case], ...] = (
    _chain,
    _fan_out,
    _contended,
    _flaky,
    _approvals,
    _phased,
)
