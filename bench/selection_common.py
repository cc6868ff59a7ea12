"""Shared by the selection benchmarks (see selection.py): the agents' true behaviour and a run
on the virtual clock.

Everything runs on the virtual clock (``VirtualClock`` + ``VirtualBackend``): no agent is
called. The agents' TRUE behaviour lives only in the backend's ``duration`` and ``fail``
callbacks (``Sampler``): each step has a true median duration (its declared estimate times
its agent's bias), lognormal noise around it, a share of 4-5x outliers for some agents, and a
failure probability per attempt. One sample is drawn per (seed, step, attempt, contender),
from a generator seeded by those four, so that both callbacks agree, and every pattern meets
the same durations for the same seed (common random numbers). A step whose agent is hedged
(a ``RaceAgent``) draws two independent contenders: it succeeds at the earliest successful
one's time, and fails only if both fail, at the later one's time.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.patterns.race import RaceAgent
from counterpoint.scheduler.clock import Clock, VirtualClock
from counterpoint.selection import Recommendation

WARMUP = 5  # runs with a store before selection (suite) or before reading estimates

# --- the agents' true behaviour ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truth:
    """How an agent really behaves: its steps take ``bias`` x their declared estimate
    (median), with lognormal noise ``sigma``, a share ``outliers`` of 4-5x slower ones, and
    fail with probability ``fail`` per attempt."""

    bias: float = 1.0
    sigma: float = 0.3
    outliers: float = 0.0
    fail: float = 0.0


@dataclass(frozen=True, slots=True)
class Case:
    """A workflow of the suite: what the user wrote, and how its agents really behave."""

    name: str
    kind: str
    data: dict[str, Any]
    truth: dict[str, Truth]
    workflow: cp.Workflow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "workflow", cp.loads(json.dumps(self.data)))

    def medians(self) -> dict[str, tuple[float, Truth]]:
        """Each step's true median duration and its agent's truth (join steps: none)."""
        wf = self.workflow
        out: dict[str, tuple[float, Truth]] = {}
        for s, est in zip(wf.steps, wf.graph.estimates, strict=True):
            truth = self.truth.get(s.agent)
            if truth is not None:
                out[s.id] = (est * truth.bias, truth)
        return out


class Sampler:
    """The backend's callbacks for one run: one sample per (step, attempt), cached."""

    def __init__(self, medians: Mapping[str, tuple[float, Truth]], seed: int) -> None:
        self.medians = medians
        self.seed = seed
        self.drawn: dict[tuple[str, int], tuple[float, str | None]] = {}

    def _draw(self, step: str, attempt: int, contender: int) -> tuple[float, bool]:
        median, truth = self.medians[step]
        rng = random.Random(f"{self.seed}/{step}/{attempt}/{contender}")
        took = median * math.exp(truth.sigma * rng.gauss(0.0, 1.0))
        if rng.random() < truth.outliers:
            took *= rng.uniform(4.0, 5.0)
        return took, rng.random() < truth.fail

    def _outcome(self, job: Job) -> tuple[float, str | None]:
        key = (job.step_id, job.attempt)
        found = self.drawn.get(key)
        if found is not None:
            return found
        if job.step_id not in self.medians:  # a construct's join: instant
            found = (0.0, None)
        elif isinstance(job.agent, RaceAgent):  # two contenders; the first success wins
            draws = [self._draw(job.step_id, job.attempt, k) for k in range(2)]
            wins = [t for t, failed in draws if not failed]
            if wins:
                found = (min(wins), None)
            else:
                found = (max(t for t, _ in draws), "both contenders failed")
        else:
            took, failed = self._draw(job.step_id, job.attempt, 0)
            found = (took, "failed (simulated)" if failed else None)
        self.drawn[key] = found
        return found

    def duration(self, job: Job) -> float:
        return self._outcome(job)[0]

    def fail(self, job: Job) -> str | None:
        return self._outcome(job)[1]

    def backend(self, clock: Clock) -> VirtualBackend:
        assert isinstance(clock, VirtualClock)
        return VirtualBackend(clock, duration=self.duration, fail=self.fail)


def true_median(truth: Truth, median: float) -> float:
    """The median of the duration distribution (lognormal, with the outliers' share)."""
    nd = statistics.NormalDist()
    factors = [4.0 + k / 8 for k in range(9)]  # the outliers' factor, uniform in [4, 5]

    def cdf(x: float) -> float:
        plain = nd.cdf(math.log(x / median) / truth.sigma)
        slow = statistics.fmean(nd.cdf(math.log(x / (f * median)) / truth.sigma) for f in factors)
        return (1 - truth.outliers) * plain + truth.outliers * slow

    lo, hi = median / 10, median * 10
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
    return math.sqrt(lo * hi)


async def run_case(
    case: Case,
    seed: int,
    *,
    store: cp.MemoryStore | None = None,
    selection: Recommendation | None = None,
    adapt: bool = True,
) -> cp.RunResult:
    sampler = Sampler(case.medians(), seed)
    return await cp.run(
        case.workflow,
        selection=selection,
        clock=VirtualClock(),
        backend=sampler.backend,
        store=store,
        adapt=adapt,
        seed=seed,
    )
