"""Simulate steps on a virtual clock: each attempt takes its estimate and calls no agent."""

from __future__ import annotations

from collections.abc import Callable

from counterpoint.backends.base import Completion, Job, Outcome, Report
from counterpoint.scheduler.clock import Timer, VirtualClock

__all__ = ["VirtualBackend"]


class VirtualBackend:
    """Completes each job ``duration(job)`` seconds after it starts (default: its estimate).

    ``fail(job)`` may return an error message to make that attempt fail, for exact tests of
    retries and failure handling. A job longer than its timeout times out at the timeout.
    """

    def __init__(
        self,
        clock: VirtualClock,
        duration: Callable[[Job], float] | None = None,
        fail: Callable[[Job], str | None] | None = None,
    ) -> None:
        self.clock = clock
        self.duration = duration
        self.fail = fail
        self._timers: dict[int, tuple[Timer, Job, Report, float]] = {}

    def start(self, job: Job, report: Report) -> None:
        started = self.clock.now()
        took = self.duration(job) if self.duration else job.estimate
        error = self.fail(job) if self.fail else None
        outcome = Outcome.FAILED if error else Outcome.SUCCEEDED
        if job.timeout is not None and took > job.timeout:
            took, outcome, error = (
                job.timeout,
                Outcome.TIMED_OUT,
                f"timed out after {job.timeout:g}s",
            )

        def finish() -> None:
            del self._timers[job.index]
            report(
                Completion(job.index, job.attempt, outcome, started, started + took, error=error)
            )

        self._timers[job.index] = (self.clock.call_later(took, finish), job, report, started)

    def cancel(self, index: int) -> None:
        entry = self._timers.pop(index, None)
        if entry is None:
            return
        timer, job, report, started = entry
        timer.cancel()
        report(
            Completion(
                job.index,
                job.attempt,
                Outcome.CANCELLED,
                started,
                self.clock.now(),
                error="cancelled",
            )
        )

    async def aclose(self) -> None:
        for index in list(self._timers):
            self.cancel(index)
