"""Clocks: the real one, and a virtual one on which time jumps to the next event.

The engine runs the same code on both. On the virtual clock nothing waits: when the engine
has nothing to do, the clock jumps to its earliest timer and fires it. This makes
simulation instant and timing tests exact.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "RealClock", "Timer", "VirtualClock"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time for the engine: read it, set timers, and wait until something happens."""

    def now(self) -> float:
        """Seconds on this clock (only differences mean anything)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` after ``delay`` seconds on this clock."""
        ...

    async def wait(self, wakeup: asyncio.Future[None]) -> None:
        """Return once ``wakeup`` is done (a virtual clock moves time forward to get there)."""
        ...


class RealClock:
    """The monotonic clock (the one asyncio's default event loop uses)."""

    now = staticmethod(time.monotonic)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)

    async def wait(self, wakeup: asyncio.Future[None]) -> None:
        await wakeup


class _VirtualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


_SETTLE_TURNS = 20


class VirtualClock:
    """A clock that only moves when the engine waits: it jumps to the next timer.

    Timers due at the same moment fire in the order they were set.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"<VirtualClock t={self._now:g} timers={len(self._timers)}>"

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _VirtualTimer(callback)
        heapq.heappush(self._timers, (self._now + max(delay, 0.0), next(self._seq), timer))
        return timer

    async def wait(self, wakeup: asyncio.Future[None]) -> None:
        # Let real tasks that are already runnable go first; then jump.
        await asyncio.sleep(0)
        while not wakeup.done():
            if self._advance():
                for _ in range(_SETTLE_TURNS):  # tasks woken by a timer react at its time
                    if wakeup.done():
                        break
                    await asyncio.sleep(0)
                continue
            for _ in range(_SETTLE_TURNS):  # tasks still starting may set timers
                await asyncio.sleep(0)
                if wakeup.done() or self._timers:
                    break
            else:
                raise RuntimeError(
                    "virtual clock: the engine is waiting but no timer is set; nothing can "
                    "happen (a step that never finishes on the virtual clock?)"
                )
        await wakeup

    def advance(self) -> bool:
        """Jump to the earliest timer and fire every timer due then; False if none is set."""
        return self._advance()

    def _advance(self) -> bool:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        if not timers:
            return False
        due = timers[0][0]
        self._now = max(self._now, due)
        while timers and timers[0][0] <= due:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled:
                timer.callback()
        return True
