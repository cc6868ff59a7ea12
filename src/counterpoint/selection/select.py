"""Choosing the pattern: the seed's four steps.

1. **Constraint analysis**: hard constraints rule patterns out (a workflow that fixes its
   pattern, one step at a time allowed, steps that wait for events, a deadline one step at a
   time cannot meet); soft ones (pools and limits, people and events, phases and gates,
   flaky agents) decide between patterns that do equally well.
2. **Optimisation potential**: each admissible pattern is simulated on the virtual clock
   with the best estimates known (durations learned from past runs, each agent's failed
   attempts and backoffs included), so their makespans can be compared.
3. **Risk assessment**: failure rates from history (flaky agents are raced against a second
   attempt by the resource-aware pattern), what a failure stops under each pattern, and
   what past runs of this definition measured.
4. **Recommendation**: the fastest, among those within ``TIE`` of it the one the soft
   constraints favour, else the simplest; the others with their makespans and trade-offs.
   The user's choice (``--pattern``) wins, with what it is expected to cost; a preference
   learned from their overrides is applied at confidence 0.85 and suggested at 0.65.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from counterpoint.backends.virtual import VirtualBackend
from counterpoint.gctools import frozen_gc
from counterpoint.graph.analysis import levels, upward_ranks
from counterpoint.graph.dag import Graph
from counterpoint.history import Durations
from counterpoint.model.workflow import Workflow
from counterpoint.observe.base import RunObserver
from counterpoint.scheduler.clock import VirtualClock
from counterpoint.scheduler.engine import Engine, RunOptions
from counterpoint.scheduler.planning import PoolModel
from counterpoint.scheduler.result import RunResult
from counterpoint.selection.analysis import FLAKY, Analysis, analyse, effective_estimates
from counterpoint.selection.learning import APPLY, SUGGEST, Learned, Outcome, Preference
from counterpoint.selection.policies import PATTERNS, PatternName, Policy, policy
from counterpoint.store.base import Store

__all__ = ["TIE", "Alternative", "Recommendation", "recommend", "select"]

TIE = 0.02  # makespans within 2 % of the best count as equal
SIMULATE_UP_TO = 2_000  # steps; larger ones are compared by bounds (5 simulations of 10,000
# steps would take about a second)
HISTORY_GAIN = 0.05  # a pattern past runs measured this much faster replaces the simulated one
SELECTION_BUDGET_S = 0.05  # planning time of the resource-aware simulation
LEARN_FROM = 20  # recent runs whose failure rates count

How = Literal["selected", "override", "workflow", "preference"]


@dataclass(frozen=True, slots=True)
class Alternative:
    """One pattern as selection saw it."""

    pattern: PatternName
    admissible: bool
    makespan_s: float | None  # expected (simulated, or bound)
    why_not: str | None  # the hard constraint that rules it out
    tradeoffs: str
    measured_s: float | None = None  # median makespan of past runs of this definition
    measured_runs: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "admissible": self.admissible,
            "makespan_s": self.makespan_s,
            "why_not": self.why_not,
            "tradeoffs": self.tradeoffs,
            "measured_s": self.measured_s,
            "measured_runs": self.measured_runs,
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The pattern a run uses, why, and what the others would give."""

    pattern: PatternName  # what runs
    recommended: PatternName  # what selection chose (before an override or a preference)
    how: How
    policy: Policy
    reasons: list[str]
    alternatives: list[Alternative]
    analysis: Analysis
    method: Literal["simulated", "exact", "bounds"]
    cost_s: float | None = None  # expected makespan of the pattern run minus the recommended
    preferences: list[Preference] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    durations: Durations | None = None  # what the store taught of the agents' durations

    def alternative(self, pattern: str) -> Alternative:
        return next(a for a in self.alternatives if a.pattern == pattern)

    def to_json(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "recommended": self.recommended,
            "how": self.how,
            "policy": self.policy.to_json(),
            "reasons": self.reasons,
            "cost_s": self.cost_s,
            "method": self.method,
            "alternatives": [a.to_json() for a in self.alternatives],
            "analysis": self.analysis.to_json(),
            "preferences": [
                {
                    "pattern": p.pattern,
                    "chosen": p.chosen,
                    "runs": p.runs,
                    "confidence": round(p.confidence, 3),
                    "level": p.level,
                }
                for p in self.preferences
            ],
            "outcomes": [
                {
                    "pattern": o.pattern,
                    "runs": o.runs,
                    "succeeded": o.succeeded,
                    "median_makespan_s": o.median_makespan_s,
                }
                for o in self.outcomes
            ],
        }

    def journal(self) -> dict[str, object]:
        """What a run keeps of its selection (learning reads it back)."""
        return {
            "chosen": self.pattern,
            "recommended": self.recommended,
            "how": self.how,
            "expected_s": {a.pattern: a.makespan_s for a in self.alternatives if a.admissible},
        }


