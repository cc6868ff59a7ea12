"""Built-in agents for placeholders, dry runs and benchmarks: ``noop`` and ``sleep``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from counterpoint.agents.base import Agent, StepContext
from counterpoint.durations import parse_duration
from counterpoint.model.workflow import AgentSpec, Duration

__all__ = ["NOOP", "SLEEP"]


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
