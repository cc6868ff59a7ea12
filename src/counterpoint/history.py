"""What past runs say: per-step outcomes and per-agent durations, from the store's journals.

This is the query API the learning parts of counterpoint (duration estimates, failure rates)
build on::

    store = counterpoint.open_store()
    stats = await counterpoint.history.agent_stats(store, workflow="feature_development")
    stats["analyze-product"].median_s
"""

from __future__ import annotations

import json
import os
import socket
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from counterpoint.store.base import Entry, RunInfo, Store
from counterpoint.store.replay import replay

if TYPE_CHECKING:
    from counterpoint.graph.dag import Graph
    from counterpoint.model.workflow import Workflow

__all__ = [
    "AgentStats",
    "Durations",
    "StepOutcome",
    "agent_stats",
    "durations_of",
    "learn_durations",
    "run_state",
    "stats_of",
    "step_outcomes",
]

LEARN_AFTER = 3  # successful steps of an agent in past runs before what they say is used
LEARN_FROM = 20  # recent runs of the workflow looked at


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One step of one past run, as its journal ends."""

    run_id: str
    workflow: str
    step: str
    agent: str
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    duration_s: float | None  # first start to final end, retries included
    error: str | None
    cached: bool = False  # its output came from the cache (it took no time)
    # the contenders of its races that ended: (agent, gave a valid result)
    contenders: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class AgentStats:
    """How an agent did over past runs. Durations are of succeeded steps."""

    agent: str
    steps: int
    succeeded: int
    failed: int
    attempts: int
    failure_rate: float  # failed attempts / attempts
    median_s: float | None
    p90_s: float | None
    mean_s: float | None
    timed: int = 0  # successful steps the durations come from (cached ones left out)


async def step_outcomes(
    store: Store, *, workflow: str | None = None, agent: str | None = None, runs: int = 100
) -> list[StepOutcome]:
    """Steps of the newest ``runs`` runs (of ``workflow``), optionally of one ``agent``."""
    out: list[StepOutcome] = []
    for info in await store.list_runs(limit=runs, workflow=workflow):
        entries = await store.entries(info.run_id)
        states = replay(entries)
        cached = {
            e.step
            for e in entries
            if e.kind == "event" and e.data is not None and "cache-hit" in e.data
        }
        raced = _contenders(entries)
        for step, state in states.items():
            name = info.agents.get(step, "?")
            if agent is not None and name != agent:
                continue
            out.append(
                StepOutcome(
                    info.run_id,
                    info.workflow,
                    step,
                    name,
                    state.status,
                    state.attempts,
                    state.started_at,
                    state.finished_at,
                    state.duration_s,
                    state.error,
                    step in cached,
                    tuple(raced.get(step, ())),
                )
            )
    return out


def _contenders(entries: Sequence[Entry]) -> dict[str, list[tuple[str, bool]]]:
    """Per step, the contenders of its races that ended (from its ``race`` events)."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for e in entries:
        if e.kind != "event" or e.step is None or e.data is None or '"race"' not in e.data:
            continue
        event = json.loads(e.data)
        if not isinstance(event, dict) or event.get("name") != "race":
            continue
        data = event.get("data")
        if not isinstance(data, dict):
            continue
        outcome = data.get("outcome")
        if outcome in ("won", "failed", "invalid"):
            out.setdefault(e.step, []).append((str(data.get("agent")), outcome == "won"))
    return out


async def agent_stats(
    store: Store, *, workflow: str | None = None, runs: int = 100
) -> dict[str, AgentStats]:
    """Per agent: steps, successes, failures, failure rate per attempt, and the median, 90th
    percentile and mean duration of its successful steps, outputs from the cache left out
    (the median resists outliers)."""
    return stats_of(await step_outcomes(store, workflow=workflow, runs=runs))


