"""Run agents as asyncio tasks in this process."""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path

from counterpoint.backends.base import Completion, Job, Outcome, Report
from counterpoint.errors import StepFailed
from counterpoint.scheduler.clock import Clock

__all__ = ["LocalBackend"]


class LocalBackend:
    """Each attempt is a task; a timeout cancels the agent (programs lose their process group)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"<LocalBackend running={len(self._tasks)}>"

    def start(self, job: Job, report: Report) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job, report))
        self._tasks[job.index] = task

    async def _run(self, job: Job, report: Report) -> None:
        started = self.clock.now()
        scope: asyncio.Timeout | None = None
        output: object = None
        error: str | None = None
        retryable = True
        try:
            ctx = job.context()
            if job.timeout is None:
                output = await job.agent(ctx)
            else:
                scope = asyncio.timeout(job.timeout)
                async with scope:
                    output = await job.agent(ctx)
            outcome = Outcome.SUCCEEDED
        except TimeoutError as exc:
            if scope is not None and scope.expired():
                outcome, error = Outcome.TIMED_OUT, f"timed out after {job.timeout:g}s"
            else:  # the agent's own TimeoutError (an HTTP call, say), not the step's timeout
                outcome, error = Outcome.FAILED, f"TimeoutError: {exc}"
        except asyncio.CancelledError:
            outcome, error = Outcome.CANCELLED, "cancelled"
        except StepFailed as exc:
            outcome, error, retryable = Outcome.FAILED, str(exc), exc.retryable
        except Exception as exc:
            outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}{where(exc)}"
        del self._tasks[job.index]
        report(
            Completion(
                job.index,
                job.attempt,
                outcome,
                started,
                self.clock.now(),
                output=output,
                error=error,
                retryable=retryable,
            )
        )

    def cancel(self, index: int) -> None:
        task = self._tasks.get(index)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


_PACKAGE = str(Path(__file__).resolve().parents[1])
_LIBRARIES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})


def where(exc: BaseException) -> str:
    """`` (at file.py:12 in fn)``: the innermost frame of the user's own code, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not frame.filename.startswith((_PACKAGE, *_LIBRARIES, "<")):
            return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"
    return ""
