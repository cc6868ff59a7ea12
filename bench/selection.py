"""Pattern selection: does the recommended pattern run as fast as the best one, do learned
estimates come close to the agents' true durations, and does a run adapt to a capacity drop?

Everything runs on the virtual clock (``VirtualClock`` + ``VirtualBackend``): no agent is
called. The agents' TRUE behaviour lives only in the backend's ``duration`` and ``fail``
callbacks (``_Sampler``): each step has a true median duration (its declared estimate times
its agent's bias), lognormal noise around it, a share of 4-5x outliers for some agents, and a
failure probability per attempt. One sample is drawn per (seed, step, attempt, contender),
from a generator seeded by those four, so that both callbacks agree, and every pattern meets
the same durations for the same seed (common random numbers). A step whose agent is hedged
(a ``RaceAgent``) draws two independent contenders: it succeeds at the earliest successful
one's time, and fails only if both fail, at the later one's time.

1. Selection: six workflows of different kinds (``_SUITE``). For each: 5 warm-up runs with
   default selection and a ``MemoryStore`` (selection learns durations, failure rates and
   outcomes); then ``select(wf, store=store)`` is the recommendation; then every admissible
   pattern P runs R times (5; 2 with ``--quick``) with the same R seeds, each with
   ``selection=select(wf, store=store, pattern=P)`` and ``adapt=False`` (each pattern as
   itself), on a deep copy of the warm store that is thrown away after the run (so it plans
   with the learned estimates, as a run with the store would, and feeds nothing back). Failed
   runs count as infinitely long. Figures: each pattern's median makespan, the best, the
   recommended one's median over the best's. Target: within 5 % on at least 5 of 6.
2. Estimates: a workflow of 5 noisy agents with 8 steps each per run (lognormal sigma 0.25 and
   0.3, 5 % of 4-5x outliers for three of them; true medians 0.6-1.6x the declared ones).
   After 5 runs with a store, ``learned_estimates(store, wf)`` per agent against the agent's
   true median (the median of its duration distribution, outliers included, computed
   numerically). Repeated over independent seeds (trials). Target: max error <= 10 %.
3. Capacity drop: a pool-bound workflow (``_capacity_workflow``) whose pool goes from 8 to 4
   at 30 % of the makespan selection expects (a ``capacity_changed`` event set with
   ``engine.clock.call_later``). Each step takes exactly its estimate. The adaptive run: the
   pattern selection recommends for full capacity, ``adapt=True``. The reference: every
   admissible pattern with the same drop and ``adapt=False``; the best of those. Lower bound:
   max(critical path, T + (W - C T - (C - C') L) / C'), W the pool's work in unit-seconds,
   C and C' the capacities before and after the drop at time T, L the longest step using the
   pool (steps running at T keep what they hold until they end, so the pool may be over C'
   for at most L after T). Target: adaptive / reference <= 1.1. The drop is sent as
   ``{"pool": "slots", "capacity": 4}``; an ``adaptation_refused`` reason, if any, is
   reported.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import common
import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.patterns.race import RaceAgent
from counterpoint.runner import learned_estimates
from counterpoint.scheduler.clock import Clock, VirtualClock
from counterpoint.selection import PATTERNS, Recommendation, select

TARGET_WITHIN = 0.05  # recommended / best
TARGET_WORKFLOWS = 5  # of 6
TARGET_ESTIMATE = 0.10  # learned / true median - 1
TARGET_CAPACITY = 1.1  # adaptive / best non-adaptive
WARMUP = 5
SHORT = {
    "sequential": "seq",
    "parallel": "par",
    "hybrid": "hyb",
    "event-driven": "evt",
    "resource-aware": "res",
}


# --- the agents' true behaviour ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truth:
    """How an agent really behaves: its steps take ``bias`` x their declared estimate
    (median), with lognormal noise ``sigma``, a share ``outliers`` of 4-5x slower ones, and
    fail with probability ``fail`` per attempt."""

    bias: float = 1.0
    sigma: float = 0.3
    outliers: float = 0.0
    fail: float = 0.0


@dataclass(frozen=True, slots=True)
class Case:
    """A workflow of the suite: what the user wrote, and how its agents really behave."""

    name: str
    kind: str
    data: dict[str, Any]
    truth: dict[str, Truth]
    workflow: cp.Workflow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "workflow", cp.loads(json.dumps(self.data)))

    def medians(self) -> dict[str, tuple[float, Truth]]:
        """Each step's true median duration and its agent's truth (join steps: none)."""
        wf = self.workflow
        out: dict[str, tuple[float, Truth]] = {}
        for s, est in zip(wf.steps, wf.graph.estimates, strict=True):
            truth = self.truth.get(s.agent)
            if truth is not None:
                out[s.id] = (est * truth.bias, truth)
        return out


class _Sampler:
    """The backend's callbacks for one run: one sample per (step, attempt), cached."""

    def __init__(self, medians: Mapping[str, tuple[float, Truth]], seed: int) -> None:
        self.medians = medians
        self.seed = seed
        self.drawn: dict[tuple[str, int], tuple[float, str | None]] = {}

    def _draw(self, step: str, attempt: int, contender: int) -> tuple[float, bool]:
        median, truth = self.medians[step]
        rng = random.Random(f"{self.seed}/{step}/{attempt}/{contender}")
        took = median * math.exp(truth.sigma * rng.gauss(0.0, 1.0))
        if rng.random() < truth.outliers:
            took *= rng.uniform(4.0, 5.0)
        return took, rng.random() < truth.fail

    def _outcome(self, job: Job) -> tuple[float, str | None]:
        key = (job.step_id, job.attempt)
        found = self.drawn.get(key)
        if found is not None:
            return found
        if job.step_id not in self.medians:  # a construct's join: instant
            found = (0.0, None)
        elif isinstance(job.agent, RaceAgent):  # two contenders; the first success wins
            draws = [self._draw(job.step_id, job.attempt, k) for k in range(2)]
            wins = [t for t, failed in draws if not failed]
            if wins:
                found = (min(wins), None)
            else:
                found = (max(t for t, _ in draws), "both contenders failed")
        else:
            took, failed = self._draw(job.step_id, job.attempt, 0)
            found = (took, "failed (simulated)" if failed else None)
        self.drawn[key] = found
        return found

    def duration(self, job: Job) -> float:
        return self._outcome(job)[0]

    def fail(self, job: Job) -> str | None:
        return self._outcome(job)[1]

    def backend(self, clock: Clock) -> VirtualBackend:
        assert isinstance(clock, VirtualClock)
        return VirtualBackend(clock, duration=self.duration, fail=self.fail)


