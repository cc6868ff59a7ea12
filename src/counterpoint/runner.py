"""The Python entry points: ``run``, ``run_sync``, ``resume`` and ``simulate``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from counterpoint.agents.base import Agent
from counterpoint.agents.registry import build_agent
from counterpoint.backends.base import Backend
from counterpoint.backends.choose import backend_from_spec
from counterpoint.backends.local import LocalBackend
from counterpoint.errors import (
    AgentConfigError,
    CannotResume,
    CounterpointError,
    Problem,
    WorkflowInvalid,
)
from counterpoint.events import Event
from counterpoint.gctools import frozen_gc
from counterpoint.history import (
    LEARN_AFTER,
    LEARN_FROM,
    Durations,
    learn_durations,
    process_alive,
    run_state,
)
from counterpoint.model.compile import JOIN_AGENT
from counterpoint.model.load import load
from counterpoint.model.workflow import Workflow
from counterpoint.observe.base import RunObserver
from counterpoint.policy.redact import REDACTED, SECRET_NAME, Redactor
from counterpoint.scheduler.clock import Clock, RealClock
from counterpoint.scheduler.engine import Engine, Priority, RunOptions, new_run_id
from counterpoint.scheduler.planning import DEFAULT_BUDGET_S
from counterpoint.scheduler.result import RunResult, RunStatus
from counterpoint.selection.policies import PatternName, Policy, policy
from counterpoint.selection.select import Recommendation, run_virtual, select
from counterpoint.store.base import RunInfo, Store
from counterpoint.store.fingerprint import changes, definition, fingerprint
from counterpoint.store.journal import Journal
from counterpoint.store.replay import replay

__all__ = [
    "LEARN_AFTER",
    "LEARN_FROM",
    "approve",
    "build_agents",
    "resolve_inputs",
    "resume",
    "run",
    "run_sync",
    "send_event",
    "simulate",
]


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
    """An agent for each definition the workflow's steps use (races, recovery and
    compensations included)."""
    used = {s.agent for s in workflow.steps} - {JOIN_AGENT}  # join steps: the engine's own
    used |= {a for s in workflow.steps for a in s.race}
    used |= {s.compensate for s in workflow.steps if s.compensate}
    options = [*workflow.defaults.recovery, *(o for s in workflow.steps for o in s.recovery or ())]
    used |= {o.agent for o in options if o.agent}
    used |= {a for t in workflow.triggers for a in t.use.values()}
    used |= {s.agent for t in workflow.triggers for s in t.add}
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
    priority: Priority | None = None,
    observers: Sequence[RunObserver] = (),
    run_id: str | None = None,
    seed: int | None = None,
    store: Store | None = None,
    cache: bool = True,
    clock: Clock | None = None,
    backend: Callable[[Clock], Backend] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
    start_at: datetime | None = None,
    planning_budget: float = DEFAULT_BUDGET_S,
    learn: bool = True,
    pattern: PatternName | None = None,
    selection: Recommendation | None = None,
    adapt: bool | None = None,
) -> RunResult:
    """Run a workflow (an object or a YAML path) and return its result.

    Failed steps do not raise: check ``result.status``. Invalid workflows and inputs raise
    ``WorkflowInvalid``. With a ``store`` every transition is journaled there, and the run can
    be resumed (``resume``); without one nothing outlives the process. ``backend`` makes the
    backend for the clock (default: local tasks). ``on_engine`` sees the engine before it
    starts (to interrupt it, for instance). ``start_at``: the date the run starts at, for
    time windows (default: now; another date makes sense on a virtual ``clock``).
    ``planning_budget``: seconds the planned rule may search before the run. ``learn``: with
    a store, plan with each agent's median duration in its recent runs of this workflow
    (once it has ``LEARN_AFTER`` of them) instead of the steps' declared estimates.

    The coordination pattern: ``pattern`` runs that one (with a store, selection's
    recommendation is journaled beside it, for learning the user's preferences);
    ``selection`` (from :func:`counterpoint.selection.select`) runs the one it chose; with
    neither, the workflow's own ``pattern:`` or else the one selection recommends, using
    what ``store`` knows of past runs. ``priority``, ``max_concurrency`` and ``fail_fast``
    refine the pattern's policy (the smaller concurrency wins). ``adapt``: watch the run
    and switch the coordination when it pays (see ``counterpoint.scheduler.adapting``);
    by default only a pattern selection chose adapts, not one you or the workflow fixed.
    """
    wf = _workflow(workflow)
    values = resolve_inputs(wf, inputs)
    agents = build_agents(wf)
    if selection is None and wf.pattern is None and (pattern is None or store is not None):
        # selected; or the user's pattern, with a store: what selection would have run is
        # kept beside it, so that the store learns the user's preferences
        selection = await select(
            wf,
            store=store,
            pattern=pattern,
            workers=max_concurrency or wf.max_concurrency,
            learn=learn,
        )
    elif selection is None and pattern is None:
        pattern = wf.pattern
    pol = selection.policy if selection is not None else policy(pattern or "resource-aware")
    options = _options(
        pol, max_concurrency, fail_fast, priority, seed, cache, _epoch(start_at), planning_budget
    )
    if adapt is None:
        adapt = selection is not None and selection.how in ("selected", "preference")
    options = dataclasses.replace(options, adapt=adapt)
    rid = run_id or new_run_id()
    journal = None
    if store is not None:
        chosen: dict[str, object] = {
            "chosen": pol.pattern,
            "recommended": None,
            "how": "workflow" if wf.pattern is not None and pattern == wf.pattern else "override",
        }
        if selection is not None:
            chosen = selection.journal()
        journal = await _start_journal(
            store, wf, rid, values, options, chosen, getattr(backend, "spec", None)
        )
    learned = None
    if store is not None and learn:  # (selection read them already, when it ran)
        known = selection.durations if selection is not None else None
        learned = known if known is not None else await learn_durations(store, wf)
    result = await _drive(
        wf,
        agents,
        values,
        options,
        rid,
        observers,
        clock,
        backend,
        on_engine,
        journal,
        learned=learned,
    )
    if selection is not None:
        result.selection = selection.to_json()
    return result


def _options(
    pol: Policy,
    max_concurrency: int | None,
    fail_fast: bool,
    priority: Priority | None,
    seed: int | None,
    cache: bool,
    wall_start: float | None,
    planning_budget: float,
) -> RunOptions:
    """The run's options: the pattern's policy, refined by what the caller asked."""
    limits = [n for n in (pol.max_concurrency, max_concurrency) if n is not None]
    return RunOptions(
        min(limits) if limits else None,
        fail_fast or pol.fail_fast,
        priority or pol.priority,
        seed,
        cache,
        wall_start,
        planning_budget,
        pattern=pol.pattern,
        barriers=pol.barriers,
        ask_early=pol.ask_early,
        hedge=tuple(sorted(pol.hedge)),
    )


async def _start_journal(
    store: Store,
    wf: Workflow,
    run_id: str,
    values: dict[str, object],
    options: RunOptions,
    selection: dict[str, object] | None = None,
    backend: object = None,
) -> Journal:
    if store.durable:
        for name, value in values.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise WorkflowInvalid(
                    [Problem(f"input {name!r} is not JSON, so a durable run cannot keep it")]
                ) from None
    text = definition(wf)
    redactor = Redactor.for_run(wf.policy.redact, values)
    await store.create_run(
        RunInfo(
            run_id=run_id,
            workflow=wf.name,
            source=wf.source if wf.source.startswith("<") else str(Path(wf.source).resolve()),
            fingerprint=fingerprint(text),
            definition=redactor.text(text),
            inputs=redactor.value(values),  # type: ignore[arg-type]
            options={
                **_options_json(options),
                "selection": selection,
                **({"backend": backend} if backend is not None else {}),  # where it ran
            },
            agents={
                s.id: s.agent if s.agent != JOIN_AGENT else f"<{wf.plan.parts[s.id].kind}>"
                for s in wf.steps
            },
            created_at=time.time(),
            pid=os.getpid(),
            host=socket.gethostname(),
            version=_version(),
        )
    )
    journal = Journal(store, run_id, redactor=redactor)
    journal.event(None, "run-started", _options_json(options), attempt=1)
    return journal


def _options_json(options: RunOptions) -> dict[str, object]:
    return {**dataclasses.asdict(options), "hedge": list(options.hedge)}


def _version() -> str:
    from counterpoint import __version__

    return __version__


async def _drive(
    wf: Workflow,
    agents: dict[str, Agent],
    values: dict[str, object],
    options: RunOptions,
    run_id: str,
    observers: Sequence[RunObserver],
    clock: Clock | None,
    backend: Callable[[Clock], Backend] | None,
    on_engine: Callable[[Engine], None] | None,
    journal: Journal | None,
    restored: Mapping[str, object] | None = None,
    spent: Mapping[str, float] | None = None,
    past_events: Sequence[Event] = (),
    taken: Mapping[int, str] | None = None,
    learned: Durations | None = None,
) -> RunResult:
    clk = clock or RealClock()
    # the graph with what past runs say of each agent's steps
    graph = learned.graph(wf) if learned else None
    with frozen_gc():
        engine = Engine(
            wf,
            agents=agents,
            backend=(backend or LocalBackend)(clk),
            clock=clk,
            inputs=values,
            options=options,
            observers=observers,
            run_id=run_id,
            journal=journal,
            restored=restored,  # type: ignore[arg-type]
            spent=spent,
            past_events=past_events,
            taken=taken,
            graph=graph,
        )
        if learned:
            engine.learned = dict(learned.medians)
        if on_engine is not None:
            on_engine(engine)
        agent_log = logging.getLogger("counterpoint.agent")
        redacting = Redactor.from_environment(wf.policy.redact).log_filter()
        agent_log.addFilter(redacting)  # agents' log records carry no secret
        try:
            result = await engine.run()
        finally:
            agent_log.removeFilter(redacting)
            if journal is not None:
                await _close_journal(journal, engine)
    return result


async def _close_journal(journal: Journal, engine: Engine) -> None:
    """Write how the run ended; the store may be the reason it ended, so be careful."""
    status = engine.status
    if status is RunStatus.RUNNING:  # cancelled mid-way (a second Ctrl-C): resumable
        status = RunStatus.INTERRUPTED
    journal.event(None, "run-finished", {"status": status.value, "error": engine.error})
    try:
        await journal.commit()
        await journal.store.update_run(
            journal.run_id,
            status=status.value,
            finished_at=time.time(),
            makespan_s=engine.makespan_s,
            pattern=engine.pattern,
            error=journal.redactor.text(engine.error)
            if journal.redactor is not None and engine.error
            else engine.error,
        )
    except CounterpointError as exc:
        if engine.error is None:
            engine.error = str(exc)


async def resume(
    run_id: str,
    *,
    store: Store,
    workflow: Workflow | str | Path | None = None,
    force: bool = False,
    max_concurrency: int | None = None,
    fail_fast: bool | None = None,
    priority: Priority | None = None,
    seed: int | None = None,
    cache: bool = True,
    observers: Sequence[RunObserver] = (),
    clock: Clock | None = None,
    backend: Callable[[Clock], Backend] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
    inputs: Mapping[str, object] | None = None,
) -> RunResult:
    """Go on with a run that crashed, was killed, interrupted or failed.

    Steps whose success is in the journal are not run again (their outputs are used); a step
    that was running runs again with the same idempotency key and the next attempt number.
    ``workflow`` defaults to the file the run started from; if its definition changed,
    ``CannotResume`` shows what changed, unless ``force``. ``inputs``: secret inputs (whose
    names contain KEY, TOKEN, SECRET or PASSWORD), which the store did not keep, given again.
    """
    info = await store.get_run(run_id)
    if info.status == "succeeded":
        raise CannotResume(f"run {info.run_id} succeeded already: there is nothing to resume")
    waiting = info.status == "paused" and info.finished_at is None  # a wait, in its process
    if run_state(info) == "running" or (waiting and process_alive(info)):
        raise CannotResume(
            f"run {info.run_id} is still {info.status} in process {info.pid} on {info.host}: "
            "answer it (counterpoint approve / send) or stop that process first"
        )
    wf = _resume_workflow(info, workflow)
    text = definition(wf)
    if fingerprint(text) != info.fingerprint and not force:
        changed = changes(info.definition, wf, info.source)
        if changed:
            raise CannotResume(
                f"the workflow changed since run {info.run_id} started:\n"
                + "\n".join(f"  {line}" for line in changed)
                + "\nresume with --force (force=True) to go on with the new definition; "
                "steps that succeeded are kept"
            )
    agents = build_agents(wf)
    if backend is None:  # where the run started (the Ray backend, say)
        backend = backend_from_spec(info.options.get("backend"))
    values = {**info.inputs, **(inputs or {})}
    lost = sorted(k for k, v in values.items() if v == REDACTED and SECRET_NAME.search(k))
    if lost:
        raise CannotResume(
            f"run {info.run_id}: the secret input(s) {', '.join(lost)} were not kept: give "
            "them again (counterpoint resume RUN_ID --input NAME=VALUE; inputs= in Python)"
        )
    entries = await store.entries(info.run_id)
    sessions = sum(e.kind == "run-started" for e in entries)
    saved = info.options
    options = RunOptions(
        max_concurrency if max_concurrency is not None else saved.get("max_concurrency"),  # type: ignore[arg-type]
        fail_fast if fail_fast is not None else bool(saved.get("fail_fast")),
        priority or saved.get("priority", "planned"),  # type: ignore[arg-type]
        seed if seed is not None else saved.get("seed"),  # type: ignore[arg-type]
        cache,
        planning_budget_s=float(saved.get("planning_budget_s", DEFAULT_BUDGET_S)),  # type: ignore[arg-type]
        pattern=str(saved.get("pattern") or info.pattern or "") or None,
        barriers=bool(saved.get("barriers")),
        ask_early=bool(saved.get("ask_early")),
        hedge=tuple(str(a) for a in saved.get("hedge") or ()),  # type: ignore[attr-defined]
        adapt=bool(saved.get("adapt", True)),
    )
    spent: dict[str, float] = {}  # what earlier sessions charged to budgets
    past: list[Event] = []  # the events of earlier sessions
    taken: dict[int, str] = {}  # those waits took, and which
    for e in entries:
        if e.kind == "charged" and e.data is not None:
            charged = json.loads(e.data)
            spent[charged["budget"]] = spent.get(charged["budget"], 0.0) + charged["amount"]
        elif e.kind == "taken" and e.data is not None and e.step is not None:
            taken[int(json.loads(e.data)["seq"])] = e.step
        elif e.kind == "event" and e.data is not None:
            event = json.loads(e.data)
            if isinstance(event, dict) and isinstance(event.get("name"), str):
                data = event.get("data")
                past.append(
                    Event(
                        event["name"],
                        data if isinstance(data, dict) else {},
                        str(event.get("source") or e.step or "engine"),
                        inbox=event.get("inbox"),
                    )
                )
    journal = Journal(
        store,
        info.run_id,
        seq=entries[-1].seq if entries else 0,
        redactor=Redactor.for_run(wf.policy.redact, values),
    )
    journal.event(
        None, "run-started", {**_options_json(options), "resumed": True}, attempt=sessions + 1
    )
    await store.update_run(
        info.run_id,
        status="running",
        pid=os.getpid(),
        host=socket.gethostname(),
        finished_at=None,
        error=None,
    )
    return await _drive(
        wf,
        agents,
        values,
        options,
        info.run_id,
        observers,
        clock,
        backend,
        on_engine,
        journal,
        replay(entries),
        spent,
        past,
        taken,
        learned=await learn_durations(store, wf),
    )


def _resume_workflow(info: RunInfo, workflow: Workflow | str | Path | None) -> Workflow:
    if workflow is not None:
        return _workflow(workflow)
    if info.source.startswith("<"):
        raise CannotResume(
            f"run {info.run_id} was started from a workflow built in Python: "
            "pass that workflow to resume()"
        )
    if not Path(info.source).is_file():
        raise CannotResume(
            f"run {info.run_id} was started from {info.source}, which is gone; "
            "pass the workflow to resume"
        )
    return load(info.source)


async def send_event(
    store: Store,
    run_id: str,
    name: str,
    data: Mapping[str, object] | None = None,
    *,
    source: str = "api",
) -> int:
    """Send an event to a run, running or paused, in this process or another: it goes to
    the run's inbox in the store, which a running run reads within ``INBOX_POLL_S`` and a
    paused or crashed one when it is resumed. Returns its inbox id. Raises ``RunNotFound``,
    and ``CannotResume`` for a run that has ended."""
    info = await store.get_run(run_id)
    state = run_state(info)
    if state not in ("running", "paused", "crashed", "interrupted"):
        raise CannotResume(f"run {info.run_id} has ended ({state}): it takes no more events")
    text = json.dumps(dict(data or {}), ensure_ascii=False)
    return await store.post(info.run_id, name, text, source, time.time())


def approve(
    store: Store,
    run_id: str,
    step: str,
    *,
    approved: bool = True,
    comment: str | None = None,
    source: str = "api",
) -> Awaitable[int]:
    """Answer the approval step ``step`` of a run (an ``approval_given`` event)."""
    data = {"step": step, "approved": approved, "comment": comment}
    return send_event(store, run_id, "approval_given", data, source=source)


async def learned_estimates(store: Store, workflow: Workflow) -> dict[str, float]:
    """Each agent's median duration over its successful steps in the workflow's recent runs,
    for agents with at least ``LEARN_AFTER`` of them (the median resists outliers); see
    :func:`counterpoint.history.learn_durations` for the ratios to declared estimates."""
    return (await learn_durations(store, workflow)).medians


def _epoch(moment: datetime | None) -> float | None:
    """Epoch seconds of a date (one without a time zone is taken as UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def run_sync(workflow: Workflow | str | Path, **kwargs: object) -> RunResult:
    """``run`` for callers without an event loop: same arguments, same result."""
    return asyncio.run(run(workflow, **kwargs))  # type: ignore[arg-type]


async def simulate(
    workflow: Workflow | str | Path,
    *,
    workers: int | None = None,
    priority: Priority = "planned",
    observers: Sequence[RunObserver] = (),
    start_at: datetime | None = None,
    planning_budget: float = DEFAULT_BUDGET_S,
    pattern: PatternName | None = None,
) -> RunResult:
    """Run on the virtual clock: every step takes its estimate, no agent is called.
    ``start_at``: the date the simulated run starts at, for time windows (default: now).
    ``planning_budget``: seconds the planned rule may search before the run. ``pattern``:
    simulate under that pattern's policy (its rule wins over ``priority``; it does not
    adapt)."""
    wf = _workflow(workflow)
    options = RunOptions(
        max_concurrency=workers,
        priority=priority,
        wall_start=_epoch(start_at),
        planning_budget_s=planning_budget,
        adapt=False,
    )
    if pattern is not None:
        pol = _options(
            policy(pattern), workers, False, None, None, True, _epoch(start_at), planning_budget
        )
        options = dataclasses.replace(pol, adapt=False)
    return await run_virtual(wf, options, observers=observers)
