"""The engine: drives the pure scheduler, hands jobs to a backend, and keeps the records.

One loop, on any clock: start what the scheduler releases, wait until a backend reports (or
a retry falls due), apply every report that arrived, repeat. Reports arrive in an inbox, so
many completions are applied per wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Literal

from counterpoint.agents.base import Agent, StepContext
from counterpoint.backends.base import Backend, Completion, Job, Outcome
from counterpoint.errors import CounterpointError
from counterpoint.events import Event, EventBus
from counterpoint.gctools import frozen_gc
from counterpoint.graph.analysis import levels
from counterpoint.graph.dag import Graph
from counterpoint.model.compile import JOIN_AGENT
from counterpoint.model.refs import Template, compile_template
from counterpoint.model.workflow import RetryPolicy, Workflow
from counterpoint.observe.base import RunObserver
from counterpoint.outputs import MARK, LargeOutput, all_available, contains_large, materialize
from counterpoint.patterns.runtime import PatternRuntime
from counterpoint.policy.guardian import Guardian
from counterpoint.scheduler.adapting import Adapter
from counterpoint.scheduler.caching import OutputCache
from counterpoint.scheduler.clock import Clock, Timer
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.eventing import EventHub
from counterpoint.scheduler.planning import (
    DEFAULT_BUDGET_S,
    PlanChoice,
)
from counterpoint.scheduler.recovering import Recovery
from counterpoint.scheduler.replanning import Replanner
from counterpoint.scheduler.resources import ResourceManager
from counterpoint.scheduler.result import AgentEvent, RunResult, RunStatus, StepRecord
from counterpoint.scheduler.setup import build_scheduler, step_agents
from counterpoint.store.journal import Journal, OutputNotStorable, encode_output
from counterpoint.store.replay import StepReplay

__all__ = ["Engine", "Priority", "RunOptions", "new_run_id", "shape_pattern"]

Priority = Literal["planned", "critical-path", "efficiency", "fifo"]
"""Which released step starts first: ``planned`` (the best of several rules, simulated
before the run), ``critical-path`` (longest estimated path to the end), or ``fifo``."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: concurrency limit, fail-fast, priority rule, and the seed for jitter."""

    max_concurrency: int | None = None
    fail_fast: bool = False
    priority: Priority = "planned"
    seed: int | None = None
    cache: bool = True  # use and fill the store's cache for agents that ask for it
    wall_start: float | None = None  # epoch seconds the run starts at (default: now), for
    # time windows; set it to simulate a run at another date
    planning_budget_s: float = DEFAULT_BUDGET_S  # for the planned rule's search before the run
    pattern: str | None = None  # the coordination pattern (see counterpoint.selection)
    barriers: bool = False  # phases (the graph's levels) wait for the one before (hybrid)
    ask_early: bool = False  # steps of approval and wait agents start first (event-driven)
    hedge: tuple[str, ...] = ()  # agents whose steps race a second attempt of themselves
    adapt: bool = True  # watch the run and switch the coordination when it pays