_TRADEOFFS: dict[PatternName, str] = {
    "sequential": "simplest to follow, one step in flight (cheapest to roll back); but "
    "nothing overlaps, so it takes the whole work",
    "parallel": "all independent work at once with no planning; the order written decides "
    "who waits when workers or pools run short",
    "hybrid": "phases with a sync point after each, a natural place to check and adapt; a "
    "phase waits for its slowest step",
    "event-driven": "reacts as results and events arrive, the longest path first, people "
    "asked early; no look ahead at pools",
    "resource-aware": "plans the order around pools and limits and races flaky agents; costs "
    "planning time, and races cost a second attempt",
}


def _hard_constraints(
    workflow: Workflow, a: Analysis, fixed: PatternName | None
) -> dict[PatternName, str]:
    """Patterns ruled out, and why."""
    out: dict[PatternName, str] = {}
    if fixed is not None:
        for p in PATTERNS:
            if p != fixed:
                out[p] = f"the workflow fixes its pattern: {fixed}"
        return out
    if a.max_concurrency == 1:
        for p in PATTERNS:
            if p != "sequential":
                out[p] = "the workflow allows one step at a time (max_concurrency: 1)"
        return out
    if a.waits:
        out["sequential"] = (
            f"{a.waits} step(s) wait for events: one at a time, a wait could hold up the "
            "step that would send its event"
        )
    if a.deadline_s is not None and a.work_s > a.deadline_s:
        out.setdefault(
            "sequential",
            f"one step at a time needs {a.work_s:.4g}s of work, more than the deadline "
            f"({a.deadline_s:.4g}s)",
        )
    if a.depth < 2:
        out["hybrid"] = "one level of steps: there are no phases to separate"
    if a.steps <= 1:
        for p in ("event-driven", "resource-aware"):
            out.setdefault(p, "one step: nothing to coordinate")
    if all(p in out for p in PATTERNS):
        del out["parallel"]  # something must run it
    return out


def _soft_order(a: Analysis) -> list[PatternName]:
    """Which of equally fast patterns the workflow's traits favour, best first."""
    favoured: list[PatternName] = []
    if a.width <= 1:
        return list(PATTERNS)  # a chain: nothing to coordinate, the simplest wins
    if a.contention > 1 or a.rate_limits or a.budgets or a.windows or a.flaky:
        favoured.append("resource-aware")
    if a.interaction:
        favoured.append("event-driven")
    return [*favoured, *(p for p in PATTERNS if p not in favoured)]


def _unconstrained(workflow: Workflow, workers: int | None) -> bool:
    """Nothing but the dependencies limits what runs at once, and nothing waits for an
    event: every step starts when its needs are done, so the formulas of ``_bound`` are
    the simulation's exact result."""
    res = workflow.resources
    return (
        workers is None
        and workflow.max_concurrency is None
        and not (res.pools or res.rate_limits or res.budgets)
        and not workflow.triggers
        and not any(spec.kind == "wait" for spec in workflow.agents.values())
        and not any(part.one_at_a_time for part in workflow.plan.parts.values())
    )


