"""Shape of a dependency graph: levels, width, critical path, work and parallelism."""

from __future__ import annotations

from dataclasses import dataclass

from counterpoint.graph.dag import Graph

__all__ = ["GraphStats", "analyse", "critical_path", "levels", "upward_ranks"]


def levels(graph: Graph) -> list[int]:
    """Level of each step: 0 for steps that need nothing, else 1 + the deepest need."""
    return graph.memo("levels", _levels)


def _levels(graph: Graph) -> list[int]:
    level = [0] * len(graph)
    for i in graph.order:
        ps = graph.preds[i]
        if ps:
            level[i] = 1 + max(level[p] for p in ps)
    return level


def upward_ranks(graph: Graph) -> list[float]:
    """For each step, the longest estimated path from its start to the end of the workflow.

    The critical-path priority: a step with a larger rank has more work waiting behind it.
    """
    return graph.memo("upward_ranks", _upward_ranks)


def _upward_ranks(graph: Graph) -> list[float]:
    rank = [0.0] * len(graph)
    est = graph.estimates
    for i in reversed(graph.order):
        ss = graph.succs[i]
        rank[i] = est[i] + (max(rank[s] for s in ss) if ss else 0.0)
    return rank


def critical_path(graph: Graph) -> tuple[float, list[int]]:
    """Length and steps of the longest estimated path through the graph."""
    if not len(graph):
        return 0.0, []
    rank = upward_ranks(graph)
    start = max((i for i in range(len(graph)) if not graph.preds[i]), key=lambda i: rank[i])
    path = [start]
    while graph.succs[path[-1]]:
        path.append(max(graph.succs[path[-1]], key=lambda s: rank[s]))
    return rank[start], path


@dataclass(frozen=True, slots=True)
class GraphStats:
    """What ``plan`` shows about a workflow's shape (durations in seconds)."""

    steps: int
    edges: int
    depth: int
    width: int
    level_sizes: list[int]
    total_work: float
    critical_path: float
    critical_steps: list[str]
    parallelism: float
    unestimated: int

    def lower_bound(self, workers: int | None) -> float:
        """No schedule on ``workers`` can finish sooner: max(critical path, work / workers)."""
        if not workers:
            return self.critical_path
        return max(self.critical_path, self.total_work / workers)


def analyse(graph: Graph) -> GraphStats:
    """The shape of ``graph``: levels, widest level, critical path, work, parallelism."""
    lv = levels(graph)
    depth = max(lv) + 1 if lv else 0
    sizes = [0] * depth
    for x in lv:
        sizes[x] += 1
    length, path = critical_path(graph)
    work = sum(graph.estimates)
    return GraphStats(
        steps=len(graph),
        edges=sum(len(p) for p in graph.preds),
        depth=depth,
        width=max(sizes, default=0),
        level_sizes=sizes,
        total_work=work,
        critical_path=length,
        critical_steps=[graph.ids[i] for i in path],
        parallelism=(work / length) if length > 0 else float(len(graph) > 0),
        unestimated=graph.estimated.count(False),
    )
