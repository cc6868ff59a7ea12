"""Schedule quality on the Standard Task Graph set (Tobita & Kasahara, 2002).

For every graph x P case of ``../shared/benchdata/stg`` (180 graphs of 50 and 180 of 100
tasks, P = 2, 4, 8, 16: 1,440 cases) the workflow is simulated on the virtual clock with
``counterpoint.simulate(wf, workers=P, priority=...)`` for both priority rules, and the
makespan is compared with the optimal (or best known) one from ``Optimal_values``.

Workflows come from the project's importer (``counterpoint.importers``); the bench also owns a
small STG parser, independent of the importer, whose reading is compared with the importer's
on every file. As a cross-check of the engine, an independent textbook list scheduler written here
(same priorities) runs beside it; the table counts the cases where their makespans differ,
and every simulated schedule is checked (durations, dependencies, at most P at once).
"""

from __future__ import annotations

import asyncio
import heapq
import os
from pathlib import Path
from typing import Any

import common
import counterpoint as cp
from counterpoint.durations import parse_duration
from counterpoint.importers import convert, import_workflow
from counterpoint.importers.stg import optimal_values

ROOT = Path(
    os.environ.get(
        "COUNTERPOINT_STG", Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "stg"
    )
)
PROCESSORS = (2, 4, 8, 16)
PRIORITIES = ("fifo", "critical-path", "planned")
TARGET_CP_MEAN = 1.01
TARGET_PLANNED_MEAN = 1.002
TARGET_PLANNED_OPTIMAL = 0.90
TARGET_PLANNING_S = 0.1


# --- the STG format --------------------------------------------------------------------------