def _bound(
    pattern: PatternName, graph: Graph, pools: PoolModel | None, workers: int | None
) -> float:
    """The makespan of ``pattern`` by formula, on ``graph``'s estimates: exact for a workflow
    nothing but its dependencies limits (see ``_unconstrained``), else a lower bound."""
    est = graph.estimates
    if pattern == "sequential":
        return sum(est)
    length = max(upward_ranks(graph), default=0.0)
    lower = max(length, sum(est) / workers if workers else 0.0)
    if pools is not None:
        lower = max(lower, pools.bound(est))
    if pattern != "hybrid":
        return lower
    by_level: dict[int, float] = {}
    for i, level in enumerate(levels(graph)):
        by_level[level] = max(by_level.get(level, 0.0), est[i])
    return max(sum(by_level.values()), lower)


async def run_virtual(
    workflow: Workflow,
    options: RunOptions,
    *,
    graph: Graph | None = None,
    observers: Sequence[RunObserver] = (),
) -> RunResult:
    """Run ``workflow`` on the virtual clock: each step takes its estimate in ``graph``
    (default: the workflow's), no agent is called."""
    clock = VirtualClock()
    with frozen_gc():
        engine = Engine(
            workflow,
            agents={},
            backend=VirtualBackend(clock),
            clock=clock,
            options=options,
            observers=observers,
            graph=graph,
            virtual=True,
        )
        return await engine.run()


async def simulate_policy(
    workflow: Workflow,
    graph: Graph,
    pol: Policy,
    *,
    workers: int | None = None,
    planning_budget: float = SELECTION_BUDGET_S,
) -> float:
    """The makespan of ``workflow`` under ``pol`` on the virtual clock, each step taking its
    estimate in ``graph`` (no agent is called; the run does not adapt)."""
    limit = pol.max_concurrency
    if workers is not None:
        limit = min(limit, workers) if limit is not None else workers
    options = RunOptions(
        max_concurrency=limit,
        fail_fast=False,
        priority=pol.priority,
        planning_budget_s=planning_budget,
        pattern=pol.pattern,
        barriers=pol.barriers,
        ask_early=pol.ask_early,
        adapt=False,
    )
    return (await run_virtual(workflow, options, graph=graph)).makespan_s


