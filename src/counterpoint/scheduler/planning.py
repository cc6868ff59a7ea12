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
gives the same makespans, which the tests check). With pools (``PoolModel``) the simulation
admits a step only when its demands fit, passing over at most ``BACKFILL_WINDOW`` steps as
the scheduler does, and the lower bound includes each pool's work over its capacity; it
does not model rate limits, windows, overflow or aging. With pools the planner also tries
efficiency: critical path gained per share of the pools a step holds (the seed's
efficiency_priority).
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from counterpoint.graph.analysis import upward_ranks
from counterpoint.graph.dag import Graph
from counterpoint.model.workflow import Workflow
from counterpoint.scheduler.resources import BACKFILL_WINDOW, Demand, compile_demands

__all__ = [
    "DEFAULT_BUDGET_S",
    "PlanChoice",
    "PoolModel",
    "choose_priority",
    "efficiency_priority",
    "list_makespan",
    "user_lift",
]

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


@dataclass(frozen=True, slots=True)
class PoolModel:
    """Pools as the planner sees them: a capacity per (pool, dimension) and each step's
    needs as (index of the capacity, amount)."""

    capacity: tuple[float, ...]
    needs: tuple[tuple[tuple[int, float], ...], ...]

    @classmethod
    def build(
        cls, capacity: dict[tuple[str, str], float], demands: Sequence[Demand | None]
    ) -> PoolModel | None:
        """The model of the pools in ``capacity`` (``None`` when no step uses a pool)."""
        keys = {key: k for k, key in enumerate(capacity)}
        needs = tuple(
            tuple((keys[name, dim], n) for name, dim, n in d.pools) if d is not None else ()
            for d in demands
        )
        if not any(needs):
            return None
        return cls(tuple(capacity.values()), needs)

    @classmethod
    def of(
        cls, workflow: Workflow, capacity: Mapping[tuple[str, str], float] | None = None
    ) -> PoolModel | None:
        """The model of a checked workflow's pools (``capacity``: some changed since)."""
        pools = workflow.resources.pools
        if not pools:
            return None
        demands = workflow._demands  # compiled when it was checked
        if demands is None:
            demands = compile_demands(workflow.resources, workflow.steps)[0]
        caps = {(n, dim): c for n, p in pools.items() for dim, c in p.capacity.items()}
        if capacity:
            caps.update((k, v) for k, v in capacity.items() if k in caps)
        return cls.build(caps, demands)

    def subset(self, steps: Sequence[int]) -> PoolModel:
        return PoolModel(self.capacity, tuple(self.needs[i] for i in steps))

    def bound(self, durations: Sequence[float]) -> float:
        """No schedule is shorter than any pool's work (amount times time) over its capacity."""
        work = [0.0] * len(self.capacity)
        for i, need in enumerate(self.needs):
            for k, n in need:
                work[k] += n * durations[i]
        return max((w / c for w, c in zip(work, self.capacity, strict=True) if c > 0), default=0.0)

    def shares(self) -> list[float]:
        """Each step's dominant share: the largest fraction of a capacity it holds."""
        cap = self.capacity
        return [
            max((n / cap[k] for k, n in need if cap[k] > 0), default=0.0) for need in self.needs
        ]


def pool_makespan(
    graph: Graph, priority: list[float], workers: int | None, pools: PoolModel
) -> float:
    """``list_makespan`` with pools: a step starts when a worker is free and its demands fit;
    steps that do not fit are passed over (at most ``BACKFILL_WINDOW`` per dispatch)."""
    durations = graph.estimates
    succs = graph.succs
    needs = pools.needs
    free = list(pools.capacity)
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
    slots = workers or len(durations) or 1
    while ready or running:
        held: list[tuple[float, int, int]] = []
        misses = 0
        while ready and slots and misses < BACKFILL_WINDOW:
            entry = pop(ready)
            i = entry[2]
            need = needs[i]
            if all(free[k] + _EPS >= n for k, n in need):
                for k, n in need:
                    free[k] -= n
                seq += 1
                push(running, (t + durations[i], seq, i))
                slots -= 1
            else:
                held.append(entry)
                misses += 1
        for entry in held:
            push(ready, entry)
        if not running:
            return float("inf")  # a demand never fits (validation rules this out)
        t = running[0][0]
        while running and running[0][0] <= t:
            i = pop(running)[2]
            slots += 1
            for k, n in needs[i]:
                free[k] += n
            for s in succs[i]:
                waiting[s] -= 1
                if not waiting[s]:
                    seq += 1
                    push(ready, (-priority[s], seq, s))
    return t


