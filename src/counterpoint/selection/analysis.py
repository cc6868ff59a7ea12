"""What selection looks at: the shape of the dependencies, the constraints, the resources
and how contended they are, the people and events involved, the risk, and the size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from counterpoint.graph.analysis import analyse as graph_stats
from counterpoint.graph.dag import Graph
from counterpoint.model.compile import JOIN_AGENT
from counterpoint.model.workflow import Workflow

__all__ = ["Analysis", "Risk", "analyse", "effective_estimates"]

FLAKY = 0.2  # failure rate per attempt from which an agent counts as flaky
FLAKY_EVIDENCE = 5  # attempts needed before a failure rate is believed


@dataclass(frozen=True, slots=True)
class Risk:
    """What history says of one agent."""

    agent: str
    attempts: int
    failure_rate: float


@dataclass(frozen=True, slots=True)
class Analysis:
    """A workflow as selection sees it (durations in seconds, the best estimates known)."""

    steps: int
    depth: int
    width: int
    critical_path_s: float
    work_s: float
    parallelism: float  # work / critical path
    unestimated: int
    max_concurrency: int | None  # the workflow's own limit
    pools: dict[str, dict[str, float]]  # pool -> demand of all steps at once / capacity
    contention: float  # the largest of those ratios (1: no waiting even with all at once)
    rate_limits: int
    budgets: int
    windows: int
    deadline_s: float | None
    gates: int  # validations at handoffs and gates of constructs
    phases: int  # declared phases
    fixed: dict[str, str]  # parts whose pattern the workflow fixes -> that pattern
    approvals: int
    waits: int
    triggers: int
    learned: dict[str, float]  # agent -> duration learned from past runs
    risks: list[Risk] = field(default_factory=list)  # agents with a history of failing

    @property
    def flaky(self) -> list[str]:
        return [r.agent for r in self.risks if r.failure_rate >= FLAKY]

    @property
    def interaction(self) -> int:
        """Points where people or events are waited for."""
        return self.approvals + self.waits + self.triggers

    @property
    def size(self) -> str:
        return "small" if self.steps <= 20 else "medium" if self.steps <= 1000 else "large"

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["risks"] = [asdict(r) for r in self.risks]
        out["flaky"] = self.flaky
        out["size"] = self.size
        out["interaction"] = self.interaction
        return out


def analyse(
    workflow: Workflow,
    graph: Graph | None = None,
    *,
    learned: Mapping[str, float] | None = None,
    failure_rates: Mapping[str, tuple[int, float]] | None = None,
) -> Analysis:
    """Analyse ``workflow`` with ``graph``'s estimates (default: its own); ``learned``: the
    durations past runs gave each agent; ``failure_rates``: agent -> (attempts, rate)."""
    graph = graph or workflow.graph
    stats = graph_stats(graph)
    steps = workflow.steps
    kinds = {name: spec.kind for name, spec in workflow.agents.items()}
    res = workflow.resources
    demands = workflow._demands
    pools: dict[str, dict[str, float]] = {}
    if res.pools and demands is not None:
        est = graph.estimates
        for name, pool in res.pools.items():
            for dim, cap in pool.capacity.items():
                peak = sum(
                    n
                    for d in demands
                    if d is not None
                    for p, dd, n in d.pools
                    if p == name and dd == dim
                )
                work = sum(
                    n * est[i]
                    for i, d in enumerate(demands)
                    if d is not None
                    for p, dd, n in d.pools
                    if p == name and dd == dim
                )
                ratio_all = peak / cap if cap > 0 else float("inf")
                ratio_time = (
                    work / cap / stats.critical_path if cap > 0 and stats.critical_path > 0 else 0.0
                )
                pools.setdefault(name, {})[dim] = round(max(ratio_time, 0.0), 3)
                pools[name][f"{dim}_all_at_once"] = round(ratio_all, 3)
    contention = max(
        (v for p in pools.values() for k, v in p.items() if not k.endswith("_all_at_once")),
        default=0.0,
    )
    gates = sum(s.validate_ is not None for s in steps) + sum(
        p.gate is not None for p in workflow.plan.parts.values()
    )
    parts = workflow.plan.parts
    fixed = {pid: p.pattern for pid, p in parts.items() if p.kind in ("sequence", "phase")}
    fixed.update((pid, "sequential") for pid, p in parts.items() if p.one_at_a_time)
    risks = sorted(
        (
            Risk(agent, n, rate)
            for agent, (n, rate) in (failure_rates or {}).items()
            if n >= FLAKY_EVIDENCE and rate > 0 and agent in kinds
        ),
        key=lambda r: -r.failure_rate,
    )
    return Analysis(
        steps=sum(s.agent != JOIN_AGENT for s in steps),
        depth=stats.depth,
        width=stats.width,
        critical_path_s=stats.critical_path,
        work_s=stats.total_work,
        parallelism=stats.parallelism,
        unestimated=stats.unestimated,
        max_concurrency=workflow.max_concurrency,
        pools=pools,
        contention=contention,
        rate_limits=len(res.rate_limits),
        budgets=len(res.budgets),
        windows=sum(bool(p.available) for p in res.pools.values())
        + sum(bool(r.available) for r in res.rate_limits.values()),
        deadline_s=workflow.deadline,
        gates=gates,
        phases=sum(p.kind == "phase" for p in parts.values()),
        fixed=fixed,
        approvals=sum(kinds.get(s.agent) == "approval" for s in steps),
        waits=sum(kinds.get(s.agent) == "wait" for s in steps),
        triggers=len(workflow.triggers),
        learned=dict(learned or {}),
        risks=risks,
    )


def effective_estimates(
    workflow: Workflow,
    graph: Graph,
    failure_rates: Mapping[str, float],
    hedged: frozenset[str] = frozenset(),
) -> list[float]:
    """Each step's expected time with its failed attempts and their backoffs: attempt k+1
    happens with probability p**k (p: the agent's failure rate, p**2 when raced against a
    second attempt of itself), up to the step's retries."""
    defaults = workflow.defaults.retries
    out: list[float] = []
    for s, est in zip(workflow.steps, graph.estimates, strict=True):
        p = failure_rates.get(s.agent, 0.0)
        if p <= 0 or est <= 0:
            out.append(est)
            continue
        if s.agent in hedged:
            p = p * p
        policy = s.retries or defaults
        expected = est
        reach = 1.0
        for k in range(1, policy.max + 1):
            reach *= p  # attempt k+1 happens
            expected += reach * (est + policy.delay(k, 0.5))
        out.append(expected)
    return out
