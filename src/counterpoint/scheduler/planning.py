"""Planning by simulation: try priority rules on the virtual clock, keep the best order.

The scheduler is a list scheduler: whenever a worker is free, the released step with the
highest priority starts (ties: the one released first). Which priorities give the shortest
makespan depends on the graph and on the number of workers, so before a run the planner
simulates several rules — critical path (upward rank), critical path with tie-breaks, FIFO,
then critical-path ranks perturbed at random (seeded) — within a time budget, and keeps the
best. It stops early when a schedule reaches the lower bound max(critical path, work /
workers), which no schedule can beat.

``list_makespan`` is the same rule as ``Scheduler`` with each step taking its estimate; it is
kept lean because the planner calls it hundreds of times (the engine on the virtual clock
gives the same makespans, which the tests check).
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from counterpoint.graph.analysis import upward_ranks
from counterpoint.graph.dag import Graph

__all__ = ["DEFAULT_BUDGET_S", "PlanChoice", "choose_priority", "list_makespan", "user_lift"]

DEFAULT_BUDGET_S = 0.1
DEFAULT_TRIES = 400  # the search is deterministic unless the time budget cuts it short
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PlanChoice:
    """The priorities the planner chose, and why."""

    rule: str  # the rule that gave the best makespan
    priority: list[float]
    makespan: float  # expected, on the virtual clock
    lower_bound: float
    tried: int  # schedules simulated
    elapsed_s: float
    baseline_makespan: float  # plain critical-path priority, for comparison

    @property
    def proven_optimal(self) -> bool:
        """The makespan reaches the lower bound: no schedule is shorter."""
        return self.makespan <= self.lower_bound + _EPS

    def to_json(self) -> dict[str, object]:
        """What ``plan``, ``simulate`` and a run's JSON say of the choice."""
        return {
            "rule": self.rule,
            "expected_makespan_s": self.makespan,
            "critical_path_rule_makespan_s": self.baseline_makespan,
            "lower_bound_s": self.lower_bound,
            "proven_optimal": self.proven_optimal,
            "schedules_tried": self.tried,
            "planning_s": self.elapsed_s,
        }


def list_makespan(graph: Graph, priority: list[float], workers: int) -> float:
    """The makespan of list scheduling ``graph`` on ``workers`` with these priorities."""
    durations = graph.estimates
    succs = graph.succs
    waiting = [len(p) for p in graph.preds]
    ready: list[tuple[float, int, int]] = []
    running: list[tuple[float, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    for i, w in enumerate(waiting):
        if not w:
            seq += 1
            push(ready, (-priority[i], seq, i))
    t = 0.0
    free = workers
    while ready or running:
        while ready and free:
            i = pop(ready)[2]
            seq += 1
            push(running, (t + durations[i], seq, i))
            free -= 1
        t = running[0][0]
        while running and running[0][0] <= t:
            i = pop(running)[2]
            free += 1
            for s in succs[i]:
                waiting[s] -= 1
                if not waiting[s]:
                    seq += 1
                    push(ready, (-priority[s], seq, s))
    return t


def user_lift(
    user: Sequence[float] | None, critical: float
) -> Callable[[list[float]], list[float]]:
    """Adds the steps' own priorities on top of a rule's, so that they always decide first
    (rule values stay below ``2 * critical + 1``, perturbations included)."""
    if not user or not any(user):
        return lambda values: values
    step = 4.0 * (critical + 1.0)
    lifts = [u * step for u in user]
    return lambda values: [v + lv for v, lv in zip(values, lifts, strict=True)]


def choose_priority(
    graph: Graph,
    workers: int | None,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    tries: int = DEFAULT_TRIES,
    seed: int = 0,
    user: Sequence[float] | None = None,
) -> PlanChoice:
    """The best priorities found for ``workers`` in at most ``tries`` simulated schedules
    and about ``budget_s`` seconds. ``user``: the steps' own priorities, which always come
    first (the rules only order steps of equal user priority)."""
    t0 = time.perf_counter()
    raw = upward_ranks(graph)
    n = len(graph)
    critical = max(raw, default=0.0)
    work = sum(graph.estimates)
    lift = user_lift(user, critical)
    rank = lift(raw)
    if not workers or workers >= n:  # every step can run at once: the critical path is it
        return PlanChoice("critical-path", rank, critical, critical, 0, 0.0, critical)
    bound = max(critical, work / workers)

    durations = graph.estimates
    succs = graph.succs
    scale = critical or 1.0
    candidates: list[tuple[str, list[float]]] = [
        ("critical-path", rank),
        (
            "critical-path, then most successors",
            lift([r + len(succs[i]) * 1e-6 * scale for i, r in enumerate(raw)]),
        ),
        (
            "critical-path, then longest step",
            lift([r + durations[i] * 1e-6 for i, r in enumerate(raw)]),
        ),
        ("fifo", lift([0.0] * n)),
    ]
    deadline = t0 + budget_s
    best_rule, best = candidates[0]
    best_raw = raw
    best_makespan = baseline = list_makespan(graph, rank, workers)
    tried = 1
    last = time.perf_counter() - t0  # how long a try takes: do not start one that would overrun
    for rule, prio in candidates[1:]:
        if best_makespan <= bound + _EPS or time.perf_counter() + last > deadline:
            break
        m = list_makespan(graph, prio, workers)
        tried += 1
        if m < best_makespan - _EPS:
            best_rule, best, best_makespan = rule, prio, m
            best_raw = [p - u for p, u in zip(prio, lift([0.0] * n), strict=True)]
    rng = random.Random(seed)
    spreads = (0.02, 0.05, 0.1, 0.2, 0.35)
    k = 0
    while best_makespan > bound + _EPS and tried < tries:
        now = time.perf_counter()
        if now + last > deadline:
            break
        spread = spreads[k % len(spreads)]
        k += 1
        base = best_raw if k % 2 else raw  # around the best so far, and around the ranks
        moved = [p * (1.0 + spread * (rng.random() - 0.5)) for p in base]
        prio = lift(moved)
        m = list_makespan(graph, prio, workers)
        tried += 1
        last = time.perf_counter() - now
        if m < best_makespan - _EPS:
            best_rule, best, best_makespan = f"critical-path perturbed ({spread:g})", prio, m
            best_raw = moved
    return PlanChoice(
        best_rule,
        best,
        best_makespan,
        bound,
        tried,
        time.perf_counter() - t0,
        baseline,
    )