def true_median(truth: Truth, median: float) -> float:
    """The median of the duration distribution (lognormal, with the outliers' share)."""
    nd = statistics.NormalDist()
    factors = [4.0 + k / 8 for k in range(9)]  # the outliers' factor, uniform in [4, 5]

    def cdf(x: float) -> float:
        plain = nd.cdf(math.log(x / median) / truth.sigma)
        slow = statistics.fmean(nd.cdf(math.log(x / (f * median)) / truth.sigma) for f in factors)
        return (1 - truth.outliers) * plain + truth.outliers * slow

    lo, hi = median / 10, median * 10
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
    return math.sqrt(lo * hi)


async def _run(
    case: Case,
    seed: int,
    *,
    store: cp.MemoryStore | None = None,
    selection: Recommendation | None = None,
    adapt: bool = True,
) -> cp.RunResult:
    sampler = _Sampler(case.medians(), seed)
    return await cp.run(
        case.workflow,
        selection=selection,
        clock=VirtualClock(),
        backend=sampler.backend,
        store=store,
        adapt=adapt,
        seed=seed,
    )


# --- 1. the suite -----------------------------------------------------------------------------


def _chain() -> Case:
    """A chain: a release note written step by step; nothing can overlap."""
    names = [
        ("collect", "collector", 20),
        ("classify", "classifier", 15),
        ("draft", "writer", 60),
        ("edit", "editor", 30),
        ("translate", "translator", 45),
        ("format", "formatter", 10),
        ("review", "reviewer", 40),
        ("publish", "publisher", 5),
    ]
    steps: list[dict[str, Any]] = []
    for k, (sid, agent, est) in enumerate(names):
        step: dict[str, Any] = {"id": sid, "agent": agent, "estimate": est}
        if k:
            step["needs"] = names[k - 1][0]
        steps.append(step)
    data = {
        "name": "chain",
        "agents": {a: {"kind": "noop"} for _, a, _ in names},
        "steps": steps,
    }
    bias = [1.2, 0.9, 1.4, 1.0, 1.3, 0.8, 1.1, 1.0]
    truth = {a: Truth(b, 0.3) for (_, a, _), b in zip(names, bias, strict=True)}
    return Case("chain", "chain of 8", data, truth)


