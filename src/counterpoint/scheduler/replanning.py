"""Planning again during a run: when an agent's steps take longer or shorter than their
estimates (the median of its last ``RATIO_WINDOW``), and when a workflow deadline is at risk
(``timeline_pressure``)."""

from __future__ import annotations

import statistics
from collections import deque
from typing import TYPE_CHECKING

from counterpoint.graph.dag import Graph
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.planning import PoolModel, choose_priority

if TYPE_CHECKING:
    from counterpoint.scheduler.engine import Engine

__all__ = ["MAX_REPLANS", "RATIO_WINDOW", "REPLAN_BUDGET_S", "Replanner"]

MAX_REPLANS = 16  # per session of a run
REPLAN_BUDGET_S = 0.02  # planning time for each re-plan
RATIO_WINDOW = 9  # an agent's last durations whose median says how long its steps take


class Replanner:
    """What the run learned of its agents' durations, and the re-plans it made."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ratios: dict[str, deque[float]] = {}  # agent -> recent actual / estimated
        self.assumed: dict[str, float] = {}  # agent -> the ratio the current plan assumed
        self.replans = 0
        self.late_by = 0.0  # lateness the last timeline_pressure said

    def to_json(self) -> dict[str, object] | None:
        engine = self.engine
        if engine.planning is None:
            return None
        out = {**engine.planning.to_json(), "replans": self.replans}
        if engine.learned:
            out["learned_estimates_s"] = dict(engine.learned)
        return out

    def learn(self, i: int, took: float) -> None:
        """Note how long step ``i`` took against its estimate; when its agent's steps take
        more than a quarter longer or shorter than the plan assumed, plan the rest again."""
        engine = self.engine
        estimate = engine.graph.estimates[i]
        if estimate <= 0 or took <= 0 or engine.records[i].cached:
            return  # nothing to learn from (a cached output took no time)
        agent = engine._steps[i].agent
        ratios = self.ratios.get(agent)
        if ratios is None:
            ratios = self.ratios[agent] = deque(maxlen=RATIO_WINDOW)
        ratios.append(took / estimate)
        ratio = statistics.median(ratios)
        assumed = self.assumed.get(agent, 1.0)
        if 0.8 <= ratio / assumed <= 1.25:
            return
        if engine.planning is None:  # not planned: what was learned counts for the deadline
            self.assumed[agent] = ratio
            return
        if self.replans >= MAX_REPLANS:
            return
        sched = engine.scheduler
        if sched.ready + sum(s is StepState.PENDING for s in sched.state) <= 1:
            return  # nothing left to order
        self.assumed[agent] = ratio
        self.replan(f"{agent!r} steps take {ratio:.2f}x their estimates")

    def check_timeline(self) -> None:
        """With a workflow deadline: when the work left (its critical path, each agent's
        estimates scaled by what was learned, running steps by what they have left) would end
        after it, publish ``timeline_pressure`` (again when it is a tenth later still) and
        plan the rest again to catch up."""
        engine = self.engine
        deadline = engine.workflow.deadline
        assert deadline is not None
        now = engine.clock.now() - engine._t0
        projected = now + self.work_left(now)
        late = projected - deadline
        if late <= 1e-9 or late < self.late_by + 0.1 * deadline:
            return
        self.late_by = late
        engine._emit(
            "",
            "timeline_pressure",
            {"deadline_s": deadline, "projected_end_s": projected, "late_by_s": late},
        )
        if engine.planning is not None and self.replans < MAX_REPLANS:
            self.replan(f"timeline pressure: {late:.3g}s late for the deadline")

    def work_left(self, now: float) -> float:
        """The critical path of the steps not finished, from now."""
        engine = self.engine
        sched, graph, steps = engine.scheduler, engine.graph, engine._steps
        est = graph.estimates
        done = (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED)
        rank = [0.0] * len(est)
        for i in reversed(graph.order):
            state = sched.state[i]
            if state in done:
                continue
            d = est[i] * self.assumed.get(steps[i].agent, 1.0)
            start = engine.records[i].start
            if state is StepState.RUNNING and start is not None:
                d = max(0.0, d - (now - start))
            rank[i] = d + max((rank[j] for j in graph.succs[i]), default=0.0)
        return max(rank, default=0.0)

    def replan(self, reason: str) -> None:
        """Plan the steps not yet finished again with what was learned: each agent's steps
        scaled by how long they really take, running steps by what they have left."""
        engine = self.engine
        sched = engine.scheduler
        state = sched.state
        graph = engine.graph
        now = engine.clock.now() - engine._t0
        final = (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED)
        left = [i for i, st in enumerate(state) if st not in final]
        where = {i: k for k, i in enumerate(left)}
        estimates: list[float] = []
        lifts: list[float] = []
        for i in left:
            scaled = graph.estimates[i] * self.assumed.get(engine._steps[i].agent, 1.0)
            running = state[i] is StepState.RUNNING
            start = engine.records[i].start
            if running and start is not None:
                scaled = max(0.0, scaled - (now - start))
            estimates.append(scaled)
            lifts.append(float(engine._steps[i].priority) + (1e6 if running else 0.0))
        sub = Graph(
            [graph.ids[i] for i in left],
            [[where[p] for p in graph.preds[i] if p in where] for i in left],
            estimates,
        )
        pools = PoolModel.of(engine.workflow, engine.adapter.capacity)
        choice = choose_priority(
            sub,
            engine.scheduler.limit if engine.scheduler.limit < len(engine._steps) else None,
            user=lifts,
            pools=pools.subset(left) if pools is not None else None,
            budget_s=REPLAN_BUDGET_S,
        )
        priority = list(sched.priority)
        for k, i in enumerate(left):
            priority[i] = choice.priority[k]
        sched.reprioritise(priority)
        if engine.planning is None:  # planned from now on (an adaptation): learn from now on
            engine.planning = choice
        self.replans += 1
        data = {
            "reason": reason,
            "rule": choice.rule,
            "expected_makespan_s": now + choice.makespan,
            "steps": len(left),
        }
        engine._emit("", "replanned", data)  # a run's event: no step
