"""The scheduling decisions, kept pure: state in, decisions out; no clock, no I/O.

A step is released the moment the last step it needs succeeds: there are no levels or
supersteps, so a slow branch never holds back an unrelated one. Among released steps, the
highest priority starts first, within the concurrency limit.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence
from enum import Enum

from counterpoint.graph.dag import Graph
from counterpoint.scheduler.resources import BACKFILL_WINDOW, ResourceManager

__all__ = ["Scheduler", "StepState"]


class StepState(Enum):
    """Where a step is in its life. Final states: SUCCEEDED, FAILED, SKIPPED, CANCELLED."""

    PENDING = "pending"  # waiting for steps it needs
    READY = "ready"  # released, waiting for a slot
    RUNNING = "running"
    WAITING = "waiting"  # failed an attempt; waiting to retry
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a step it needs failed or was cancelled
    CANCELLED = "cancelled"  # stopped by fail-fast or an interrupt

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED})
_P, _R, _X, _W = StepState.PENDING, StepState.READY, StepState.RUNNING, StepState.WAITING


class TransitionError(RuntimeError):
    """A step was moved between states in an order the scheduler does not allow (a bug)."""


class Scheduler:
    """Dependency counting with a priority queue of released steps.

    Invariants: ``waiting_on[i]`` is the number of steps ``i`` needs that have not succeeded;
    a step is in the heap exactly when it is READY; ``running`` counts RUNNING steps;
    ``open`` counts steps not in a final state.
    """

    __slots__ = (
        "_heap",
        "_parked",
        "_seq",
        "_track",
        "caps",
        "gated",
        "graph",
        "group_of",
        "group_running",
        "held",
        "limit",
        "open",
        "priority",
        "released",
        "resources",
        "running",
        "state",
        "unstartable",
        "waiting_on",
    )

    def __init__(
        self,
        graph: Graph,
        priority: Sequence[float] | None = None,
        max_concurrency: int | None = None,
        done: Collection[int] = (),
        note_releases: bool = False,
        groups: Sequence[int] | None = None,
        caps: Sequence[int | None] = (),
        resources: ResourceManager | None = None,
        held: Collection[int] = (),
    ) -> None:
        """``done``: steps that already succeeded (a resumed run); they never start again.
        ``note_releases``: keep every step released in ``released`` (for a journal).
        ``groups``: a group number per step (-1: none) whose running steps are limited by
        ``caps[group]`` (streams' shares of the concurrency). ``resources``: pools and rate
        limits every admission must fit (see ``scheduler.resources``). ``held``: steps that
        also wait for a trigger (``wake``)."""
        n = len(graph)
        self.graph = graph
        self.priority = list(priority) if priority is not None else [0.0] * n
        self.limit = max_concurrency or n or 1
        self.state = [_P] * n
        self.running = 0
        self.open = n
        self.released: list[int] | None = [] if note_releases else None
        self.group_of: Sequence[int] | None = groups
        self.caps: list[int | None] = list(caps)
        self.group_running: list[int] = [0] * len(self.caps)
        self.resources = resources
        self._track = resources is not None and resources.track_ready
        self._heap: list[tuple[float, int, int]] = []
        # ready steps whose resource's time window is closed: (when it opens, heap entry)
        self._parked: list[tuple[float, tuple[float, int, int]]] = []
        # ready steps whose windows never open (together) again, and why
        self.unstartable: list[tuple[int, str]] = []
        self._seq = 0
        if done:
            finished = set(done)
            for i in finished:
                self.state[i] = StepState.SUCCEEDED
            self.open -= len(finished)
            self.waiting_on = [sum(p not in finished for p in preds) for preds in graph.preds]
        else:
            self.waiting_on = [len(p) for p in graph.preds]
        self.gated: set[int] = set()  # pending steps held back by a phase barrier
        self.held = {i for i in held if self.state[i] is _P}  # waiting for a trigger
        for i in self.held:
            self.waiting_on[i] += 1
        for i in range(n):
            if not self.waiting_on[i] and self.state[i] is _P:
                self._release(i)

    def __repr__(self) -> str:
        return (
            f"<Scheduler open={self.open} running={self.running} "
            f"ready={len(self._heap)} limit={self.limit}>"
        )

    @property
    def finished(self) -> bool:
        """Every step is in a final state."""
        return self.open == 0

    @property
    def ready(self) -> int:
        return len(self._heap) + len(self._parked)

    def next_wake(self) -> float | None:
        """The earliest clock time a waiting step may fit: a rate limit allows it or a time
        window opens (``None``: nothing waits for time)."""
        res = self.resources
        rate = res.next_wake() if res is not None else None
        window = self._parked[0][0] if self._parked else None
        if rate is None:
            return window
        return rate if window is None else min(rate, window)

    def _release(self, i: int) -> None:
        self.state[i] = _R
        if self.released is not None:
            self.released.append(i)
        self._seq += 1
        heapq.heappush(self._heap, (-self.priority[i], self._seq, i))
        if self._track:
            self.resources.ready(i, 1)  # type: ignore[union-attr]

    def reprioritise(self, priority: Sequence[float]) -> None:
        """New priorities (a new plan): the ready steps are reordered by them."""
        self.priority = list(priority)
        self._heap = [(-self.priority[i], seq, i) for _, seq, i in self._heap]
        heapq.heapify(self._heap)
        self._parked = [(t, (-self.priority[i], seq, i)) for t, (_, seq, i) in self._parked]
        heapq.heapify(self._parked)

    def _expect(self, i: int, state: StepState) -> None:
        if self.state[i] is not state:
            raise TransitionError(
                f"step {self.graph.ids[i]!r} is {self.state[i].value}, expected {state.value}"
            )

    def take(self, now: float = 0.0) -> list[int]:
        """Released steps to start now, highest priority first, within the limit, the caps
        of their groups and the resources (``now``: the clock's time, for rate limits)."""
        heap = self._heap
        free = self.limit - self.running
        started: list[int] = []
        if self.resources is not None:
            return self._take_with_resources(now)
        if self.group_of is None:
            while heap and free > 0:
                i = heapq.heappop(heap)[2]
                self.state[i] = _X
                started.append(i)
                free -= 1
        else:
            groups, caps, busy = self.group_of, self.caps, self.group_running
            held: list[tuple[float, int, int]] = []
            while heap and free > 0:
                entry = heapq.heappop(heap)
                i = entry[2]
                g = groups[i]
                if g >= 0:
                    cap = caps[g]
                    if cap is not None and busy[g] >= cap:
                        held.append(entry)  # its stream is at its share: later
                        continue
                    busy[g] += 1
                self.state[i] = _X
                started.append(i)
                free -= 1
            for entry in held:
                heapq.heappush(heap, entry)
        self.running += len(started)
        return started

    def _take_with_resources(self, now: float) -> list[int]:
        """``take`` with atomic admission: a step starts only if all its demands fit; one
        passed over too often makes the steps competing with it for a pool wait (aging)."""
        res = self.resources
        assert res is not None
        if res.exhausted:  # a budget is spent: nothing new starts
            return []
        res.begin_take()
        heap, state = self._heap, self.state
        if self._parked:
            self._unpark(now)
        groups, caps, busy = self.group_of, self.caps, self.group_running
        free = self.limit - self.running
        started: list[int] = []
        held: list[tuple[float, int, int]] = []
        # steps passed over too often go first: their competitors wait, whatever their rank
        free, blockers = self._admit_aged(now, free, started)
        misses = 0
        missed: list[int] = []  # did not fit, and nothing has overtaken them yet
        while heap and free > 0 and misses < BACKFILL_WINDOW:
            entry = heapq.heappop(heap)
            i = entry[2]
            if state[i] is not _R:
                continue  # started above, as an aged step
            g = groups[i] if groups is not None else -1
            cap = caps[g] if g >= 0 else None
            if cap is not None and busy[g] >= cap:
                held.append(entry)
                continue
            if blockers and i not in blockers and any(res.competes(b, i) for b in blockers):
                held.append(entry)  # an aged step wants this pool first
                misses += 1
                continue
            if not res.fits(i, now):
                if self._not_now(entry, now, held):
                    misses += 1
                    missed.append(i)
                continue
            for m in missed:  # i overtakes them
                res.overtaken(m)
                if res.aged(m) and m not in blockers:
                    blockers.append(m)
            missed.clear()
            res.acquire(i, now)
            if self._track:
                res.ready(i, -1)
            if g >= 0:
                busy[g] += 1
            state[i] = _X
            started.append(i)
            free -= 1
        for entry in held:
            heapq.heappush(heap, entry)
        self.running += len(started)
        return started

    def _unpark(self, now: float) -> None:
        """Steps whose windows are open now (or may be) go back among the ready ones."""
        parked, heap, res = self._parked, self._heap, self.resources
        while parked and parked[0][0] <= now + 1e-9:
            entry = heapq.heappop(parked)[1]
            heapq.heappush(heap, entry)
            if self._track:
                res.ready(entry[2], 1)  # type: ignore[union-attr]

    def _not_now(
        self, entry: tuple[float, int, int], now: float, held: list[tuple[float, int, int]]
    ) -> bool:
        """A step did not fit: park it until its window opens, or hold it for later; returns
        whether it counts as passed over by a lower-priority step (backfilling)."""
        res = self.resources
        assert res is not None
        i = entry[2]
        if res.why == "window":  # out of the way until the window opens
            if self._track:
                res.ready(i, -1)  # not waiting for a fair pool meanwhile
            if res.opens_at is None:
                self.unstartable.append((i, res.never))  # the engine fails it: ``never_starts``
            else:
                heapq.heappush(self._parked, (res.opens_at, entry))
            return False
        res.waits(i, now)
        held.append(entry)
        return res.why != "fair"  # a stream at its share: others may go, no backfill limit

    def _admit_aged(self, now: float, free: int, started: list[int]) -> tuple[int, list[int]]:
        """Start the aged steps that fit now; returns the free slots left and the aged steps
        still waiting (their competitors are held back)."""
        res = self.resources
        assert res is not None
        state, groups, caps, busy = self.state, self.group_of, self.caps, self.group_running
        prio, skipped = self.priority, res.skipped
        aged = sorted(
            (b for b in res.aged_steps if state[b] is _R),
            key=lambda b: (-skipped[b], -prio[b], b),
        )
        waiting: list[int] = []  # aged steps that do not fit: later aged competitors wait too
        behind: set[int] = set()
        for b in aged:
            if free <= 0:
                break
            if any(res.competes(w, b) for w in waiting):
                res.waits(b, now)
                behind.add(b)  # not a blocker itself: it waits behind one
                continue
            g = groups[b] if groups is not None else -1
            cap = caps[g] if g >= 0 else None
            if (cap is None or busy[g] < cap) and res.fits(b, now):
                res.acquire(b, now)
                if self._track:
                    res.ready(b, -1)
                if g >= 0:
                    busy[g] += 1
                state[b] = _X  # its heap entry is dropped when it comes up
                started.append(b)
                free -= 1
            elif res.why == "window":  # parked by the scan below until its window opens
                res.aged_steps.discard(b)
                res.skipped[b] = 0
            else:
                res.waits(b, now)
                res.overtaken(b)  # (ranks the aged steps among themselves)
                waiting.append(b)
        return free, [b for b in aged if state[b] is _R and b not in behind]

    def _free(self, i: int) -> None:
        if self.resources is not None:
            self.resources.release(i)
        self.running -= 1
        if self.group_of is not None:
            g = self.group_of[i]
            if g >= 0:
                self.group_running[g] -= 1

    def rollback(self, prev: int, i: int) -> None:
        """Step ``i`` failed for good; run ``prev`` (which succeeded) again, then ``i``.
        ``prev``'s other dependents must not have started."""
        self._expect(i, _X)
        self._expect(prev, StepState.SUCCEEDED)
        self._free(i)
        self.state[i] = _P
        for j in self.graph.succs[prev]:
            if j != i:
                self._expect(j, _P)
            self.waiting_on[j] += 1
        self.open += 1
        self._release(prev)

    def succeeded(self, i: int) -> None:
        """Step ``i`` finished well; release the dependents it was the last need of."""
        self._expect(i, _X)
        self.state[i] = StepState.SUCCEEDED
        self._free(i)
        self.open -= 1
        waiting_on = self.waiting_on
        for j in self.graph.succs[i]:
            waiting_on[j] -= 1
            if waiting_on[j] == 0 and self.state[j] is _P:
                self._release(j)

    def failed(self, i: int) -> list[int]:
        """Step ``i`` failed for good; returns the downstream steps now skipped."""
        self._expect(i, _X)
        self.state[i] = StepState.FAILED
        self._free(i)
        self.open -= 1
        return self._skip_downstream(i)

    def extend(
        self, indexes: Sequence[int], priority: Sequence[float], done: Collection[int]
    ) -> list[int]:
        """Steps added to the graph: pending until their needs succeed (released at once if
        they have); ``done`` ones succeeded in an earlier session. Returns those skipped
        because a step they need failed or was skipped."""
        skipped: list[int] = []
        bad = (StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED)
        for i, p in zip(indexes, priority, strict=True):
            self.priority.append(p)
            self.waiting_on.append(0)
            if self.group_of is not None:
                self.group_of.append(-1)  # type: ignore[attr-defined]
            if i in done:
                self.state.append(StepState.SUCCEEDED)
                continue
            self.state.append(_P)
            self.open += 1
            preds = self.graph.preds[i]
            if any(self.state[p] in bad for p in preds):
                self.state[i] = StepState.SKIPPED
                self.open -= 1
                skipped.append(i)
                continue
            self.waiting_on[i] = sum(self.state[p] is not StepState.SUCCEEDED for p in preds)
            if not self.waiting_on[i]:
                self._release(i)
        return skipped

    def wake(self, i: int) -> bool:
        """A trigger fired for held step ``i``: it no longer waits for it (it starts once
        its needs are done). Returns whether it was still held."""
        if i not in self.held:
            return False
        self.held.discard(i)
        if self.state[i] is not _P:
            return False
        self.waiting_on[i] -= 1
        if self.waiting_on[i] == 0:
            self._release(i)
        return True

    def gate(self, steps: Collection[int]) -> None:
        """Phase barriers: steps in ``steps`` not started yet also wait for ``ungate`` (one
        released already, as after a resume, goes back to waiting)."""
        state, waiting_on, gated = self.state, self.waiting_on, self.gated
        back: set[int] = set()
        for i in steps:
            if i in gated:
                continue
            if state[i] is _R:
                state[i] = _P
                back.add(i)
            if state[i] is _P:
                gated.add(i)
                waiting_on[i] += 1
        if back:
            self._heap = [e for e in self._heap if e[2] not in back]
            heapq.heapify(self._heap)
            self._parked = [p for p in self._parked if p[1][2] not in back]
            heapq.heapify(self._parked)
            if self._track:
                for i in back:
                    self.resources.ready(i, -1)  # type: ignore[union-attr]

    def ungate(self, steps: Collection[int]) -> None:
        """Lift the barrier before ``steps``: those whose needs are done are released."""
        gated = self.gated
        for i in steps:
            if i in gated:
                gated.discard(i)
                if self.state[i] is _P:
                    self.waiting_on[i] -= 1
                    if self.waiting_on[i] == 0:
                        self._release(i)

    def skip_pending(self) -> list[int]:
        """Nothing runs, is ready or waits, and no trigger will fire: the steps still
        pending (held ones and those after them) are skipped; returns them."""
        out = [i for i, st in enumerate(self.state) if st is _P]
        for i in out:
            self.state[i] = StepState.SKIPPED
        self.open -= len(out)
        return out

    def never_starts(self, i: int) -> list[int]:
        """Ready step ``i`` cannot ever start (a window that never opens again): it fails;
        returns the downstream steps now skipped."""
        self._expect(i, _R)
        self.state[i] = StepState.FAILED
        self.open -= 1
        return self._skip_downstream(i)

    def retry_later(self, i: int) -> None:
        """Step ``i`` failed an attempt and will be tried again; it frees its slot meanwhile."""
        self._expect(i, _X)
        self.state[i] = _W
        self._free(i)

    def retry_now(self, i: int) -> None:
        """The wait before retrying step ``i`` is over."""
        if self.state[i] is _W:
            self._release(i)

    def cancelled(self, i: int) -> list[int]:
        """A running step was cancelled; returns the downstream steps now skipped."""
        self._expect(i, _X)
        self.state[i] = StepState.CANCELLED
        self._free(i)
        self.open -= 1
        return self._skip_downstream(i)

    def cancel_unstarted(self) -> list[int]:
        """Stop everything not yet running (fail-fast, interrupt); returns those steps."""
        out = [i for i, s in enumerate(self.state) if s in (_P, _R, _W)]
        for i in out:
            self.state[i] = StepState.CANCELLED
        self.open -= len(out)
        self._heap.clear()
        self._parked.clear()
        return out

    def _skip_downstream(self, i: int) -> list[int]:
        skipped: list[int] = []
        stack = list(self.graph.succs[i])
        state = self.state
        while stack:
            j = stack.pop()
            if state[j] is _P:
                state[j] = StepState.SKIPPED
                skipped.append(j)
                stack.extend(self.graph.succs[j])
        self.open -= len(skipped)
        return skipped
