"""Error recovery during a run: the engine's side of ``patterns.recovery``.

When a step fails for good, its recovery options are taken in order (``RecoveryPlan``): a
retry with an adjusted timeout, an alternative agent, a skip, an escalation to a person, or a
rollback whose compensations run as a saga. Each decision is a ``recovery`` event.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.builtin import APPROVAL, for_step
from counterpoint.backends.base import Completion, Outcome
from counterpoint.errors import StepFailed
from counterpoint.patterns.recovery import RecoveryPlan, classify
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.result import StepRecord

if TYPE_CHECKING:
    from counterpoint.scheduler.engine import Engine

__all__ = ["Recovery"]


class Recovery:
    """Each failed step's place in its recovery options, and the sagas running."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.plans: dict[int, RecoveryPlan] = {}
        self.sagas: list[asyncio.Task[None]] = []

    def recover(self, i: int, rec: StepRecord, error: str, c: Completion) -> bool:
        """Step ``i`` failed for good: take its next recovery option, if any (returns whether
        the step goes on). The decision and why are a ``recovery`` event."""
        engine = self.engine
        step = engine._steps[i]
        options = step.recovery if step.recovery is not None else engine.workflow.defaults.recovery
        if not options:
            return False
        plan = self.plans.get(i)
        if plan is None:
            plan = self.plans[i] = RecoveryPlan(options, step.critical)
        kind, transient = classify(error, c.outcome is Outcome.TIMED_OUT, c.retryable)
        impact = self.impact(i)
        decision = plan.decide(kind, transient)
        data: dict[str, object] = {
            "error": error,
            "class": kind,
            "transient": transient,
            "impact": impact,
            "option": decision.name,
            "why": decision.why,
        }
        option = decision.option
        if option is not None and option.agent:
            data["agent"] = option.agent
        engine._emit(rec.id, "recovery", data)
        if option is None:
            return False
        if option.kind == "rollback":
            self.sagas.append(asyncio.get_running_loop().create_task(self.saga(i)))
            return False  # the step fails; its completed predecessors are undone
        if option.kind == "skip":
            self.skip_failed(i, rec, error)
            return True
        if option.kind == "retry" and option.timeout_factor and engine._timeouts[i] is not None:
            engine._timeouts[i] = engine._timeouts[i] * option.timeout_factor  # type: ignore[operator]
        if engine._agents:
            if option.kind == "alternative":
                assert option.agent is not None
                engine._agents[i] = engine._agent_map[option.agent]
            elif option.kind == "escalate":
                engine._agents[i] = self.escalation(i, error, impact, option.timeout)
        if engine.journal is not None:
            engine.journal.event(
                rec.id,
                "retried",
                {"error": error, "delay": 0.0, "recovery": option.kind},
                rec.attempts,
            )
        engine.scheduler.retry_later(i)
        rec.status = StepState.WAITING
        engine._post(i)  # (an int: the step is ready again)
        return True

    def impact(self, i: int) -> dict[str, object]:
        """The steps and streams a failure of step ``i`` reaches."""
        engine = self.engine
        ids = engine.graph.ids
        below = engine.graph.descendants(i)
        streams: list[str] = []
        if engine.patterns is not None:
            reached = {i, *below}
            streams = [
                f"{s.part}.{s.name}" for s in engine.patterns.streams if reached & set(s.steps)
            ]
        plan = engine.workflow.plan
        return {
            "steps": [ids[j] for j in below if ids[j] not in plan.parts],
            "streams": streams,
        }

    def skip_failed(self, i: int, rec: StepRecord, error: str) -> None:
        """Recovery skips a non-critical step: its dependents go on without its output."""
        engine = self.engine
        engine.outputs[i] = None
        rec.output = None
        rec.status = StepState.SKIPPED
        rec.error = f"skipped by recovery: {error}"
        rec.end = engine.clock.now() - engine._t0
        engine._not_needed.add(i)
        engine.scheduler.succeeded(i)
        if engine.journal is not None:
            when = engine._wall0 + rec.end
            engine.journal.add("succeeded", rec.id, rec.attempts, None, when)
        for o in engine.observers:
            o.step_finished(rec)

    def escalation(
        self, i: int, error: str, impact: dict[str, object], timeout: float | None
    ) -> Agent:
        """The step's agent behind a person's approval: the run pauses with the error and
        its impact until someone approves (then the step runs again) or rejects."""
        engine = self.engine
        agent = engine._agents[i]

        async def escalate(ctx: StepContext) -> object:
            ctx.emit("escalated", {"error": error, "impact": impact, "timeout": timeout})
            try:
                event = await ctx.wait_for(APPROVAL, for_step(ctx.step_id), timeout)
            except TimeoutError:
                raise StepFailed(
                    f"escalated; no answer in {timeout:g}s" if timeout else "escalated",
                    retryable=False,
                ) from None
            if not event.data.get("approved", True):
                comment = event.data.get("comment")
                raise StepFailed(
                    f"escalation rejected by {event.source}" + (f": {comment}" if comment else ""),
                    retryable=False,
                )
            engine._agents[i] = agent
            return await agent(ctx)

        return escalate

    async def saga(self, failed: int) -> None:
        """Run the compensations of the completed steps, latest first."""
        engine = self.engine
        records = engine.records
        done = sorted(
            (
                j
                for j, r in enumerate(records)
                if r.status is StepState.SUCCEEDED and engine._steps[j].compensate
            ),
            key=lambda j: records[j].end or 0.0,
            reverse=True,
        )
        engine._emit(records[failed].id, "rollback", {"compensate": [records[j].id for j in done]})
        for j in done:
            name = engine._steps[j].compensate
            assert name is not None
            agent = engine._agent_map.get(name)
            step_id = records[j].id
            if agent is None:  # simulated: nothing to call
                engine._emit(step_id, "compensated", {"by": name, "simulated": True})
                continue
            ctx = StepContext(
                run_id=engine.run_id,
                step_id=step_id,
                attempt=records[j].attempts,
                input=engine.outputs[j],
                workflow=engine.workflow.name,
                base_dir=engine._base_dir,
                _emit=engine._emit,
            )
            try:
                await agent(ctx)
            except Exception as exc:  # reported, and the saga goes on
                engine._emit(step_id, "compensation-failed", {"by": name, "error": str(exc)})
            else:
                engine._emit(step_id, "compensated", {"by": name})
