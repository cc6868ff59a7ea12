"""Resources steps share: pools with capacities, and rate limits.

Admission is atomic: a step starts only when every one of its demands fits at once (all its
pools have room and all its rate limits allow it now); it takes everything together or
nothing, so no step holds a resource while waiting for another, and no set of steps can
deadlock. A step that cannot start is passed over for lower-priority steps that can
(backfilling); once lower-priority steps have overtaken it this way ``AGING_AFTER`` times it
is *aged*: steps that compete with it for a pool wait behind it, so it cannot starve.

Rate limits: at most an amount per interval in each dimension over any sliding window (a log
of what was admitted), or, with ``burst``, a token bucket of that size refilled at the rate.
Time is the clock's: the same code runs on the virtual clock.

Time windows (temporal constraints): a step that uses a resource outside its windows waits,
without counting as passed over, until one opens (the wall time is the run's start plus
the clock's time since). Overflow (soft constraints): a pool with ``overflow`` may go above
its capacity by that much, for a step that would miss its deadline by waiting; each time is
recorded. Fair pools: streams that compete for one are held to their weighted share of it
while another stream has work waiting for it (work-conserving: an idle share is used).
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from counterpoint.model.windows import WindowSet
from counterpoint.model.workflow import Resources, Step

__all__ = ["AGING_AFTER", "Demand", "Overflow", "ResourceManager", "compile_demands"]

AGING_AFTER = 8
BACKFILL_WINDOW = 16  # steps passed over in one take before the scan stops until next time
_EPS = 1e-9
_WINDOW_HORIZON_S = 366 * 86400.0  # windows that do not open together within it never do
_MAX_WINDOW_HOPS = 1000


@dataclass(frozen=True, slots=True)
class Demand:
    """What one step takes: from pools (given back when it ends) and from rate limits."""

    pools: tuple[tuple[str, str, float], ...]  # (pool, dimension, amount)
    rates: tuple[tuple[str, str, float], ...]  # (limit, dimension, amount)
    budgets: tuple[tuple[str, float], ...] = ()  # (budget, amount reserved until it ends)
    windows: tuple[str, ...] = ()  # resources it uses that have time windows


_NO_DEMAND = Demand((), ())


@dataclass(frozen=True, slots=True)
class Overflow:
    """A soft pool went above its capacity for a step that would have missed a deadline."""

    step: int
    pool: str
    dimension: str
    over: float  # how far above the capacity
    capacity: float
    at: float  # clock time


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
        gated = tuple(
            name
            for name in step.uses
            if ((pool := resources.pools.get(name)) is not None and pool.available)
            or ((limit := resources.rate_limits.get(name)) is not None and limit.available)
        )
        demands.append(Demand(tuple(pools), tuple(rates), tuple(budgets), gated))
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
    """Pools, rate limits, windows and budgets of one run, and the demand of each step."""

    def __init__(
        self,
        resources: Resources,
        demands: list[Demand | None],
        start: float,
        spent: dict[str, float] | None = None,
        *,
        wall_offset: float = 0.0,
        estimates: Sequence[float] = (),
        latest_finish: Sequence[float] | None = None,
        groups: Sequence[int] | None = None,
        weights: Sequence[float] = (),
    ) -> None:
        """``spent``: what earlier sessions of this run charged to each budget.
        ``wall_offset``: epoch seconds minus clock seconds, for time windows.
        ``estimates`` and ``latest_finish`` (clock time each step must end by to meet the
        deadlines; ``inf`` if none): for overflowing soft pools. ``groups`` (a stream per
        step, -1 for none) and ``weights`` (a weight per stream): for fair pools."""
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
        self.capacity = dict(self.free)
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
        self.why = ""  # why the last ``fits`` said no: pool, rate, budget, window, fair
        # time windows
        self.wall_offset = wall_offset
        self.windows: dict[str, WindowSet] = {
            name: WindowSet(windows, resources.timezone)
            for name, windows in [
                *((n, p.available) for n, p in resources.pools.items()),
                *((n, r.available) for n, r in resources.rate_limits.items()),
            ]
            if windows
        }
        self._window_state: dict[str, tuple[bool, float | None]] = {}  # valid from ``_window_at``
        self._window_at: dict[str, float] = {}
        self.opens_at: float | None = None  # clock time the windows in the way open (None: never)
        self.closed_by = ""  # a resource whose window is closed
        self.never = ""  # why a step's windows never open (again, together)
        # soft pools: overflow for steps that would miss a deadline by waiting
        self.overflow: dict[tuple[str, str], float] = {
            (name, dim): extra
            for name, pool in resources.pools.items()
            for dim, extra in pool.overflow.items()
        }
        self.estimates = estimates
        self.latest_finish = latest_finish
        self.started_at: dict[int, float] = {}  # running steps, for soft pools' waits
        self.overflows: list[Overflow] = []  # to record: each time a pool overflowed
        self._overflowing: list[tuple[str, str, float]] = []
        # fair pools
        self.fair = frozenset(name for name, pool in resources.pools.items() if pool.fair)
        self.groups = groups
        self.weights = weights
        self.waiting: dict[str, dict[int, int]] = {name: {} for name in self.fair}
        self.holding: dict[str, dict[int, float]] = {name: {} for name in self.fair}
        self.starved: dict[str, set[int]] = {name: set() for name in self.fair}
        self.track_ready = bool(self.fair) and groups is not None

    # --- admission ----------------------------------------------------------------------------

    def fits(self, i: int, now: float) -> bool:
        d = self.demands[i]
        if d is None:
            return True
        if d.windows and not self._windows_open(d.windows, now):
            self.why = "window"
            return False
        free = self.free
        over: list[tuple[str, str, float]] | None = None
        for name, dim, n in d.pools:
            if free[name, dim] + _EPS < n:
                extra = self.overflow.get((name, dim), 0.0)
                if free[name, dim] + extra + _EPS < n or not self._urgent(i, name, dim, n, now):
                    self.why = "pool"
                    if name in self.fair and self.groups is not None:
                        self._note_starved(name, self.groups[i])
                    return False
                if over is None:
                    over = []
                over.append((name, dim, n - max(free[name, dim], 0.0)))
        limits = self.limits
        if not all(limits[name, dim].allows(n, now) for name, dim, n in d.rates):
            self.why = "rate"
            return False
        for name, n in d.budgets:
            left = self.budgets[name].limit - self.spent[name] - self.reserved[name]
            if n > left + _EPS:
                if self.reserved[name] <= _EPS:  # nothing running can give any back
                    self.exhausted = name
                    self.blocked = (i, n)
                self.why = "budget"
                return False
        if self.fair and self.groups is not None and not self._fair_share(i, d):
            self.why = "fair"
            return False
        self._overflowing = over or []
        return True

    def _windows_open(self, names: tuple[str, ...], now: float) -> bool:
        """Whether all the windowed resources in ``names`` are open now; if not, ``opens_at``
        is the clock time they next are all open together (``None``: never within a year,
        ``never`` says why)."""
        wall = now + self.wall_offset
        at = wall
        for _ in range(_MAX_WINDOW_HOPS):
            later = at
            for name in names:
                is_open, change = self._window(name, at)
                if is_open:
                    continue
                if change is None:
                    self._closed(wall, f"resource {name!r} has no time window open")
                    return False
                later = max(later, change)
            if later == at:  # all open at ``at``
                if at == wall:
                    return True
                self.opens_at = at - self.wall_offset
                self.closed_by = names[0]
                return False
            if later - wall > _WINDOW_HORIZON_S:
                break
            at = later
        together = " and ".join(repr(n) for n in names)
        self._closed(wall, f"the time windows of {together} are never open together in a year")
        return False

    def _window(self, name: str, wall: float) -> tuple[bool, float | None]:
        state = self._window_state.get(name)
        at = self._window_at.get(name, 0.0)
        if state is None or wall < at or (state[1] is not None and wall >= state[1] - _EPS):
            state = self._window_state[name] = self.windows[name].state(wall)
            self._window_at[name] = wall
        return state

    def _closed(self, wall: float, why: str) -> None:
        self.opens_at = None
        self.never = why

    def _urgent(self, i: int, name: str, dim: str, n: float, now: float) -> bool:
        """Whether waiting for ``n`` of the pool to come back would make step ``i`` miss the
        latest time it may end (its deadline, or the run's less the work after it)."""
        latest = self.latest_finish
        if latest is None or latest[i] == float("inf"):
            return False
        short = n - self.free[name, dim]
        back = sorted(
            (t + self.estimates[j], amount)
            for j, t in self.started_at.items()
            for pn, pd, amount in (self.demands[j] or _NO_DEMAND).pools
            if (pn, pd) == (name, dim)
        )
        when = now
        for end, amount in back:
            short -= amount
            when = max(now, end)
            if short <= _EPS:
                break
        return when + self.estimates[i] > latest[i] + _EPS

    def _fair_share(self, i: int, d: Demand) -> bool:
        """Whether step ``i``'s stream may take more of each fair pool it uses: no other
        stream is waiting for the pool, or the stream is below its weighted share (a step
        may take it past: shares are rounded up to whole steps) and no stream below its own
        share is waiting for room it could not find."""
        assert self.groups is not None
        g = self.groups[i]
        if g < 0:
            return True
        for name in {pool for pool, _, _ in d.pools if pool in self.fair}:
            waiting = self.waiting[name]
            if not any(n for h, n in waiting.items() if h != g):
                continue  # nobody else wants it now: use what is free
            if self.holding[name].get(g, 0.0) <= _EPS:
                continue  # every stream gets at least one step in
            if not self._below_share(name, g):
                return False
            starved = self.starved[name]
            if any(h != g and waiting.get(h) for h in starved) and g not in starved:
                return False  # room is kept for a stream below its share
        return True

    def _below_share(self, name: str, g: int) -> bool:
        """Whether stream ``g`` holds less of fair pool ``name`` than its weighted share
        among the streams that hold or wait for it."""
        waiting, holding = self.waiting[name], self.holding[name]
        active = {h for h, n in waiting.items() if n} | {h for h, x in holding.items() if x}
        active.add(g)
        share = self.weights[g] / sum(self.weights[h] for h in active)
        return holding.get(g, 0.0) < share - _EPS

    def _share(self, pool: str, d: Demand) -> float:
        """The dominant share of ``pool`` that demand ``d`` takes (the largest fraction of
        any of its dimensions)."""
        cap = self.capacity
        return max((n / cap[p, dim] for p, dim, n in d.pools if p == pool), default=0.0)

    def set_capacity(self, name: str, dim: str, capacity: float) -> float:
        """A pool's capacity changes while the run goes on; steps holding it keep what they
        hold (the pool may be over its new capacity until they end). Returns the old one."""
        old = self.capacity[name, dim]
        self.capacity[name, dim] = capacity
        self.free[name, dim] += capacity - old
        return old

    def extend(self, demands: Sequence[Demand | None]) -> None:
        """Steps added to a running workflow."""
        for d in demands:
            self.demands.append(d)
            self.skipped.append(0)
            self.pools_of.append(
                frozenset((name, dim) for name, dim, _ in d.pools) if d is not None else frozenset()
            )
            if self.groups is not None:
                self.groups.append(-1)  # type: ignore[attr-defined]

    def _note_starved(self, name: str, g: int) -> None:
        """A step of stream ``g`` found no room in fair pool ``name``: if the stream is below
        its share, other streams stop taking more of the pool until it gets in."""
        if g >= 0 and self._below_share(name, g):
            self.starved[name].add(g)

    def ready(self, i: int, delta: int) -> None:
        """Step ``i`` became ready (``delta`` 1) or left the ready steps (-1); kept for fair
        pools."""
        d = self.demands[i]
        if d is None or self.groups is None:
            return
        g = self.groups[i]
        if g < 0:
            return
        for name in {pool for pool, _, _ in d.pools if pool in self.fair}:
            w = self.waiting[name]
            w[g] = w.get(g, 0) + delta
            if not w[g]:
                self.starved[name].discard(g)

    def wait_until(self, i: int, now: float) -> float | None:
        """When the rate limits would let step ``i`` start (``None``: they are not in its
        way)."""
        d = self.demands[i]
        if d is None or not d.rates:
            return None
        when = max(self.limits[name, dim].when(n, now) for name, dim, n in d.rates)
        return when if when > now + _EPS else None

    rate_wait = wait_until

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
        if self.latest_finish is not None:
            self.started_at[i] = now
        if self._overflowing:
            for name, dim, over in self._overflowing:
                self.overflows.append(Overflow(i, name, dim, over, self.capacity[name, dim], now))
            self._overflowing = []
        if self.track_ready:
            g = self.groups[i]  # type: ignore[index]
            if g >= 0:
                for name in {pool for pool, _, _ in d.pools if pool in self.fair}:
                    h = self.holding[name]
                    h[g] = h.get(g, 0.0) + self._share(name, d)
                    self.starved[name].discard(g)

    def release(self, i: int) -> None:
        """Step ``i`` ended: its pools come back; its budgets are charged what it measured
        (or, if it measured nothing, what it declared)."""
        d = self.demands[i]
        if d is None:
            return
        for name, dim, n in d.pools:
            self.free[name, dim] += n
        self.started_at.pop(i, None)
        if self.track_ready:
            g = self.groups[i]  # type: ignore[index]
            if g >= 0:
                for name in {pool for pool, _, _ in d.pools if pool in self.fair}:
                    h = self.holding[name]
                    h[g] = max(0.0, h.get(g, 0.0) - self._share(name, d))
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
        if resource == "*":  # every rate limit the step uses that limits these dimensions
            for name in {n for n, _, _ in (d.rates if d else ())}:
                mine = {k: v for k, v in amounts.items() if k and (name, k) in self.limits}
                if mine:
                    self.charge(i, name, mine, now)
            return
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

    def waits(self, i: int, now: float) -> None:
        """Step ``i`` did not fit: note when a rate limit will let it (for a wake-up)."""
        wait = self.rate_wait(i, now)
        if wait is not None:
            self.held[i] = wait
        else:
            self.held.pop(i, None)

    def overtaken(self, i: int) -> None:
        """A step of lower priority started while step ``i`` waited for a pool, rate limit
        or budget: this counts toward aging (waiting alone, with nothing overtaking it, does
        not: the order the planner chose stays)."""
        self.skipped[i] += 1
        if self.skipped[i] >= AGING_AFTER:
            self.aged_steps.add(i)

    def aged(self, i: int) -> bool:
        return self.skipped[i] >= AGING_AFTER

    def competes(self, i: int, j: int) -> bool:
        """Whether steps ``i`` and ``j`` want some pool in common."""
        return not self.pools_of[i].isdisjoint(self.pools_of[j])

    def next_wake(self) -> float | None:
        """The earliest time a step passed over for a rate limit may start."""
        return min(self.held.values(), default=None)
