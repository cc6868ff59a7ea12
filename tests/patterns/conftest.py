"""Helpers for the pattern tests: workflows with agents written beside them, and a backend
that calls the agents but takes its time on the virtual clock (so times are exact)."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import counterpoint
from counterpoint.backends.base import Completion, Job, Outcome, Report
from counterpoint.errors import StepFailed
from counterpoint.scheduler.clock import Clock, Timer, VirtualClock

_names = itertools.count()


class AgentsOnVirtualTime:
    """Calls each agent when its attempt starts (agents must be ``async def`` and never
    suspend), and reports the outcome ``duration(job)`` later on the virtual clock (default:
    the step's estimate; join steps take 0)."""

    def __init__(self, clock: VirtualClock, duration: Callable[[Job], float] | None = None) -> None:
        self.clock = clock
        self.duration = duration
        self.timers: dict[int, tuple[Timer, Job, Report, float]] = {}
        self.started: list[tuple[str, int, float]] = []

    def start(self, job: Job, report: Report) -> None:
        started = self.clock.now()
        self.started.append((job.step_id, job.attempt, started))
        output: object = None
        error: str | None = None
        retryable = True
        try:
            coro = job.agent(job.context())
            try:
                coro.send(None)  # type: ignore[attr-defined]
            except StopIteration as stop:
                output = stop.value
            else:
                coro.close()  # type: ignore[attr-defined]
                raise AssertionError(f"agent of {job.step_id} suspended: make it async def")
            outcome = Outcome.SUCCEEDED
        except StepFailed as exc:
            outcome, error, retryable = Outcome.FAILED, str(exc), exc.retryable
        except AssertionError:
            raise
        except Exception as exc:
            outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
        took = self.duration(job) if self.duration else job.estimate

        def finish() -> None:
            del self.timers[job.index]
            report(
                Completion(
                    job.index,
                    job.attempt,
                    outcome,
                    started,
                    started + took,
                    output=output,
                    error=error,
                    retryable=retryable,
                )
            )

        self.timers[job.index] = (self.clock.call_later(took, finish), job, report, started)

    def cancel(self, index: int) -> None:
        entry = self.timers.pop(index, None)
        if entry is None:
            return
        timer, job, report, started = entry
        timer.cancel()
        report(Completion(job.index, job.attempt, Outcome.CANCELLED, started, self.clock.now()))

    async def aclose(self) -> None:
        for index in list(self.timers):
            self.cancel(index)


class Workspace:
    """A folder holding a workflow and the Python module its agents come from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.module = f"patmod_{next(_names)}"
        self.backend: AgentsOnVirtualTime | None = None

    def load(self, yaml_text: str, code: str = "") -> counterpoint.Workflow:
        """``MOD`` in the YAML stands for the module written from ``code``."""
        (self.root / f"{self.module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
        importlib.invalidate_caches()
        path = self.root / "wf.yaml"
        path.write_text(textwrap.dedent(yaml_text).replace("MOD", self.module), encoding="utf-8")
        return counterpoint.load(path)

    def mod(self) -> object:
        """The agents' module (import it after ``load``): its globals record what agents saw."""
        return sys.modules[self.module]

    def run(self, wf: counterpoint.Workflow, **kwargs: object) -> counterpoint.RunResult:
        """Run with real agents on the virtual clock."""

        def make(clock: Clock) -> AgentsOnVirtualTime:
            assert isinstance(clock, VirtualClock)
            self.backend = AgentsOnVirtualTime(clock)
            return self.backend

        return asyncio.run(
            counterpoint.run(wf, clock=VirtualClock(), backend=make, **kwargs)  # type: ignore[arg-type]
        )

    @staticmethod
    def simulate(wf: counterpoint.Workflow, workers: int | None = None) -> counterpoint.RunResult:
        """Every step takes its estimate; no agent is called."""
        return asyncio.run(counterpoint.simulate(wf, workers=workers))

    @staticmethod
    def times(result: counterpoint.RunResult) -> dict[str, tuple[float | None, float | None]]:
        """step id -> (start, end)."""
        return {sid: (r.start, r.end) for sid, r in result.steps.items()}

    @staticmethod
    def statuses(result: counterpoint.RunResult) -> dict[str, str]:
        return {sid: r.status.value for sid, r in result.steps.items()}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.syspath_prepend(str(tmp_path))
    space = Workspace(tmp_path)
    yield space
    sys.modules.pop(space.module, None)
