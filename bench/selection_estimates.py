"""Selection: do learned estimates come close to the agents' true durations?

A workflow of 5 noisy agents with 8 steps each per run (lognormal sigma 0.25 and 0.3, 5 % of
4-5x outliers for three of them; true medians 0.6-1.6x the declared ones). After 5 runs with
a store, ``learned_estimates(store, wf)`` per agent against the agent's true median (the
median of its duration distribution, outliers included, computed numerically). Repeated over
independent seeds (trials). Target: max error <= 10 %.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

import common
import counterpoint as cp
from counterpoint.runner import learned_estimates
from selection_common import WARMUP, Case, Truth, run_case, true_median

TARGET_ESTIMATE = 0.10  # learned / true median - 1


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
        await run_case(case, 100 * trial + k, store=store)
    learned = await learned_estimates(store, case.workflow)
    return {
        agent: learned[agent] / true - 1 for agent, (_, true, _, _) in _agent_truths(case).items()
    }


def estimates_bench(quick: bool) -> tuple[dict[str, Any], str]:
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
