"""The engine's events: publishing and journaling them, waits, triggers (which start,
add, adjust or end), the inbox other processes write to, and the paused status.

The bus itself (``counterpoint.events``) only orders and delivers; this is what a run does
with what it delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from counterpoint.errors import CounterpointError
from counterpoint.events import Condition, Event, EventBus, compile_condition
from counterpoint.events.feedback import analyse
from counterpoint.model.refs import compile_template
from counterpoint.model.workflow import Step, Trigger, Workflow
from counterpoint.scheduler.clock import RealClock, Timer
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.resources import compile_demands
from counterpoint.scheduler.result import AgentEvent, RunStatus, StepRecord

if TYPE_CHECKING:
    from counterpoint.scheduler.engine import Engine

__all__ = ["INBOX_POLL_S", "EventHub"]

INBOX_POLL_S = 0.05  # how often a run with a store reads the events other processes sent


class EventHub:
    """One run's events: the bus, the waits and what they took, the triggers, the inbox."""

    def __init__(
        self, engine: Engine, past_events: Sequence[Event], taken: Mapping[int, str]
    ) -> None:
        self.engine = engine
        self.past_events = list(past_events)
        self.bus = EventBus()
        self.bus.subscribe("*", self.record)
        self.bus.subscribe("*", self.to_waiters)
        self.waiters: list[tuple[str, str, Condition | None, asyncio.Future[Event]]] = []
        self.taken: dict[int, str] = dict(taken)  # events waits took -> by which step
        self.replaying = False
        self.waiting = 0  # steps waiting for an event
        self.paused = False
        self.inbox_seen = max((e.inbox or 0 for e in self.past_events), default=0)
        self.poll_timer: Timer | None = None
        self.poll_due = False
        self.last_scope: tuple[int, dict[str, object]] = (0, {})  # conditions' view of one
        self.instructions: dict[int, list[str]] = {}  # from feedback
        self.own_graph = False  # a copy made when a trigger adds steps
        self.star_trigger = False
        self.listened: set[str] = set()

    def emit(
        self,
        step_id: str,
        name: str,
        data: Mapping[str, object],
        *,
        source: str | None = None,
        inbox: int | None = None,
    ) -> None:
        """Publish an event of the run: from a step, the engine (``step_id`` empty) or
        outside (``source``)."""
        engine = self.engine
        if self.replaying:
            return  # said in the earlier session already (it is in the journal)
        t = engine.clock.now() - engine._t0
        data = dict(data)
        if name == "feedback_received" and "analysis" not in data:
            text = data.get("text", data.get("comment", data.get("feedback")))
            if isinstance(text, str):
                data["analysis"] = analyse(text)
        self.bus.emit(name, data, source or step_id or "engine", t, inbox)

    def record(self, event: Event) -> None:
        """The first to see every event: the run's list, the journal, the observers."""
        engine = self.engine
        if event.restored:
            return
        step_id = event.source if event.source in engine.graph.index else ""
        data = event.data  # the engine's own copy (``_emit``)
        engine.events.append(AgentEvent(event.time, step_id, event.name, data))  # type: ignore[arg-type]
        if engine.journal is not None:
            entry: dict[str, object] = {
                "name": event.name,
                "kind": event.kind,
                "data": data,
                "source": event.source,
                "seq": event.seq,
            }
            if event.inbox is not None:
                entry["inbox"] = event.inbox
            engine.journal.event(step_id or None, "event", entry)
        for o in engine.observers:
            o.event(event.time, step_id, event.name, data)

    def scope(self, event: Event) -> dict[str, object]:
        """What conditions see of an event (made once per event, however many look)."""
        seq, scope = self.last_scope
        if seq != event.seq or not scope:
            scope = {"event": event.scope(), "inputs": self.engine.inputs}
            self.last_scope = (event.seq, scope)
        return scope

    def announce(self, name: str) -> bool:
        """Whether a trigger or a wait listens for ``name``, an agent event the engine
        publishes (``task_completion``, ``error_encountered``) only then."""
        return name in self.listened or (
            bool(self.waiters) and any(w[1] in ("*", name) for w in self.waiters)
        )

    def to_waiters(self, event: Event) -> None:
        """Give the event to the first wait it matches (one event, one wait)."""
        for _step, name, when, future in self.waiters:
            if future.done() or name not in ("*", event.name):
                continue
            if when is None or when(self.scope(event)):
                self.take(event, _step)
                future.set_result(event)
                return

    def take(self, event: Event, step_id: str) -> None:
        """A wait takes an event: noted (and journaled) so that no other wait takes it, in
        this session or after a resume (the same step, run again, may)."""
        engine = self.engine
        if self.taken.get(event.seq) != step_id:
            self.taken[event.seq] = step_id
            if engine.journal is not None:
                engine.journal.event(step_id, "taken", {"seq": event.seq})

    async def wait(
        self, step_id: str, name: str, when: Condition | None, timeout: float | None
    ) -> Event:
        engine = self.engine
        for event in self.bus.history:  # one that came already, and no other wait took
            if self.taken.get(event.seq, step_id) != step_id or name not in ("*", event.name):
                continue
            if when is None or when(self.scope(event)):
                self.take(event, step_id)
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        waiter = (step_id, name, when, future)
        self.waiters.append(waiter)
        timer = None
        if timeout is not None:

            def expire() -> None:
                if not future.done():
                    future.set_exception(TimeoutError())

            timer = engine.clock.call_later(timeout, expire)
        self.waiting += 1
        engine._post(-1)  # the loop sees the run paused
        try:
            return await future
        finally:
            self.waiting -= 1
            self.waiters.remove(waiter)
            if timer is not None:
                timer.cancel()
            engine._post(-1)

    def compile_triggers(self, workflow: Workflow) -> set[int]:
        """Subscribe the workflow's triggers; returns the steps that wait for one."""
        held: set[int] = set()
        index = self.engine.graph.index
        self.star_trigger = any(t.on == "*" for t in workflow.triggers)
        for trigger in workflow.triggers:
            held.update(index[s] for s in trigger.run)
            self.bus.subscribe(trigger.on, self.trigger(trigger))
        agent_events = {"task_completion", "error_encountered"}
        self.listened = (
            agent_events if self.star_trigger else agent_events & {t.on for t in workflow.triggers}
        )
        return held

    def trigger(self, trigger: Trigger) -> Callable[[Event], None]:
        engine = self.engine
        when = compile_condition(trigger.when) if trigger.when else None
        index = engine.graph.index
        steps = [index[s] for s in trigger.run]
        end = trigger.end
        on = trigger.on

        def fire(event: Event) -> None:
            if when is not None and not when(self.scope(event)):
                return
            woken = [engine.graph.ids[i] for i in steps if engine.scheduler.wake(i)]
            if woken:
                self.emit("", "triggered", {"on": event.name, "seq": event.seq, "steps": woken})
                engine._wake()  # the loop may be asleep: the woken steps start now
            if trigger.add:
                self.add_steps(trigger.add, event)
            if trigger.use or trigger.instruct or trigger.prioritise:
                self.adjust(trigger, event)
            if end and not engine._stop_reason:
                engine._ended_by = f"the trigger on {on!r} (event {event.seq})"
                self.emit("", "ended", {"on": event.name, "seq": event.seq})
                engine._stop_reason = "end"
                engine._wake()

        return fire

    def add_steps(self, steps: Sequence[Step], event: Event) -> None:
        """A trigger adds steps to the running workflow (again after a resume: those that
        succeeded then are not run again)."""
        engine = self.engine
        new = [s for s in steps if s.id not in engine.graph.index]
        if not new:
            return
        if not self.own_graph:  # the workflow's (or the caller's): grow a copy
            self.own_graph = True
            engine.graph = engine.scheduler.graph = engine.graph.copy()
            if engine.patterns is not None:
                engine.patterns.graph = engine.graph
        graph = engine.graph
        defaults = engine.workflow.defaults
        indexes: list[int] = []
        for s in new:  # one at a time: a step may need one added just before it
            estimate = s.estimate if s.estimate is not None else defaults.estimate
            indexes += graph.extend([s.id], [[graph.index[d] for d in s.needs]], [estimate])
        engine._steps = (*engine._steps, *new)
        done: set[int] = set()
        for i, s in zip(indexes, new, strict=True):
            rec = StepRecord(s.id, s.agent)
            past = engine._restored.get(s.id)
            engine.outputs.append(None)
            if past is not None:
                rec.attempts, rec.errors = past.attempts, list(past.errors)
                if past.status == "succeeded":
                    rec.status, rec.restored = StepState.SUCCEEDED, True
                    rec.output = engine.outputs[i] = past.output
                    done.add(i)
            engine.records.append(rec)
            engine._base_attempts.append(rec.attempts)
            if engine._agents:
                engine._agents.append(engine._agent_map[s.agent])
            engine._timeouts.append(s.timeout if s.timeout is not None else defaults.timeout)
            engine._retries.append(s.retries or defaults.retries)
            engine._templates.append(compile_template(s.input))
            if engine.patterns is not None:
                engine.patterns.add_step(s, engine.workflow.base_dir)
        if engine.resources is not None:
            engine.resources.extend(compile_demands(engine.workflow.resources, new)[0])
        priority = [
            graph.estimates[i] + 4.0 * float(s.priority) * (1.0 + max(graph.estimates))
            for i, s in zip(indexes, new, strict=True)
        ]
        skipped = engine.scheduler.extend(indexes, priority, done)
        self.emit("", "added", {"on": event.name, "seq": event.seq, "steps": [s.id for s in new]})
        for i in skipped:
            rec = engine.records[i]
            rec.status = StepState.SKIPPED
            rec.error = "not run: a step it needs did not succeed"
            for o in engine.observers:
                o.step_finished(rec)
        engine._wake()

    def adjust(self, trigger: Trigger, event: Event) -> None:
        """The seed's coordination adjustment: re-select agents, adjust instructions,
        reorder priorities, for steps that have not started."""
        engine = self.engine
        index, sched = engine.graph.index, engine.scheduler
        unstarted = (StepState.PENDING, StepState.READY, StepState.WAITING)
        changes: list[dict[str, object]] = []
        for step_id, agent in trigger.use.items():
            i = index[step_id]
            if sched.state[i] in unstarted:
                if engine._agents:
                    engine._agents[i] = engine._agent_map[agent]
                changes.append({"step": step_id, "agent": agent})
        if trigger.instruct:
            analysis = event.data.get("analysis")
            direction = analysis.get("direction") if isinstance(analysis, dict) else None
            text = "; ".join(map(str, direction)) if direction else event.data.get("text")
            if text:
                for step_id in trigger.instruct:
                    i = index[step_id]
                    if sched.state[i] in unstarted:
                        self.instructions.setdefault(i, []).append(str(text))
                        changes.append({"step": step_id, "instruction": str(text)})
        if trigger.prioritise:
            top = max(sched.priority, default=0.0)
            priority = list(sched.priority)
            for k, step_id in enumerate(trigger.prioritise):
                i = index[step_id]
                if sched.state[i] in unstarted:
                    priority[i] = top + 1.0 + len(trigger.prioritise) - k
                    changes.append({"step": step_id, "priority": "first"})
            sched.reprioritise(priority)
        if changes:
            self.emit("", "adjusted", {"on": event.name, "seq": event.seq, "changes": changes})

    async def poll_inbox(self) -> None:
        """Take the events other processes sent (``counterpoint send``, ``approve``)."""
        engine = self.engine
        journal = engine.journal
        assert journal is not None
        try:
            posted = await journal.store.inbox(engine.run_id, self.inbox_seen)
        except CounterpointError:
            posted = []  # a busy store: next time
        for p in posted:
            self.inbox_seen = p.id
            try:
                data = json.loads(p.data)
            except ValueError:
                data = {"text": p.data}
            self.emit(
                "",
                p.name,
                data if isinstance(data, dict) else {"value": data},
                source=p.source,
                inbox=p.id,
            )
        if isinstance(engine.clock, RealClock) and (not engine._stopping or self.waiting):
            # then every 50 ms (a virtual clock reads it once: time there does not pass)
            self.poll_timer = engine.clock.call_later(INBOX_POLL_S, self.poll_soon)

    def poll_soon(self) -> None:
        self.poll_timer = None
        self.poll_due = True
        self.engine._post(-1)

    async def note_paused(self) -> None:
        """Only steps waiting for an event run: the run shows ``paused`` (and back)."""
        engine = self.engine
        sched = engine.scheduler
        paused = self.waiting > 0 and sched.running == self.waiting and sched.ready == 0
        if paused == self.paused:
            return
        self.paused = paused
        if engine.journal is not None:
            with contextlib.suppress(CounterpointError):
                status = RunStatus.PAUSED if paused else RunStatus.RUNNING
                await engine.journal.store.update_run(engine.run_id, status=status.value)
        self.emit("", "paused" if paused else "resumed", {"waiting": self.waiting})

    async def turn(self, started: list[int]) -> bool:
        """The inbox when due, held steps no trigger can start any more, the paused status;
        returns whether the loop should go round again at once."""
        engine = self.engine
        if self.poll_due:
            self.poll_due = False
            await self.poll_inbox()
            if engine._inbox:
                engine._drain()
                return True
        sched = engine.scheduler
        if not started and not engine._inbox and sched.held and self.quiet():
            self.skip_held()  # no trigger can fire any more
            return True
        if not engine._inbox and (self.waiting or self.paused):
            await self.note_paused()
        return False

    def quiet(self) -> bool:
        """Nothing runs, is ready or waits to retry: only a trigger could start more."""
        engine = self.engine
        sched = engine.scheduler
        return sched.running == 0 and sched.ready == 0 and not engine._retry_timers

    def skip_held(self) -> None:
        engine = self.engine
        journal = engine.journal
        for j in engine.scheduler.skip_pending():
            engine._not_needed.add(j)
            rec = engine.records[j]
            rec.status = StepState.SKIPPED
            rec.error = (
                "not run: no event started it"
                if j in engine._held
                else "not run: a step it needs was never started by an event"
            )
            if journal is not None:
                journal.event(rec.id, "skipped", rec.error)
            for o in engine.observers:
                o.step_finished(rec)
