"""What past runs teach selection: how each pattern did on a workflow (per fingerprint of
its definition), and which pattern the user prefers (from their overrides).

A preference's confidence is the lower bound of the Wilson score interval (z = 1) of the
share of the workflow's recent runs in which the user chose that pattern over the
recommendation (or kept it once it was applied): one override gives 0.50, two in a row
0.67, six in a row 0.86. Levels, as the seed's system uses them: at 0.85 or more it is
applied automatically, at 0.65 suggested, at 0.30 observed (shown in ``history``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from counterpoint.history import AgentStats, agent_stats
from counterpoint.store.base import RunInfo, Store

__all__ = [
    "APPLY",
    "OBSERVE",
    "SUGGEST",
    "Outcome",
    "Preference",
    "WorkflowHistory",
    "learn",
    "outcomes",
    "preferences",
    "wilson_lower",
    "workflow_history",
]

APPLY = 0.85
SUGGEST = 0.65
OBSERVE = 0.30
PREFERENCE_RUNS = 20  # recent runs of a workflow its preferences are judged on


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one pattern did in the runs of one definition of a workflow."""

    fingerprint: str
    pattern: str
    runs: int
    succeeded: int
    median_makespan_s: float | None  # of the runs that succeeded

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.runs if self.runs else 0.0


@dataclass(frozen=True, slots=True)
class Preference:
    """A pattern the user chose over the recommendation."""

    workflow: str
    pattern: str
    chosen: int  # runs in which the user chose it (or kept it, applied)
    runs: int  # runs looked at
    confidence: float

    @property
    def level(self) -> str:
        c = self.confidence
        return "apply" if c >= APPLY else "suggest" if c >= SUGGEST else "observe"


def wilson_lower(k: int, n: int, z: float = 1.0) -> float:
    """The lower bound of the Wilson score interval of ``k`` successes in ``n`` trials."""
    if n <= 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def _selection(info: RunInfo) -> dict[str, object] | None:
    sel = info.options.get("selection")
    return sel if isinstance(sel, dict) else None


def outcomes(runs: Sequence[RunInfo], fingerprint: str | None = None) -> list[Outcome]:
    """Per (fingerprint, pattern): runs, successes and median makespan of the successes.
    Runs still going, and runs whose pattern was not chosen by selection, are left out."""
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for info in runs:
        if info.finished_at is None or _selection(info) is None:
            continue
        if fingerprint is not None and info.fingerprint != fingerprint:
            continue
        groups.setdefault((info.fingerprint, info.pattern), []).append(info)
    out: list[Outcome] = []
    for (fp, pattern), infos in sorted(groups.items()):
        done = [i.makespan_s for i in infos if i.status == "succeeded" and i.makespan_s is not None]
        out.append(
            Outcome(
                fp,
                pattern,
                len(infos),
                len(done),
                statistics.median(done) if done else None,
            )
        )
    return out


def preferences(runs: Sequence[RunInfo], workflow: str) -> list[Preference]:
    """The patterns the user chose over the recommendation in ``workflow``'s recent runs
    (newest first in ``runs``), with the confidence of each, at least ``OBSERVE``."""
    looked = [
        (sel, info)
        for info in runs
        if info.workflow == workflow and (sel := _selection(info)) is not None
    ][:PREFERENCE_RUNS]
    chosen: dict[str, int] = {}
    for sel, info in looked:
        how = sel.get("how")
        recommended = sel.get("recommended")
        if how in ("override", "preference") and recommended not in (None, sel.get("chosen")):
            pattern = str(sel.get("chosen") or info.pattern)
            chosen[pattern] = chosen.get(pattern, 0) + 1
    n = len(looked)
    prefs = [Preference(workflow, p, k, n, wilson_lower(k, n)) for p, k in chosen.items()]
    return sorted((p for p in prefs if p.confidence >= OBSERVE), key=lambda p: -p.confidence)


@dataclass(frozen=True, slots=True)
class Learned:
    """Everything history says for one workflow."""

    outcomes: list[Outcome]  # of this definition
    preferences: list[Preference]


async def learn(store: Store, workflow: str, fingerprint: str) -> Learned:
    runs = await store.list_runs(limit=200, workflow=workflow)
    return Learned(outcomes(runs, fingerprint), preferences(runs, workflow))


@dataclass(frozen=True, slots=True)
class WorkflowHistory:
    """What ``counterpoint history`` shows of one workflow."""

    workflow: str
    agents: dict[str, AgentStats]
    learned: dict[str, float]  # agent -> the duration planning now uses
    outcomes: list[Outcome]  # per definition and pattern
    preferences: list[Preference]

    def to_json(self) -> dict[str, object]:
        return {
            "agents": {name: asdict(st) for name, st in self.agents.items()},
            "learned_estimates_s": self.learned,
            "outcomes": [asdict(o) for o in self.outcomes],
            "preferences": [{**asdict(p), "level": p.level} for p in self.preferences],
        }


async def workflow_history(store: Store, workflow: str | None = None) -> list[WorkflowHistory]:
    """What the store's runs teach, per workflow (or for ``workflow`` only)."""
    from counterpoint.history import LEARN_AFTER, LEARN_FROM

    runs = await store.list_runs(limit=500, workflow=workflow)
    found: list[WorkflowHistory] = []
    for name in sorted({r.workflow for r in runs}):
        mine = [r for r in runs if r.workflow == name]
        stats = await agent_stats(store, workflow=name, runs=LEARN_FROM)
        learned = {
            a: st.median_s
            for a, st in stats.items()
            if st.median_s is not None and st.timed >= LEARN_AFTER
        }
        found.append(WorkflowHistory(name, stats, learned, outcomes(mine), preferences(mine, name)))
    return found
