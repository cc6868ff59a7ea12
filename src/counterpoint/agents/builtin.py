"""Built-in agents: ``noop`` and ``sleep`` (placeholders, dry runs, benchmarks), ``wait``
(for an event) and ``approval`` (by a person)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from counterpoint.agents.base import Agent, StepContext
from counterpoint.durations import parse_duration
from counterpoint.errors import StepFailed
from counterpoint.events.conditions import compile_condition
from counterpoint.model.workflow import AgentSpec, Duration

__all__ = ["APPROVAL", "APPROVE", "NOOP", "SLEEP", "WAIT", "for_step"]


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _noop(ctx: StepContext) -> object:
    return ctx.input


class NoopKind:
    """``kind: noop`` returns its input unchanged and takes no time."""

    options = _NoOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        return _noop


class SleepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: Duration | None = Field(
        None, description="how long to sleep; else the input's `seconds`, else the estimate"
    )
    scale: float = Field(1.0, ge=0.0, description="multiply the duration (0.001: ms per s)")


class _Sleep:
    __slots__ = ("scale", "seconds")

    def __init__(self, seconds: float | None, scale: float) -> None:
        self.seconds = seconds
        self.scale = scale

    async def __call__(self, ctx: StepContext) -> object:
        seconds = self.seconds
        if seconds is None and isinstance(ctx.input, dict) and "seconds" in ctx.input:
            seconds = parse_duration(ctx.input["seconds"])
        if seconds is None:
            seconds = ctx.estimate or 0.0
        await asyncio.sleep(seconds * self.scale)
        return None


class SleepKind:
    """``kind: sleep`` waits, then returns nothing: a stand-in with a duration."""

    options = SleepOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, SleepOptions)
        return _Sleep(options.seconds, options.scale)


NOOP = NoopKind()
SLEEP = SleepKind()


class WaitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(description="the event's name")
    when: str | None = Field(None, description="a condition on it (event.data.KEY == ...)")
    timeout: Duration | None = None
    on_timeout: Literal["fail", "default"] = "fail"
    default: JsonValue = Field(None, description="the output when it times out (on_timeout)")

    @field_validator("when")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            compile_condition(value)
        return value


class _Wait:
    __slots__ = ("options", "when")

    def __init__(self, options: WaitOptions) -> None:
        self.options = options
        self.when = compile_condition(options.when) if options.when else None

    async def __call__(self, ctx: StepContext) -> object:
        o = self.options
        try:
            event = await ctx.wait_for(o.event, self.when, o.timeout)
        except TimeoutError:
            if o.on_timeout == "default":
                ctx.emit("wait-timed-out", {"event": o.event, "action": "default"})
                return o.default
            raise StepFailed(
                f"no {o.event!r} event came in {o.timeout:g}s", retryable=False
            ) from None
        return {"event": event.name, "data": dict(event.data), "source": event.source}


class WaitKind:
    """``kind: wait`` waits for an event of the run (sent with ``counterpoint send``, by
    another step, or by the engine) and returns it: ``{event, data, source}``."""

    options = WaitOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, WaitOptions)
        return _Wait(options)


class ApprovalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="what the person is asked")
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve"] = "reject"


class _Approval:
    __slots__ = ("options",)

    def __init__(self, options: ApprovalOptions) -> None:
        self.options = options

    async def __call__(self, ctx: StepContext) -> object:
        o = self.options
        step = ctx.step_id
        ctx.emit("approval-requested", {"prompt": o.prompt, "input": ctx.input})
        try:
            event = await ctx.wait_for(APPROVAL, for_step(step), o.timeout)
            approved = bool(event.data.get("approved", True))
            comment = event.data.get("comment")
            by = event.source
        except TimeoutError:
            approved = o.on_timeout == "approve"
            comment = f"no answer in {o.timeout:g}s: {o.on_timeout} by default"
            by = "timeout"
        if not approved:
            raise StepFailed(
                f"rejected by {by}" + (f": {comment}" if comment else ""), retryable=False
            )
        return {"approved": True, "comment": comment, "by": by}


def for_step(step: str) -> Callable[[Mapping[str, object]], bool]:
    def matches(scope: Mapping[str, object]) -> bool:
        event = scope.get("event")
        data = event.get("data") if isinstance(event, dict) else None
        return isinstance(data, dict) and data.get("step") == step

    return matches


class ApprovalKind:
    """``kind: approval`` asks a person to approve (``counterpoint approve RUN STEP``); the
    run shows ``paused`` meanwhile. Rejected: the step fails with the comment. Approved:
    ``{approved, comment, by}``."""

    options = ApprovalOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, ApprovalOptions)
        return _Approval(options)


APPROVAL = "approval_given"
WAIT = WaitKind()
APPROVE = ApprovalKind()
