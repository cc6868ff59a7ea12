"""The pattern examples (examples/patterns): each validates, runs to success on its offline
stand-in agents, and shows its pattern's behaviour: a sequence's validated handoffs and its
rollback, parallel streams meeting at sync points with their conflicts resolved as declared,
and phases in order behind gates, with lookahead."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.scheduler.result import StepRecord

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = ROOT / "examples" / "patterns"
FEATURE = PATTERNS / "feature_development.yaml"
FULL_STACK = PATTERNS / "full_stack_development.yaml"
ENTERPRISE = PATTERNS / "enterprise_integration.yaml"
EXAMPLES = [FEATURE, FULL_STACK, ENTERPRISE]
STAND_IN = "offline, deterministic stand-in for an LLM agent"
CLI = [sys.executable, "-m", "counterpoint"]


def _run(path: Path | cp.Workflow, **inputs: object) -> cp.RunResult:
    return cp.run_sync(path, inputs=inputs, store=None)


def _simulate(path: Path | cp.Workflow) -> cp.RunResult:
    return asyncio.run(cp.simulate(path))


def _errors(result: cp.RunResult) -> dict[str, str | None]:
    return {k: r.error for k, r in result.steps.items() if r.error}


def _out(result: cp.RunResult, step: str) -> dict[str, Any]:
    output = result.steps[step].output
    assert isinstance(output, dict), (step, output)
    return output


def _times(record: StepRecord) -> tuple[float, float]:
    assert record.start is not None and record.end is not None, record
    return record.start, record.end


def _variant(path: Path, old: str, new: str) -> cp.Workflow:
    """The example with one piece of text replaced (its agents still import from beside it)."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    return cp.loads(text.replace(old, new), file=str(path))


