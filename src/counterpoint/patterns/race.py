"""Races: a step's agent and its alternatives all start; the first valid result wins.

"Valid" means the output passes the step's checkpoint (``validate:``), if it has one. The
others are cancelled (a program loses its process group). Every contender's outcome and time
is published as a ``race`` event, and what each reports with ``ctx.charge`` is charged to the
step, so the cost of every attempt is kept. If no contender gives a valid result, the step's
attempt fails with each one's reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

from counterpoint.agents.base import Agent, StepContext
from counterpoint.errors import StepFailed

__all__ = ["RaceAgent"]


class RaceAgent:
    """Runs ``contenders`` (name, agent) at once; returns the first valid output."""

    def __init__(
        self,
        contenders: Sequence[tuple[str, Agent]],
        check: Callable[[object], str | None] | None = None,
    ) -> None:
        self.contenders = list(contenders)
        self.check = check

    def __repr__(self) -> str:
        return f"<RaceAgent {[name for name, _ in self.contenders]}>"

    async def __call__(self, ctx: StepContext) -> object:
        t0 = time.monotonic()
        tasks = {
            asyncio.ensure_future(agent(dataclasses.replace(ctx))): name
            for name, agent in self.contenders
        }
        reasons: list[str] = []
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: list(tasks).index(t)):
                    name = tasks[task]
                    took = time.monotonic() - t0
                    exc = task.exception() if not task.cancelled() else None
                    if exc is not None:
                        reasons.append(f"{name}: {type(exc).__name__}: {exc}")
                        ctx.emit("race", {"agent": name, "outcome": "failed", "time_s": took})
                        continue
                    output = task.result()
                    why = self.check(output) if self.check is not None else None
                    if why is not None:
                        reasons.append(f"{name}: {why}")
                        ctx.emit("race", {"agent": name, "outcome": "invalid", "time_s": took})
                        continue
                    ctx.emit("race", {"agent": name, "outcome": "won", "time_s": took})
                    for other in pending:
                        ctx.emit("race", {"agent": tasks[other], "outcome": "cancelled"})
                    return output
        finally:
            leftover = [t for t in tasks if not t.done()]
            for task in leftover:
                task.cancel()
            if leftover:
                await asyncio.gather(*leftover, return_exceptions=True)
        raise StepFailed("no contender of the race gave a valid result: " + "; ".join(reasons))