def _fan_out() -> Case:
    """A wide fan-out: 24 documents split, extracted and summarised; 8 long ones also
    translated; one merge at the end."""
    steps: list[dict[str, Any]] = [{"id": "split", "agent": "splitter", "estimate": 10}]
    ends: list[str] = []
    for d in range(24):
        steps.append({"id": f"extract-{d}", "agent": "extractor", "needs": "split", "estimate": 20})
        steps.append(
            {"id": f"summary-{d}", "agent": "summariser", "needs": f"extract-{d}", "estimate": 30}
        )
        ends.append(f"summary-{d}")
        if d % 3 == 0:
            steps.append(
                {
                    "id": f"translate-{d}",
                    "agent": "translator",
                    "needs": f"summary-{d}",
                    "estimate": 40,
                }
            )
            ends[-1] = f"translate-{d}"
    steps.append({"id": "merge", "agent": "merger", "needs": ends, "estimate": 15})
    agents = ["splitter", "extractor", "summariser", "translator", "merger"]
    data = {"name": "fan-out", "agents": {a: {"kind": "noop"} for a in agents}, "steps": steps}
    truth = {
        "splitter": Truth(1.0, 0.25),
        "extractor": Truth(1.3, 0.3, 0.03),
        "summariser": Truth(0.9, 0.3),
        "translator": Truth(1.2, 0.3),
        "merger": Truth(1.0, 0.25),
    }
    return Case("fan-out", "fan-out of 24 (58 steps)", data, truth)


def _contended() -> Case:
    """A CI pipeline on 4 runners: 12 short checks (1 runner each) written before 3 long
    integration builds (all 4 runners), each build followed by a long end-to-end test that
    needs no runner, then a report."""
    steps: list[dict[str, Any]] = [
        {"id": f"check-{k}", "agent": "checker", "estimate": 6, "uses": {"runners": 1}}
        for k in range(12)
    ]
    for b in range(3):
        steps.append(
            {"id": f"build-{b}", "agent": "builder", "estimate": 20, "uses": {"runners": 4}}
        )
        steps.append({"id": f"e2e-{b}", "agent": "tester", "needs": f"build-{b}", "estimate": 30})
    needs = [f"check-{k}" for k in range(12)] + [f"e2e-{b}" for b in range(3)]
    steps.append({"id": "report", "agent": "reporter", "needs": needs, "estimate": 5})
    data = {
        "name": "contended-pool",
        "resources": {"pools": {"runners": {"capacity": 4}}},
        "agents": {a: {"kind": "noop"} for a in ("checker", "builder", "tester", "reporter")},
        "steps": steps,
    }
    truth = {
        "checker": Truth(1.1, 0.3),
        "builder": Truth(1.2, 0.25),
        "tester": Truth(0.9, 0.25),
        "reporter": Truth(1.0, 0.2),
    }
    return Case("contended-pool", "pool of 4: 12 x 1 unit before 3 x 4", data, truth)


def _flaky() -> Case:
    """Code generation whose generator fails 35 % of its attempts (a bad output caught at the
    handoff), five generations in a row on the critical path, retried with a backoff; docs
    written beside them by a reliable agent."""
    retries = {"max": 4, "backoff": "5s", "jitter": 0}
    steps: list[dict[str, Any]] = [{"id": "plan", "agent": "planner", "estimate": 10}]
    before = "plan"
    for k in range(5):
        steps.append(
            {
                "id": f"generate-{k}",
                "agent": "generator",
                "needs": before,
                "estimate": 20,
                "retries": retries,
            }
        )
        before = f"generate-{k}"
    for k in range(6):
        steps.append({"id": f"docs-{k}", "agent": "writer", "needs": "plan", "estimate": 30})
    steps.append(
        {
            "id": "ship",
            "agent": "shipper",
            "needs": [before, *(f"docs-{k}" for k in range(6))],
            "estimate": 5,
        }
    )
    agents: dict[str, Any] = {a: {"kind": "noop"} for a in ("planner", "writer", "shipper")}
    agents["generator"] = {"kind": "noop", "idempotent": True}  # two attempts at once are safe
    data = {"name": "flaky", "agents": agents, "steps": steps}
    truth = {
        "planner": Truth(1.0, 0.25),
        "generator": Truth(1.1, 0.3, 0.0, 0.35),
        "writer": Truth(1.0, 0.3),
        "shipper": Truth(1.0, 0.2),
    }
    return Case("flaky", "5 generations failing 35 % in a row", data, truth)