@pytest.fixture(scope="module", autouse=True)
def _own_agents_module() -> Iterator[None]:
    """The examples' agents are the module ``pattern_agents`` beside them: import it from
    there while these tests run, and forget it afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PATTERNS))
        mp.delitem(sys.modules, "pattern_agents", raising=False)
        yield
        sys.modules.pop("pattern_agents", None)


@pytest.fixture(scope="module")
def results() -> dict[str, cp.RunResult]:
    return {p.stem: _run(p) for p in EXAMPLES}


# --- every example -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_example_validates_and_its_agents_say_they_are_stand_ins(path: Path) -> None:
    wf = cp.load(path)
    assert wf.agents
    for name, agent in wf.agents.items():
        assert agent.kind == "python", name
        assert agent.description is not None
        assert "stand-in for an LLM agent" in agent.description, name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_example_runs_to_success_and_every_output_comes_from_a_stand_in(
    path: Path, results: Mapping[str, cp.RunResult]
) -> None:
    result = results[path.stem]
    assert result.status is cp.RunStatus.SUCCEEDED, _errors(result)
    for sid, record in result.steps.items():
        assert record.status is cp.StepState.SUCCEEDED, sid
        output = record.output
        assert isinstance(output, dict), sid
        assert output["stand_in"] == STAND_IN, sid


@pytest.fixture(scope="module")
def cli_runs() -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """``counterpoint run FILE --store :memory: --json`` for each example, all at once."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    procs = {
        p.stem: subprocess.Popen(
            [*CLI, "run", str(p.relative_to(ROOT)), "--store", ":memory:", "--json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in EXAMPLES
    }
    try:
        done = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        yield done
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_cli_runs_the_example(
    path: Path, cli_runs: Mapping[str, subprocess.CompletedProcess[str]]
) -> None:
    done = cli_runs[path.stem]
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded"
    assert all(s["status"] == "succeeded" for s in report["steps"].values())


# --- feature_development: a sequence ---------------------------------------------------------

SEQUENCE = ["analyze", "spec", "dependencies", "orchestrate"]


def test_the_sequence_hands_off_in_order_through_passed_checkpoints(
    results: Mapping[str, cp.RunResult],
) -> None:
    result = results["feature_development"]
    assert result.pattern == "sequential"
    records = [result.steps[s] for s in SEQUENCE]
    for before, after in itertools.pairwise(records):
        assert _times(before)[1] <= _times(after)[0], (before.id, after.id)
    # every checkpoint passed at the first attempt: no rollback, no retry
    assert all(r.attempts == 1 and not r.errors for r in records)
    assert not [e for e in result.events if e.name == "rolled-back"]

    seen: list[str] = []
    for k, sid in enumerate(SEQUENCE):
        handoff = _out(result, sid)["handoff"]
        assert handoff["sequence"] == "feature"
        assert handoff["position"] == k
        assert handoff["from"] == (SEQUENCE[k - 1] if k else None)
        assert handoff["validated"] is (True if k else None)
        assert handoff["feedback"] == []
        # the accumulated context holds every earlier output's keys
        assert set(seen) <= set(handoff["context_keys"])
        seen += [key for key in _out(result, sid) if key != "handoff"]

    analysis = _out(result, "analyze")
    assert analysis["analysis_depth"] == "focused"
    assert analysis["components"] == ["exporter", "jobs", "reports", "ui"]
    spec = _out(result, "spec")
    assert [r["components"] for r in spec["requirements"]] == [
        ["exporter", "reports", "ui"],
        ["jobs"],
        ["jobs", "ui"],
    ]
    assert spec["confidence"] == 1.0  # the quality threshold is 0.7
    plan = _out(result, "dependencies")
    assert plan["levels"] == [
        ["change-jobs", "change-ui"],
        ["change-exporter"],
        ["change-reports"],
        ["integration-test"],
    ]
    workflow = _out(result, "orchestrate")
    assert workflow["makespan_days"] == 8.0  # 3 + 2 + 2 + 1 days on two developers
    assert workflow["strategy"] == "hybrid"
    assert workflow["feasible"] is True
    assert result.steps["feature"].output == workflow  # the sequence's output: its last item's


def test_a_failed_checkpoint_rolls_back_to_the_last_validated_state() -> None:
    """A vague request: the spec traces half its requirements (0.5 < 0.7), its checkpoint
    fails, the sequence goes back to the analysis, which broadens with the feedback."""
    result = _run(FEATURE, request="Let people export what they see, with progress feedback")
    assert result.status is cp.RunStatus.SUCCEEDED, _errors(result)
    rolled = [e for e in result.events if e.name == "rolled-back"]
    assert [(e.step_id, e.data["to"]) for e in rolled] == [("spec", "analyze")]
    assert "quality score 0.5 is below 0.7" in str(rolled[0].data["error"])
    assert result.steps["analyze"].attempts == 2
    assert result.steps["spec"].attempts == 2
    analysis = _out(result, "analyze")
    assert analysis["analysis_depth"] == "broadened"
    assert analysis["vocabulary"]["export"] == ["exporter"]
    assert any("quality score 0.5" in f for f in analysis["handoff"]["feedback"])
    assert _out(result, "spec")["confidence"] == 1.0
    assert _out(result, "spec")["handoff"]["from"] == "analyze"


def test_a_checkpoint_that_keeps_failing_stops_the_sequence() -> None:
    result = _run(FEATURE, deadline_days=5)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["orchestrate"].error or ""
    assert "checkpoint after 'orchestrate' failed" in error
    assert "8 days exceed the deadline of 5" in error
    assert [e.data["to"] for e in result.events if e.name == "rolled-back"] == ["dependencies"]
    assert result.steps["feature"].status is cp.StepState.SKIPPED


def test_an_output_the_next_agent_does_not_accept_fails_integration_readiness() -> None:
    """The orchestrator's input_schema wants `requirements` on every task; here `effort`."""
    wf = _variant(FEATURE, "required: [id, needs, requirements]", "required: [id, needs, effort]")
    result = _run(wf)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["dependencies"].error or ""
    assert "integration readiness: agent 'workflow-orchestrator'" in error
    assert "'effort' is a required property" in error
    assert [e.data["to"] for e in result.events if e.name == "rolled-back"] == ["spec"]
    assert result.steps["orchestrate"].status is cp.StepState.SKIPPED


def test_simulate_gives_the_sequence_its_makespan() -> None:
    result = _simulate(FEATURE)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert [_times(result.steps[s]) for s in SEQUENCE] == [
        (0.0, 3.0),
        (3.0, 5.0),
        (5.0, 6.0),
        (6.0, 8.0),
    ]
    assert result.makespan_s == 8.0


# --- full_stack_development: parallel streams -----------------------------------------------


def _started(wf: cp.Workflow, result: cp.RunResult, item: str) -> float:
    """When an item started: a step, or the first of a construct's steps (not its join)."""
    part = wf.plan.parts.get(item)
    if part is None:
        return _times(result.steps[item])[0]
    return min(_started(wf, result, m) for m in part.members)


def _sync_checks(wf: cp.Workflow, result: cp.RunResult) -> list[tuple[str, str, float, float]]:
    """For every sync point: (sync point, the item after a listed stream's milestone, when it
    started, when the last listed milestone ended)."""
    part = wf.plan.parts["build"]
    checks = []
    for name, sp in part.sync_points.items():
        reached = max(_times(result.steps[sp.after[s]])[1] for s in sp.streams)
        for stream in sp.streams:
            items = part.streams[stream]
            k = items.index(sp.after[stream])
            if k + 1 < len(items):
                checks.append((name, items[k + 1], _started(wf, result, items[k + 1]), reached))
    return checks


def test_the_streams_wait_for_each_other_at_the_sync_points(
    results: Mapping[str, cp.RunResult],
) -> None:
    wf = cp.load(FULL_STACK)
    assert set(wf.plan.parts["build"].sync_points) == {
        "api-contract",
        "integration",
        "content-review",
    }
    checks = _sync_checks(wf, results["full_stack_development"])
    assert {(name, step) for name, step, _, _ in checks} == {
        ("api-contract", "api-build"),
        ("api-contract", "ui-build"),
        ("api-contract", "test-suite"),
        ("api-contract", "api-reference"),
        ("integration", "backend-report"),
        ("integration", "frontend-report"),
        ("integration", "test-run"),
        ("content-review", "docs-review"),
    }
    for name, step, started, reached in checks:
        assert started >= reached, (name, step)


def test_sync_points_and_shares_on_the_virtual_clock() -> None:
    result = _simulate(FULL_STACK)
    assert result.status is cp.RunStatus.SUCCEEDED
    starts = {k: _times(r)[0] for k, r in result.steps.items()}
    # api-contract: api-design (1-4 s) is the last milestone; every stream goes on at 4 s
    assert [starts[s] for s in ("database", "ui-build", "test-suite", "api-reference")] == [4.0] * 4
    assert starts["permissions"] == 4.0
    # the backend's share is 2 of max_concurrency 5: the third builder waits for a slot
    assert starts["handlers"] == 6.0
    # integration: api-build ends at 8 s (ui-build at 7, test-suite at 6)
    assert starts["backend-report"] == starts["frontend-report"] == starts["test-run"] == 8.0
    # content-review: docs-review waits for test-run (8-10 s), not only for api-reference (6 s)
    assert starts["docs-review"] == 10.0
    assert result.makespan_s == 12.0
    wf = cp.load(FULL_STACK)
    for name, step, started, reached in _sync_checks(wf, result):
        assert started >= reached, (name, step)


def test_the_conflicts_are_resolved_as_declared(results: Mapping[str, cp.RunResult]) -> None:
    result = results["full_stack_development"]
    backend = _out(result, "backend-report")
    frontend = _out(result, "frontend-report")
    docs = _out(result, "docs-review")
    assert (backend["version"], frontend["version"]) == ("1.3.0", "1.2.1")
    build = _out(result, "build")
    assert build["version"] == "1.3.0"  # priority: backend first
    assert build["changelog"] == backend["changelog"] + frontend["changelog"] + docs["changelog"]
    resolved = {
        e.data["key"]: (e.data["strategy"], e.data["winner"])
        for e in result.events
        if e.name == "conflict-resolved"
    }
    assert resolved == {"version": ("priority", "backend"), "changelog": ("merge", "merge")}
    # the gate: every key is there and every test passed
    assert build["tests"]["pass_rate"] == 1.0
    assert build["tests"]["total"] == 15  # 9 endpoints, 6 screens
    assert build["docs"]["unverified"] == []
    release = _out(result, "release")
    assert release == {
        "stand_in": STAND_IN,
        "release": "1.3.0",
        "notes": ["API v2: 9 endpoints", "UI: 6 screens", "Docs: reference for 9 endpoints"],
        "ready": True,
    }


def test_an_undeclared_conflict_escalates() -> None:
    wf = _variant(FULL_STACK, "version: priority", "")
    result = _run(wf)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["build"].error or ""
    assert "streams disagree on 'version'" in error
    assert '"1.3.0"' in error and '"1.2.1"' in error
    assert result.steps["release"].status is cp.StepState.SKIPPED


# --- enterprise_integration: phases ----------------------------------------------------------

PHASES = ["analysis", "design", "implementation", "validation"]


def test_the_phases_run_in_order_behind_their_gates(results: Mapping[str, cp.RunResult]) -> None:
    result = results["enterprise_integration"]
    wf = cp.load(ENTERPRISE)
    plan = wf.plan
    assert plan.parts["integration"].members == PHASES
    assert [plan.parts[p].pattern for p in PHASES] == [
        "sequential",
        "parallel",
        "hybrid",
        "sequential",
    ]
    for p in PHASES:  # a phase's gate is checked by its join step: it passed
        assert plan.parts[p].gate is not None
        assert result.steps[p].status is cp.StepState.SUCCEEDED
    ends = {p: _times(result.steps[p])[1] for p in PHASES}
    # a step that does not declare its needs waits for the previous phase (and its gate)
    for phase, first in (
        ("analysis", "architecture-draft"),
        ("design", "contracts"),
        ("implementation", "compliance"),
    ):
        assert _times(result.steps[first])[0] >= ends[phase], first
    assert ends["analysis"] <= ends["design"] <= ends["implementation"] <= ends["validation"]

    # sequential phases and sequences hand off
    assert _out(result, "context")["handoff"]["from"] == "inventory"
    assert _out(result, "integration-order")["handoff"]["from"] == "context"
    assert _out(result, "readiness")["handoff"]["context_keys"] == [
        "compliance",
        "handoff",
        "monitoring",
        "stand_in",
    ]
    assert _out(result, "contracts")["setup"]["received"]["from"] == "environment"

    assert _out(result, "integration-order")["integration_order"] == [
        "crm",
        "erp",
        "warehouse",
        "portal",
    ]
    design = _out(result, "design")
    assert design["architecture"]["channels"]["customers"] == "api"  # sensitive: not on events
    assert design["architecture_approved"] and design["security_approved"]
    assert _out(result, "implementation")["integration"]["pass_rate"] == 1.0
    final = _out(result, "integration")
    assert final["readiness"] == 1.0 and final["go_live"] is True


def test_lookahead_starts_declared_steps_before_the_previous_phase_ends() -> None:
    result = _simulate(ENTERPRISE)
    assert result.status is cp.RunStatus.SUCCEEDED
    t = {k: _times(r) for k, r in result.steps.items()}
    assert [t[p][1] for p in PHASES] == [5.0, 12.0, 25.0, 30.0]
    # threat-model needs only the inventory (0-2 s): it runs while the analysis goes on
    assert t["threat-model"][0] == 2.0 < t["analysis"][1]
    # environment needs only the integration order (4-5 s): it runs during the design phase
    assert t["environment"][0] == 5.0 < t["design"][1]
    # steps that declare nothing wait for the previous phase
    assert t["architecture-draft"][0] == t["analysis"][1]
    assert t["contracts"][0] == t["design"][1]
    assert t["compliance"][0] == t["implementation"][1]
    assert result.makespan_s == 30.0

    without = _simulate(_variant(ENTERPRISE, "lookahead: true", "lookahead: false"))
    w = {k: _times(r) for k, r in without.steps.items()}
    assert w["threat-model"][0] == w["analysis"][1] == 5.0
    assert w["environment"][0] == w["design"][1] == 12.0
    assert without.makespan_s == 33.0


def test_a_gate_that_fails_stops_the_later_phases() -> None:
    systems = {
        "crm": {"exposes": ["customers"], "consumes": []},
        "portal": {"exposes": [], "consumes": ["customers", "payments"]},
    }
    result = _run(ENTERPRISE, systems=systems)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["analysis"].error or ""
    assert "gate of phase 'analysis' failed" in error
    assert "no system provides 'payments'" in error
    for later in ("design", "implementation", "validation", "integration"):
        assert result.steps[later].status is cp.StepState.SKIPPED, later
