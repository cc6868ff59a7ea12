"""The backend interface: the scheduler decides, a backend runs what it is handed."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Protocol

from counterpoint.agents.base import Agent, StepContext

__all__ = ["Backend", "Completion", "Job", "Outcome", "Report"]


class Outcome(Enum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Job:
    """One attempt of one step, as handed to a backend.

    ``context()`` builds the step context (resolving the step's input references) when the
    backend is about to call the agent; a backend that only simulates never calls it.
    """

    __slots__ = ("_make_context", "agent", "attempt", "estimate", "index", "step_id", "timeout")

    def __init__(
        self,
        index: int,
        step_id: str,
        attempt: int,
        agent: Agent,
        make_context: Callable[[int, int], StepContext],
        estimate: float,
        timeout: float | None,
    ) -> None:
        self.index = index
        self.step_id = step_id
        self.attempt = attempt
        self.agent = agent
        self._make_context = make_context
        self.estimate = estimate
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<Job {self.step_id} attempt {self.attempt}>"

    def context(self) -> StepContext:
        """The step context for this attempt (the step's input references resolved)."""
        return self._make_context(self.index, self.attempt)


class Completion:
    """How an attempt ended. ``error`` is a message for FAILED and TIMED_OUT."""

    __slots__ = (
        "attempt",
        "error",
        "finished",
        "index",
        "outcome",
        "output",
        "retryable",
        "started",
    )

    def __init__(
        self,
        index: int,
        attempt: int,
        outcome: Outcome,
        started: float,
        finished: float,
        output: object = None,
        error: str | None = None,
        retryable: bool = True,
    ) -> None:
        self.index = index
        self.attempt = attempt
        self.outcome = outcome
        self.started = started
        self.finished = finished
        self.output = output
        self.error = error
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"<Completion {self.index} attempt {self.attempt} {self.outcome.value}>"


Report = Callable[[Completion], None]


class Backend(Protocol):
    """Runs jobs and reports each one's completion exactly once, through ``report``.

    ``start`` must not block. ``cancel`` asks a running job to stop (it still reports,
    as CANCELLED). ``aclose`` cancels whatever still runs and waits until it has stopped.

    A backend may also have ``place(agents, workflow) -> agents``, called once before the
    run with the workflow's agents by name: it returns them as this backend runs them (the
    Ray backend sends Python and program agents to Ray; races and joins are built on top).
    """

    def start(self, job: Job, report: Report) -> None: ...

    def cancel(self, index: int) -> None: ...

    async def aclose(self) -> None: ...
