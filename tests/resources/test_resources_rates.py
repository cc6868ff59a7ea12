"""Rate limits on the virtual clock: never more than allowed in any window, and no slower
than allowed either.

Sliding window (``10/s``): in every window [t, t + interval) that starts at an admission, the
admitted amount is at most the limit. Token bucket (``burst``): in every window of length W,
at most burst + rate x W. Admission times are the StepRecords' start times.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.scheduler.engine import Priority

GUARD_S = 2.0  # real seconds: a simulation that livelocks fails instead of hanging
EPS = 1e-9


def workflow(
    steps: list[dict[str, Any]],
    rates: Mapping[str, object],
    pools: Mapping[str, object] | None = None,
) -> cp.Workflow:
    resources: dict[str, object] = {"rate_limits": dict(rates)}
    if pools:
        resources["pools"] = dict(pools)
    data = {"name": "rates", "resources": resources, "agents": {"w": {"kind": "noop"}}}
    return cp.loads(json.dumps({**data, "steps": steps}))


def simulate(
    wf: cp.Workflow, workers: int | None = None, priority: Priority = "planned"
) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, workers=workers, priority=priority), GUARD_S)

    try:
        result = asyncio.run(go())
    except TimeoutError:
        pytest.fail(f"the simulation did not finish in {GUARD_S:g} s (a livelock?)")
    assert result.status is cp.RunStatus.SUCCEEDED
    return result


def calls(n: int, uses: object, estimate: float = 0.01) -> list[dict[str, Any]]:
    return [{"id": f"s{i}", "agent": "w", "estimate": estimate, "uses": uses} for i in range(n)]


def admitted(
    wf: cp.Workflow, result: cp.RunResult, limit: str, dim: str
) -> list[tuple[float, float]]:
    """(start, amount) of every step's demand on ``limit.dim``, in time order."""
    only = next(iter(wf.resources.rate_limits[limit].limits))
    out = []
    for step in wf.steps:
        amount = step.uses.get(limit)
        if amount is None:
            continue
        if isinstance(amount, dict):
            n = amount.get(dim)
        else:
            n = amount if dim in ("requests", only) else None
        if n is None:
            continue
        start = result.steps[step.id].start
        assert start is not None
        out.append((start, n))
    return sorted(out)


def sliding_excess(
    log: Sequence[tuple[float, float]], amount: float, interval: float
) -> list[tuple[float, float]]:
    """Windows [t, t + interval), t an admission time, holding more than ``amount``."""
    bad = []
    for t, _ in log:
        held = sum(n for u, n in log if t - EPS <= u < t + interval - EPS)
        if held > amount + EPS:
            bad.append((t, held))
    return bad


def bucket_excess(
    log: Sequence[tuple[float, float]], burst: float, rate: float, windows: Sequence[float]
) -> list[tuple[float, float, float]]:
    """Windows [t, t + w], t an admission time, holding more than burst + rate x w."""
    bad = []
    for w in windows:
        for t, _ in log:
            held = sum(n for u, n in log if t - EPS <= u <= t + w + EPS)
            if held > burst + rate * w + EPS:
                bad.append((t, w, held))
    return bad


def check_sliding(wf: cp.Workflow, result: cp.RunResult) -> int:
    """Assert every sliding-window limit held; returns how many admissions were checked."""
    checked = 0
    for name, limit in wf.resources.rate_limits.items():
        for dim, (amount, interval) in limit.limits.items():
            if dim in limit.burst:
                continue
            log = admitted(wf, result, name, dim)
            assert sliding_excess(log, amount, interval) == [], (name, dim)
            checked += len(log)
    return checked


# --- the checkers themselves --------------------------------------------------------------------


def test_the_checkers_see_an_excess() -> None:
    ok = [(0.0, 1.0)] * 10 + [(1.0, 1.0)] * 10
    assert sliding_excess(ok, 10, 1.0) == []
    assert sliding_excess([*ok, (1.5, 1.0)], 10, 1.0) == [(1.0, 11.0)] * 10
    assert sliding_excess([(0.0, 6.0), (0.9, 5.0)], 10, 1.0) == [(0.0, 11.0)]
    assert bucket_excess([(0.0, 1.0)] * 5 + [(0.1, 1.0)], 5, 10, [0.1]) == []
    forged = [(0.0, 1.0)] * 5 + [(0.05, 1.0)] * 2  # 7 in 50 ms; 5 + 10 x 0.05 = 5.5
    assert bucket_excess(forged, 5, 10, [0.05]) == [(0.0, 0.05, 7.0)] * 5


