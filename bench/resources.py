"""Resources: what atomic admission costs per step, and how well a rate limit is used.

(1) Admission overhead: the layered 100 x 100 DAG of no-op steps (``common.layered(100, 100,
1)``) where every step uses three pools (``db: 1`` of 50, ``cpu: 1`` of 64, ``mem: 1`` of
1000), run with ``counterpoint.run`` beside the same workflow without pools, interleaved rep
by rep; the figure is the difference of the medians per step. Target: <= 10 µs per step.

(2) Rate limit: 1,000 no-op steps, each ``uses: {api: 1}``, with ``api: 400/s`` (a sliding
window), all ready at once, on the real clock. From the StepRecords' start times: the windows
[t, t + 1 s) starting at each start that hold more than 400 (violations; expected 0), and the
utilisation: the time the limit forces between the first call and the last,
floor((C - 1) / N) x 1 s, over the time they took (t_last - t_first). 100 % means every
window's calls started the moment the window allowed them. Target: >= 95 %.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections.abc import Sequence
from typing import Any

import common
import counterpoint as cp
from overhead import run_counterpoint

TARGET_US = 10.0
TARGET_UTILISATION = 0.95
POOLS = {"db": 50, "cpu": 64, "mem": 1000}


def _layered(preds: common.Preds, pools: bool) -> cp.Workflow:
    """The layered workflow, loaded as YAML (JSON) text; with ``pools`` every step uses 1 of
    each of the three pools."""
    steps: list[dict[str, Any]] = []
    for i, ps in enumerate(preds):
        step: dict[str, Any] = {"id": f"s{i}", "agent": "a"}
        if ps:
            step["needs"] = [f"s{p}" for p in ps]
        if pools:
            step["uses"] = dict.fromkeys(POOLS, 1)
        steps.append(step)
    data: dict[str, Any] = {"name": "pools" if pools else "plain"}
    if pools:
        data["resources"] = {"pools": POOLS}
    data |= {"agents": {"a": {"kind": "noop"}}, "steps": steps}
    return cp.loads(json.dumps(data))


def _peak(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals [start, end) open at once."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    held = best = 0
    for _, n in events:
        held += n
        best = max(best, held)
    return best


def _overhead(quick: bool) -> tuple[dict[str, Any], list[list[object]], str]:
    levels = 20 if quick else 100
    reps = 3 if quick else 7
    preds = common.layered(levels, 100, seed=1)
    n = len(preds)
    plain, pooled = _layered(preds, False), _layered(preds, True)
    # admission alone: the same pattern and rule (critical path, no planning) on both sides;
    # the resource-aware pattern, whose planned rule simulates the pools before the run, is
    # timed apart; selecting the pattern (the default) apart again
    times = common.interleaved(
        {
            "three pools": lambda: run_counterpoint(
                pooled, pattern="event-driven", priority="critical-path"
            ),
            "no pools": lambda: run_counterpoint(
                plain, pattern="event-driven", priority="critical-path"
            ),
            "three pools, planned": lambda: run_counterpoint(pooled, pattern="resource-aware"),
            "three pools, selected": lambda: run_counterpoint(pooled),
        },
        reps,
    )
    with_s = common.median(times["three pools"])
    without_s = common.median(times["no pools"])
    planned_s = common.median(times["three pools, planned"])
    selected_s = common.median(times["three pools, selected"])
    added = (with_s - without_s) / n * 1e6
    best = (min(times["three pools"]) - min(times["no pools"])) / n * 1e6
    # one more run, to see that the pools held: never more than 50 steps had a db at once
    result = cp.run_sync(pooled)
    peak = _peak([(r.start or 0.0, r.end or 0.0) for r in result.steps.values()])
    out = {
        "steps": n,
        "edges": common.edges(preds),
        "reps": reps,
        "pools": POOLS,
        "pools_s": with_s,
        "plain_s": without_s,
        "us_per_step_pools": with_s / n * 1e6,
        "us_per_step_plain": without_s / n * 1e6,
        "us_added_per_step": added,
        "us_added_per_step_best_reps": best,
        "planned_s": planned_s,
        "planning_ms_added": (planned_s - with_s) * 1e3,
        "selected_s": selected_s,
        "selection_ms_added": (selected_s - planned_s) * 1e3,
        "peak_running": peak,
        "target_us": TARGET_US,
        "ok": added <= TARGET_US,
        "times": times,
    }
    rows: list[list[object]] = [
        ["three pools", with_s * 1e3, with_s / n * 1e6],
        ["no pools", without_s * 1e3, without_s / n * 1e6],
        ["three pools, planned", planned_s * 1e3, planned_s / n * 1e6],
        ["three pools, selected", selected_s * 1e3, selected_s / n * 1e6],
    ]
    note = (
        f"admission: {added:.2f} µs added per step (fastest reps: {best:.2f}); target <= "
        f"{TARGET_US:g} µs [{common.verdict(added, TARGET_US)}]; at most {peak} steps running "
        f"at once (db: {POOLS['db']}); planning the pools before the run (resource-aware) "
        f"adds {(planned_s - with_s) * 1e3:.0f} ms per run (budget 100 ms); selecting the "
        f"pattern (the default) {(selected_s - planned_s) * 1e3:.0f} ms more"
    )
    return out, rows, note


def _rate_run(calls: int, per_s: int) -> dict[str, Any]:
    data = {
        "name": "rate",
        "resources": {"rate_limits": {"api": f"{per_s}/s"}},
        "agents": {"a": {"kind": "noop"}},
        "steps": [{"id": f"s{i}", "agent": "a", "uses": {"api": 1}} for i in range(calls)],
    }
    wf = cp.loads(json.dumps(data))

    async def main() -> cp.RunResult:
        return await cp.run(wf)

    result = asyncio.run(main())
    if result.status is not cp.RunStatus.SUCCEEDED:
        raise RuntimeError(f"rate run {result.status}")
    starts = sorted(r.start or 0.0 for r in result.steps.values())
    violations = 0
    most = 0
    for k, t in enumerate(starts):
        inside = bisect.bisect_left(starts, t + 1.0 - 1e-9) - k  # starts in [t, t + 1 s)
        most = max(most, inside)
        violations += inside > per_s
    first, last = starts[0], starts[-1]
    forced = (calls - 1) // per_s * 1.0  # the k-th window opens k s after the first call
    took = last - first
    # how late each window's first call started after the window opened
    lags = [starts[w * per_s] - first - w * 1.0 for w in range(1, (calls - 1) // per_s + 1)]
    return {
        "makespan_s": result.makespan_s,
        "first_start_s": first,
        "last_start_s": last,
        "forced_s": forced,
        "utilisation": forced / took if took > 0 else 1.0,
        "violations": violations,
        "most_in_a_window": most,
        "window_lags_ms": [x * 1e3 for x in lags],
    }


def _rate(quick: bool) -> tuple[dict[str, Any], list[list[object]], str]:
    calls, per_s = (200, 100) if quick else (1_000, 400)
    reps = 2 if quick else 3
    runs = [_rate_run(calls, per_s) for _ in range(reps)]
    utilisation = common.median([r["utilisation"] for r in runs])
    violations = sum(r["violations"] for r in runs)
    lag_ms = common.median([x for r in runs for x in r["window_lags_ms"]])
    out = {
        "calls": calls,
        "limit_per_s": per_s,
        "reps": reps,
        "utilisation": utilisation,
        "violations": violations,
        "most_in_a_window": max(r["most_in_a_window"] for r in runs),
        "median_window_lag_ms": lag_ms,
        "target_utilisation": TARGET_UTILISATION,
        "ok": violations == 0 and utilisation >= TARGET_UTILISATION,
        "runs": runs,
    }
    rows: list[list[object]] = [
        [
            k + 1,
            r["forced_s"],
            r["last_start_s"] - r["first_start_s"],
            r["makespan_s"],
            r["most_in_a_window"],
            r["violations"],
            f"{r['utilisation'] * 100:.2f} %",
        ]
        for k, r in enumerate(runs)
    ]
    note = (
        f"rate limit {per_s}/s, {calls:,} calls: {violations} violations, utilisation "
        f"{utilisation * 100:.2f} % (median); target >= {TARGET_UTILISATION * 100:g} % "
        f"[{'ok' if out['ok'] else 'MISSED'}]; each window's first call {lag_ms:.2f} ms after "
        "the window opened (median)"
    )
    return out, rows, note


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    over, over_rows, over_note = _overhead(quick)
    rate, rate_rows, rate_note = _rate(quick)
    text = common.table(
        f"resources: {over['steps']:,} no-op steps (layered, width 100), each using three "
        f"pools, beside the same without (median of {over['reps']} interleaved reps)",
        ["side", "ms", "µs/step"],
        over_rows,
    )
    text += "\n" + over_note
    text += common.table(
        f"resources: {rate['calls']:,} no-op calls with api: {rate['limit_per_s']}/s "
        "(sliding window), real clock",
        ["rep", "forced s", "first to last s", "makespan s", "most in 1 s", "violations", "use"],
        rate_rows,
    )
    text += "\n" + rate_note
    return {"admission": over, "rate_limit": rate}, text
