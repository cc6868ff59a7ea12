"""Selection: does a run adapt to a capacity drop?

A pool-bound workflow (``_capacity_workflow``) whose pool goes from 16 to 8 slots at 30 % of
the makespan selection expects (a ``capacity_changed`` event set with
``engine.clock.call_later``). Each step takes exactly its estimate. The adaptive run: the
pattern selection recommends for full capacity, ``adapt=True``. The reference: every
admissible pattern with the same drop and ``adapt=False``; the best of those. Lower bound:
max(critical path, T + (W - C T - (C - C') L) / C'), W the pool's work in unit-seconds, C and
C' the capacities before and after the drop at time T, L the longest step using the pool
(steps running at T keep what they hold until they end, so the pool may be over C' for at
most L after T). Target: adaptive / reference <= 1.1. The drop is sent as
``{"pool": "slots", "capacity": 8}``; an ``adaptation_refused`` reason, if any, is reported.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import common
import counterpoint as cp
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.scheduler.clock import Clock, VirtualClock
from counterpoint.selection import Recommendation, select

TARGET_CAPACITY = 1.1  # adaptive / best non-adaptive

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


def capacity_bench() -> tuple[dict[str, Any], str]:
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