def _approvals() -> Case:
    """Four changes, each prepared on a machine, approved by a person (who takes minutes,
    not the 60 s written) and applied on a machine; 12 batch jobs written first compete for
    the two machines."""
    steps: list[dict[str, Any]] = [
        {"id": f"batch-{k}", "agent": "batch", "estimate": 20, "uses": {"machines": 1}}
        for k in range(12)
    ]
    for c in range(4):
        steps += [
            {"id": f"prepare-{c}", "agent": "preparer", "estimate": 10, "uses": {"machines": 1}},
            {"id": f"approve-{c}", "agent": "approver", "needs": f"prepare-{c}", "estimate": 60},
            {
                "id": f"apply-{c}",
                "agent": "applier",
                "needs": f"approve-{c}",
                "estimate": 15,
                "uses": {"machines": 1},
            },
        ]
    data = {
        "name": "approvals",
        "resources": {"pools": {"machines": {"capacity": 2}}},
        "agents": {
            "batch": {"kind": "noop"},
            "preparer": {"kind": "noop"},
            "approver": {"kind": "approval"},
            "applier": {"kind": "noop"},
        },
        "steps": steps,
    }
    truth = {
        "batch": Truth(1.0, 0.25),
        "preparer": Truth(1.2, 0.3),
        "approver": Truth(3.0, 0.4),  # a person answers in about 3 minutes
        "applier": Truth(1.0, 0.3),
    }
    return Case("approvals", "4 approvals, 2 machines", data, truth)


def _phased() -> Case:
    """An integration project in four phases, each behind a gate: sequential analysis,
    three design streams of different lengths, a parallel implementation, a sequential
    verification."""

    def st(sid: str, agent: str, est: float) -> dict[str, Any]:
        return {"id": sid, "agent": agent, "estimate": est}

    phases = [
        {
            "id": "analysis",
            "pattern": "sequential",
            "steps": [st("inventory", "analyst", 20), st("context", "analyst", 30)],
            "gate": {"required": ["flows"]},
        },
        {
            "id": "design",
            "pattern": "parallel",
            "streams": {
                "api": [st("api-draft", "architect", 40), st("api-review", "reviewer", 20)],
                "data": [st("flow-map", "architect", 25), st("data-mapping", "mapper", 50)],
                "security": [st("threats", "security", 30), st("controls", "security", 15)],
            },
            "gate": {"required": ["api", "data", "security"]},
        },
        {
            "id": "build",
            "pattern": "parallel",
            "steps": [st(f"adapter-{k}", "coder", 30 + 15 * (k % 3)) for k in range(6)],
            "gate": {"required": ["adapters"]},
        },
        {
            "id": "verify",
            "pattern": "sequential",
            "steps": [st("integration-test", "tester", 60), st("report", "analyst", 10)],
        },
    ]
    agents = ["analyst", "architect", "reviewer", "mapper", "security", "coder", "tester"]
    data = {
        "name": "phased",
        "agents": {a: {"kind": "noop"} for a in agents},
        "steps": [{"phases": {"id": "project", "phases": phases}}],
    }
    truth = {
        "analyst": Truth(1.2, 0.3),
        "architect": Truth(1.3, 0.3),
        "reviewer": Truth(0.8, 0.3),
        "mapper": Truth(1.1, 0.3, 0.05),
        "security": Truth(1.0, 0.25),
        "coder": Truth(1.4, 0.3, 0.05),
        "tester": Truth(1.0, 0.25),
    }
    return Case("phased", "4 phases with gates", data, truth)


_SUITE: tuple[Callable[[], Case], ...] = (
    _chain,
    _fan_out,
    _contended,
    _flaky,
    _approvals,
    _phased,
)


def _median(xs: Sequence[float | None]) -> float | None:
    """Median where a failed run (None) counts as infinitely long; None if that is it."""
    m = statistics.median(math.inf if x is None else x for x in xs)
    return None if math.isinf(m) else m


async def _warm(case: Case) -> tuple[cp.MemoryStore, list[dict[str, Any]]]:
    store = cp.MemoryStore()
    runs: list[dict[str, Any]] = []
    for k in range(WARMUP):
        result = await _run(case, 1 + k, store=store)
        runs.append(
            {
                "pattern": result.pattern,
                "status": result.status.value,
                "makespan_s": result.makespan_s,
                "adaptations": [(a["trigger"], a["from"], a["to"]) for a in result.adaptations],
            }
        )
    return store, runs


