"""Adapting the coordination while a run goes on.

The adapter keeps the phase barriers of the hybrid pattern and watches the run at its natural
sync points (every few completions, each phase boundary, and events) for the seed's
adaptation triggers:

- **coordination bottleneck**: a phase barrier holds back work whose needs are all done
  while workers are idle: the barriers go (hybrid becomes event-driven);
- **resource contention**: ready steps wait for pools at check after check while the order
  is not planned: the rest is planned around the pools (resource-aware);
- **efficiency degradation**: steps started while many ran take clearly longer against
  their estimates than those started while few ran: fewer run at once;
- **failure cascade**: most of the last steps failed for good: one step at a time, so that
  a failing dependency stops the least work (sequential);
- **resource availability change**: a ``capacity_changed`` event sets a pool's capacity
  (or the number of workers) and the rest is planned for it; with room for only one step
  at a time the run degrades to sequential;
- **requirement change**: steps added by a trigger, or a deadline at risk: the rest is
  planned again (resource-aware).

A switch changes only what has not started: running steps go on, finished ones stay. Each is
published as a ``pattern_adapted`` event (journaled with its trigger, shown live) and kept
in the result's ``adaptations``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING

from counterpoint.events import Event
from counterpoint.graph.analysis import levels, upward_ranks
from counterpoint.scheduler.core import StepState

if TYPE_CHECKING:
    from counterpoint.graph.dag import Graph
    from counterpoint.model.workflow import Workflow
    from counterpoint.scheduler.engine import Engine

__all__ = ["CHECK_EVERY", "MAX_ADAPTATIONS", "Adapter", "ask_early"]

CHECK_EVERY = 4  # completions between two checks of the monitors
MAX_ADAPTATIONS = 8  # per session of a run
CASCADE_WINDOW = 8  # recent finished steps a failure cascade is judged on
CASCADE_FAILURES = 3  # ... of which this many failed for good (and at least half)
CONTENTION_CHECKS = 3  # consecutive checks with ready steps waiting for pools
SLOWDOWN = 1.5  # steps started at high concurrency this much slower (against estimates)
EFFICIENCY_WINDOW = 16  # recent timed steps the efficiency is judged on
BOTTLENECK_SHARE = 0.1  # work held back by a barrier, as a share of the work left


class Adapter:
    """The phase barriers and the adaptation monitors of one run."""

    def __init__(self, engine: Engine, *, barriers: bool, monitor: bool) -> None:
        self.engine = engine
        self.monitor = monitor
        self.pattern = engine.pattern
        self.adaptations: list[dict[str, object]] = []
        self.fired: set[str] = set()  # triggers that fire once per run
        self.phases: list[list[int]] | None = None
        self.phase = 0
        self._cursor = 0
        self.finished: list[int] = []  # steps in the order they ended
        self.failed_at: list[int] = []  # positions in ``finished`` of those that failed
        self.started_with = [0] * len(engine._steps)  # concurrency when each step started
        # big runs are checked less often: a check costs a few microseconds
        self.every = max(CHECK_EVERY, len(engine._steps) // 256)
        self.next_check = self.every
        self.next_efficiency = EFFICIENCY_WINDOW
        self.contended = 0
        self.capacity: dict[tuple[str, str], float] = {}  # pools' capacities changed mid-run
        self.live = False  # checks wait until the engine is built
        if barriers:
            self._set_barriers()
        self.live = True
        bus = engine.bus
        bus.subscribe("capacity_changed", self.on_capacity)  # applied even without adapting
        if monitor:
            bus.subscribe("added", self.on_requirement)
            bus.subscribe("timeline_pressure", self.on_requirement)
        engine.bus.subscribe("pattern_adapted", self.on_past)

    @property
    def active(self) -> bool:
        return self.monitor or self.phases is not None  # (events reach it anyway)

    # --- phase barriers -----------------------------------------------------------------------

    def _set_barriers(self) -> None:
        engine = self.engine
        graph = engine.graph
        lv = levels(graph)
        # steps that wait for a trigger, and those after them, are not in any phase: an
        # event starts them whenever it comes
        reactive = set(engine.scheduler.held)
        for i in graph.order:
            if i not in reactive and any(p in reactive for p in graph.preds[i]):
                reactive.add(i)
        phases: list[list[int]] = [[] for _ in range(max(lv, default=-1) + 1)]
        for i, level in enumerate(lv):
            if i not in reactive:
                phases[level].append(i)
        phases = [p for p in phases if p]
        if len(phases) < 2:
            return
        self.phases = phases
        for phase in phases[1:]:
            engine.scheduler.gate(phase)
        self._advance()

    def _advance(self) -> None:
        """Lift the barrier after each phase that has ended (its steps all final)."""
        phases = self.phases
        assert phases is not None
        state = self.engine.scheduler.state
        while self.phase < len(phases):
            steps = phases[self.phase]
            while self._cursor < len(steps) and state[steps[self._cursor]].final:
                self._cursor += 1
            if self._cursor < len(steps):
                return
            self.phase += 1
            self._cursor = 0
            if self.phase < len(phases):
                self.engine.scheduler.ungate(phases[self.phase])
                if self.monitor and self.live:  # a phase boundary: a natural point to check
                    self.check()
                    if self.phases is None:
                        return

    def drop_barriers(self) -> None:
        phases = self.phases
        if phases is None:
            return
        sched = self.engine.scheduler
        for phase in phases[self.phase + 1 :]:
            sched.ungate(phase)
        self.phases = None

    # --- what the engine tells it ---------------------------------------------------------------

    def started(self, steps: list[int], running: int) -> None:
        started_with = self.started_with
        if len(started_with) < len(self.engine.records):  # steps were added
            started_with.extend([0] * (len(self.engine.records) - len(started_with)))
        for i in steps:
            started_with[i] = running

    def turn(self) -> None:
        """After the loop handled what came in: lift the barriers of phases that ended."""
        if self.phases is not None:
            self._advance()

    def done(self, i: int, failed: bool) -> None:
        """Step ``i`` reached a final state."""
        finished = self.finished
        finished.append(i)
        if failed:
            self.failed_at.append(len(finished))
        elif len(finished) < self.next_check or not self.monitor:
            return
        if self.monitor:
            self.next_check = len(finished) + self.every
            self.check()

    # --- the monitors ---------------------------------------------------------------------------

    def check(self) -> None:
        if self.phases is not None:  # phases that just ended open the next first
            self._advance()
        if len(self.adaptations) >= MAX_ADAPTATIONS or self.engine._stopping:
            return
        if self._cascade() or self._bottleneck() or self._contention():
            return
        self._efficiency()

    def _cascade(self) -> bool:
        sched = self.engine.scheduler
        if "failure cascade" in self.fired or sched.limit <= 1:
            return False
        n = len(self.finished)
        recent = min(n, CASCADE_WINDOW)
        failures = sum(1 for k in self.failed_at[-CASCADE_WINDOW:] if k > n - recent)
        if failures < CASCADE_FAILURES or 2 * failures < recent:
            return False
        self.fired.add("failure cascade")
        self.drop_barriers()
        sched.limit = 1
        self.switch(
            "sequential",
            "failure cascade",
            f"{failures} of the last {recent} steps failed: one step at a time, so a "
            "failing step stops the least work",
            max_concurrency=1,
        )
        return True

    def _bottleneck(self) -> bool:
        phases = self.phases
        if phases is None or self.phase + 1 >= len(phases):
            return False
        engine = self.engine
        sched = engine.scheduler
        if sched.ready or sched.running >= sched.limit:
            return False  # the workers are busy: the barrier costs nothing now
        state, graph = sched.state, engine.graph
        est = graph.estimates
        held = sum(
            est[i]
            for i in sched.gated
            if state[i] is StepState.PENDING
            and all(state[p] is StepState.SUCCEEDED for p in graph.preds[i])
        )
        left = sum(est[i] for i, st in enumerate(state) if not st.final)
        if held <= 0 or held < BOTTLENECK_SHARE * left:
            return False
        self.drop_barriers()
        self.switch(
            "event-driven",
            "coordination bottleneck",
            f"the phase barrier held back {held:.3g}s of ready work while workers were idle: "
            "steps now start as soon as their needs are done",
        )
        return True

    def _contention(self) -> bool:
        engine = self.engine
        sched = engine.scheduler
        if engine.resources is None or engine.planning is not None:
            return False
        if "resource contention" in self.fired:
            return False
        if sched.ready and sched.running < sched.limit and engine.resources.why == "pool":
            self.contended += 1
        else:
            self.contended = 0
        if self.contended < CONTENTION_CHECKS:
            return False
        self.fired.add("resource contention")
        self.replan_as(
            "resource contention",
            f"{sched.ready} ready steps waited for pools at {self.contended} checks in a row: "
            "the rest is planned around the pools",
        )
        return True

    def _efficiency(self) -> None:
        engine = self.engine
        sched = engine.scheduler
        if "efficiency degradation" in self.fired or sched.limit <= 1:
            return
        n = len(self.finished)
        if n < self.next_efficiency:
            return
        self.next_efficiency = n + max(EFFICIENCY_WINDOW, len(self.started_with) // 64)
        failed = set(self.failed_at[-EFFICIENCY_WINDOW:])
        graph, records, steps = engine.graph, engine.records, engine._steps
        timed: list[tuple[int, float, str]] = []
        for k in range(max(0, n - EFFICIENCY_WINDOW), n):
            i = self.finished[k]
            rec = records[i]
            est = graph.estimates[i]
            if k + 1 in failed or est <= 0 or rec.start is None or rec.end is None or rec.cached:
                continue
            if rec.attempts > 1:
                continue
            timed.append((self.started_with[i], (rec.end - rec.start) / est, steps[i].agent))
        if len(timed) < 8:
            return
        # each agent's ratios over its own median: estimates off by a constant factor for
        # one agent say nothing of concurrency
        by_agent: dict[str, list[float]] = {}
        for _, r, agent in timed:
            by_agent.setdefault(agent, []).append(r)
        norm = {agent: statistics.median(rs) for agent, rs in by_agent.items() if len(rs) >= 2}
        timed = [(c, r / norm[a], a) for c, r, a in timed if a in norm and norm[a] > 0]
        if len(timed) < 8:
            return
        split = statistics.median(c for c, _, _ in timed)
        low = [r for c, r, _ in timed if c <= split]
        high = [r for c, r, _ in timed if c > split]
        if len(low) < 3 or len(high) < 3:
            return
        slow = statistics.median(high) / max(statistics.median(low), 1e-9)
        if slow < SLOWDOWN:
            return
        self.fired.add("efficiency degradation")
        limit = max(1, int(split))
        sched.limit = limit
        self.switch(
            self.pattern,
            "efficiency degradation",
            f"steps started with more than {int(split)} running took {slow:.2f}x longer "
            f"against their estimates: at most {limit} at once from now",
            max_concurrency=limit,
        )

    # --- events -----------------------------------------------------------------------------------

    def on_capacity(self, event: Event) -> None:
        """``capacity_changed``: ``{"pool": NAME, "capacity": N}`` (or ``{DIM: N}``), or
        ``{"workers": N}``: the run goes on with it."""
        engine = self.engine
        data: Mapping[str, object] = event.data
        changes: list[str] = []
        workers = data.get("workers")
        sched = engine.scheduler
        if isinstance(workers, int) and workers >= 1:
            changes.append(
                f"workers {sched.limit if sched.limit < len(sched.state) else 'any'} -> {workers}"
            )
            sched.limit = workers
        pool = data.get("pool")
        res = engine.resources
        if isinstance(pool, str) and res is not None:
            amount = data.get("capacity")
            if isinstance(amount, dict):
                dims = amount
            else:  # a plain number: the pool's only dimension
                own = [d for p, d in res.capacity if p == pool]
                dims = {own[0] if len(own) == 1 else "count": amount}
            for dim, value in dims.items():
                if (pool, dim) not in res.capacity or not isinstance(value, int | float):
                    engine._emit("", "adaptation_refused", {"reason": f"no pool {pool}.{dim}"})
                    continue
                state = sched.state
                need = max(  # the most a step still to run needs of it
                    (
                        n
                        for i, d in enumerate(res.demands)
                        if d is not None and not state[i].final
                        for p, dd, n in d.pools
                        if p == pool and dd == dim
                    ),
                    default=0.0,
                )
                if value < need:
                    engine._emit(
                        "",
                        "adaptation_refused",
                        {"reason": f"a step needs {need:g} of {pool}; capacity stays"},
                    )
                    continue
                old = res.set_capacity(pool, dim, float(value))
                self.capacity[pool, dim] = float(value)
                changes.append(f"{pool} {old:g} -> {value:g}")
        if not changes or not self.monitor:
            return
        if self._one_at_a_time():
            self.drop_barriers()
            sched.limit = 1
            self.switch(
                "sequential",
                "resource availability change",
                f"{', '.join(changes)}: room for one step at a time",
                max_concurrency=1,
            )
            return
        self.replan_as(
            "resource availability change",
            f"{', '.join(changes)}: the rest is planned for it",
        )

    def _one_at_a_time(self) -> bool:
        engine = self.engine
        sched = engine.scheduler
        if sched.limit <= 1:
            return True
        res = engine.resources
        if res is None:
            return False
        state = sched.state
        left = [i for i, st in enumerate(state) if not st.final and st is not StepState.RUNNING]
        for i in left:
            d = res.demands[i]
            if d is None or not d.pools:
                return False
            if any(2 * n <= res.capacity[p, dim] for p, dim, n in d.pools):
                return False
        return bool(left)

    def on_past(self, event: Event) -> None:
        """A resumed run's earlier adaptation: the rest goes on as it was switched to."""
        if not event.restored or event.data.get("trigger") == "resource availability change":
            return  # (its capacity_changed event, replayed too, switches it again)
        data = event.data
        limit = data.get("max_concurrency")
        if isinstance(limit, int) and limit >= 1:
            self.engine.scheduler.limit = limit
        to = data.get("to")
        if isinstance(to, str):
            if to != "hybrid":
                self.drop_barriers()
            self.pattern = to
        trigger = data.get("trigger")
        if isinstance(trigger, str):
            self.fired.add(trigger)
        self.adaptations.append(dict(data))

    def on_requirement(self, event: Event) -> None:
        engine = self.engine
        if event.restored:
            return  # the adaptation it caused is replayed as it was
        if engine.planning is not None and event.name == "timeline_pressure":
            return  # the re-planner answers it already
        what = "steps were added" if event.name == "added" else "the deadline is at risk"
        self.replan_as("requirement change", f"{what}: the rest is planned again")

    # --- switching --------------------------------------------------------------------------------

    def replan_as(self, trigger: str, reason: str) -> None:
        """Switch the rest to the resource-aware pattern: barriers go, the order is planned."""
        if len(self.adaptations) >= MAX_ADAPTATIONS:
            return
        engine = self.engine
        self.drop_barriers()
        if engine.planning is None:
            ranks = upward_ranks(engine.graph)
            engine.scheduler.reprioritise(ranks)  # a sound order while planning
        engine.replanner.replan(reason)
        self.switch("resource-aware", trigger, reason)

    def switch(self, to: str, trigger: str, reason: str, **changes: object) -> None:
        engine = self.engine
        sched = engine.scheduler
        left = sum(not st.final for st in sched.state)
        data: dict[str, object] = {
            "trigger": trigger,
            "from": self.pattern,
            "to": to,
            "reason": reason,
            "at_s": round(engine.clock.now() - engine._t0, 6),
            "steps_left": left,
            **changes,
        }
        self.pattern = to
        self.adaptations.append(data)
        engine._emit("", "pattern_adapted", data)


def ask_early(workflow: Workflow, graph: Graph, priority: list[float]) -> list[float]:
    """The event-driven order: steps that wait for people or events, and the steps leading
    to them, go first (the people and events answer while the rest works)."""
    agents = workflow.agents
    kinds = ("approval", "wait")
    preds = graph.preds
    early = [
        i
        for i, s in enumerate(workflow.steps)
        if s.agent in agents and agents[s.agent].kind in kinds
    ]
    seen = set(early)
    while early:
        for p in preds[early.pop()]:
            if p not in seen:
                seen.add(p)
                early.append(p)
    top = max(priority, default=0.0) + 1.0
    return [top + p if i in seen else p for i, p in enumerate(priority)]
