"""Levels, upward ranks, critical path, work, parallelism and the lower bound."""

from __future__ import annotations

import pytest

import counterpoint as cp
from counterpoint.graph import Graph, analyse, critical_path, levels, upward_ranks


def diamond() -> Graph:
    # a(1) -> b(2) -> d(4); a -> c(3) -> d
    return Graph(["a", "b", "c", "d"], [[], [0], [0], [1, 2]], [1.0, 2.0, 3.0, 4.0])


def forked() -> Graph:
    # a(2) -> b(3) -> c(1); a -> x(5); y(4) alone; z(1) needs y and b
    return Graph(
        ["a", "b", "c", "x", "y", "z"],
        [[], [0], [1], [0], [], [4, 1]],
        [2.0, 3.0, 1.0, 5.0, 4.0, 1.0],
    )


def test_levels() -> None:
    assert levels(diamond()) == [0, 1, 1, 2]
    assert levels(forked()) == [0, 1, 2, 1, 0, 2]
    assert levels(Graph([], [])) == []


def test_upward_ranks() -> None:
    assert upward_ranks(diamond()) == [8.0, 6.0, 7.0, 4.0]
    # c: 1; b: 3 + max(c 1, z 1) = 4; x: 5; a: 2 + max(b 4, x 5) = 7; z: 1; y: 4 + 1 = 5
    assert upward_ranks(forked()) == [7.0, 4.0, 1.0, 5.0, 5.0, 1.0]


def test_critical_path() -> None:
    assert critical_path(diamond()) == (8.0, [0, 2, 3])
    assert critical_path(forked()) == (7.0, [0, 3])
    assert critical_path(Graph([], [])) == (0.0, [])


def test_critical_path_ties_go_to_the_first_step() -> None:
    g = Graph(["p", "q", "r"], [[], [], [0, 1]], [2.0, 2.0, 1.0])
    assert critical_path(g) == (3.0, [0, 2])


def test_analyse_diamond() -> None:
    stats = analyse(diamond())
    assert stats.steps == 4
    assert stats.edges == 4
    assert stats.depth == 3
    assert stats.width == 2
    assert stats.level_sizes == [1, 2, 1]
    assert stats.total_work == 10.0
    assert stats.critical_path == 8.0
    assert stats.critical_steps == ["a", "c", "d"]
    assert stats.parallelism == pytest.approx(10.0 / 8.0)
    assert stats.unestimated == 0


def test_analyse_forked() -> None:
    stats = analyse(forked())
    assert stats.depth == 3
    assert stats.level_sizes == [2, 2, 2]
    assert stats.width == 2
    assert stats.edges == 5
    assert stats.total_work == 16.0
    assert stats.critical_path == 7.0
    assert stats.critical_steps == ["a", "x"]
    assert stats.parallelism == pytest.approx(16.0 / 7.0)


def test_lower_bound() -> None:
    stats = analyse(forked())
    assert stats.lower_bound(None) == 7.0
    assert stats.lower_bound(0) == 7.0
    assert stats.lower_bound(1) == 16.0
    assert stats.lower_bound(2) == 8.0
    assert stats.lower_bound(3) == 7.0


def test_analyse_wide_and_unestimated() -> None:
    g = Graph([f"s{i}" for i in range(5)], [[] for _ in range(5)], [None, None, 3.0, None, 0.5])
    stats = analyse(g)
    assert stats.depth == 1
    assert stats.width == 5
    assert stats.level_sizes == [5]
    assert stats.total_work == 6.5
    assert stats.critical_path == 3.0
    assert stats.critical_steps == ["s2"]
    assert stats.unestimated == 3
    assert stats.lower_bound(2) == 3.25


def test_analyse_empty_and_zero_work() -> None:
    empty = analyse(Graph([], []))
    assert (empty.steps, empty.depth, empty.width, empty.level_sizes) == (0, 0, 0, [])
    assert (empty.total_work, empty.critical_path, empty.parallelism) == (0.0, 0.0, 0.0)
    zero = analyse(Graph(["a", "b"], [[], []], [0.0, 0.0]))
    assert zero.critical_path == 0.0
    assert zero.parallelism == 1.0


def test_analyse_a_loaded_workflow() -> None:
    wf = cp.loads(
        """\
name: plan
agents:
  a: {kind: noop}
defaults:
  estimate: 10s
steps:
  - {id: fetch, agent: a, estimate: 1m}
  - {id: parse, agent: a, needs: fetch}
  - {id: lint, agent: a, needs: fetch, estimate: 90s}
  - {id: report, agent: a, needs: [parse, lint]}
"""
    )
    stats = analyse(wf.graph)
    assert stats.total_work == 170.0
    assert stats.critical_path == 160.0
    assert stats.critical_steps == ["fetch", "lint", "report"]
    assert stats.level_sizes == [1, 2, 1]
    assert stats.unestimated == 0