async def _measure(case: Case, reps: int) -> dict[str, Any]:
    store, warmup = await _warm(case)
    rec = await select(case.workflow, store=store)
    admissible = [a.pattern for a in rec.alternatives if a.admissible]
    seeds = [1000 + r for r in range(reps)]
    makespans: dict[str, list[float | None]] = {}
    for p in admissible:
        sel = await select(case.workflow, store=store, pattern=p)
        runs: list[float | None] = []
        for seed in seeds:
            result = await _run(case, seed, store=copy.deepcopy(store), selection=sel, adapt=False)
            ok = result.status is cp.RunStatus.SUCCEEDED
            runs.append(result.makespan_s if ok else None)
        makespans[p] = runs
    medians = {p: _median(xs) for p, xs in makespans.items()}
    done = {p: m for p, m in medians.items() if m is not None}
    best_s = min(done.values(), default=None)
    best = [p for p, m in done.items() if best_s is not None and m <= best_s * (1 + 1e-9)]
    mine = medians.get(rec.recommended)
    ratio = mine / best_s if mine is not None and best_s else None
    return {
        "name": case.name,
        "kind": case.kind,
        "steps": rec.analysis.steps,
        "warmup": warmup,
        "recommended": rec.recommended,
        "reasons": rec.reasons,
        "hedge": sorted(rec.policy.hedge),
        "expected_s": {a.pattern: a.makespan_s for a in rec.alternatives if a.admissible},
        "method": rec.method,
        "admissible": admissible,
        "makespans_s": makespans,
        "failed_runs": sum(x is None for xs in makespans.values() for x in xs),
        "median_s": medians,
        "best": best,
        "best_s": best_s,
        "ratio": ratio,
        "within_5pct": ratio is not None and ratio <= 1 + TARGET_WITHIN,
    }


def _decided(m: dict[str, Any]) -> str:
    """How selection came to its recommendation: the fastest expected, a tie broken by the
    workflow's traits, or past runs of the definition."""
    if any(r.startswith("past runs of this definition") for r in m["reasons"]):
        return "history"
    exp = m["expected_s"]
    mine = exp[m["recommended"]]
    tied = [p for p, v in exp.items() if p != m["recommended"] and v <= mine * 1.02 + 1e-9]
    return "tie, soft order" if tied else "fastest expected"


def _suite_rows(found: list[dict[str, Any]]) -> tuple[list[list[object]], list[list[object]]]:
    rows: list[list[object]] = []
    expected: list[list[object]] = []
    for m in found:
        cells: list[object] = [m["name"], m["steps"]]
        model: list[object] = [m["name"], m["method"]]
        for p in PATTERNS:
            v = m["median_s"].get(p)
            cells.append("-" if p not in m["median_s"] else "failed" if v is None else v)
            e = m["expected_s"].get(p)
            model.append("-" if e is None else f"{e:.4g} ({e / v:.2f})" if v else f"{e:.4g}")
        ratio = m["ratio"]
        cells += [
            ", ".join(SHORT[p] for p in m["best"]),
            SHORT[m["recommended"]],
            "failed" if ratio is None else ratio,
            "yes" if m["within_5pct"] else "NO",
        ]
        model += [", ".join(m["hedge"]) or "-", m["decided"]]
        rows.append(cells)
        expected.append(model)
    return rows, expected


def _suite(quick: bool) -> tuple[dict[str, Any], str]:
    reps = 2 if quick else 5
    found: list[dict[str, Any]] = []
    for make in _SUITE:
        m = asyncio.run(_measure(make(), reps))
        m["decided"] = _decided(m)
        found.append(m)
    within = sum(m["within_5pct"] for m in found)
    out = {
        "reps": reps,
        "warmup_runs": WARMUP,
        "within_5pct": within,
        "workflows": {m["name"]: m for m in found},
        "target": f"within {TARGET_WITHIN:.0%} on at least {TARGET_WORKFLOWS} of {len(found)}",
        "ok": within >= TARGET_WORKFLOWS,
    }
    rows, expected = _suite_rows(found)
    short = [SHORT[p] for p in PATTERNS]
    text = common.table(
        f"selection: median makespan (virtual s) of each pattern over {reps} seeds, after "
        f"{WARMUP} warm-up runs; the best pattern(s) and the recommended one",
        ["workflow", "steps", *short, "best", "rec", "rec/best", "<=5%"],
        rows,
    )
    text += (
        f"\nrecommended within {TARGET_WITHIN:.0%} of the best on {within} of {len(found)} "
        f"workflows; target >= {TARGET_WORKFLOWS} [{'ok' if out['ok'] else 'MISSED'}]"
    )
    text += "\n" + common.table(
        "selection: the makespan it expected for each pattern (expected / measured median), "
        "the agents it races, and what decided",
        ["workflow", "method", *short, "hedged", "decided by"],
        expected,
    )
    return out, text


# --- 2. learned estimates ---------------------------------------------------------------------