def parse(path: Path) -> tuple[list[int], list[list[int]]]:
    """Times and predecessors of the real tasks ``1..n`` as 0-based lists (task k -> k-1);
    the dummy entry (0) and exit (n+1) are dropped."""
    rows = [
        [int(x) for x in line.split()]
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    n = rows[0][0]
    tasks = rows[1 : n + 3]
    if len(tasks) != n + 2:
        raise ValueError(f"{path}: expected {n + 2} task lines, got {len(tasks)}")
    times: list[int] = []
    preds: list[list[int]] = []
    for k, (task, time, npred, *ps) in enumerate(tasks):
        if task != k or len(ps) != npred:
            raise ValueError(f"{path}: bad line for task {k}")
        if k in (0, n + 1):
            continue
        times.append(time)
        preds.append([p - 1 for p in ps if p != 0])
    return times, preds


def workflow_data(name: str, times: list[int], preds: list[list[int]]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i, (t, ps) in enumerate(zip(times, preds, strict=True)):
        step: dict[str, Any] = {"id": f"t{i + 1}", "agent": "task", "estimate": float(t)}
        if ps:
            step["needs"] = [f"t{p + 1}" for p in ps]
        steps.append(step)
    return {"name": name, "agents": {"task": {"kind": "sleep"}}, "steps": steps}


def _importer_agrees(path: Path, data: dict[str, Any]) -> bool:
    theirs = convert("stg", path)["steps"]
    ours = data["steps"]
    return len(theirs) == len(ours) and all(
        a["id"] == b["id"]
        and list(a.get("needs", ())) == list(b.get("needs", ()))
        and parse_duration(a["estimate"]) == b["estimate"]
        for a, b in zip(theirs, ours, strict=True)
    )


# --- an independent list scheduler (the cross-check) -----------------------------------------


def upward_ranks(times: list[int], succs: list[list[int]]) -> list[float]:
    rank = [0.0] * len(times)
    for i in reversed(range(len(times))):  # STG ids are in topological order
        rank[i] = times[i] + max((rank[s] for s in succs[i]), default=0.0)
    return rank


def list_schedule(times: list[int], preds: list[list[int]], workers: int, priority: str) -> float:
    """Non-delay list scheduling on ``workers`` identical processors: whenever one is free, the
    released task of highest priority (ties: released first) starts."""
    n = len(times)
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    rank = upward_ranks(times, succs) if priority == "critical-path" else [0.0] * n
    waiting = [len(ps) for ps in preds]
    ready: list[tuple[float, int, int]] = []
    running: list[tuple[float, int, int]] = []
    seq = 0
    for i in range(n):
        if not waiting[i]:
            seq += 1
            heapq.heappush(ready, (-rank[i], seq, i))
    t = 0.0
    free = workers
    while ready or running:
        while ready and free:
            i = heapq.heappop(ready)[2]
            seq += 1
            heapq.heappush(running, (t + times[i], seq, i))
            free -= 1
        t = running[0][0]
        while running and running[0][0] <= t:
            i = heapq.heappop(running)[2]
            free += 1
            for s in succs[i]:
                waiting[s] -= 1
                if not waiting[s]:
                    seq += 1
                    heapq.heappush(ready, (-rank[s], seq, s))
    return t


def infeasible(result: cp.RunResult, times: list[int], preds: list[list[int]], workers: int) -> str:
    """Why the simulated schedule is not a valid one ('' if it is): each step took its time,
    started after the steps it needs ended, and at most ``workers`` ran at once."""
    recs = [result.steps[f"t{i + 1}"] for i in range(len(times))]
    if any(r.start is None or r.end is None for r in recs):
        return "a step has no start or end"
    start = [float(r.start or 0.0) for r in recs]
    end = [float(r.end or 0.0) for r in recs]
    for i, ps in enumerate(preds):
        if abs(end[i] - start[i] - times[i]) > 1e-9:
            return f"t{i + 1} took {end[i] - start[i]}, not {times[i]}"
        for p in ps:
            if start[i] < end[p] - 1e-9:
                return f"t{i + 1} started at {start[i]} before t{p + 1} ended at {end[p]}"
    events = sorted([(e, -1) for e in end] + [(s, 1) for s in start])
    busy = 0
    for _, delta in events:  # ends before starts at the same moment
        busy += delta
        if busy > workers:
            return f"more than {workers} steps ran at once"
    if abs(max(end, default=0.0) - result.makespan_s) > 1e-9:
        return f"makespan {result.makespan_s} but the last step ended at {max(end)}"
    return ""


# --- the benchmark ---------------------------------------------------------------------------


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    optimal = optimal_values(ROOT)
    files = sorted({path for path, _ in optimal})
    if quick:
        files = files[::10]
    agree = 0
    cases: list[dict[str, Any]] = []
    problems: list[str] = []
    sim_s = 0.0

    async def simulate_all() -> None:
        nonlocal sim_s, agree
        for rel in files:
            path = ROOT / rel
            times, preds = parse(path)
            data = workflow_data(path.stem, times, preds)
            agree += _importer_agrees(path, data)
            wf = import_workflow("stg", path)
            for workers in PROCESSORS:
                case: dict[str, Any] = {
                    "graph": rel,
                    "P": workers,
                    "optimal": optimal[rel, workers],
                }
                for priority in PRIORITIES:
                    t0 = common.now()
                    result = await cp.simulate(wf, workers=workers, priority=priority)
                    sim_s += common.now() - t0
                    case[priority] = result.makespan_s
                    why = infeasible(result, times, preds, workers)
                    if why:
                        problems.append(f"{rel} P={workers} {priority}: {why}")
                    if priority == "planned":  # the engine must give what the planner expected
                        assert result.planning is not None
                        case["planned reference"] = result.planning["expected_makespan_s"]
                        case["planning_s"] = result.planning["planning_s"]
                        case["planned rule"] = result.planning["rule"]
                    else:
                        case[f"{priority} reference"] = list_schedule(
                            times, preds, workers, priority
                        )
                cases.append(case)

    asyncio.run(simulate_all())
    importer = f"agrees with the bench's own parser on {agree}/{len(files)} files"

    rows: list[list[object]] = []
    summary: dict[str, Any] = {}
    for priority in PRIORITIES:
        summary[priority] = {}
        for workers in (*PROCESSORS, None):
            sel = [c for c in cases if workers is None or c["P"] == workers]
            ratios = [c[priority] / c["optimal"] for c in sel]
            ref = [c[f"{priority} reference"] / c["optimal"] for c in sel]
            differ = sum(abs(c[priority] - c[f"{priority} reference"]) > 1e-9 for c in sel)
            figures = {
                "cases": len(sel),
                "mean": sum(ratios) / len(ratios),
                "max": max(ratios),
                "min": min(ratios),
                "optimal_share": sum(r <= 1 + 1e-9 for r in ratios) / len(ratios),
                "reference_mean": sum(ref) / len(ref),
                "differs_from_reference": differ,
            }
            summary[priority]["all" if workers is None else f"P={workers}"] = figures
            rows.append(
                [
                    priority,
                    "all" if workers is None else workers,
                    figures["cases"],
                    figures["mean"],
                    figures["max"],
                    f"{figures['optimal_share']:.1%}",
                    figures["reference_mean"],
                    differ,
                ]
            )
    cp_mean = summary["critical-path"]["all"]["mean"]
    planned = summary["planned"]["all"]
    planning = sorted(c["planning_s"] for c in cases)
    planned_ok = (
        planned["mean"] <= TARGET_PLANNED_MEAN
        and planned["optimal_share"] >= TARGET_PLANNED_OPTIMAL
        and planning[-1] <= TARGET_PLANNING_S
    )
    below = sum(c[p] < c["optimal"] - 1e-9 for c in cases for p in PRIORITIES)
    out = {
        "graphs": len(files),
        "cases": len(cases),
        "target_critical_path_mean": TARGET_CP_MEAN,
        "critical_path_mean_ok": cp_mean <= TARGET_CP_MEAN,
        "target_planned": {
            "mean": TARGET_PLANNED_MEAN,
            "optimal_share": TARGET_PLANNED_OPTIMAL,
            "planning_s": TARGET_PLANNING_S,
        },
        "planned_ok": planned_ok,
        "planning_s_mean": sum(planning) / len(planning),
        "planning_s_max": planning[-1],
        "summary": summary,
        "below_optimal_cases": below,
        "infeasible_schedules": len(problems),
        "infeasible_examples": problems[:10],
        "importer": importer,
        "simulations": len(PRIORITIES) * len(cases),
        "simulate_s": sim_s,
        "ms_per_simulation": sim_s / (len(PRIORITIES) * len(cases)) * 1e3,
        "cases_detail": cases,
    }
    text = common.table(
        f"stg: makespan / optimal over {len(cases):,} graph x P cases "
        f"(target: critical-path mean <= {TARGET_CP_MEAN:g} "
        f"[{common.verdict(cp_mean, TARGET_CP_MEAN)}])",
        [
            "priority",
            "P",
            "cases",
            "mean",
            "max",
            "optimal",
            "reference mean",
            "differs from reference",
        ],
        rows,
    )
    text += (
        f"\nplanned: mean {planned['mean']:.4f} (target <= {TARGET_PLANNED_MEAN:g}), optimal "
        f"{planned['optimal_share']:.1%} (target >= {TARGET_PLANNED_OPTIMAL:.0%}), planning "
        f"{sum(planning) / len(planning) * 1e3:.1f} ms mean, {planning[-1] * 1e3:.1f} ms max per "
        f"case (target <= {TARGET_PLANNING_S * 1e3:g} ms) [{'ok' if planned_ok else 'MISSED'}]"
    )
    text += (
        f"\n{len(PRIORITIES) * len(cases):,} simulations in {sim_s:.1f} s "
        f"({out['ms_per_simulation']:.2f} ms each); every schedule checked: "
        f"{len(problems)} infeasible; makespans below the best known: {below}"
        f"\nimporter counterpoint.importers.stg: {importer}"
    )
    return out, text
