"""Planning with what past runs say: each agent's median duration replaces the estimates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.runner import LEARN_AFTER, learned_estimates
from counterpoint.scheduler.clock import VirtualClock

WORKFLOW = """\
name: noisy
max_concurrency: 2
agents:
  slow: {kind: sleep}
  fast: {kind: sleep}
steps:
  - {id: s1, agent: slow, estimate: 1s}
  - {id: s2, agent: slow, estimate: 1s, needs: s1}
  - {id: s3, agent: slow, estimate: 1s, needs: s2}
  - {id: f1, agent: fast, estimate: 5s}
  - {id: f2, agent: fast, estimate: 5s}
  - {id: f3, agent: fast, estimate: 5s}
"""


def _durations(run: int) -> dict[str, float]:
    # slow steps really take about 4 s (one outlier run), fast ones about 1 s
    slow = [4.0, 4.2, 40.0, 3.8, 4.0][run]
    return {"slow": slow, "fast": 1.0}


def _run(wf: cp.Workflow, store: cp.Store, k: int) -> cp.RunResult:
    def duration(job: Job) -> float:
        return _durations(k)["slow" if job.step_id.startswith("s") else "fast"]

    return asyncio.run(
        cp.run(
            wf,
            store=store,
            pattern="resource-aware",
            clock=VirtualClock(),
            backend=lambda c: VirtualBackend(c, duration=duration),  # type: ignore[arg-type]
            priority="critical-path",
        )
    )


def test_medians_replace_the_estimates_once_there_are_enough_runs(tmp_path: Path) -> None:
    wf = cp.loads(WORKFLOW)
    store = cp.open_store(tmp_path / "store")
    try:
        assert asyncio.run(learned_estimates(store, wf)) == {}
        for k in range(5):  # each run gives each agent 3 successful steps (LEARN_AFTER)
            _run(wf, store, k)
        learned = asyncio.run(learned_estimates(store, wf))
    finally:
        asyncio.run(store.close())
    assert set(learned) == {"slow", "fast"}
    assert LEARN_AFTER == 3
    assert abs(learned["slow"] - 4.0) < 0.01  # the median of 4, 4.2, 40, 3.8, 4: not the 40
    assert abs(learned["fast"] - 1.0) < 0.01


def test_the_next_run_plans_with_them(tmp_path: Path) -> None:
    wf = cp.loads(WORKFLOW)
    store = cp.open_store(tmp_path / "store")
    try:
        first = _run(wf, store, 0)
        for k in (1, 3):
            _run(wf, store, k)
        later = asyncio.run(
            cp.run(
                wf,
                store=store,
                pattern="resource-aware",
                clock=VirtualClock(),
                backend=lambda c: VirtualBackend(  # type: ignore[arg-type]
                    c, duration=lambda j: 4.0 if j.step_id.startswith("s") else 1.0
                ),
            )
        )
        unlearned = asyncio.run(
            cp.run(
                wf,
                store=store,
                pattern="resource-aware",
                learn=False,
                clock=VirtualClock(),
                backend=lambda c: VirtualBackend(  # type: ignore[arg-type]
                    c, duration=lambda j: 4.0 if j.step_id.startswith("s") else 1.0
                ),
            )
        )
    finally:
        asyncio.run(store.close())
    # believing the estimates, the fast steps (5 s each) look critical and go first: the
    # slow chain (really 12 s) starts late; learned, the chain goes first
    assert first.steps["s1"].start == 1.0
    assert later.planning is not None
    learned = later.planning["learned_estimates_s"]
    assert isinstance(learned, dict) and set(learned) == {"slow", "fast"}
    assert later.steps["s1"].start == 0.0
    assert later.makespan_s == 12.0  # the chain's 12 s, the fast steps beside it
    assert unlearned.planning is not None and "learned_estimates_s" not in unlearned.planning
    assert unlearned.steps["s1"].start == 1.0
    assert unlearned.makespan_s == 13.0
