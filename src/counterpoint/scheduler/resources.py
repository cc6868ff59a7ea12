"""Resources steps share: pools with capacities, and rate limits.

Admission is atomic: a step starts only when every one of its demands fits at once (all its
pools have room and all its rate limits allow it now); it takes everything together or
nothing, so no step holds a resource while waiting for another, and no set of steps can
deadlock. A step that cannot start is passed over for lower-priority steps that can
(backfilling); once it has been passed over ``AGING_AFTER`` times it is *aged*: steps that
compete with it for a pool wait behind it, so it cannot starve.

Rate limits: at most an amount per interval in each dimension over any sliding window (a log
of what was admitted), or, with ``burst``, a token bucket of that size refilled at the rate.
Time is the clock's: the same code runs on the virtual clock.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from counterpoint.model.workflow import Resources, Step

__all__ = ["AGING_AFTER", "Demand", "ResourceManager", "compile_demands"]

AGING_AFTER = 8
BACKFILL_WINDOW = 16  # steps passed over in one take before the scan stops until next time
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Demand:
    """What one step takes: from pools (given back when it ends) and from rate limits."""

    pools: tuple[tuple[str, str, float], ...]  # (pool, dimension, amount)
    rates: tuple[tuple[str, str, float], ...]  # (limit, dimension, amount)
    budgets: tuple[tuple[str, float], ...] = ()  # (budget, amount reserved until it ends)


def compile_demands(
    resources: Resources, steps: Sequence[Step]
) -> tuple[list[Demand | None], list[tuple[int, tuple[str | int, ...], str, bool]]]:
    """Each step's demand, and problems as (step index, path inside the step, message,
    whether it is about the key rather than the value)."""
    demands: list[Demand | None] = []
    problems: list[tuple[int, tuple[str | int, ...], str, bool]] = []
    names = [*resources.pools, *resources.rate_limits, *resources.budgets]
    for i, step in enumerate(steps):
        if not step.uses:
            demands.append(None)
            continue
        pools: list[tuple[str, str, float]] = []
        rates: list[tuple[str, str, float]] = []
        budgets: list[tuple[str, float]] = []
        for name, amount in step.uses.items():
            where: tuple[str | int, ...] = ("uses", name)
            if name in resources.budgets:
                problem = _budget_problem(resources, step, name, amount)
                if problem is not None:
                    problems.append((i, where, problem, False))
                elif isinstance(amount, float):
                    budgets.append((name, amount))
                continue
            pool = resources.pools.get(name)
            limit = resources.rate_limits.get(name)
            if pool is None and limit is None:
                problems.append((i, where, _unknown(step, name, names), True))
                continue
            dims = pool.capacity if pool is not None else limit.limits  # type: ignore[union-attr]
            if isinstance(amount, dict):
                asked = amount
            elif len(dims) == 1:
                asked = {next(iter(dims)): amount}
            elif "requests" in dims:
                asked = {"requests": amount}
            else:
                problems.append(
                    (
                        i,
                        where,
                        f"step {step.id!r}: say how much of each of {', '.join(dims)} it uses",
                        False,
                    )
                )
                continue
            for dim, n in asked.items():
                if dim not in dims:
                    problems.append(
                        (
                            i,
                            (*where, dim),
                            f"step {step.id!r}: {name!r} has no {dim!r} (it has {', '.join(dims)})",
                            True,
                        )
                    )
                    continue
                if pool is not None:
                    cap = pool.capacity[dim]
                    if n > cap + _EPS:
                        problems.append(
                            (
                                i,
                                (*where, dim) if isinstance(amount, dict) else where,
                                f"step {step.id!r} needs {_human(n)} {dim} of pool {name!r}, which "
                                f"has {_human(cap)}: it could never start",
                                False,
                            )
                        )
                    pools.append((name, dim, n))
                else:
                    assert limit is not None
                    most = limit.burst.get(dim, limit.limits[dim][0])
                    if n > most + _EPS:
                        problems.append(
                            (
                                i,
                                (*where, dim) if isinstance(amount, dict) else where,
                                f"step {step.id!r} asks {n:g} {dim} of rate limit {name!r}, more "
                                f"than it ever allows at once ({most:g}): it could never start",
                                False,
                            )
                        )
                    rates.append((name, dim, n))
        demands.append(Demand(tuple(pools), tuple(rates), tuple(budgets)))
    return demands, problems


def _human(n: float) -> str:
    """An amount as people write it: ``33GiB``, ``1.5MiB``, ``12``."""
    if n >= 2**10:
        for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if n >= size:
                return f"{n / size:.4g}{unit}"
    return f"{n:g}"


def _unknown(step: Step, name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = f"; resources: {', '.join(names)}" if names and not close else ""
    return f"step {step.id!r} uses unknown resource {name!r}{hint}{known}"


def _budget_problem(resources: Resources, step: Step, name: str, amount: object) -> str | None:
    limit = resources.budgets[name].limit
    if not isinstance(amount, float):
        return f"step {step.id!r}: budget {name!r} takes one amount"
    if amount > limit + _EPS:
        return (
            f"step {step.id!r} needs {amount:g} of budget {name!r}, which is {limit:g} in all: "
            "it could never start"
        )
    return None


@dataclass(slots=True)
class _Window:
    """At most ``amount`` per ``interval`` over any sliding window."""

    amount: float
    interval: float
    log: deque[tuple[float, float]] = field(default_factory=deque)
    used: float = 0.0

    def _expire(self, now: float) -> None:
        log = self.log
        while log and log[0][0] + self.interval <= now + _EPS:
            self.used -= log.popleft()[1]

    def allows(self, n: float, now: float) -> bool:
        self._expire(now)
        return self.used + n <= self.amount + _EPS

    def take(self, n: float, now: float) -> None:
        self.log.append((now, n))
        self.used += n

    def when(self, n: float, now: float) -> float:
        """The earliest time ``n`` more would be allowed."""
        self._expire(now)
        excess = self.used + n - self.amount
        if excess <= _EPS:
            return now
        freed = 0.0
        for t, m in self.log:
            freed += m
            if freed >= excess - _EPS:
                return t + self.interval
        return now + self.interval


@dataclass(slots=True)
class _Bucket:
    """A token bucket of ``size``, refilled at ``rate`` per second."""

    size: float
    rate: float
    level: float
    at: float = 0.0

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.size, self.level + (now - self.at) * self.rate)
            self.at = now

    def allows(self, n: float, now: float) -> bool:
        self._refill(now)
        return self.level + _EPS >= n

    def take(self, n: float, now: float) -> None:
        self._refill(now)
        self.level -= n

    def when(self, n: float, now: float) -> float:
        self._refill(now)
        return now if self.level + _EPS >= n else now + (n - self.level) / self.rate


class ResourceManager:
    """Pools and rate limits of one run, and the demand of each step."""

    def __init__(
        self,
        resources: Resources,
        demands: list[Demand | None],
        start: float,
        spent: dict[str, float] | None = None,
    ) -> None:
        """``spent``: what earlier sessions of this run charged to each budget."""
        self.demands = demands
        self.budgets = resources.budgets
        self.spent: dict[str, float] = dict.fromkeys(resources.budgets, 0.0)
        self.spent.update(spent or {})
        self.reserved: dict[str, float] = dict.fromkeys(resources.budgets, 0.0)
        self.measured: dict[int, dict[str, float]] = {}  # step -> budget -> charged
        self.charges: list[tuple[int, str, float]] = []  # to journal: (step, budget, amount)
        self.exhausted: str | None = None  # a budget that stops new work
        self.blocked: tuple[int, float] | None = None  # the step it cannot cover, and its need
        self.free: dict[tuple[str, str], float] = {
            (name, dim): cap
            for name, pool in resources.pools.items()
            for dim, cap in pool.capacity.items()
        }
        self.limits: dict[tuple[str, str], _Window | _Bucket] = {}
        for name, limit in resources.rate_limits.items():
            for dim, (amount, interval) in limit.limits.items():
                burst = limit.burst.get(dim)
                self.limits[name, dim] = (
                    _Bucket(burst, amount / interval, burst, start)
                    if burst is not None
                    else _Window(amount, interval)
                )
        self.skipped = [0] * len(demands)
        self.held: dict[int, float] = {}  # steps passed over for a rate limit -> when they fit
        self.aged_steps: set[int] = set()
        self.pools_of: list[frozenset[tuple[str, str]]] = [
            frozenset((name, dim) for name, dim, _ in d.pools) if d is not None else frozenset()
            for d in demands
        ]

    def fits(self, i: int, now: float) -> bool:
        d = self.demands[i]
        if d is None:
            return True
        free = self.free
        for name, dim, n in d.pools:
            if free[name, dim] + _EPS < n:
                return False
        limits = self.limits
        if not all(limits[name, dim].allows(n, now) for name, dim, n in d.rates):
            return False
        for name, n in d.budgets:
            left = self.budgets[name].limit - self.spent[name] - self.reserved[name]
            if n > left + _EPS:
                if self.reserved[name] <= _EPS:  # nothing running can give any back
                    self.exhausted = name
                    self.blocked = (i, n)
                return False
        return True

    def rate_wait(self, i: int, now: float) -> float | None:
        """When the rate limits would let step ``i`` start (``None``: they are not in its way)."""
        d = self.demands[i]
        if d is None or not d.rates:
            return None
        when = max(self.limits[name, dim].when(n, now) for name, dim, n in d.rates)
        return when if when > now + _EPS else None

    def acquire(self, i: int, now: float) -> None:
        d = self.demands[i]
        self.skipped[i] = 0
        self.held.pop(i, None)
        self.aged_steps.discard(i)
        if d is None:
            return
        for name, dim, n in d.pools:
            self.free[name, dim] -= n
        for name, dim, n in d.rates:
            self.limits[name, dim].take(n, now)
        for name, n in d.budgets:
            self.reserved[name] += n

    def release(self, i: int) -> None:
        """Step ``i`` ended: its pools come back; its budgets are charged what it measured
        (or, if it measured nothing, what it declared)."""
        d = self.demands[i]
        if d is None:
            return
        for name, dim, n in d.pools:
            self.free[name, dim] += n
        measured = self.measured.pop(i, {})
        for name, n in d.budgets:
            self.reserved[name] -= n
            self._spend(i, name, measured.pop(name, n))
        for name, amount in measured.items():  # measured, not declared: charged at once
            self._spend(i, name, amount)

    def _spend(self, i: int, name: str, amount: float) -> None:
        self.spent[name] += amount
        self.charges.append((i, name, amount))
        if self.spent[name] >= self.budgets[name].limit - _EPS:
            self.exhausted = name

    def charge(self, i: int, resource: str, amounts: dict[str, float], now: float) -> None:
        """What step ``i`` measured it used: budgets are charged when it ends (instead of its
        declared demand); rate limits count what exceeds its declared demand from now on."""
        d = self.demands[i]
        if resource in self.budgets:
            total = sum(amounts.values())
            declared = {name for name, _ in d.budgets} if d is not None else set()
            if resource in declared:
                mine = self.measured.setdefault(i, {})
                mine[resource] = mine.get(resource, 0.0) + total
            else:
                self._spend(i, resource, total)
            return
        for dim, amount in amounts.items():
            key = (resource, dim or "requests")
            limit = self.limits.get(key)
            if limit is None:
                continue
            declared_n = sum(n for name, dm, n in (d.rates if d else ()) if (name, dm) == key)
            if amount > declared_n + _EPS:
                limit.take(amount - declared_n, now)

    def take_charges(self) -> list[tuple[int, str, float]]:
        charges, self.charges = self.charges, []
        return charges

    def begin_take(self) -> None:
        """A new scan: waits for rate limits are noted afresh (a step not looked at this time
        is looked at again when something ends or a noted wait is over)."""
        self.held.clear()

    def passed_over(self, i: int, now: float) -> None:
        self.skipped[i] += 1
        if self.skipped[i] >= AGING_AFTER:
            self.aged_steps.add(i)
        wait = self.rate_wait(i, now)
        if wait is not None:
            self.held[i] = wait
        else:
            self.held.pop(i, None)

    def aged(self, i: int) -> bool:
        return self.skipped[i] >= AGING_AFTER

    def competes(self, i: int, j: int) -> bool:
        """Whether steps ``i`` and ``j`` want some pool in common."""
        return not self.pools_of[i].isdisjoint(self.pools_of[j])

    def next_wake(self) -> float | None:
        """The earliest time a step passed over for a rate limit may start."""
        return min(self.held.values(), default=None)
