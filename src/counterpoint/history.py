"""What past runs say: per-step outcomes and per-agent durations, from the store's journals.

This is the query API the learning parts of counterpoint (duration estimates, failure rates)
build on::

    store = counterpoint.open_store()
    stats = await counterpoint.history.agent_stats(store, workflow="feature_development")
    stats["analyze-product"].median_s
"""

from __future__ import annotations

import os
import socket
import statistics
from dataclasses import dataclass

from counterpoint.store.base import RunInfo, Store
from counterpoint.store.replay import replay

__all__ = ["AgentStats", "StepOutcome", "agent_stats", "run_state", "step_outcomes"]


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
                )
            )
    return out


async def agent_stats(
    store: Store, *, workflow: str | None = None, runs: int = 100
) -> dict[str, AgentStats]:
    """Per agent: steps, successes, failures, failure rate per attempt, and the median, 90th
    percentile and mean duration of its successful steps, outputs from the cache left out
    (the median resists outliers)."""
    by_agent: dict[str, list[StepOutcome]] = {}
    for o in await step_outcomes(store, workflow=workflow, runs=runs):
        by_agent.setdefault(o.agent, []).append(o)
    stats: dict[str, AgentStats] = {}
    for name, outcomes in sorted(by_agent.items()):
        durations = sorted(
            o.duration_s
            for o in outcomes
            if o.status == "succeeded" and o.duration_s is not None and not o.cached
        )
        # attempts of steps that ended (an interrupted or cancelled one says nothing)
        attempts = sum(o.attempts for o in outcomes if o.status in ("succeeded", "failed"))
        succeeded = sum(o.status == "succeeded" for o in outcomes)
        failed_attempts = attempts - succeeded
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
