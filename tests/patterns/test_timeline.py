"""Timeline pressure: a workflow deadline that the work left would miss."""

from __future__ import annotations

import asyncio
import itertools

import yaml

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.scheduler.clock import VirtualClock


def _workflow(deadline: str) -> cp.Workflow:
    steps = [{"id": f"a{k}", "agent": "slow", "estimate": "10s"} for k in range(3)]
    for k in range(1, 3):
        steps[k]["needs"] = f"a{k - 1}"
    steps.append({"id": "alert", "agent": "fast", "estimate": "1s"})
    doc = {
        "name": "late",
        "deadline": deadline,
        "agents": {"slow": {"kind": "sleep"}, "fast": {"kind": "sleep"}},
        "triggers": [{"on": "timeline_pressure", "run": "alert"}],
        "steps": steps,
    }
    return cp.loads(yaml.safe_dump(doc, sort_keys=False))


def _run(wf: cp.Workflow, factor: float) -> cp.RunResult:
    def duration(job: Job) -> float:
        return job.estimate * (factor if job.step_id.startswith("a") else 1.0)

    return asyncio.run(
        cp.run(wf, clock=VirtualClock(), backend=lambda c: VirtualBackend(c, duration=duration))  # type: ignore[arg-type]
    )


def test_a_run_that_will_miss_its_deadline_says_so_and_triggers_the_response() -> None:
    result = _run(_workflow("40s"), factor=2.0)  # 60 s of work for a 40 s deadline
    pressure = [e for e in result.events if e.name == "timeline_pressure"]
    assert pressure, "no timeline_pressure event"
    first = pressure[0]
    assert first.time == 20.0  # when a0 ended, twice as slow as estimated
    # a1 and a2 are now expected to take 20 s each: 20 + 40 = 60 s, 20 s late
    assert first.data == {"deadline_s": 40.0, "projected_end_s": 60.0, "late_by_s": 20.0}
    assert first.step_id == ""
    assert result.steps["alert"].status is cp.StepState.SUCCEEDED
    assert result.steps["alert"].start == 20.0
    assert result.status is cp.RunStatus.SUCCEEDED


def test_on_time_there_is_no_pressure_and_the_response_is_skipped() -> None:
    result = _run(_workflow("40s"), factor=1.0)
    assert not [e for e in result.events if e.name == "timeline_pressure"]
    assert result.steps["alert"].status is cp.StepState.SKIPPED
    assert result.status is cp.RunStatus.SUCCEEDED


def test_pressure_is_said_again_only_when_it_gets_worse() -> None:
    result = _run(_workflow("40s"), factor=4.0)
    late = [e.data["late_by_s"] for e in result.events if e.name == "timeline_pressure"]
    assert late[0] == 120.0 - 40.0  # 40 s for a0, then 2 x 40 s expected
    assert all(b >= a + 4.0 for a, b in itertools.pairwise(late))


def test_a_plan_late_from_the_start_is_said_at_once() -> None:
    result = _run(_workflow("25s"), factor=1.0)
    first = next(e for e in result.events if e.name == "timeline_pressure")
    assert first.time == 0.0
    assert first.data == {"deadline_s": 25.0, "projected_end_s": 30.0, "late_by_s": 5.0}
    assert result.steps["alert"].start == 0.0
