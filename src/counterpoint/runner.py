"""The Python entry points: ``run``, ``run_sync`` and ``simulate``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from counterpoint.agents.base import Agent
from counterpoint.agents.registry import build_agent
from counterpoint.backends.base import Backend
from counterpoint.backends.local import LocalBackend
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.errors import AgentConfigError, Problem, WorkflowInvalid
from counterpoint.gctools import frozen_gc
from counterpoint.model.load import load
from counterpoint.model.workflow import Workflow
from counterpoint.observe.base import RunObserver
from counterpoint.scheduler.clock import Clock, RealClock, VirtualClock
from counterpoint.scheduler.engine import Engine, Priority, RunOptions
from counterpoint.scheduler.result import RunResult

__all__ = ["build_agents", "resolve_inputs", "run", "run_sync", "simulate"]


def _workflow(workflow: Workflow | str | Path) -> Workflow:
    return workflow if isinstance(workflow, Workflow) else load(workflow)


def resolve_inputs(workflow: Workflow, given: Mapping[str, object] | None) -> dict[str, object]:
    """The run's inputs: given values, then defaults; raises ``WorkflowInvalid`` when one is
    missing, unknown or of the wrong type."""
    given = dict(given or {})
    problems: list[Problem] = []
    out: dict[str, object] = {}
    for name in given:
        if name not in workflow.inputs:
            known = ", ".join(workflow.inputs) or "none"
            problems.append(
                Problem(f"unknown input {name!r} (inputs: {known})", file=workflow.source)
            )
    for name, spec in workflow.inputs.items():
        if name in given:
            value = given[name]
            if not spec.accepts(value):
                problems.append(
                    Problem(
                        f"input {name!r} should be {spec.type}, got {value!r}", file=workflow.source
                    )
                )
            out[name] = value
        elif spec.is_required:
            problems.append(
                Problem(f"missing input {name!r}: pass --input {name}=VALUE", file=workflow.source)
            )
        else:
            out[name] = spec.default
    if problems:
        raise WorkflowInvalid(problems)
    return out


def build_agents(workflow: Workflow) -> dict[str, Agent]:
    """An agent for each definition the workflow's steps use."""
    used = {s.agent for s in workflow.steps}
    agents: dict[str, Agent] = {}
    problems: list[Problem] = []
    for name in sorted(used):
        try:
            agents[name] = build_agent(name, workflow.agents[name], workflow.base_dir)
        except AgentConfigError as exc:
            problems.append(Problem(str(exc), file=workflow.source))
    if problems:
        raise WorkflowInvalid(problems)
    return agents


async def run(
    workflow: Workflow | str | Path,
    *,
    inputs: Mapping[str, object] | None = None,
    max_concurrency: int | None = None,
    fail_fast: bool = False,
    priority: Priority = "critical-path",
    observers: Sequence[RunObserver] = (),
    run_id: str | None = None,
    seed: int | None = None,
    clock: Clock | None = None,
    backend: Callable[[Clock], Backend] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
) -> RunResult:
    """Run a workflow (an object or a YAML path) and return its result.

    Failed steps do not raise: check ``result.status``. Invalid workflows and inputs raise
    ``WorkflowInvalid``. ``backend`` makes the backend for the clock (default: local tasks).
    ``on_engine`` sees the engine before it starts (to interrupt it, for instance).
    """
    wf = _workflow(workflow)
    values = resolve_inputs(wf, inputs)
    agents = build_agents(wf)
    clk = clock or RealClock()
    with frozen_gc():
        engine = Engine(
            wf,
            agents=agents,
            backend=(backend or LocalBackend)(clk),
            clock=clk,
            inputs=values,
            options=RunOptions(max_concurrency, fail_fast, priority, seed),
            observers=observers,
            run_id=run_id,
        )
        if on_engine is not None:
            on_engine(engine)
        return await engine.run()


def run_sync(workflow: Workflow | str | Path, **kwargs: object) -> RunResult:
    """``run`` for callers without an event loop: same arguments, same result."""
    return asyncio.run(run(workflow, **kwargs))  # type: ignore[arg-type]


async def simulate(
    workflow: Workflow | str | Path,
    *,
    workers: int | None = None,
    priority: Priority = "critical-path",
    observers: Sequence[RunObserver] = (),
) -> RunResult:
    """Run on the virtual clock: every step takes its estimate, no agent is called."""
    wf = _workflow(workflow)
    clock = VirtualClock()
    with frozen_gc():
        engine = Engine(
            wf,
            agents={},
            backend=VirtualBackend(clock),
            clock=clock,
            options=RunOptions(max_concurrency=workers, priority=priority),
            observers=observers,
            virtual=True,
        )
        return await engine.run()
