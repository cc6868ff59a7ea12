"""A workflow's steps as a compact graph: integer indexes, predecessor and successor lists."""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from counterpoint.model.workflow import Workflow

__all__ = ["DEFAULT_ESTIMATE", "Graph"]

T = TypeVar("T")

DEFAULT_ESTIMATE = 1.0
"""Seconds assumed for a step with no estimate, in planning and simulation."""


class Graph:
    """Steps ``0..n-1`` in the workflow's order; edges point from a step to its dependents.

    Invariant: ``order`` is a topological order (every step after the steps it needs).
    """

    __slots__ = ("_memo", "estimated", "estimates", "ids", "index", "order", "preds", "succs")

    def __init__(
        self,
        ids: Sequence[str],
        preds: Sequence[Sequence[int]],
        estimates: Sequence[float | None] | None = None,
    ) -> None:
        n = len(ids)
        self.ids: list[str] = list(ids)
        self.index: dict[str, int] = {s: i for i, s in enumerate(self.ids)}
        self.preds: list[tuple[int, ...]] = [tuple(p) for p in preds]
        succs: list[list[int]] = [[] for _ in range(n)]
        for i, ps in enumerate(self.preds):
            for p in ps:
                succs[p].append(i)
        self.succs: list[tuple[int, ...]] = [tuple(s) for s in succs]
        given = list(estimates) if estimates is not None else [None] * n
        self.estimated: list[bool] = [e is not None for e in given]
        self.estimates: list[float] = [DEFAULT_ESTIMATE if e is None else e for e in given]
        self.order: list[int] = _topological(self.preds)
        self._memo: dict[str, list[Any]] = {}  # analyses of this (immutable) graph

    def memo(self, name: str, compute: Callable[[Graph], list[T]]) -> list[T]:
        """``compute(self)``, computed once per graph; a copy each time (callers may change
        it)."""
        found = self._memo.get(name)
        if found is None:
            found = self._memo[name] = compute(self)
        return list(found)

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> Graph:
        """The graph of a checked workflow (its ids are unique and its needs exist)."""
        index = {s.id: i for i, s in enumerate(workflow.steps)}
        default = workflow.defaults.estimate
        return cls(
            [s.id for s in workflow.steps],
            [[index[d] for d in s.needs] for s in workflow.steps],
            [s.estimate if s.estimate is not None else default for s in workflow.steps],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        edges = sum(len(p) for p in self.preds)
        return f"<Graph {len(self.ids)} steps, {edges} edges>"

    def copy(self) -> Graph:
        """An independent copy (to extend without changing the workflow's own graph)."""
        other = Graph.__new__(Graph)
        other.ids = list(self.ids)
        other.index = dict(self.index)
        other.preds = list(self.preds)
        other.succs = list(self.succs)
        other.estimated = list(self.estimated)
        other.estimates = list(self.estimates)
        other.order = list(self.order)
        other._memo = {}
        return other

    def extend(
        self, ids: Sequence[str], preds: Sequence[Sequence[int]], estimates: Sequence[float | None]
    ) -> list[int]:
        """Add steps (a running workflow grows): each needs only steps before it, so the
        order stays topological. Returns their indexes."""
        added: list[int] = []
        for step_id, ps, estimate in zip(ids, preds, estimates, strict=True):
            i = len(self.ids)
            self.ids.append(step_id)
            self.index[step_id] = i
            self.preds.append(tuple(ps))
            self.succs.append(())
            for p in ps:
                self.succs[p] = (*self.succs[p], i)
            self.estimated.append(estimate is not None)
            self.estimates.append(DEFAULT_ESTIMATE if estimate is None else estimate)
            self.order.append(i)
            added.append(i)
        self._memo.clear()
        return added

    def descendants(self, i: int) -> list[int]:
        """Every step downstream of ``i`` (not ``i`` itself)."""
        seen: set[int] = set()
        stack = list(self.succs[i])
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                stack.extend(self.succs[j])
        return sorted(seen)


def _topological(preds: Sequence[Sequence[int]]) -> list[int]:
    """Kahn's algorithm, stable in index order; raises ``graphlib.CycleError`` on a cycle."""
    n = len(preds)
    remaining = [len(p) for p in preds]
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    order = [i for i in range(n) if remaining[i] == 0]
    k = 0
    while k < len(order):
        for j in succs[order[k]]:
            remaining[j] -= 1
            if remaining[j] == 0:
                order.append(j)
        k += 1
    if len(order) != n:
        # Let graphlib name the cycle.
        graphlib.TopologicalSorter({i: preds[i] for i in range(n)}).prepare()
    return order
