"""Sleepy steps: does the makespan stay at the critical path when steps take real time?

Every step sleeps a random 5-50 ms (fixed seed) through the built-in ``sleep`` agent, with its
seconds in the step's input; concurrency is unbounded, so the best possible makespan is the
critical path (computed here from the sleep durations). counterpoint and the bare loop doing
the same sleeps run interleaved; each reports wall time of the whole run / critical path.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import baseline
import common
import counterpoint as cp

TARGET = 1.03


def _shapes(quick: bool) -> dict[str, common.Preds]:
    if quick:
        return {"layered 10x10": common.layered(10, 10, seed=3)}
    return {
        "layered 20x10": common.layered(20, 10, seed=3),
        "random 200": common.random_dag(200, seed=4),
        "fork-join 198": common.fan_in_out(198),
        "chain 20": common.chain(20),
    }


def run_counterpoint(wf: cp.Workflow) -> tuple[float, float]:
    """Wall seconds around ``cp.run`` and the makespan the run reports."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await cp.run(wf)
        took = loop.time() - t0
        if result.status is not cp.RunStatus.SUCCEEDED:
            raise RuntimeError(f"counterpoint run {result.status}")
        return took, result.makespan_s

    return asyncio.run(main())


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    reps = 3 if quick else 5
    rows: list[list[object]] = []
    shapes: dict[str, Any] = {}
    for k, (name, preds) in enumerate(_shapes(quick).items()):
        rng = random.Random(100 + k)
        seconds = [round(rng.uniform(0.005, 0.050), 4) for _ in preds]
        critical = common.longest_path(preds, seconds)
        wf = common.workflow(
            f"sleepy-{name}", preds, {"kind": "sleep"}, inputs=[{"seconds": s} for s in seconds]
        )
        reported: list[float] = []

        def counterpoint_side(wf: cp.Workflow = wf, reported: list[float] = reported) -> float:
            took, makespan = run_counterpoint(wf)
            reported.append(makespan)
            return took

        times = common.interleaved(
            {
                "counterpoint": counterpoint_side,
                "baseline": lambda preds=preds, s=seconds: baseline.run_sleeps(preds, s),
            },
            reps,
        )
        cp_ratio = common.median(times["counterpoint"]) / critical
        bl_ratio = common.median(times["baseline"]) / critical
        shapes[name] = {
            "steps": len(preds),
            "edges": common.edges(preds),
            "critical_path_s": critical,
            "total_sleep_s": sum(seconds),
            "counterpoint_s": times["counterpoint"],
            "counterpoint_reported_makespan_s": reported[-reps:],
            "baseline_s": times["baseline"],
            "counterpoint_ratio": cp_ratio,
            "baseline_ratio": bl_ratio,
            "counterpoint_vs_baseline": cp_ratio / bl_ratio,
        }
        rows.append(
            [
                name,
                len(preds),
                critical * 1e3,
                common.median(times["counterpoint"]) * 1e3,
                common.median(times["baseline"]) * 1e3,
                cp_ratio,
                bl_ratio,
                cp_ratio / bl_ratio,
                common.verdict(cp_ratio, TARGET),
            ]
        )
    worst = max(s["counterpoint_ratio"] for s in shapes.values())
    out = {"reps": reps, "target_ratio": TARGET, "worst_ratio": worst, "shapes": shapes}
    text = common.table(
        f"sleepy: makespan / critical path, steps sleep 5-50 ms (median of {reps} reps; "
        f"target <= {TARGET:g})",
        [
            "shape",
            "steps",
            "critical ms",
            "counterpoint ms",
            "baseline ms",
            "counterpoint ratio",
            "baseline ratio",
            "counterpoint / baseline",
            "",
        ],
        rows,
    )
    return out, text
