"""The cost of handoffs: a 10,000-step sequence with a checkpoint at every handoff, beside the
same 10,000 steps chained by plain ``needs`` without validation, measured in the same run.

With checkpoints each step gets a handoff package (previous result, results so far, the
accumulated context) and its output is checked (a trivial validator: one required key) before
the next step starts. The figure is the difference per handoff. Target: <= 20 µs.
"""

from __future__ import annotations

from typing import Any

import common
import counterpoint as cp
from overhead import run_counterpoint

TARGET_US = 20.0


def _workflows(n: int) -> tuple[cp.Workflow, cp.Workflow]:
    plain = cp.WorkflowBuilder("chain")
    plain.agent("a", kind="noop")
    for i in range(n):
        plain.step(f"s{i}", agent="a", needs=[f"s{i - 1}"] if i else [], input={"ok": i})
    seq = cp.WorkflowBuilder("sequence")
    seq.agent("a", kind="noop")
    seq.add(
        cp.sequence(
            "all",
            *(
                cp.step(f"s{i}", agent="a", input={"ok": i}, validate={"required": ["ok"]})
                for i in range(n)
            ),
        )
    )
    return plain.build(), seq.build()


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    n = 2_000 if quick else 10_000
    reps = 3 if quick else 7
    plain, seq = _workflows(n)
    times = common.interleaved(
        {
            "sequence with checkpoints": lambda: run_counterpoint(seq),
            "plain chain": lambda: run_counterpoint(plain),
        },
        reps,
    )
    with_s = common.median(times["sequence with checkpoints"])
    without_s = common.median(times["plain chain"])
    per_handoff = (with_s - without_s) / (n - 1) * 1e6
    best = (min(times["sequence with checkpoints"]) - min(times["plain chain"])) / (n - 1) * 1e6
    out = {
        "steps": n,
        "reps": reps,
        "sequence_s": with_s,
        "plain_s": without_s,
        "us_per_handoff": per_handoff,
        "us_per_handoff_best_reps": best,
        "target_us": TARGET_US,
        "ok": per_handoff <= TARGET_US,
        "times": times,
    }
    text = common.table(
        f"handoff: a {n:,}-step sequence with a checkpoint at every handoff, beside the same "
        f"chain without (median of {reps} interleaved reps)",
        ["side", "ms", "µs/step"],
        [
            ["sequence with checkpoints", with_s * 1e3, with_s / n * 1e6],
            ["plain chain", without_s * 1e3, without_s / n * 1e6],
        ],
    )
    text += (
        f"\nhandoff + validation: {per_handoff:.2f} µs per handoff "
        f"(fastest reps: {best:.2f}); target <= {TARGET_US:g} µs "
        f"[{common.verdict(per_handoff, TARGET_US)}]"
    )
    return out, text
