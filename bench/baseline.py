"""The baseline: a bare asyncio + graphlib dependency loop, as a minimal good scheduler.

For every ready node it creates a task awaiting the node's coroutine; a done-callback queues
the node, and the loop marks queued nodes done (``TopologicalSorter.done``) in one batch per
wake-up, then starts whatever became ready. No priorities, limits, retries, records or
observers: the least a correct dependency scheduler on asyncio has to do.
"""

from __future__ import annotations

import asyncio
import graphlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial


async def noop() -> None:
    return None


async def run_dag(
    preds: Sequence[Sequence[int]], make: Callable[[int], Awaitable[object]]
) -> list[object]:
    """Run ``make(i)`` for every node once all of ``preds[i]`` have finished; the results."""
    ts: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for i, ps in enumerate(preds):
        ts.add(i, *ps)
    ts.prepare()
    loop = asyncio.get_running_loop()
    results: list[object] = [None] * len(preds)
    finished: deque[int] = deque()
    wake: list[asyncio.Future[None] | None] = [None]

    def on_done(node: int, task: asyncio.Task[object]) -> None:
        results[node] = task.result()  # a failure surfaces here, as in any real scheduler
        finished.append(node)
        waiter = wake[0]
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    while ts.is_active():
        for node in ts.get_ready():
            task = loop.create_task(make(node))  # type: ignore[arg-type]
            task.add_done_callback(partial(on_done, node))
        if not finished:
            wake[0] = loop.create_future()
            await wake[0]
            wake[0] = None
        while finished:
            ts.done(finished.popleft())
    return results


def run_noop(preds: Sequence[Sequence[int]]) -> float:
    """Seconds to run every node as a no-op coroutine (timed inside the event loop)."""

    async def main() -> float:
        t0 = asyncio.get_running_loop().time()
        await run_dag(preds, lambda _i: noop())
        return asyncio.get_running_loop().time() - t0

    return asyncio.run(main())


def run_sleeps(preds: Sequence[Sequence[int]], seconds: Sequence[float]) -> float:
    """Wall seconds to run every node as ``asyncio.sleep(seconds[i])``."""

    async def main() -> float:
        t0 = asyncio.get_running_loop().time()
        await run_dag(preds, lambda i: asyncio.sleep(seconds[i]))
        return asyncio.get_running_loop().time() - t0

    return asyncio.run(main())
