"""Per-step overhead: 10,000 no-op steps, counterpoint against the bare asyncio loop.

counterpoint: the workflow is built once with ``WorkflowBuilder`` (built-in ``noop`` agent) and
only ``await counterpoint.run(wf)`` is timed, on the real clock. Baseline: ``baseline.run_dag``
with a no-op coroutine per node. Both are timed inside the event loop, interleaved rep by rep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import baseline
import common
import counterpoint as cp

TARGET_LAYERED = 2.0


def _shapes(n: int) -> dict[str, common.Preds]:
    side = max(2, round(n**0.5))
    return {
        "chain": common.chain(n),
        "fan-out": common.fan_out(n),
        "layered": common.layered(side, side, seed=1),
    }


def run_counterpoint(wf: cp.Workflow, **options: Any) -> float:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await cp.run(wf, **options)
        took = loop.time() - t0
        if result.status is not cp.RunStatus.SUCCEEDED:
            raise RuntimeError(f"counterpoint run {result.status}")
        return took

    return asyncio.run(main())


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    n = 2_000 if quick else 10_000
    reps = 3 if quick else 7
    rows: list[list[object]] = []
    out: dict[str, Any] = {"steps": n, "reps": reps, "target_layered_ratio": TARGET_LAYERED}
    shapes: dict[str, Any] = {}
    for name, preds in _shapes(n).items():
        t0 = common.now()
        wf = common.workflow(f"overhead-{name}", preds, {"kind": "noop"})
        build_s = common.now() - t0
        times = common.interleaved(
            {
                "counterpoint": lambda wf=wf: run_counterpoint(wf),
                "baseline": lambda preds=preds: baseline.run_noop(preds),
            },
            reps,
        )
        steps = len(preds)
        cp_us = common.median(times["counterpoint"]) / steps * 1e6
        bl_us = common.median(times["baseline"]) / steps * 1e6
        ratio = cp_us / bl_us
        best_ratio = min(times["counterpoint"]) / min(times["baseline"])
        shapes[name] = {
            "steps": steps,
            "edges": common.edges(preds),
            "build_s": build_s,
            "counterpoint_us_per_step": cp_us,
            "baseline_us_per_step": bl_us,
            "ratio": ratio,
            "best_ratio": best_ratio,
            "counterpoint_s": times["counterpoint"],
            "baseline_s": times["baseline"],
        }
        target = f"<= {TARGET_LAYERED:g}" if name == "layered" else ""
        check = common.verdict(ratio, TARGET_LAYERED) if name == "layered" else ""
        rows.append(
            [name, steps, common.edges(preds), cp_us, bl_us, ratio, best_ratio, target, check]
        )
    out["shapes"] = shapes
    out["layered_ratio_ok"] = shapes["layered"]["ratio"] <= TARGET_LAYERED
    text = common.table(
        f"overhead: µs per no-op step (median of {reps} interleaved reps; ratio of medians, "
        "and of the fastest reps)",
        [
            "shape",
            "steps",
            "edges",
            "counterpoint µs",
            "baseline µs",
            "ratio",
            "ratio of bests",
            "target",
            "",
        ],
        rows,
    )
    return out, text
