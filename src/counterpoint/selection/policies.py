"""The five coordination patterns as policies of one engine.

A workflow's dependencies say what must come before what; a pattern says how the rest is
decided: how many steps run at once, which ready step goes first, whether phases wait for
each other, what a failure stops, and whether a flaky agent's step is raced against a second
attempt of itself. Every pattern keeps the workflow's own structure (its sequences, phases,
gates, pools and triggers): a pattern only decides what the workflow leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["PATTERNS", "PatternName", "Policy", "policy"]

PatternName = Literal["sequential", "parallel", "hybrid", "event-driven", "resource-aware"]
PATTERNS: tuple[PatternName, ...] = get_args(PatternName)
"""From the simplest coordination to the most elaborate (ties go to the simpler)."""

Rule = Literal["planned", "critical-path", "efficiency", "fifo"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How a pattern runs a workflow (see :func:`policy`)."""

    pattern: PatternName
    max_concurrency: int | None  # None: as many as the workflow and its pools allow
    priority: Rule
    fail_fast: bool
    barriers: bool  # phases (the graph's levels) wait for the one before to end
    ask_early: bool  # steps waiting for people or events start before others
    hedge: frozenset[str]  # agents whose steps race a second attempt of themselves
    summary: str

    def to_json(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "max_concurrency": self.max_concurrency,
            "priority": self.priority,
            "fail_fast": self.fail_fast,
            "barriers": self.barriers,
            "ask_early": self.ask_early,
            "hedge": sorted(self.hedge),
            "summary": self.summary,
        }


_SUMMARY: dict[PatternName, str] = {
    "sequential": "one step at a time, each handed off and checked before the next",
    "parallel": "every step whose needs are done starts at once, in the order written",
    "hybrid": "phases (the graph's levels) one after another, each in parallel, a sync "
    "point between them",
    "event-driven": "steps start the moment what they wait for arrives, the longest path "
    "first; steps that wait for people or events are asked first",
    "resource-aware": "an order planned by simulating the pools and limits, work packed "
    "around them; steps of flaky agents raced against a second attempt",
}


def policy(pattern: PatternName, hedge: frozenset[str] = frozenset()) -> Policy:
    """The policy of ``pattern``; ``hedge``: flaky agents a resource-aware run races."""
    if pattern == "sequential":
        return Policy(
            pattern, 1, "critical-path", False, False, False, frozenset(), _SUMMARY[pattern]
        )
    if pattern == "parallel":
        return Policy(pattern, None, "fifo", False, False, False, frozenset(), _SUMMARY[pattern])
    if pattern == "hybrid":
        return Policy(
            pattern, None, "critical-path", False, True, False, frozenset(), _SUMMARY[pattern]
        )
    if pattern == "event-driven":
        return Policy(
            pattern, None, "critical-path", False, False, True, frozenset(), _SUMMARY[pattern]
        )
    if pattern == "resource-aware":
        return Policy(pattern, None, "planned", False, False, False, hedge, _SUMMARY[pattern])
    raise ValueError(f"unknown pattern {pattern!r}: use one of {', '.join(PATTERNS)}")
