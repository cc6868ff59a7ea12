"""What an engine is built with: the scheduler (the priority rule's order, the streams' and
fixed parts' caps, the resources with their deadlines and fair shares) and each step's agent
(joins, races, approvals a policy asks for)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from counterpoint.agents.base import Agent
from counterpoint.graph.analysis import upward_ranks
from counterpoint.model.compile import JOIN_AGENT
from counterpoint.patterns.race import RaceAgent
from counterpoint.policy.guardian import guarded
from counterpoint.scheduler.adapting import ask_early
from counterpoint.scheduler.core import Scheduler
from counterpoint.scheduler.planning import (
    PoolModel,
    choose_priority,
    efficiency_priority,
    user_lift,
)
from counterpoint.scheduler.resources import ResourceManager, compile_demands

if TYPE_CHECKING:
    from counterpoint.scheduler.engine import Engine

__all__ = ["build_scheduler", "step_agents"]


def build_scheduler(engine: Engine, max_conc: int | None, done: Sequence[int]) -> Scheduler:
    """The pure scheduler, with the priorities of the chosen rule and streams' caps; sets the
    engine's ``planning`` and ``resources``."""
    engine.planning = None
    steps = engine.workflow.steps
    priority: list[float] | None = None
    user: list[float] | None = [float(s.priority) for s in steps]
    if not any(user or ()):
        user = None
    rule = engine.options.priority
    pools = PoolModel.of(engine.workflow) if rule in ("planned", "efficiency") else None
    if rule == "planned":
        engine.planning = choose_priority(
            engine.graph,
            max_conc,
            user=user,
            pools=pools,
            budget_s=engine.options.planning_budget_s,
        )
        priority = engine.planning.priority
    elif rule in ("critical-path", "efficiency"):
        ranks = upward_ranks(engine.graph)
        values = (
            ranks if rule == "critical-path" else efficiency_priority(engine.graph, pools, max_conc)
        )
        priority = user_lift(user, max(ranks, default=0.0))(values)
    elif user is not None:  # fifo among steps of equal user priority
        priority = user_lift(user, 0.0)([0.0] * len(steps))
    if engine.options.ask_early:
        priority = ask_early(engine.workflow, engine.graph, priority or [0.0] * len(steps))
    groups, caps = engine.patterns.capped(len(steps)) if engine.patterns else (None, [])
    engine.resources = None
    wf = engine.workflow
    if wf.resources.pools or wf.resources.rate_limits or wf.resources.budgets:
        demands = (
            wf._demands if wf._demands is not None else compile_demands(wf.resources, steps)[0]
        )
        if wf.resources.budgets or any(d is not None for d in demands):
            engine.resources = ResourceManager(
                wf.resources,
                demands,
                engine.clock.now(),
                engine._spent,
                estimates=engine.graph.estimates,
                latest_finish=_latest_finish(engine),
                **_fair_streams(engine),
            )
    return Scheduler(
        engine.graph,
        priority,
        max_conc,
        done,
        note_releases=engine.journal is not None,
        groups=groups,
        caps=caps,
        resources=engine.resources,
        held=engine._held,
    )


def _latest_finish(engine: Engine) -> list[float] | None:
    """When each step must end (seconds from the start) for every deadline to be met
    given the estimates of the work after it; ``None`` when no soft pool could use it."""
    wf = engine.workflow
    steps = engine._steps
    if not any(p.overflow for p in wf.resources.pools.values()):
        return None
    if wf.deadline is None and not any(s.deadline is not None for s in steps):
        return None
    inf = float("inf")
    graph = engine.graph
    est = graph.estimates
    ranks = upward_ranks(graph)
    run_deadline = wf.deadline if wf.deadline is not None else inf
    latest = [
        min(s.deadline if s.deadline is not None else inf, run_deadline - (ranks[i] - est[i]))
        for i, s in enumerate(steps)
    ]
    for i in reversed(graph.order):
        for j in graph.succs[i]:
            latest[i] = min(latest[i], latest[j] - est[j])
    return latest


def _fair_streams(engine: Engine) -> dict[str, Any]:
    """Streams and their weights (their blocks' ``shares``, else 1) for fair pools."""
    if engine.patterns is None or not any(p.fair for p in engine.workflow.resources.pools.values()):
        return {}
    groups = [-1] * len(engine._steps)
    weights: list[float] = []
    parts = engine.workflow.plan.parts
    for g, stream in enumerate(engine.patterns.streams):
        weights.append(float(parts[stream.part].shares.get(stream.name, 1)))
        for i in stream.steps:
            groups[i] = g
    return {"groups": groups, "weights": weights}


def step_agents(engine: Engine, agents: Mapping[str, Agent]) -> list[Agent]:
    """Each step's agent (joins, races); none when simulating (no agents)."""
    if not agents:
        return []
    place = getattr(engine.backend, "place", None)
    if place is not None:  # where each agent runs is the backend's to say
        agents = place(agents, engine.workflow)
    patterns = engine.patterns
    hedge = engine.options.hedge
    out = [
        patterns.join_agent(i)
        if patterns is not None and s.agent == JOIN_AGENT
        else _racer(engine, i, agents)
        if s.race or s.agent in hedge
        else agents[s.agent]
        for i, s in enumerate(engine._steps)
    ]
    guardian = engine.guardian
    if guardian is not None and guardian.mode == "mandatory":
        threshold = guardian.policy.approval_above
        for i, s in enumerate(engine._steps):
            if threshold is not None and guardian.needs_approval(s.risk):
                out[i] = guarded(out[i], s.risk, threshold)
    return out


def _racer(engine: Engine, i: int, agents: Mapping[str, Agent]) -> Agent:
    """The step's agent raced against its alternatives; validity is its checkpoint."""
    step = engine._steps[i]
    patterns = engine.patterns

    def check(output: object) -> str | None:
        return patterns.check(i, output) if patterns is not None else None

    names = [step.agent, *step.race] if step.race else [step.agent, step.agent]
    return RaceAgent([(n, agents[n]) for n in names], check)