def new_run_id() -> str:
    """Sortable and readable: ``20261124-193012-4f2a9c``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def shape_pattern(graph: Graph) -> str:
    """The seed's pattern that the dependency structure follows.

    One step at a time (a chain): sequential; no dependencies at all: parallel; a mix of
    both: hybrid.
    """
    lv = levels(graph)
    depth = max(lv, default=-1) + 1
    if depth == len(lv):
        return "sequential"
    if depth <= 1:
        return "parallel"
    return "hybrid"


class Engine:
    """Runs one workflow once. Create, then ``await run()``; ``interrupt()`` stops it early."""

    bus: EventBus
    _held: set[int]
    _emit: Callable[..., None]  # the hub's: publish an event of the run
    planning: PlanChoice | None  # the planned rule's choice (set by build_scheduler)
    resources: ResourceManager | None  # pools, rate limits, budgets (set by build_scheduler)
    learned: Mapping[str, float] = MappingProxyType({})  # agents' durations from past runs

    def __init__(
        self,
        workflow: Workflow,
        *,
        agents: Mapping[str, Agent],
        backend: Backend,
        clock: Clock,
        inputs: Mapping[str, object] | None = None,
        options: RunOptions | None = None,
        observers: Sequence[RunObserver] = (),
        run_id: str | None = None,
        graph: Graph | None = None,
        virtual: bool = False,
        journal: Journal | None = None,
        restored: Mapping[str, StepReplay] | None = None,
        spent: Mapping[str, float] | None = None,
        past_events: Sequence[Event] = (),
        taken: Mapping[int, str] | None = None,
    ) -> None:
        """``journal``: where transitions go (durable runs); ``restored``: what a resumed run
        had done (succeeded steps are not run again; attempt numbers go on); ``spent``: what
        it charged to each budget; ``past_events``: the events of its earlier sessions (they
        fire the triggers again and count for waits); ``taken``: which of them waits took."""
        self._spent = dict(spent or {})
        self.workflow = workflow
        self.options = options or RunOptions()
        self.backend = backend
        self.clock = clock
        self.inputs = dict(inputs or {})
        self.observers = list(observers)
        self.run_id = run_id or new_run_id()
        self.virtual = virtual
        self.graph = graph or workflow.graph
        steps = self._steps = workflow.steps  # (a property: read it once)
        defaults = workflow.defaults
        self.outputs: list[object] = [None] * len(steps)
        self.patterns: PatternRuntime | None = None
        max_conc = self.options.max_concurrency or workflow.max_concurrency
        if workflow.plan.parts or any(s.validate_ is not None for s in steps):
            self.patterns = PatternRuntime(
                workflow, self.graph, workflow.base_dir, self.outputs, self._end_of, max_conc
            )
        policy = workflow.policy
        self.guardian = Guardian(policy) if policy.mode != "off" else None
        self._agent_map = agents
        self._agents = step_agents(self, agents)
        self._timeouts = [s.timeout if s.timeout is not None else defaults.timeout for s in steps]
        self._retries: list[RetryPolicy] = [s.retries or defaults.retries for s in steps]
        self._templates: list[Template | None] = [compile_template(s.input) for s in steps]
        parts = workflow.plan.parts
        self.records = [
            StepRecord(s.id, s.agent if s.agent != JOIN_AGENT else f"<{parts[s.id].kind}>")
            for s in steps
        ]
        self._init_events(workflow, past_events, taken or {})
        self.journal = journal
        self._encode = journal is not None and journal.store.durable
        self.error: str | None = None  # why the run stopped, when the store failed it
        done = self._restore(restored or {})
        self._base_attempts = [r.attempts for r in self.records]  # retries count from here
        self.scheduler = build_scheduler(self, max_conc, done)  # (planning, resources too)
        self._pattern: str | None = self.options.pattern
        self._rng = random.Random(self.options.seed)
        self._inbox: deque[Completion | int | Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._retry_timers: dict[int, Timer] = {}
        self._rate_timer: Timer | None = None
        self._rate_at = 0.0
        self._t0 = self._t_end = self._wall0 = 0.0
        self._init_helpers()
        self._stop_reason: Literal["", "fail-fast", "interrupt", "store", "budget", "end"] = ""
        self._stopping = False
        self._scope = {"inputs": self.inputs, "steps": _StepOutputs(self)}
        self._base_dir = workflow.base_dir

    def __repr__(self) -> str:
        return f"<Engine {self.workflow.name!r} run={self.run_id} {self.scheduler!r}>"

    def _init_helpers(self) -> None:
        self.cache = OutputCache(self)
        self.replanner = Replanner(self)
        self.adapter = Adapter(self, barriers=self.options.barriers, monitor=self.options.adapt)
        self._adapting = self.adapter.active

    def _parts(self) -> dict[str, dict[str, object]]:
        """Each construct's pattern, status and times (its first step's start, its end)."""
        plan = self.workflow.plan
        if not plan.parts:
            return {}
        index = self.graph.index
        starts: dict[str, float] = {}
        for rec in self.records:  # a step's start counts for every construct around it
            if rec.start is None:
                continue
            around = plan.part_of.get(rec.id)
            while around is not None:
                if around not in starts or rec.start < starts[around]:
                    starts[around] = rec.start
                around = plan.parts[around].parent
        out: dict[str, dict[str, object]] = {}
        for pid, part in plan.parts.items():
            rec = self.records[index[pid]]
            entry: dict[str, object] = {
                "kind": part.kind,
                "pattern": part.pattern,
                "parent": part.parent,
                "status": rec.status.value,
                "start_s": starts.get(pid),
                "end_s": rec.end,
            }
            if part.streams and self.patterns is not None:
                entry["streams"] = {
                    s.name: {"done": s.done, "steps": len(s.steps)}
                    for s in self.patterns.streams
                    if s.part == pid
                }
            out[pid] = entry
        return out

    def _end_of(self, i: int) -> float | None:
        return self.records[i].end

    def _restore(self, restored: Mapping[str, StepReplay]) -> list[int]:
        """Take over what a previous session of this run did; returns the steps done."""
        self._restored = restored  # also for steps triggers add again
        done: list[int] = []
        if not restored:
            return done
        for i, rec in enumerate(self.records):
            past = restored.get(rec.id)
            if past is None:
                continue
            rec.attempts = past.attempts
            rec.errors = list(past.errors)
            output = past.output if past.status == "succeeded" else None  # (decoded once)
            if past.status == "succeeded" and _kept(output):
                rec.status = StepState.SUCCEEDED
                rec.output = self.outputs[i] = output
                rec.restored = True
                done.append(i)
        if self.patterns is not None:  # sequences' contexts, in the order steps ran
            position = {node: k for k, node in enumerate(self.graph.order)}
            for i in sorted(done, key=position.__getitem__):
                self.patterns.succeeded(i, self.outputs[i])
        return done

    # --- driving loop --------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run every step to a final state and return the result."""
        given = self.options.wall_start
        wall0 = self._wall0 = given if given is not None else time.time()
        self._t0 = self._t_end = self.clock.now()
        self.hub.replaying = True  # the same numbers as before; nothing new is said meanwhile
        for event in self.hub.past_events:  # triggers fire again; waits may take them
            self.bus.publish(
                Event(
                    event.name,
                    event.data,
                    event.source,
                    event.time,
                    inbox=event.inbox,
                    restored=True,
                )
            )
        self.hub.replaying = False
        if self.journal is not None:
            self.hub.poll_due = True  # events sent before the run (or while it was down)
        if self._deadline is not None:
            self.replanner.check_timeline()  # late from the start?
        if self.guardian is not None and self.guardian.mode == "advisory":
            self.guardian.advise(self.workflow, self._emit)
        res = self.resources
        if res is not None:
            res.wall_offset = wall0 - self._t0
            if res.latest_finish is not None:
                res.latest_finish = [self._t0 + t for t in res.latest_finish]
        for o in self.observers:
            o.run_started(self.run_id, self.workflow.name, self.records)
        with frozen_gc():
            try:
                await self._loop()
            finally:
                for timer in self._retry_timers.values():
                    timer.cancel()
                if self._rate_timer is not None:
                    self._rate_timer.cancel()
                if self.hub.poll_timer is not None:
                    self.hub.poll_timer.cancel()
                await self.backend.aclose()
        result = RunResult(
            run_id=self.run_id,
            workflow=self.workflow.name,
            status=self._status(),
            pattern=self.pattern,
            started_at=wall0,
            makespan_s=self._t_end - self._t0,
            steps={r.id: r for r in self.records},
            events=self.events,
            virtual=self.virtual,
            error=self.error,
            store=self.journal.store.location if self.journal is not None else None,
            parts=self._parts(),
            planning=self.replanner.to_json(),
            adaptations=self.adapter.adaptations,
        )
        for o in self.observers:
            o.run_finished(result)
        return result

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        sched = self.scheduler
        journal = self.journal
        while not sched.finished:
            if self._stop_reason and not self._stopping:
                self._stop()
                continue  # stopping may have finished the run (only retries were waiting)
            started = sched.take(self.clock.now()) if self.resources is not None else sched.take()
            if self.resources is not None:
                if sched.unstartable or self.resources.overflows:
                    self._note_resources()
                    if sched.finished:
                        break  # the steps that can never start were the last ones
                self._wake_for_rates()
                if self.resources.exhausted and not self._stop_reason:
                    self._stop_reason = "budget"  # no new work; running steps finish
                    continue
            if started:
                jobs = self._start_all(started)
                # successes durable before dependents start; attempts before their agents run
                if journal is not None and not await self._commit():
                    self._cancel_jobs(jobs)
                    continue
                if self.cache.ttl:
                    jobs = await self.cache.lookup(jobs)
                backend = self.backend
                post = self._post
                for job in jobs:
                    backend.start(job, post)
            hub = self.hub
            if (hub.poll_due or sched.held or hub.waiting or hub.paused) and await hub.turn(
                started
            ):
                continue  # (the check first: most turns have nothing for the events)
            if not self._inbox:
                if journal is not None and (journal.pending or sched.released):
                    await self._commit()
                    if self._inbox or self._stop_reason:
                        self._drain()
                        continue
                waiter = self._waiter = loop.create_future()
                await self.clock.wait(waiter)
                self._waiter = None
            self._drain()
        if self.recovery.sagas:  # compensations still running: the run ends after them
            await asyncio.gather(*self.recovery.sagas)
        if journal is not None:
            await self._commit()
        self._t_end = self.clock.now()

    def _note_resources(self) -> None:
        """Steps whose window never opens again fail; overflows of soft pools are recorded."""
        res = self.resources
        assert res is not None
        sched = self.scheduler
        now = self.clock.now() - self._t0
        for i, why in sched.unstartable:
            rec = self.records[i]
            rec.status = StepState.FAILED
            rec.error = rec.error or (
                f"{why} after "
                f"{datetime.fromtimestamp(self._wall0 + now, UTC).isoformat(timespec='seconds')}"
                ": the step can never start"
            )
            rec.end = now
            if self.journal is not None:
                self.journal.event(rec.id, "failed", rec.error, rec.attempts)
            self._settle(rec, sched.never_starts(i))
            if self.options.fail_fast and not self._stop_reason:
                self._stop_reason = "fail-fast"
        sched.unstartable.clear()
        for over in res.overflows:
            step_id = self.graph.ids[over.step]
            data: dict[str, object] = {
                "pool": over.pool,
                "dimension": over.dimension,
                "over": over.over,
                "capacity": over.capacity,
            }
            if res.latest_finish is not None:  # why: it had to end by then
                data["must_end_by_s"] = res.latest_finish[over.step] - self._t0
            self._emit(step_id, "overflow", data)
        res.overflows.clear()

    def _wake_for_rates(self) -> None:
        """Steps wait for a rate limit or a time window: wake the loop when the first of
        them may start."""
        assert self.resources is not None
        when = self.scheduler.next_wake()
        if when is None:
            return
        now = self.clock.now()
        if when <= now:
            return  # not a wait (the step was passed over for another reason)
        timer = self._rate_timer
        if timer is not None:
            if self._rate_at <= when + 1e-12:
                return  # an earlier wake-up is set
            timer.cancel()
        self._rate_at = when
        self._rate_timer = self.clock.call_later(max(0.0, when - now), self._rate_due)

    def _rate_due(self) -> None:
        self._rate_timer = None
        self._post(-1)

    async def _commit(self) -> bool:
        """Journal what happened since the last commit; on a store failure, stop the run."""
        journal = self.journal
        assert journal is not None
        self._note_released(journal)
        if self.resources is not None:
            ids = self.graph.ids
            for i, name, amount in self.resources.take_charges():
                journal.event(ids[i], "charged", {"budget": name, "amount": amount})
        if journal.broken:
            return False
        if self.cache.puts:
            puts, self.cache.puts = self.cache.puts, []
            now = time.time()
            for key, text in puts:
                with contextlib.suppress(CounterpointError):  # only costs a later run time
                    await journal.store.cache_put(key, text, now)
        try:
            await journal.commit()
        except CounterpointError as exc:
            self.error = str(exc)
            self._stop_reason = "store"
            return False
        return True

    def _note_released(self, journal: Journal, starting: Sequence[int] = ()) -> None:
        """Journal the steps released since last time; for a step that starts in this same
        turn, its ``started`` entry says it was ready."""
        released = self.scheduler.released
        if released:
            ids = self.graph.ids
            add = journal.add
            now = time.time()
            skip = set(starting)
            for i in released:
                if i not in skip:
                    add("ready", ids[i], 0, None, now)
            released.clear()

    def _cancel_jobs(self, jobs: list[Job]) -> None:
        """Jobs that could not be journaled never start: they end cancelled."""
        for job in jobs:
            now = self.clock.now()
            self._finish(
                Completion(job.index, job.attempt, Outcome.CANCELLED, now, now, error="not run")
            )

    def interrupt(self) -> None:
        """Stop early: cancel running steps, start nothing new (the run ends INTERRUPTED)."""
        self._stop_reason = "interrupt"
        self._wake()

    @property
    def status(self) -> RunStatus:
        """How the run ended (or RUNNING)."""
        if not self.scheduler.finished:
            return RunStatus.RUNNING
        return self._status()

    @property
    def makespan_s(self) -> float:
        return self._t_end - self._t0

    @property
    def pattern(self) -> str:
        if self._pattern is None:
            self._pattern = shape_pattern(self.graph)
        return self._pattern

    def _status(self) -> RunStatus:
        if self._stop_reason == "store":
            return RunStatus.FAILED
        if self._stop_reason == "budget" and self.resources is not None:
            name = self.resources.exhausted or ""
            budget = self.workflow.resources.budgets.get(name)
            if budget is not None and budget.when_spent == "pause":
                return RunStatus.PAUSED
            return RunStatus.FAILED
        if self._stop_reason == "interrupt":
            return RunStatus.INTERRUPTED
        spare = self._not_needed
        if all(r.status is StepState.SUCCEEDED or i in spare for i, r in enumerate(self.records)):
            return RunStatus.SUCCEEDED
        return RunStatus.FAILED

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _post(self, item: Completion | int | Event) -> None:
        self._inbox.append(item)
        self._wake()

    def _drain(self) -> None:
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            if item == -1:  # a rate limit allows more now: the loop takes again
                continue
            if isinstance(item, Event):
                self._emit("", item.name, item.data, source=item.source)
                continue
            if isinstance(item, int):
                self._retry_timers.pop(item, None)
                self.scheduler.retry_now(item)
            else:
                self._finish(item)
        if self._adapting:
            self.adapter.turn()

    # --- starting and finishing steps ----------------------------------------------------

    def _start_all(self, indexes: list[int]) -> list[Job]:
        """Mark steps running and make their jobs (the loop starts them)."""
        now = self.clock.now() - self._t0
        jobs: list[Job] = []
        journal = self.journal
        wall = 0.0
        if journal is not None:
            self._note_released(journal, indexes)
            wall = self._wall0 + now  # the run's clock, as for the ends (virtual ones too)
        records = self.records
        graph = self.graph
        observers = self.observers
        agents = self._agents
        make_context = self._context
        if self._adapting:
            self.adapter.started(indexes, self.scheduler.running)
        for i in indexes:
            rec = records[i]
            rec.status = StepState.RUNNING
            rec.attempts += 1
            if rec.start is None:
                rec.start = now
            job = Job(
                i,
                rec.id,
                rec.attempts,
                agents[i] if agents else _no_agent,
                make_context,
                graph.estimates[i],
                self._timeouts[i],
            )
            for o in observers:
                o.step_started(rec, rec.attempts)
            if journal is not None:
                journal.add("started", rec.id, rec.attempts, None, wall)
            jobs.append(job)
        return jobs

    def _context(self, i: int, attempt: int) -> StepContext:
        template = self._templates[i]
        step = self._steps[i]
        value = template(self._scope) if template is not None else step.input
        graph = self.graph
        ids = graph.ids
        outputs = self.outputs
        patterns = self.patterns
        instructions = self.hub.instructions.get(i)
        return StepContext(  # positional: this runs for every attempt
            self.run_id,
            step.id,
            attempt,
            value,
            {ids[p]: outputs[p] for p in graph.preds[i]},
            graph.estimates[i] if graph.estimated[i] else None,
            self._timeouts[i],
            self._name,
            self._base_dir,
            patterns.handoff(i, self.records[i].errors) if patterns is not None else None,
            list(instructions) if instructions else [],
            self._emit,
            self._charge if self.resources is not None else None,
            self.hub.wait,
        )

    def _charge(self, step_id: str, resource: str, amounts: Mapping[str, float]) -> None:
        assert self.resources is not None
        self.resources.charge(self.graph.index[step_id], resource, dict(amounts), self.clock.now())
        self._emit(step_id, "charged", {"resource": resource, "amounts": dict(amounts)})

    # --- events: waits, triggers, the inbox ------------------------------------------------------

    def send(
        self, name: str, data: Mapping[str, object] | None = None, source: str = "api"
    ) -> None:
        """Deliver an event to the running run (from its event loop's thread)."""
        self._post(Event(name, dict(data or {}), source))

    def _init_events(
        self, workflow: Workflow, past_events: Sequence[Event], taken: Mapping[int, str]
    ) -> None:
        self.recovery = Recovery(self)
        self.events: list[AgentEvent] = []
        self._ended_by = ""
        self._not_needed: set[int] = set()  # skipped: no event started them, or the run ended
        self._deadline = workflow.deadline
        self._name = workflow.name
        self.hub = EventHub(self, past_events, taken)
        self.bus = self.hub.bus
        self._emit = self.hub.emit
        self._held = self.hub.compile_triggers(workflow)

    def _vet(self, c: Completion) -> Completion:
        """A success stays one only if its output passes its checkpoint and (with a durable
        store) can be stored; then it is journaled."""
        i = c.index
        patterns = self.patterns
        seen = c.output
        if LargeOutput.made and contains_large(seen) and self._must_see(i):
            try:  # kept elsewhere, but a check must look inside: fetched here
                seen = materialize(seen)
            except Exception as exc:
                error = f"its output cannot be read for checking: {exc}"
                return Completion(i, c.attempt, Outcome.FAILED, c.started, c.finished, error=error)
        if patterns is not None and not self.virtual:  # simulated outputs are not checked
            reason = patterns.check(i, seen)
            if reason is not None:  # the checkpoint failed: an attempt that failed
                return Completion(i, c.attempt, Outcome.FAILED, c.started, c.finished, error=reason)
        guardian = self.guardian
        if guardian is not None and not self.virtual:
            broken = guardian.check_output(self.records[i].id, seen)
            if broken is not None:
                self._emit(self.records[i].id, "policy_violation", broken.to_json())
                if guardian.mode == "mandatory":
                    return Completion(
                        i, c.attempt, Outcome.FAILED, c.started, c.finished, error=broken.message
                    )
        journal = self.journal
        if journal is not None:
            try:
                text: str | None = encode_output(c.output)
            except OutputNotStorable as exc:
                if self._encode:  # a durable store keeps JSON only: the step fails
                    return Completion(
                        i,
                        c.attempt,
                        Outcome.FAILED,
                        c.started,
                        c.finished,
                        error=str(exc),
                        retryable=False,
                    )
                text = None
            when = self._wall0 + c.finished - self._t0
            journal.add("succeeded", self.records[i].id, c.attempt, text, when)
            key = self.cache.keys.pop(i, None)
            if key is not None and text is not None and not self.records[i].cached:
                if LargeOutput.made and MARK in text:  # a file of this run's: not for others
                    return c
                self.cache.puts.append((key, text))
        return c

    def _must_see(self, i: int) -> bool:
        """Whether vetting step ``i``'s output looks inside it."""
        patterns, guardian = self.patterns, self.guardian
        return (patterns is not None and patterns.looks_at(i)) or (
            guardian is not None and guardian.checks_outputs
        )

    def _succeeded(self, c: Completion, rec: StepRecord) -> None:
        i = c.index
        self.outputs[i] = c.output
        rec.output = c.output
        rec.error = None  # earlier attempts' errors stay in rec.errors
        rec.status = StepState.SUCCEEDED
        rec.end = c.finished - self._t0
        self.scheduler.succeeded(i)
        if self._adapting:
            self.adapter.done(i, False)
        if (self.planning is not None or self._deadline is not None) and self.graph.estimated[i]:
            self.replanner.learn(i, c.finished - c.started)
        if self._deadline is not None:
            self.replanner.check_timeline()
        if self.hub.announce("task_completion"):
            self._emit(rec.id, "task_completion", {"step": rec.id})
        for o in self.observers:
            o.step_finished(rec)
        patterns = self.patterns
        if patterns is not None:
            patterns.succeeded(i, c.output)
            for j, name, data in patterns.take_events():
                self._emit(self.graph.ids[j], name, data)
            stream = patterns.stream_done(i)
            if stream is not None:
                for o in self.observers:
                    o.stream_progress(stream.part, stream.name, stream.done, len(stream.steps))

    def _finish(self, c: Completion) -> None:
        i = c.index
        rec = self.records[i]
        sched = self.scheduler
        journal = self.journal
        patterns = self.patterns
        if c.outcome is Outcome.SUCCEEDED and (
            patterns is not None or journal is not None or self.guardian is not None
        ):
            c = self._vet(c)
        if c.outcome is Outcome.SUCCEEDED:
            self._succeeded(c, rec)
            return
        if c.outcome is Outcome.CANCELLED:
            rec.status = StepState.CANCELLED
            rec.error = rec.error or "cancelled"
            rec.end = c.finished - self._t0
            if journal is not None:
                journal.event(rec.id, "cancelled", rec.error, rec.attempts)
            self._settle(rec, sched.cancelled(i))
            return
        error = c.error or c.outcome.value
        rec.errors.append(error)
        rec.error = error
        policy = self._retries[i]
        tries = rec.attempts - self._base_attempts[i]
        if c.retryable and tries <= policy.max and not self._stopping:
            delay = policy.delay(tries, self._rng.random())
            if journal is not None:
                journal.event(rec.id, "retried", {"error": error, "delay": delay}, rec.attempts)
            sched.retry_later(i)
            rec.status = StepState.WAITING
            for o in self.observers:
                o.step_retrying(rec, error, delay)
            self._retry_timers[i] = self.clock.call_later(delay, partial(self._post, i))
            return
        if patterns is not None and not self._stopping and self._rolled_back(i, rec, error):
            return
        if not self._stopping and self.recovery.recover(i, rec, error, c):
            return
        rec.status = StepState.FAILED
        rec.end = c.finished - self._t0
        if journal is not None:
            journal.event(rec.id, "failed", error, rec.attempts)
        self._settle(rec, sched.failed(i))
        if self._adapting:
            self.adapter.done(i, True)
        if self.hub.announce("error_encountered"):
            self._emit(rec.id, "error_encountered", {"step": rec.id, "error": error})
        if self.options.fail_fast and not self._stop_reason:
            self._stop_reason = "fail-fast"

    # --- re-planning when durations are not what the plan assumed -----------------------------

    # --- error recovery orchestration ---------------------------------------------------------

    def _rolled_back(self, i: int, rec: StepRecord, error: str) -> bool:
        """Step ``i`` failed for good: go back to its sequence's last validated state if the
        sequence allows (the previous item runs again, with the failure as feedback)."""
        patterns = self.patterns
        assert patterns is not None
        sched = self.scheduler
        state = sched.state
        target = patterns.rollback_target(i, error, lambda j: state[j] is not StepState.PENDING)
        if target is None:
            return False
        sched.rollback(target, i)
        rec.status = StepState.PENDING
        back = self.records[target]
        back.status = StepState.READY
        self._base_attempts[target] = back.attempts
        self._base_attempts[i] = rec.attempts
        if self.journal is not None:
            self.journal.event(rec.id, "rolled-back", {"to": back.id, "error": error})
        self._emit(rec.id, "rolled-back", {"to": back.id, "error": error})
        return True

    def _settle(self, rec: StepRecord, skipped: list[int]) -> None:
        """Record a step that ended without success, and the steps skipped because of it."""
        observers = self.observers
        for o in observers:
            o.step_finished(rec)
        journal = self.journal
        for j in skipped:
            sk = self.records[j]
            sk.status = StepState.SKIPPED
            sk.error = f"not run: {rec.id!r} {rec.status.value}"
            if journal is not None:
                journal.event(sk.id, "skipped", sk.error)
            for o in observers:
                o.step_finished(sk)

    def _stop(self) -> None:
        """Fail-fast or interrupt: cancel what has not started, then what is running."""
        self._stopping = True
        if self._stop_reason == "budget" and self.resources is not None:
            name = self.resources.exhausted or "?"
            limit = self.workflow.resources.budgets[name].limit
            spent = self.resources.spent.get(name, 0.0)
            blocked = self.resources.blocked
            if spent < limit and blocked is not None:
                who, need = blocked
                why = (
                    f"budget {name!r} has {limit - spent:g} left of {limit:g}, less than step "
                    f"{self.graph.ids[who]!r} needs ({need:g})"
                )
            else:
                why = f"budget {name!r} is spent ({spent:g} of {limit:g})"
            self.error = f"{why}: no new step starts; raise it and resume"
        reason = {
            "interrupt": "interrupted",
            "fail-fast": "stopped by fail-fast",
            "store": "the store failed",
            "budget": "a budget is spent",
            "end": f"the run was ended by {self._ended_by}",
        }[self._stop_reason]
        ended = self._stop_reason == "end"
        for j in self.scheduler.cancel_unstarted():
            timer = self._retry_timers.pop(j, None)
            if timer is not None:
                timer.cancel()
            rec = self.records[j]
            rec.status = StepState.SKIPPED if ended else StepState.CANCELLED
            rec.error = rec.error if rec.attempts and not ended else f"not run: {reason}"
            if ended:
                self._not_needed.add(j)
            if self.journal is not None:
                kind = "skipped" if ended else "cancelled"
                self.journal.event(rec.id, kind, f"not run: {reason}")
            for o in self.observers:
                o.step_finished(rec)
        if ended:  # steps waiting for an event will not get one: they stop, not needed
            index = self.graph.index
            for step_id, _name, _when, _future in list(self.hub.waiters):
                self._not_needed.add(index[step_id])
                self.backend.cancel(index[step_id])
        if self._stop_reason in ("budget", "end"):
            return  # a running step is never cut: it finishes (and is charged)
        running = StepState.RUNNING
        for i, state in enumerate(self.scheduler.state):
            if state is running:
                self.backend.cancel(i)


def _kept(output: object) -> bool:
    """A restored output is usable unless part of it lived only in a backend's object store
    that is gone (the step then runs again)."""
    return not LargeOutput.made or all_available(output)


class _StepOutputs(Mapping[str, object]):
    """``steps.ID.output`` for references, read from the engine's outputs as they are now."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getitem__(self, key: str) -> object:
        i = self._engine.graph.index[key]
        return {"output": self._engine.outputs[i]}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._engine.graph.ids)

    def __len__(self) -> int:
        return len(self._engine.graph.ids)


async def _no_agent(ctx: StepContext) -> object:
    raise RuntimeError("this engine was built without agents (simulation only)")
