"""Re-planning during a run: when an agent's steps take longer or shorter than their
estimates, the steps not yet started are ordered again with what was learned."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.model.load import load
from counterpoint.model.workflow import Workflow
from counterpoint.runner import run
from counterpoint.scheduler import replanning
from counterpoint.scheduler.clock import VirtualClock
from counterpoint.scheduler.engine import Priority
from counterpoint.scheduler.result import RunResult
from counterpoint.store import MemoryStore


def _workflow(tmp_path: Path) -> Workflow:
    """Chain a (slow agent, estimated 1 s a step), chain b and ten fillers (2 s each), on
    two workers. Believing the estimates, chain b looks critical; in truth a is (4 s a
    step): 24 s, and the work is 56 s over 2 workers, so 28 s is optimal."""
    steps: list[dict[str, object]] = []
    for k in range(6):
        steps.append({"id": f"a{k}", "agent": "slow", "estimate": "1s"})
        if k:
            steps[-1]["needs"] = f"a{k - 1}"
    for k in range(6):
        steps.append({"id": f"b{k}", "agent": "fast", "estimate": "2s"})
        if k:
            steps[-1]["needs"] = f"b{k - 1}"
    steps += [{"id": f"f{k}", "agent": "fast", "estimate": "2s"} for k in range(10)]
    doc = {
        "name": "replan",
        "agents": {"slow": {"kind": "sleep"}, "fast": {"kind": "sleep"}},
        "max_concurrency": 2,
        "steps": steps,
    }
    path = tmp_path / "replan.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load(path)


def _slow_a(job: Job) -> float:
    return job.estimate * 4 if job.step_id.startswith("a") else job.estimate


def _run(
    wf: Workflow,
    duration: Callable[[Job], float] | None,
    priority: Priority = "planned",
    store: MemoryStore | None = None,
) -> RunResult:
    return asyncio.run(
        run(
            wf,
            priority=priority,
            store=store,
            run_id="r1",
            clock=VirtualClock(),
            backend=lambda clock: VirtualBackend(clock, duration=duration),  # type: ignore[arg-type]
        )
    )


def test_a_slow_agent_makes_the_rest_be_planned_again(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    result = _run(wf, _slow_a)
    replans = [e for e in result.events if e.name == "replanned"]
    assert len(replans) == 1
    assert replans[0].step_id == ""
    assert replans[0].data["reason"] == "'slow' steps take 4.00x their estimates"
    assert replans[0].time == 4.0  # when a0 ended
    assert result.planning is not None and result.planning["replans"] == 1
    assert result.makespan_s == 28.0  # optimal for the real durations


def test_without_re_planning_the_estimates_mislead(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    result = _run(wf, _slow_a, priority="critical-path")
    assert not [e for e in result.events if e.name == "replanned"]
    assert result.makespan_s == 32.0


def test_durations_as_estimated_never_re_plan(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    result = _run(wf, None)
    assert not [e for e in result.events if e.name == "replanned"]
    assert result.planning is not None and result.planning["replans"] == 0


def test_a_small_drift_does_not_re_plan(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    result = _run(wf, lambda job: job.estimate * 1.2)
    assert result.planning is not None and result.planning["replans"] == 0


def test_re_plans_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replanning, "MAX_REPLANS", 0)
    result = _run(_workflow(tmp_path), _slow_a)
    assert result.planning is not None and result.planning["replans"] == 0
    assert result.makespan_s == 32.0


def test_each_ratio_change_re_plans_again(tmp_path: Path) -> None:
    """The slow agent gets slower as it goes: every time the median moves past a quarter
    of what the plan assumed (the median of its last steps), the rest is planned again."""
    wf = _workflow(tmp_path)
    factors = {"a0": 2.0, "a1": 2.0, "a2": 8.0, "a3": 8.0, "a4": 8.0, "a5": 8.0}
    result = _run(wf, lambda job: job.estimate * factors.get(job.step_id, 1.0))
    reasons = [e.data["reason"] for e in result.events if e.name == "replanned"]
    assert reasons[0] == "'slow' steps take 2.00x their estimates"
    assert reasons[1:] == [
        "'slow' steps take 5.00x their estimates",  # median of 2, 2, 8, 8
        "'slow' steps take 8.00x their estimates",  # median of 2, 2, 8, 8, 8
    ]


def test_the_re_plan_is_journaled_as_a_run_event(tmp_path: Path) -> None:
    store = MemoryStore()
    _run(_workflow(tmp_path), _slow_a, store=store)
    entries = asyncio.run(store.entries("r1"))
    events = [e for e in entries if e.kind == "event" and e.step is None]
    assert len(events) == 1
    assert '"replanned"' in (events[0].data or "")
