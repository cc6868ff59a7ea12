"""Selection suite: does the recommended pattern run as fast as the best one?

Six workflows of different kinds (``selection_workflows.SUITE``). For each: 5 warm-up runs
with default selection and a ``MemoryStore`` (selection learns durations, failure rates and
outcomes); then ``select(wf, store=store)`` is the recommendation; then every admissible
pattern P runs R times (5; 2 with ``--quick``) with the same R seeds, each with
``selection=select(wf, store=store, pattern=P)`` and ``adapt=False`` (each pattern as
itself), on a deep copy of the warm store that is thrown away after the run (so it plans
with the learned estimates, as a run with the store would, and feeds nothing back). Failed
runs count as infinitely long. Figures: each pattern's median makespan, the best, the
recommended one's median over the best's. Target: within 5 % on at least 5 of 6.
"""

from __future__ import annotations

import asyncio
import copy
import math
import statistics
from collections.abc import Sequence
from typing import Any

import common
import counterpoint as cp
from counterpoint.selection import PATTERNS, select
from selection_common import WARMUP, Case, run_case
from selection_workflows import SUITE

TARGET_WITHIN = 0.05  # recommended / best
TARGET_WORKFLOWS = 5  # of 6
SHORT = {
    "sequential": "seq",
    "parallel": "par",
    "hybrid": "hyb",
    "event-driven": "evt",
    "resource-aware": "res",
}


def _median(xs: Sequence[float | None]) -> float | None:
    """Median where a failed run (None) counts as infinitely long; None if that is it."""
    m = statistics.median(math.inf if x is None else x for x in xs)
    return None if math.isinf(m) else m


async def _warm(case: Case) -> tuple[cp.MemoryStore, list[dict[str, Any]]]:
    store = cp.MemoryStore()
    runs: list[dict[str, Any]] = []
    for k in range(WARMUP):
        result = await run_case(case, 1 + k, store=store)
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
            result = await run_case(
                case, seed, store=copy.deepcopy(store), selection=sel, adapt=False
            )
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


def suite_bench(quick: bool) -> tuple[dict[str, Any], str]:
    reps = 2 if quick else 5
    found: list[dict[str, Any]] = []
    for make in SUITE:
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