def efficiency_priority(graph: Graph, pools: PoolModel | None, workers: int | None) -> list[float]:
    """The critical path a step opens per unit of what it holds: its upward rank over its
    resource-time (its duration times its dominant share of the pools, or of the workers
    when it holds no pool), scaled to the critical path (the seed's efficiency_priority)."""
    ranks = upward_ranks(graph)
    durations = graph.estimates
    shares = pools.shares() if pools is not None else [0.0] * len(ranks)
    least = 1.0 / workers if workers else 1.0 / max(len(ranks), 1)
    value = [
        r / (max(d, 1e-9) * max(share, least))
        for r, d, share in zip(ranks, durations, shares, strict=True)
    ]
    top = max(value, default=0.0) or 1.0
    critical = max(ranks, default=0.0)
    return [v / top * critical for v in value]


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


def _rules(
    graph: Graph,
    raw: list[float],
    lift: Callable[[list[float]], list[float]],
    pools: PoolModel | None,
    workers: int | None,
) -> list[tuple[str, list[float]]]:
    """The rules the planner tries first, critical path first."""
    durations = graph.estimates
    succs = graph.succs
    scale = max(raw, default=0.0) or 1.0
    rules: list[tuple[str, list[float]]] = [
        ("critical-path", lift(raw)),
        (
            "critical-path, then most successors",
            lift([r + len(succs[i]) * 1e-6 * scale for i, r in enumerate(raw)]),
        ),
        (
            "critical-path, then longest step",
            lift([r + durations[i] * 1e-6 for i, r in enumerate(raw)]),
        ),
        ("fifo", lift([0.0] * len(raw))),
    ]
    if pools is not None:
        efficiency = efficiency_priority(graph, pools, workers)
        rules[1:1] = [
            ("efficiency", lift(efficiency)),
            (
                "critical-path and efficiency",
                lift([r + 0.5 * e for r, e in zip(raw, efficiency, strict=True)]),
            ),
        ]
    return rules


def choose_priority(
    graph: Graph,
    workers: int | None,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    tries: int = DEFAULT_TRIES,
    seed: int = 0,
    user: Sequence[float] | None = None,
    pools: PoolModel | None = None,
) -> PlanChoice:
    """The best priorities found for ``workers`` in at most ``tries`` simulated schedules
    and about ``budget_s`` seconds. ``user``: the steps' own priorities, which always come
    first (the rules only order steps of equal user priority). ``pools``: the capacities
    steps compete for."""
    t0 = time.perf_counter()
    raw = upward_ranks(graph)
    n = len(graph)
    critical = max(raw, default=0.0)
    work = sum(graph.estimates)
    lift = user_lift(user, critical)
    rank = lift(raw)
    unlimited = not workers or workers >= n
    if unlimited and pools is None:  # every step can run at once: the critical path is it
        return PlanChoice("critical-path", rank, critical, critical, 0, 0.0, critical)
    bound = max(critical, work / workers if workers else 0.0)
    if pools is not None:
        bound = max(bound, pools.bound(graph.estimates))

    def makespan(priority: list[float]) -> float:
        if pools is not None:
            return pool_makespan(graph, priority, workers, pools)
        assert workers is not None
        return list_makespan(graph, priority, workers)

    candidates = _rules(graph, raw, lift, pools, workers)
    deadline = t0 + budget_s
    best_rule, best = candidates[0]
    best_raw = raw
    best_makespan = baseline = makespan(rank)
    tried = 1
    last = time.perf_counter() - t0  # how long a try takes: do not start one that would overrun
    for rule, prio in candidates[1:]:
        if best_makespan <= bound + _EPS or time.perf_counter() + last > deadline:
            break
        m = makespan(prio)
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
        m = makespan(prio)
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