async def recommend(
    workflow: Workflow,
    *,
    pattern: PatternName | None = None,
    workers: int | None = None,
    learned: Mapping[str, float] | Durations | None = None,
    failure_rates: Mapping[str, tuple[int, float]] | None = None,
    history: Learned | None = None,
) -> Recommendation:
    """Select the pattern for ``workflow`` (``pattern``: the user's choice, which wins).

    ``learned``: agents' durations from past runs; ``failure_rates``: agent -> (attempts,
    failure rate per attempt); ``history``: outcomes of patterns on this definition and the
    user's preferences (see :func:`counterpoint.selection.learning.learn`)."""
    if learned is not None and not isinstance(learned, Durations):
        learned = Durations(dict(learned))
    graph = learned.graph(workflow) if learned else workflow.graph
    medians = learned.medians if learned else None
    a = analyse(workflow, graph, learned=medians, failure_rates=failure_rates)
    rates = {r.agent: r.failure_rate for r in a.risks}
    hedge = frozenset(
        r.agent
        for r in a.risks
        if r.failure_rate >= FLAKY
        and workflow.agents[r.agent].idempotent
        and not _uses_pools(workflow, r.agent)
    )
    fixed = workflow.pattern
    ruled_out = _hard_constraints(workflow, a, fixed)
    pools = PoolModel.of(workflow)
    exact = _unconstrained(workflow, workers)
    big = exact or a.steps > SIMULATE_UP_TO
    expected: dict[PatternName, float] = {}
    plain = (
        Graph(graph.ids, graph.preds, effective_estimates(workflow, graph, rates))
        if rates
        else graph
    )
    for p in PATTERNS:
        if p in ruled_out and p != pattern:
            continue
        pol = policy(p, hedge if p == "resource-aware" else frozenset())
        g = plain
        if pol.hedge:
            g = Graph(
                graph.ids, graph.preds, effective_estimates(workflow, graph, rates, pol.hedge)
            )
        expected[p] = (
            _bound(p, g, pools, workers)
            if big
            else await simulate_policy(workflow, g, pol, workers=workers)
        )
    outcomes = history.outcomes if history is not None else []
    measured = {o.pattern: o for o in outcomes}
    alternatives = [
        Alternative(
            p,
            p not in ruled_out,
            expected.get(p),
            ruled_out.get(p),
            _TRADEOFFS[p],
            measured[p].median_makespan_s if p in measured else None,
            measured[p].runs if p in measured else 0,
        )
        for p in PATTERNS
    ]
    admissible = [p for p in PATTERNS if p not in ruled_out]
    best = min(expected[p] for p in admissible)
    tied = [p for p in admissible if expected[p] <= best * (1 + TIE) + 1e-9]
    order = _soft_order(a)
    choice = min(tied, key=order.index)
    reasons = _reasons(a, choice, expected, tied, order, hedge, ruled_out)
    choice = _history_says(choice, admissible, measured, reasons)
    recommended = choice
    how: How = "workflow" if fixed is not None else "selected"
    prefs = history.preferences if history is not None else []
    if pattern is None and fixed is None:
        choice, how = _preferred(choice, how, prefs, admissible, reasons)
    cost: float | None = None
    if pattern is not None:
        choice, how = pattern, "override"
        if pattern in ruled_out:
            reasons.append(f"{pattern} was ruled out ({ruled_out[pattern]}); run as asked")
    if choice != recommended:
        cost = expected[choice] - expected[recommended]
    pol = policy(choice, hedge if choice == "resource-aware" else frozenset())
    return Recommendation(
        choice,
        recommended,
        how,
        pol,
        reasons,
        alternatives,
        a,
        "exact" if exact else "bounds" if big else "simulated",
        cost,
        prefs,
        outcomes,
    )


def _preferred(
    choice: PatternName,
    how: How,
    prefs: list[Preference],
    admissible: list[PatternName],
    reasons: list[str],
) -> tuple[PatternName, How]:
    """A preference learned from the user's overrides: applied from ``APPLY``, suggested
    from ``SUGGEST``."""
    for pref in prefs:
        if pref.pattern not in admissible or pref.pattern == choice:
            continue
        if pref.confidence >= APPLY:
            reasons.append(
                f"you chose {pref.pattern} over the recommendation in {pref.chosen} of "
                f"the last {pref.runs} runs (confidence {pref.confidence:.2f}): applied "
                "(--pattern overrides it)"
            )
            return pref.pattern, "preference"
        if pref.confidence >= SUGGEST:
            reasons.append(
                f"suggestion: you chose {pref.pattern} in {pref.chosen} of the last "
                f"{pref.runs} runs (confidence {pref.confidence:.2f}); it is applied "
                f"from {APPLY}"
            )
    return choice, how


def _uses_pools(workflow: Workflow, agent: str) -> bool:
    """A race would hold a pool twice: agents whose steps use pools are not raced."""
    demands = workflow._demands
    if demands is None:
        return any(s.uses for s in workflow.steps if s.agent == agent)
    return any(
        d is not None and d.pools
        for s, d in zip(workflow.steps, demands, strict=True)
        if s.agent == agent
    )


