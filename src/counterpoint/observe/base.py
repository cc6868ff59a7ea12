"""The observer interface: how progress displays (and later the journal) follow a run."""

from __future__ import annotations

from collections.abc import Mapping

from counterpoint.scheduler.result import RunResult, StepRecord

__all__ = ["RunObserver"]


class RunObserver:
    """Override what you need; every method is called on the event loop and must not block.

    Times are seconds since the run started.
    """

    def run_started(self, run_id: str, workflow: str, steps: list[StepRecord]) -> None:
        """The run begins; ``steps`` are the records the engine will keep up to date."""

    def step_started(self, record: StepRecord, attempt: int) -> None:
        """An attempt of a step begins."""

    def step_retrying(self, record: StepRecord, error: str, delay: float) -> None:
        """An attempt failed; the step will be tried again after ``delay`` seconds."""

    def step_finished(self, record: StepRecord) -> None:
        """A step reached a final state (succeeded, failed, skipped or cancelled)."""

    def event(self, time: float, step_id: str, name: str, data: Mapping[str, object]) -> None:
        """An agent published an event."""

    def stream_progress(self, part: str, stream: str, done: int, total: int) -> None:
        """A step of a stream of a parallel block succeeded: ``done`` of ``total``."""

    def run_finished(self, result: RunResult) -> None:
        """The run is over."""