def _noisy() -> Case:
    """A research report: 8 sections, each searched, read, summarised, written and checked by
    its own agent; five agents with 8 steps each per run."""
    agents = {
        "searcher": (15, Truth(1.6, 0.3, 0.05)),
        "reader": (40, Truth(0.6, 0.3)),
        "summariser": (25, Truth(1.2, 0.25, 0.05)),
        "writer": (60, Truth(1.4, 0.3, 0.05)),
        "checker": (10, Truth(0.8, 0.25)),
    }
    order = list(agents)
    steps: list[dict[str, Any]] = []
    for s in range(8):
        for k, name in enumerate(order):
            step: dict[str, Any] = {"id": f"{name}-{s}", "agent": name, "estimate": agents[name][0]}
            if k:
                step["needs"] = f"{order[k - 1]}-{s}"
            steps.append(step)
    data = {"name": "noisy", "agents": {a: {"kind": "noop"} for a in order}, "steps": steps}
    return Case("noisy", "8 sections x 5 agents", data, {a: t for a, (_, t) in agents.items()})


def _agent_truths(case: Case) -> dict[str, tuple[float, float, Truth, int]]:
    """Per agent: its declared estimate, its true median, its truth and its steps per run
    (every step of an agent here has the same declared estimate)."""
    wf = case.workflow
    medians = case.medians()
    out: dict[str, tuple[float, float, Truth, int]] = {}
    for agent, truth in case.truth.items():
        mine = [s.id for s in wf.steps if s.agent == agent]
        declared = wf.graph.estimates[wf.graph.index[mine[0]]]
        out[agent] = (declared, true_median(truth, medians[mine[0]][0]), truth, len(mine))
    return out


async def _estimate_trial(case: Case, trial: int) -> dict[str, float]:
    """Five runs with a store (seeds 100 x trial + k); each agent's learned estimate / its
    true median - 1."""
    store = cp.MemoryStore()
    for k in range(WARMUP):
        await _run(case, 100 * trial + k, store=store)
    learned = await learned_estimates(store, case.workflow)
    return {
        agent: learned[agent] / true - 1 for agent, (_, true, _, _) in _agent_truths(case).items()
    }


def _estimates(quick: bool) -> tuple[dict[str, Any], str]:
    case = _noisy()
    trials = 2 if quick else 20
    per_trial = [asyncio.run(_estimate_trial(case, t + 1)) for t in range(trials)]
    rows: list[list[object]] = []
    agents: dict[str, Any] = {}
    for agent, (declared, true, truth, steps) in _agent_truths(case).items():
        errs = [t[agent] for t in per_trial]
        n = steps * WARMUP
        se = 1.2533 * truth.sigma / math.sqrt(n)  # s.e. of the median of n lognormal samples
        agents[agent] = {
            "declared_s": declared,
            "true_median_s": true,
            "sigma": truth.sigma,
            "outliers": truth.outliers,
            "samples": n,
            "errors": errs,
            "mean_error": statistics.fmean(errs),
            "max_abs_error": max(abs(e) for e in errs),
            "expected_se": se,
        }
        rows.append(
            [
                agent,
                declared,
                true,
                truth.sigma,
                f"{truth.outliers:.0%}",
                n,
                f"{errs[0]:+.1%}",
                f"{statistics.fmean(errs):+.1%}",
                f"{statistics.median(abs(e) for e in errs):.1%}",
                f"{max(abs(e) for e in errs):.1%}",
                f"{se:.1%}",
            ]
        )
    trial_max = [max(abs(e) for e in t.values()) for t in per_trial]
    trial_mean = [statistics.fmean(abs(e) for e in t.values()) for t in per_trial]
    met = sum(m <= TARGET_ESTIMATE for m in trial_max)
    headline = statistics.median(trial_max)
    out = {
        "trials": trials,
        "runs": WARMUP,
        "agents": agents,
        "estimate_max_error": headline,
        "estimate_mean_error": statistics.median(trial_mean),
        "trial_max_errors": trial_max,
        "trial_mean_errors": trial_mean,
        "trials_within_target": met,
        "target": f"max error <= {TARGET_ESTIMATE:.0%}",
        "ok": headline <= TARGET_ESTIMATE,
    }
    return out, _estimates_text(out, rows)


