"""A part of a workflow may fix its pattern: a parallel block with ``pattern: sequential``
runs its steps one at a time, whatever pattern the run uses; selection fills in the rest."""

from __future__ import annotations

import asyncio

import pytest

import counterpoint as cp
from counterpoint.selection import recommend

REVIEWS = """\
name: part
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - parallel:
      id: reviews
      pattern: sequential
      needs: a
      steps:
        - {id: r1, agent: n, estimate: 2}
        - {id: r2, agent: n, estimate: 2}
        - parallel:
            id: inner
            steps:
              - {id: r3, agent: n, estimate: 2}
              - {id: r4, agent: n, estimate: 2}
  - {id: b, agent: n, estimate: 3, needs: a}
  - {id: c, agent: n, estimate: 1, needs: [reviews, b]}
"""


def _spans(result: cp.RunResult, ids: list[str]) -> list[tuple[float, float]]:
    out = []
    for sid in ids:
        r = result.steps[sid]
        assert r.start is not None and r.end is not None
        out.append((r.start, r.end))
    return sorted(out)


@pytest.mark.parametrize("pattern", ["parallel", "event-driven", "resource-aware"])
def test_a_sequential_part_runs_one_step_at_a_time_under_any_pattern(pattern: str) -> None:
    wf = cp.loads(REVIEWS)
    result = asyncio.run(cp.simulate(wf, pattern=pattern))  # type: ignore[arg-type]
    spans = _spans(result, ["r1", "r2", "r3", "r4"])  # the inner block's too: the outer wins
    assert spans == [(1.0, 3.0), (3.0, 5.0), (5.0, 7.0), (7.0, 9.0)]
    assert result.steps["b"].start == 1.0  # the rest of the workflow is not held back
    assert result.makespan_s == 10.0


def test_without_it_the_block_runs_at_once() -> None:
    wf = cp.loads(REVIEWS.replace("      pattern: sequential\n", ""))
    result = asyncio.run(cp.simulate(wf, pattern="parallel"))
    assert {result.steps[s].start for s in ("r1", "r2", "r3", "r4")} == {1.0}
    assert result.makespan_s == 5.0


def test_selection_counts_the_fixed_part() -> None:
    rec = asyncio.run(recommend(cp.loads(REVIEWS)))
    assert rec.method == "simulated"  # a capped part: the formulas would not hold
    assert rec.alternative("parallel").makespan_s == 10.0
    assert rec.analysis.fixed["reviews"] == "sequential"


def test_a_bad_pattern_names_the_choices() -> None:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(REVIEWS.replace("pattern: sequential", "pattern: hybrid"))
    assert "expected 'parallel' or 'sequential'" in str(info.value)
