"""What a run produced: its status, and each step's status, attempts, times and output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from counterpoint.scheduler.core import StepState

__all__ = ["AgentEvent", "RunResult", "RunStatus", "StepRecord"]


class RunStatus(Enum):
    """How a run stands: running, or ended succeeded, failed, interrupted, or paused (a budget
    was spent: raise it and resume)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for a run that ended this way."""
        return {RunStatus.SUCCEEDED: 0, RunStatus.INTERRUPTED: 130}.get(self, 1)


@dataclass(slots=True)
class StepRecord:
    """One step's story in a run. Times are seconds since the run started."""

    id: str
    agent: str
    status: StepState = StepState.PENDING
    attempts: int = 0
    start: float | None = None
    end: float | None = None
    output: object = None
    error: str | None = None
    errors: list[str] = field(default_factory=list)
    restored: bool = False  # succeeded in an earlier session of a resumed run
    cached: bool = False  # its output came from the cache


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """Something an agent published with ``ctx.emit``, or the engine noted (a rollback, an
    overflow of a soft pool, a re-plan); ``time`` is seconds since the start; ``step_id`` is
    empty for the run's own events."""

    time: float
    step_id: str
    name: str
    data: dict[str, object]


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True, repr=False)
class RunResult:
    """The outcome of a run; ``to_json()`` gives the CLI's ``--json`` object."""

    run_id: str
    workflow: str
    status: RunStatus
    pattern: str
    started_at: float  # wall-clock epoch seconds
    makespan_s: float
    steps: dict[str, StepRecord]
    events: list[AgentEvent] = field(default_factory=list)
    virtual: bool = False
    error: str | None = None  # why the run stopped early, beyond its steps (a store failure)
    store: str | None = None  # where the run is journaled, when it is
    parts: dict[str, dict[str, object]] = field(default_factory=dict)  # constructs
    planning: dict[str, object] | None = None  # the priority rule chosen before the run
    selection: dict[str, object] | None = None  # why this pattern (when it was selected)
    adaptations: list[dict[str, object]] = field(default_factory=list)  # switches mid-run

    def __repr__(self) -> str:  # short: asyncio may repr a task's result, and runs are big
        return (
            f"<RunResult {self.run_id} {self.workflow!r} {self.status.value} "
            f"steps={len(self.steps)} makespan={self.makespan_s:.3f}s>"
        )

    @property
    def outputs(self) -> dict[str, object]:
        """Outputs of the steps that succeeded."""
        return {k: r.output for k, r in self.steps.items() if r.status is StepState.SUCCEEDED}

    def count(self, state: StepState) -> int:
        return sum(1 for r in self.steps.values() if r.status is state)

    def to_json(self, *, outputs: bool = True) -> dict[str, object]:
        base = self.started_at
        steps: dict[str, object] = {}
        for sid, r in self.steps.items():
            entry: dict[str, object] = {
                "status": r.status.value,
                "agent": r.agent,
                "attempts": r.attempts,
                "started_at": _iso(base + r.start) if r.start is not None else None,
                "finished_at": _iso(base + r.end) if r.end is not None else None,
                "start_s": r.start,
                "end_s": r.end,
            }
            if r.error is not None:
                entry["error"] = r.error
            if r.restored:
                entry["restored"] = True
            if r.cached:
                entry["cached"] = True
            if outputs and r.status is StepState.SUCCEEDED:
                entry["output"] = r.output
            steps[sid] = entry
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "pattern": self.pattern,
            "virtual_clock": self.virtual,
            "store": self.store,
            "error": self.error,
            "started_at": _iso(base),
            "finished_at": _iso(base + self.makespan_s),
            "makespan_s": self.makespan_s,
            "counts": {s.value: self.count(s) for s in StepState if self.count(s)},
            "parts": self.parts,
            "planning": self.planning,
            "selection": self.selection,
            "adaptations": self.adaptations,
            "steps": steps,
            "events": [
                {"time_s": e.time, "step": e.step_id, "name": e.name, "data": e.data}
                for e in self.events
            ],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=repr)
