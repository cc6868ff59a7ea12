"""Helpers for the selection tests: runs on the virtual clock (each step takes its declared
estimate unless told otherwise), events sent to the engine at given virtual times, resumed
runs, and what the results say (times, events, how many steps ran at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.graph.analysis import levels
from counterpoint.scheduler.clock import Clock, VirtualClock
from counterpoint.scheduler.engine import Engine

# a1..a4 end at 1 and their c's could start, but slow holds level 0 until 10
SLOW_LEVEL = """\
name: unbalanced
agents:
  n: {kind: noop}
steps:
  - {id: a1, agent: n, estimate: 1}
  - {id: a2, agent: n, estimate: 1}
  - {id: a3, agent: n, estimate: 1}
  - {id: a4, agent: n, estimate: 1}
  - {id: slow, agent: n, estimate: 10}
  - {id: c1, agent: n, estimate: 3, needs: a1}
  - {id: c2, agent: n, estimate: 3, needs: a2}
  - {id: c3, agent: n, estimate: 3, needs: a3}
  - {id: c4, agent: n, estimate: 3, needs: a4}
  - {id: d, agent: n, estimate: 1, needs: slow}
"""

# a pool of 3 cpus: the critical path and the order written pack it badly
PACKED = """\
name: packed
resources:
  pools:
    cpu: 3
agents:
  n: {kind: noop}
steps:
  - {id: t0, agent: n, estimate: 4, uses: {cpu: 3}}
  - {id: t1, agent: n, estimate: 4, uses: {cpu: 2}}
  - {id: t2, agent: n, estimate: 3, uses: {cpu: 1}}
  - {id: t3, agent: n, estimate: 1, uses: {cpu: 2}}
  - {id: t4, agent: n, estimate: 2, uses: {cpu: 1}, needs: [t3]}
"""

Sends = Mapping[float, tuple[str, dict[str, object]]]
"""Events to send to the engine: virtual time -> (name, data)."""


def declared(wf: cp.Workflow) -> Callable[[Job], float]:
    """Each attempt takes its step's declared estimate (not a learned one); steps added
    during the run take theirs."""
    by_id = dict(zip(wf.graph.ids, wf.graph.estimates, strict=True))
    return lambda job: by_id.get(job.step_id, job.estimate)


async def arun(
    wf: cp.Workflow,
    *,
    send: Sends | None = None,
    interrupt_at: float | None = None,
    fail: Callable[[Job], str | None] | None = None,
    duration: Callable[[Job], float] | None = None,
    engines: list[Engine] | None = None,
    **kw: object,
) -> cp.RunResult:
    """``counterpoint.run`` on a virtual clock with the virtual backend."""
    clock = VirtualClock()
    took = duration or declared(wf)

    def on_engine(engine: Engine) -> None:
        if engines is not None:
            engines.append(engine)
        for t, (name, data) in (send or {}).items():
            engine.clock.call_later(t, lambda n=name, d=data: engine.send(n, d))
        if interrupt_at is not None:
            engine.clock.call_later(interrupt_at, engine.interrupt)

    def backend(c: Clock) -> VirtualBackend:
        assert isinstance(c, VirtualClock)
        return VirtualBackend(c, duration=took, fail=fail)

    return await cp.run(
        wf,
        clock=clock,
        backend=backend,
        on_engine=on_engine,
        **kw,  # type: ignore[arg-type]
    )


def vrun(wf: cp.Workflow, **kw: object) -> cp.RunResult:
    return asyncio.run(arun(wf, **kw))  # type: ignore[arg-type]


async def aresume(run_id: str, store: cp.Store, wf: cp.Workflow, **kw: object) -> cp.RunResult:
    took = declared(wf)

    def backend(c: Clock) -> VirtualBackend:
        assert isinstance(c, VirtualClock)
        return VirtualBackend(c, duration=took)

    return await cp.resume(
        run_id,
        store=store,
        workflow=wf,
        clock=VirtualClock(),
        backend=backend,
        **kw,  # type: ignore[arg-type]
    )


def times(result: cp.RunResult) -> dict[str, tuple[float | None, float | None]]:
    return {sid: (r.start, r.end) for sid, r in result.steps.items()}


def starts(result: cp.RunResult) -> dict[str, float | None]:
    return {sid: r.start for sid, r in result.steps.items()}


def events(result: cp.RunResult, name: str) -> list[tuple[float, dict[str, object]]]:
    return [(e.time, e.data) for e in result.events if e.name == name]


def most_at_once(
    result: cp.RunResult, after: float = 0.0, weights: Mapping[str, float] | None = None
) -> float:
    """The most steps (or their ``weights``) running at once from ``after`` on."""
    spans = [
        (r.start, r.end, (weights or {}).get(sid, 1.0))
        for sid, r in result.steps.items()
        if r.start is not None and r.end is not None and r.end > after
    ]
    moments = sorted({max(s, after) for s, _, _ in spans})
    return max(
        (sum(w for s, e, w in spans if s <= t < e) for t in moments),
        default=0.0,
    )


def level_barriers_hold(wf: cp.Workflow, result: cp.RunResult) -> bool:
    """Every step of level k+1 starts once every step of level k has ended."""
    lv = levels(wf.graph)
    ids = wf.graph.ids
    ends: dict[int, float] = {}
    for i, level in enumerate(lv):
        end = result.steps[ids[i]].end
        assert end is not None
        ends[level] = max(ends.get(level, 0.0), end)
    for i, level in enumerate(lv):
        start = result.steps[ids[i]].start
        assert start is not None
        if level > 0 and start < ends[level - 1] - 1e-9:
            return False
    return True