# --- sliding window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "waves"),
    [(1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5]), (100, [10] * 10)],
)
def test_n_calls_at_10_per_s_take_n_over_10_s(n: int, waves: list[int]) -> None:
    wf = workflow(calls(n, {"api": 1}), {"api": "10/s"})
    result = simulate(wf)
    starts = Counter(r.start for r in result.steps.values())
    assert starts == {float(k): w for k, w in enumerate(waves)}
    assert result.makespan_s == pytest.approx(len(waves) - 1 + 0.01)
    check_sliding(wf, result)


def test_the_example_rl_yaml() -> None:
    # 25 calls at 10/s beside 5 one-second steps on a pool of 2 (the /tmp/pat/rl.yaml shape)
    steps = calls(25, {"api": 1}) + [
        {"id": f"d{i}", "agent": "w", "estimate": 1, "uses": {"db": 1}} for i in range(5)
    ]
    wf = workflow(steps, {"api": "10/s"}, {"db": 2})
    result = simulate(wf)
    s = {k: r.start for k, r in result.steps.items()}
    assert [s[f"s{i}"] for i in range(25)] == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
    assert [s[f"d{i}"] for i in range(5)] == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert result.makespan_s == 3.0


def test_per_minute_and_per_hour_limits() -> None:
    wf = workflow(calls(1_200, {"api": 1}), {"api": "500/min"})
    result = simulate(wf, priority="fifo")
    assert Counter(r.start for r in result.steps.values()) == {0.0: 500, 60.0: 500, 120.0: 200}
    wf = workflow(calls(5, {"llm": {"tokens": "40k"}}), {"llm": {"tokens": "90k/h"}})
    result = simulate(wf, priority="fifo")
    assert [r.start for r in result.steps.values()] == [0.0, 0.0, 3600.0, 3600.0, 7200.0]


def test_weighted_demands_in_two_dimensions() -> None:
    # requests 5/s, tokens 1000/s: four 300-token calls fit the requests but not the tokens
    uses = {"llm": {"requests": 1, "tokens": 300}}
    wf = workflow(calls(10, uses), {"llm": {"requests": "5/s", "tokens": "1k/s"}})
    result = simulate(wf, priority="fifo")
    assert Counter(r.start for r in result.steps.values()) == {0.0: 3, 1.0: 3, 2.0: 3, 3.0: 1}
    check_sliding(wf, result)


def test_a_rate_limited_step_waits_for_its_pool_too() -> None:
    # db (a pool of 1) serialises them, 0.1 s each; the limit allows 2 per s
    wf = workflow(calls(6, {"db": 1, "api": 1}, 0.1), {"api": "2/s"}, {"db": 1})
    result = simulate(wf, priority="fifo")
    starts = sorted(r.start for r in result.steps.values())  # type: ignore[type-var]
    assert starts == pytest.approx([0.0, 0.1, 1.0, 1.1, 2.0, 2.1])


def random_workflow(seed: int, pool: bool) -> cp.Workflow:
    """80 steps, a random DAG; demands on two limits (one with two dimensions and its own
    interval each), and with ``pool`` a third of them also need one of a pool of 2."""
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for i in range(80):
        uses: dict[str, object] = {}
        r = rng.random()
        if r < 0.4:
            uses["llm"] = {"requests": 1, "tokens": rng.randint(1, 9) * 100}
        elif r < 0.6:
            uses["llm"] = rng.randint(1, 3)  # requests
        if rng.random() < 0.5:
            uses["api"] = rng.randint(1, 4)
        if rng.random() < 0.3 and pool:
            uses["db"] = 1
        lo = max(0, i - 10)
        needs = rng.sample(range(lo, i), min(i - lo, rng.randint(0, 2)))
        step: dict[str, Any] = {
            "id": f"s{i}",
            "agent": "w",
            "estimate": rng.randint(1, 8) / 8,
            "needs": [f"s{j}" for j in needs],
        }
        if uses:
            step["uses"] = uses
        steps.append(step)
    limits = {"llm": {"requests": "6/s", "tokens": "2k/2s"}, "api": "5/1.5s"}
    return workflow(steps, limits, {"db": 2})


