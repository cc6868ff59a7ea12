"""The step graph: indexes, edges, topological order, cycles, descendants."""

from __future__ import annotations

import graphlib

import pytest

import counterpoint as cp
from counterpoint.graph import Graph
from counterpoint.graph.dag import DEFAULT_ESTIMATE


def diamond() -> Graph:
    #   a
    #  / \
    # b   c
    #  \ /
    #   d
    return Graph(["a", "b", "c", "d"], [[], [0], [0], [1, 2]], [1.0, 2.0, 3.0, 4.0])


def test_graph_structure() -> None:
    g = diamond()
    assert len(g) == 4
    assert g.ids == ["a", "b", "c", "d"]
    assert g.index == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert g.preds == [(), (0,), (0,), (1, 2)]
    assert g.succs == [(1, 2), (3,), (3,), ()]
    assert g.order == [0, 1, 2, 3]
    assert repr(g) == "<Graph 4 steps, 4 edges>"


def test_order_is_topological_and_stable_when_steps_are_listed_backwards() -> None:
    # d needs c needs b needs a, listed d, c, b, a; plus an independent e.
    g = Graph(["d", "c", "b", "a", "e"], [[1], [2], [3], [], []])
    assert g.order == [3, 4, 2, 1, 0]
    position = {i: k for k, i in enumerate(g.order)}
    for i, ps in enumerate(g.preds):
        for p in ps:
            assert position[p] < position[i]


def test_estimates_default_to_one_second() -> None:
    g = Graph(["a", "b"], [[], [0]], [None, 2.5])
    assert DEFAULT_ESTIMATE == 1.0
    assert g.estimates == [1.0, 2.5]
    assert g.estimated == [False, True]
    g2 = Graph(["a"], [[]])
    assert g2.estimates == [1.0]
    assert g2.estimated == [False]


def test_cycle_raises() -> None:
    with pytest.raises(graphlib.CycleError):
        Graph(["a", "b", "c"], [[2], [0], [1]])


def test_descendants() -> None:
    g = diamond()
    assert g.descendants(0) == [1, 2, 3]
    assert g.descendants(1) == [3]
    assert g.descendants(3) == []


def test_empty_graph() -> None:
    g = Graph([], [])
    assert len(g) == 0
    assert g.order == []


def test_from_workflow_uses_default_estimate() -> None:
    b = cp.WorkflowBuilder("g")
    b.agent("a", kind="noop")
    b.defaults(estimate="30s")
    b.step("x", agent="a", estimate="2m")
    b.step("y", agent="a", needs="x")
    b.step("z", agent="a", needs=["x", "y"])
    g = Graph.from_workflow(b.build())
    assert g.ids == ["x", "y", "z"]
    assert g.preds == [(), (0,), (0, 1)]
    assert g.estimates == [120.0, 30.0, 30.0]
    assert g.estimated == [True, True, True]