def _estimates_text(out: dict[str, Any], rows: list[list[object]]) -> str:
    trials = out["trials"]
    trial_max = out["trial_max_errors"]
    text = common.table(
        f"selection: learned estimate (median of {WARMUP} runs) against each agent's true "
        f"median; {trials} trials (independent seeds)",
        [
            "agent",
            "declared s",
            "true s",
            "sigma",
            "outliers",
            "samples",
            "error (trial 1)",
            "mean error",
            "median |error|",
            "max |error|",
            "expected s.e.",
        ],
        rows,
    )
    return text + (
        f"\nworst agent's |error| per trial: median {out['estimate_max_error']:.1%} (mean "
        f"|error| {out['estimate_mean_error']:.1%}), worst {max(trial_max):.1%}; target <= "
        f"{TARGET_ESTIMATE:.0%} [{common.verdict(out['estimate_max_error'], TARGET_ESTIMATE)}]"
        f"; met in {out['trials_within_target']} of {trials} trials ("
        + ", ".join(f"{m:.1%}" for m in trial_max)
        + ")"
    )


# --- 3. capacity halved mid-run ---------------------------------------------------------------

FULL, HALF = 16, 8


def _capacity_workflow(capacity: int = FULL) -> cp.Workflow:
    """Data processing on a pool of ``capacity`` slots: 6 ingest chains (ingest, 2 slots ->
    transform, 1 -> index, 2), 16 independent reports (1 slot) and a final merge (4 slots)
    after the chains; durations drawn once (seed 7) from a few round values."""
    rng = random.Random(7)
    steps: list[dict[str, Any]] = []
    for c in range(6):
        steps += [
            {
                "id": f"ingest-{c}",
                "agent": "w",
                "estimate": rng.choice([20, 30, 40]),
                "uses": {"slots": 2},
            },
            {
                "id": f"transform-{c}",
                "agent": "w",
                "needs": f"ingest-{c}",
                "estimate": rng.choice([30, 45, 60]),
                "uses": {"slots": 1},
            },
            {
                "id": f"index-{c}",
                "agent": "w",
                "needs": f"transform-{c}",
                "estimate": rng.choice([15, 25]),
                "uses": {"slots": 2},
            },
        ]
    steps += [
        {
            "id": f"report-{k}",
            "agent": "w",
            "estimate": rng.choice([10, 20, 30]),
            "uses": {"slots": 1},
        }
        for k in range(16)
    ]
    steps.append(
        {
            "id": "merge",
            "agent": "w",
            "needs": [f"index-{c}" for c in range(6)],
            "estimate": 20,
            "uses": {"slots": 4},
        }
    )
    data = {
        "name": "capacity",
        "resources": {"pools": {"slots": {"capacity": capacity}}},
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    return cp.loads(json.dumps(data))


async def _capacity_run(
    wf: cp.Workflow, sel: Recommendation, at: float, capacity: object, adapt: bool
) -> cp.RunResult:
    """``wf`` run as ``sel`` says, each step taking its estimate; at ``at`` virtual seconds a
    ``capacity_changed`` event sets the pool to ``capacity``."""

    def on_engine(engine: Any) -> None:
        data = {"pool": "slots", "capacity": capacity}
        engine.clock.call_later(at, lambda: engine.send("capacity_changed", data))

    return await cp.run(
        wf,
        selection=sel,
        clock=VirtualClock(),
        backend=_plain_backend,
        on_engine=on_engine,
        adapt=adapt,
        seed=1,
    )


def _plain_backend(clock: Clock) -> VirtualBackend:
    assert isinstance(clock, VirtualClock)
    return VirtualBackend(clock)


def _bound(wf: cp.Workflow, at: float) -> dict[str, float]:
    """A lower bound on any schedule's makespan with the drop: at most FULL x T unit-seconds
    are done by T; after T the pool holds at most HALF units, except that steps started
    before T keep theirs until they end, which adds at most (FULL - HALF) x the longest
    step's duration."""
    graph = wf.graph
    est = graph.estimates
    finish = [0.0] * len(est)
    for i in graph.order:
        finish[i] = est[i] + max((finish[p] for p in graph.preds[i]), default=0.0)
    units = [float(s.uses.get("slots", 0.0)) for s in wf.steps]  # type: ignore[arg-type]
    work = sum(u * e for u, e in zip(units, est, strict=True))
    longest = max(e for u, e in zip(units, est, strict=True) if u > 0)
    overhang = (FULL - HALF) * longest
    after = at + max(0.0, work - FULL * at - overhang) / HALF
    critical = max(finish)
    return {
        "critical_path_s": critical,
        "work_unit_s": work,
        "longest_step_s": longest,
        "drop_bound_s": after,
        "lower_bound_s": max(critical, after),
    }


async def _capacity_references(
    wf: cp.Workflow, rec: Recommendation, at: float, drop: object
) -> dict[str, float]:
    """Every admissible pattern with the same drop, not adapting."""
    refs: dict[str, float] = {}
    for a in rec.alternatives:
        if a.admissible:
            sel = await select(wf, pattern=a.pattern)
            r = await _capacity_run(wf, sel, at, drop, False)
            if r.status is cp.RunStatus.SUCCEEDED:  # (a failed run is no reference)
                refs[a.pattern] = r.makespan_s
    return refs


async def _capacity_async() -> dict[str, Any]:
    wf = _capacity_workflow()
    rec = await select(wf)
    expected = rec.alternative(rec.recommended).makespan_s or 0.0
    at = round(0.3 * expected, 1)
    drop = HALF  # the documented form {"pool": P, "capacity": N}
    adaptive = await _capacity_run(wf, rec, at, drop, True)
    refused = [e.data.get("reason") for e in adaptive.events if e.name == "adaptation_refused"]
    refs = await _capacity_references(wf, rec, at, drop)
    best = min(refs, key=lambda p: refs[p])
    ratio = adaptive.makespan_s / refs[best]
    # for context: the whole run with half the pool from the start (selection's best)
    half_rec = await select(_capacity_workflow(HALF))
    return {
        "recommended": rec.recommended,
        "expected_s": expected,
        "drop_at_s": at,
        "capacity": [FULL, HALF],
        "drop_refused": refused,
        "adaptive_s": adaptive.makespan_s,
        "adaptive_status": adaptive.status.value,
        "adaptations": [
            {k: a.get(k) for k in ("trigger", "from", "to", "at_s", "reason")}
            for a in adaptive.adaptations
        ],
        "reference_s": refs[best],
        "reference_pattern": best,
        "references_s": refs,
        "capacity_ratio": ratio,
        "half_from_start_s": half_rec.alternative(half_rec.recommended).makespan_s,
        "half_from_start_pattern": half_rec.recommended,
        **_bound(wf, at),
        "ok": ratio <= TARGET_CAPACITY,
    }


def _capacity() -> tuple[dict[str, Any], str]:
    out = asyncio.run(_capacity_async())
    ref = out["reference_s"]
    rows: list[list[object]] = [
        [f"adaptive: {out['recommended']}, adapt=True", out["adaptive_s"], out["adaptive_s"] / ref]
    ]
    rows += [[f"{p}, adapt=False", v, v / ref] for p, v in out["references_s"].items()]
    rows.append(
        [
            f"(half the pool from the start: {out['half_from_start_pattern']}, expected)",
            out["half_from_start_s"],
            out["half_from_start_s"] / ref,
        ]
    )
    rows.append(["lower bound", out["lower_bound_s"], out["lower_bound_s"] / ref])
    text = common.table(
        f"selection: pool {FULL} -> {HALF} at {out['drop_at_s']:g} s (30 % of the "
        f"{out['expected_s']:.4g} s selection expects); every step takes its estimate",
        ["run", "makespan s", "/ reference"],
        rows,
    )
    adapted = "; ".join(
        f"{a['trigger']} at {a['at_s']:g} s: {a['from']} -> {a['to']}" for a in out["adaptations"]
    )
    text += (
        f"\nadaptive / best non-adaptive ({out['reference_pattern']}): "
        f"{out['capacity_ratio']:.3f}; target <= {TARGET_CAPACITY} "
        f"[{common.verdict(out['capacity_ratio'], TARGET_CAPACITY)}]; adaptations: "
        f"{adapted or 'none'}"
        f"\nlower bound: max(critical path {out['critical_path_s']:g}, T + (W - {FULL}T - "
        f"{FULL - HALF} x {out['longest_step_s']:g}) / {HALF} = {out['drop_bound_s']:.4g}) s, "
        f"W = {out['work_unit_s']:g} slot-s"
    )
    if out["drop_refused"]:
        text += "\nnote: the drop was refused: " + "; ".join(map(str, out["drop_refused"]))
    return out, text


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    suite, suite_text = _suite(quick)
    estimates, est_text = _estimates(quick)
    capacity, cap_text = _capacity()
    figures: dict[str, Any] = {
        "within_5pct": suite["within_5pct"],
        "workflows": suite["workflows"],
        "estimate_max_error": estimates["estimate_max_error"],
        "estimate_mean_error": estimates["estimate_mean_error"],
        "capacity_ratio": capacity["capacity_ratio"],
        "suite": {k: v for k, v in suite.items() if k != "workflows"},
        "estimates": estimates,
        "capacity": capacity,
    }
    return figures, suite_text + "\n" + est_text + "\n" + cap_text