def stats_of(found: Sequence[StepOutcome]) -> dict[str, AgentStats]:
    """:func:`agent_stats` of outcomes already read."""
    by_agent: dict[str, list[StepOutcome]] = {}
    for o in found:
        by_agent.setdefault(o.agent, []).append(o)
    stats: dict[str, AgentStats] = {}
    for name, outcomes in sorted(by_agent.items()):
        durations = sorted(
            o.duration_s
            for o in outcomes
            if o.status == "succeeded" and o.duration_s is not None and not o.cached
        )
        # attempts of steps that ended (an interrupted or cancelled one says nothing); a
        # raced step's attempts are its contenders (a race fails only when all of them do)
        ended = [o for o in outcomes if o.status in ("succeeded", "failed")]
        attempts = sum(o.attempts for o in ended if not o.contenders)
        succeeded = sum(o.status == "succeeded" for o in outcomes)
        failed_attempts = attempts - sum(o.status == "succeeded" for o in ended if not o.contenders)
        for o in ended:
            for who, ok in o.contenders:
                if who == name:
                    attempts += 1
                    failed_attempts += not ok
        stats[name] = AgentStats(
            agent=name,
            steps=len(outcomes),
            succeeded=succeeded,
            failed=sum(o.status == "failed" for o in outcomes),
            attempts=attempts,
            failure_rate=failed_attempts / attempts if attempts else 0.0,
            median_s=statistics.median(durations) if durations else None,
            p90_s=durations[min(len(durations) - 1, int(0.9 * len(durations)))]
            if durations
            else None,
            mean_s=statistics.fmean(durations) if durations else None,
            timed=len(durations),
        )
    return stats


@dataclass(frozen=True, slots=True)
class Durations:
    """What past runs say of each agent's durations: its median, and the median of its
    steps' durations over their declared estimates (which keeps the differences between
    its steps that the estimates state)."""

    medians: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.medians or self.ratios)

    def estimates(self, workflow: Workflow, graph: Graph | None = None) -> list[float]:
        """Each step's estimate: its declared one scaled by its agent's ratio, else its
        agent's median, else ``graph``'s (the declared one)."""
        graph = graph or workflow.graph
        ratios, medians = self.ratios, self.medians
        return [
            ratios[s.agent] * s.estimate
            if s.estimate is not None and s.agent in ratios
            else medians.get(s.agent, est)
            for s, est in zip(workflow.steps, graph.estimates, strict=True)
        ]

    def graph(self, workflow: Workflow) -> Graph:
        from counterpoint.graph.dag import Graph

        g = workflow.graph
        return Graph(g.ids, g.preds, self.estimates(workflow))


async def learn_durations(store: Store, workflow: Workflow) -> Durations:
    """Each agent's median duration over its successful steps in the workflow's recent
    ``LEARN_FROM`` runs (outputs from the cache left out; the median resists outliers), and
    the median ratio of those durations to the steps' declared estimates, for agents with at
    least ``LEARN_AFTER`` of them."""
    return durations_of(
        await step_outcomes(store, workflow=workflow.name, runs=LEARN_FROM), workflow
    )


def durations_of(found: Sequence[StepOutcome], workflow: Workflow) -> Durations:
    """:func:`learn_durations` from outcomes already read."""
    declared = {s.id: s.estimate for s in workflow.steps if s.estimate}
    used = {s.agent for s in workflow.steps}
    took: dict[str, list[float]] = {}
    ratio: dict[str, list[float]] = {}
    for o in found:
        if o.status != "succeeded" or o.duration_s is None or o.cached or o.agent not in used:
            continue
        took.setdefault(o.agent, []).append(o.duration_s)
        est = declared.get(o.step)
        if est:
            ratio.setdefault(o.agent, []).append(o.duration_s / est)
    return Durations(
        {a: statistics.median(v) for a, v in took.items() if len(v) >= LEARN_AFTER},
        {a: statistics.median(v) for a, v in ratio.items() if len(v) >= LEARN_AFTER},
    )


def run_state(info: RunInfo) -> str:
    """A run's status as the user should see it: ``crashed`` for a run whose process is gone
    while its journal says it is running (a ``paused`` one stays paused: it is resumable)."""
    if info.status != "running":
        return info.status
    return "crashed" if process_alive(info) is False else info.status


def process_alive(info: RunInfo) -> bool | None:
    """Whether the process running ``info`` is alive (``None``: cannot tell, another host)."""
    if info.pid is None or info.host != socket.gethostname():
        return None
    if info.pid == os.getpid():
        return True
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{info.pid}/stat") as f:
            if f.read().split(") ", 1)[1][:1] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True