@pytest.mark.parametrize("seed", range(15))
def test_random_workflows_never_exceed_a_sliding_window(seed: int) -> None:
    wf = random_workflow(seed, pool=False)
    result = simulate(wf, priority="fifo" if seed % 2 else "planned")
    assert check_sliding(wf, result) > 80


@pytest.mark.parametrize("seed", range(4))
def test_random_workflows_with_a_pool_never_exceed_a_sliding_window(seed: int) -> None:
    # Steps that wait for a rate limit and also compete for a pool: one passed over often
    # enough for the pool is aged and holds back the others, which must not stop the clock.
    wf = random_workflow(seed, pool=True)
    result = simulate(wf, priority="fifo" if seed % 2 else "planned")
    assert check_sliding(wf, result) > 80


# --- token bucket ------------------------------------------------------------------------------


def test_token_bucket_burst_then_the_rate() -> None:
    wf = workflow(calls(40, {"api": 1}), {"api": {"requests": "10/s", "burst": 5}})
    result = simulate(wf, priority="fifo")
    starts = [result.steps[f"s{i}"].start for i in range(40)]
    assert starts == pytest.approx([0.0] * 5 + [0.1 * k for k in range(1, 36)])
    log = admitted(wf, result, "api", "requests")
    assert bucket_excess(log, 5, 10, [0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.5]) == []


def test_token_bucket_never_exceeds_burst_plus_rate_times_window() -> None:
    uses = [{"llm": {"requests": 1, "tokens": 100 * (k % 7 + 1)}} for k in range(60)]
    steps = [{"id": f"s{k}", "agent": "w", "estimate": 0.05, "uses": u} for k, u in enumerate(uses)]
    limits = {"requests": "10/s", "tokens": "1k/s", "burst": {"tokens": 2000, "requests": 4}}
    wf = workflow(steps, {"llm": limits})
    result = simulate(wf, priority="fifo")
    windows = [0.0, 0.1, 0.3, 0.5, 1.0, 2.5, 5.0]
    assert bucket_excess(admitted(wf, result, "llm", "tokens"), 2000, 1000, windows) == []
    assert bucket_excess(admitted(wf, result, "llm", "requests"), 4, 10, windows) == []
    # and it is used: 60 calls, 24.6k tokens at 1k/s after a burst of 2k
    total = sum(100 * (k % 7 + 1) for k in range(60))
    assert result.makespan_s <= (total - 2000) / 1000 + 1.0


def test_bucket_and_window_in_one_limit() -> None:
    # tokens: a bucket of 500 at 100/s; requests: a sliding window of 3 per second
    uses = {"llm": {"requests": 1, "tokens": 100}}
    wf = workflow(
        calls(20, uses), {"llm": {"requests": "3/s", "tokens": "100/s", "burst": {"tokens": 500}}}
    )
    result = simulate(wf, priority="fifo")
    assert check_sliding(wf, result) == 20
    tokens = admitted(wf, result, "llm", "tokens")
    assert bucket_excess(tokens, 500, 100, [0.0, 0.5, 1.0, 3.0, 10.0]) == []
    # the bucket would allow 5 at once, the window 3; then the bucket's 100 tokens a second
    starts = Counter(round(r.start, 9) for r in result.steps.values())  # type: ignore[arg-type]
    assert starts == {0.0: 3, 1.0: 3} | {float(t): 1 for t in range(2, 16)}
    assert result.makespan_s == pytest.approx(15.01)


# --- with a worker limit -----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [3, 10])
def test_a_worker_limit_and_a_rate_limit_together(workers: int) -> None:
    # 25 calls at 10/s, 10 ms each, on 3 workers: 3 + 3 + 3 + 1 in the first 40 ms, the
    # next ten from 1 s (as the first ten leave the window), the last five from 2 s.
    wf = workflow(calls(25, {"api": 1}), {"api": "10/s"})
    result = simulate(wf, workers, "fifo")
    check_sliding(wf, result)
    starts = sorted(r.start for r in result.steps.values())  # type: ignore[type-var]
    per_second = Counter(math.floor(s + EPS) for s in starts)
    assert per_second == {0: 10, 1: 10, 2: 5}
    if workers == 3:
        assert result.makespan_s == pytest.approx(2.02)
    else:
        assert result.makespan_s == pytest.approx(2.01)