def _reasons(
    a: Analysis,
    choice: PatternName,
    expected: Mapping[PatternName, float],
    tied: list[PatternName],
    order: list[PatternName],
    hedge: frozenset[str],
    ruled_out: Mapping[PatternName, str],
) -> list[str]:
    """The recommendation in plain words."""
    reasons = [
        f"{a.steps} steps, {a.depth} levels, widest {a.width}; critical path "
        f"{a.critical_path_s:.4g}s of {a.work_s:.4g}s work (parallelism {a.parallelism:.2f})"
    ]
    if a.learned:
        reasons.append(f"durations learned from past runs for {len(a.learned)} agent(s)")
    for p, why in ruled_out.items():
        reasons.append(f"not {p}: {why}")
    best = expected[choice]
    others = sorted(
        (p for p in expected if p != choice and p not in ruled_out), key=lambda p: expected[p]
    )
    if others:
        nxt = others[0]
        if nxt in tied:
            favoured = [p for p in order if p in tied]
            reasons.append(
                f"{choice} is as fast as {', '.join(p for p in tied if p != choice)} "
                f"(expected {best:.4g}s); {_why_favoured(a, choice, favoured)}"
            )
        else:
            gain = expected[nxt] / best - 1 if best > 0 else 0.0
            reasons.append(
                f"{choice} is expected to take {best:.4g}s, {gain:.0%} less than the next "
                f"best, {nxt} ({expected[nxt]:.4g}s)"
            )
    if a.contention > 1:
        reasons.append(
            f"pools are contended: {a.contention:.2f}x their capacity over the critical path"
        )
    if a.interaction:
        reasons.append(
            f"{a.approvals} approval(s), {a.waits} wait(s) and {a.triggers} trigger(s) "
            "involve people or events"
        )
    if hedge and choice == "resource-aware":
        reasons.append(
            "flaky agents ("
            + ", ".join(
                f"{r.agent} fails {r.failure_rate:.0%}" for r in a.risks if r.agent in hedge
            )
            + ") race a second attempt; the first output valid at the handoff goes on"
        )
    elif a.flaky:
        reasons.append(
            "flaky agents: "
            + ", ".join(a.flaky)
            + " (their retries are in the estimates; one marked `idempotent: true` may race "
            "a second attempt)"
        )
    return reasons


def _why_favoured(a: Analysis, choice: PatternName, favoured: list[PatternName]) -> str:
    if choice == "resource-aware":
        return "pools, limits or flaky agents favour planning around them"
    if choice == "event-driven":
        return "people and events are involved: ask them first, react as they answer"
    return "the simplest coordination wins a tie"


def _history_says(
    choice: PatternName,
    admissible: list[PatternName],
    measured: Mapping[str, Outcome],
    reasons: list[str],
) -> PatternName:
    """Past runs of this definition measured another pattern clearly faster: use it."""
    mine = measured.get(choice)
    if mine is None or mine.median_makespan_s is None or mine.succeeded < 2:
        return choice
    for p in admissible:
        o = measured.get(p)
        if p == choice or o is None or o.median_makespan_s is None or o.succeeded < 2:
            continue
        if o.median_makespan_s <= (1 - HISTORY_GAIN) * mine.median_makespan_s + 1e-9:
            reasons.append(
                f"past runs of this definition: {p} took {o.median_makespan_s:.4g}s (median "
                f"of {o.succeeded}), {choice} {mine.median_makespan_s:.4g}s: {p} instead"
            )
            return p
    return choice


async def select(
    workflow: Workflow,
    *,
    store: Store | None = None,
    pattern: PatternName | None = None,
    workers: int | None = None,
    learn: bool = True,
) -> Recommendation:
    """:func:`recommend` with what ``store`` knows of the workflow's past runs: each agent's
    learned duration and failure rate, the patterns' outcomes on this definition, and the
    user's preferences."""
    if store is None or not learn:
        return await recommend(workflow, pattern=pattern, workers=workers)
    from counterpoint.history import durations_of, stats_of, step_outcomes
    from counterpoint.selection.learning import learn as learn_history
    from counterpoint.store.fingerprint import definition, fingerprint

    found = await step_outcomes(store, workflow=workflow.name, runs=LEARN_FROM)  # read once
    learned = durations_of(found, workflow)
    stats = stats_of(found)
    rates = {name: (st.attempts, st.failure_rate) for name, st in stats.items()}
    history = await learn_history(store, workflow.name, fingerprint(definition(workflow)))
    rec = await recommend(
        workflow,
        pattern=pattern,
        workers=workers,
        learned=learned,
        failure_rates=rates,
        history=history,
    )
    return replace(rec, durations=learned)
