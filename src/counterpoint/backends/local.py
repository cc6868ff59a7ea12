"""Run agents as asyncio tasks in this process."""

from __future__ import annotations

import asyncio

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
        now = self.clock.now
        started = now()
        scope: asyncio.Timeout | None = None
        try:
            ctx = job.context()
            if job.timeout is None:
                output = await job.agent(ctx)
            else:
                scope = asyncio.timeout(job.timeout)
                async with scope:
                    output = await job.agent(ctx)
        except TimeoutError as exc:
            if scope is not None and scope.expired():
                done = Completion(job.index, job.attempt, Outcome.TIMED_OUT, started, now(),
                                  error=f"timed out after {job.timeout:g}s")
            else:
                done = Completion(job.index, job.attempt, Outcome.FAILED, started, now(),
                                  error=f"TimeoutError: {exc}")
        except asyncio.CancelledError:
                        if scope.expired():
                            raise
                        raise
        except TimeoutError:
            done = Completion(job.index, job.attempt, Outcome.TIMED_OUT, started, now(),
                              error=f"timed out after {job.timeout:g}s")
        except asyncio.CancelledError:
            done = Completion(job.index, job.attempt, Outcome.CANCELLED, started, now(),
                              error="cancelled")
        except StepFailed as exc:
            done = Completion(job.index, job.attempt, Outcome.FAILED, started, now(),
                              error=str(exc), retryable=exc.retryable)
        except Exception as exc:
            done = Completion(job.index, job.attempt, Outcome.FAILED, started, now(),
                              error=f"{type(exc).__name__}: {exc}")
        else:
            done = Completion(job.index, job.attempt, Outcome.SUCCEEDED, started, now(),
                              output=output)
        del self._tasks[job.index]
        report(done)

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
