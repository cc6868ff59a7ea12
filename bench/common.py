"""What the benchmarks share: DAG shapes, workflows built from them, timing and tables.

A DAG here is ``preds``: a list where ``preds[i]`` lists the steps step ``i`` needs, every one
of them smaller than ``i`` (so index order is a topological order). Step ``i`` is called
``s{i}`` in workflows.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import counterpoint as cp

Preds = list[list[int]]


# --- shapes ----------------------------------------------------------------------------------


def chain(n: int) -> Preds:
    """``s0 <- s1 <- ... <- s{n-1}``: one step at a time."""
    return [[]] + [[i - 1] for i in range(1, n)]


def fan_out(n: int) -> Preds:
    """One root, ``n - 1`` leaves that all need it."""
    return [[]] + [[0] for _ in range(1, n)]


def fan_in_out(width: int) -> Preds:
    """A root, ``width`` middle steps that need it, and a sink that needs all of them."""
    return [[]] + [[0] for _ in range(width)] + [list(range(1, width + 1))]


def layered(levels: int, width: int, seed: int, lo: int = 1, hi: int = 3) -> Preds:
    """``levels`` levels of ``width`` steps; each step below the first needs ``lo``-``hi``
    random steps of the level above (fixed ``seed``)."""
    rng = random.Random(seed)
    preds: Preds = [[] for _ in range(width)]
    for level in range(1, levels):
        base = (level - 1) * width
        for _ in range(width):
            k = rng.randint(lo, min(hi, width))
            preds.append(sorted(base + j for j in rng.sample(range(width), k)))
    return preds


def random_dag(n: int, seed: int, mean_preds: float = 2.0, window: int = 40) -> Preds:
    """Random order-based DAG: each step needs about ``mean_preds`` random earlier steps among
    the ``window`` before it (irregular, no levels)."""
    rng = random.Random(seed)
    preds: Preds = [[]]
    for i in range(1, n):
        lo = max(0, i - window)
        k = min(i - lo, rng.randint(0, int(2 * mean_preds)))
        preds.append(sorted(rng.sample(range(lo, i), k)))
    return preds


def edges(preds: Preds) -> int:
    return sum(len(p) for p in preds)


def longest_path(preds: Preds, durations: Sequence[float]) -> float:
    """Critical path length: the longest sum of durations along a dependency path."""
    finish = [0.0] * len(preds)
    for i, ps in enumerate(preds):
        finish[i] = durations[i] + max((finish[p] for p in ps), default=0.0)
    return max(finish, default=0.0)


# --- workflows -------------------------------------------------------------------------------


def workflow(
    name: str,
    preds: Preds,
    agent: dict[str, Any],
    inputs: Sequence[object] | None = None,
    estimates: Sequence[float] | None = None,
) -> cp.Workflow:
    """The workflow for ``preds`` with one agent ``a`` for every step, through the builder."""
    b = cp.WorkflowBuilder(name)
    b.agent("a", **agent)
    for i, ps in enumerate(preds):
        b.step(
            f"s{i}",
            agent="a",
            needs=[f"s{p}" for p in ps],
            input=None if inputs is None else inputs[i],
            estimate=None if estimates is None else estimates[i],
        )
    return b.build()


# --- timing ----------------------------------------------------------------------------------


def timed(fn: Callable[[], float]) -> float:
    """Collect garbage first so that no side pays for the other's leftovers."""
    gc.collect()
    return fn()


def interleaved(
    sides: dict[str, Callable[[], float]], reps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each side ``reps`` times, alternating sides (and their order on every rep), so that
    drifts in the machine's load hit all sides alike. Each callable returns its own timing."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            timed(sides[name])
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(timed(sides[name]))
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def now() -> float:
    return time.perf_counter()


# --- tables ----------------------------------------------------------------------------------


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table; numbers right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in cells)) for k, h in enumerate(header)]
    numeric = [all(_is_num(row[k]) for row in rows) for k in range(len(header))]

    def line(parts: Sequence[str]) -> str:
        return "  ".join(
            p.rjust(w) if num else p.ljust(w)
            for p, w, num in zip(parts, widths, numeric, strict=True)
        ).rstrip()

    out = [f"\n== {title}", line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _is_num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fmt(x: object) -> str:
    if isinstance(x, float):
        if x == 0 or abs(x) >= 100:
            return f"{x:,.1f}"
        if abs(x) >= 1:
            return f"{x:.3f}"
        return f"{x:.4f}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)


def verdict(value: float, limit: float) -> str:
    return "ok" if value <= limit else "MISSED"
