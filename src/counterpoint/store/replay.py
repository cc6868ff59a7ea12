"""A run's state, rebuilt from its journal: for ``resume``, ``show`` and the history."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from counterpoint.outputs import MARK, revive
from counterpoint.store.base import Entry

__all__ = ["StepReplay", "replay"]

_FINAL = {"succeeded": "succeeded", "failed": "failed", "skipped": "skipped"}


@dataclass(slots=True)
class StepReplay:
    """What the journal says of one step."""

    step: str
    status: str = "pending"  # pending, ready, running, waiting, succeeded, failed, skipped,
    #                          cancelled
    attempts: int = 0
    started_at: float | None = None  # first attempt
    finished_at: float | None = None
    output_json: str | None = None
    error: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def output(self) -> object:
        text = self.output_json
        if text is None:
            return None
        value = json.loads(text)
        return revive(value) if MARK in text else value

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def replay(entries: Iterable[Entry]) -> dict[str, StepReplay]:
    """Each step's last known state, in the order the steps first appear."""
    steps: dict[str, StepReplay] = {}
    for e in entries:
        if e.step is None or e.kind == "event":
            continue
        s = steps.get(e.step)
        if s is None:
            s = steps[e.step] = StepReplay(e.step)
        kind = e.kind
        if kind == "ready":
            if s.status in ("pending", "cancelled"):
                s.status = "ready"
        elif kind == "started":
            s.status = "running"
            s.attempts = max(s.attempts, e.attempt)
            if s.started_at is None:
                s.started_at = e.time
            s.finished_at = None
        elif kind == "succeeded":
            s.status = "succeeded"
            s.output_json = e.data
            s.finished_at = e.time
            s.error = None
        elif kind == "rolled-back":  # this step waits again, and the one it went back to
            s.status = "pending"
            target = _target(e.data)
            if target is not None:
                back = steps.get(target)
                if back is not None and back.status == "succeeded":
                    back.status = "ready"
                    back.output_json = None
        elif kind in ("failed", "retried", "cancelled", "skipped"):
            text = _error_text(e.data)
            if kind in ("failed", "retried"):
                s.errors.append(text)
            s.error = text
            s.status = {"retried": "waiting"}.get(kind, _FINAL.get(kind, kind))
            s.finished_at = e.time if kind != "retried" else None
    return steps


def _target(data: str | None) -> str | None:
    if data is None:
        return None
    value = json.loads(data)
    return str(value["to"]) if isinstance(value, dict) and "to" in value else None


def _error_text(data: str | None) -> str:
    if data is None:
        return ""
    value = json.loads(data)
    if isinstance(value, dict):
        return str(value.get("error", value))
    return str(value)
