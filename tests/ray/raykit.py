"""Agents for the Ray backend's tests; they run on Ray workers (another process)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import ray
from counterpoint import StepContext, StepFailed


def pid(ctx: StepContext) -> dict[str, Any]:
    return {"pid": os.getpid(), "input": ctx.input}


def die_once(ctx: StepContext) -> dict[str, Any]:
    """Its worker process is killed (SIGKILL) in the first attempt."""
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"attempt": ctx.attempt, "pid": os.getpid()}


def meet(ctx: StepContext) -> dict[str, Any]:
    """Whether the other step of a pair was running at the same time as this one, looked for
    up to ``input.wait_s``; and what Ray gave this one. Each keeps its ``running`` mark until
    the other has seen it (``saw``), so that both or neither meet."""
    folder = Path(str(ctx.input["folder"]))  # type: ignore[index]
    me = ctx.step_id
    (folder / f"{me}.running").touch()
    deadline = time.monotonic() + float(ctx.input["wait_s"])  # type: ignore[index]

    def other(kind: str) -> bool:
        return any(p.stem != me for p in folder.glob(f"*.{kind}"))

    try:
        met = other("running")
        while not met and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the other step, not waiting a set time
            met = other("running")
        if met:
            (folder / f"{me}.saw").touch()
            while not other("saw") and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        (folder / f"{me}.running").unlink()
    return {
        "met": met,
        "gpus": [str(g) for g in ray.get_gpu_ids()],
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pid": os.getpid(),
    }


def _count(ctx: StepContext) -> None:
    folder = Path(str((ctx.input or {}).get("folder")))  # type: ignore[union-attr]
    with open(folder / f"{ctx.step_id}.runs", "a") as f:
        f.write(f"{ctx.attempt}\n")


def big(ctx: StepContext) -> str:
    """A large output: ``input.size`` characters."""
    _count(ctx)
    return "x" * int(ctx.input["size"])  # type: ignore[index]


def sizes(ctx: StepContext) -> dict[str, Any]:
    """The length of each upstream output, and what this process is."""
    _count(ctx)
    return {
        "sizes": {k: len(v) for k, v in ctx.upstream.items()},  # type: ignore[arg-type]
        "pid": os.getpid(),
    }


def fail_if_flag(ctx: StepContext) -> dict[str, Any]:
    """Fails for good while ``input.flag`` exists; then says what it got."""
    _count(ctx)
    if Path(str(ctx.input["flag"])).exists():  # type: ignore[index]
        raise StepFailed("the flag is up", retryable=False)
    return {"sizes": {k: len(v) for k, v in ctx.upstream.items()}}  # type: ignore[arg-type]


def talks(ctx: StepContext) -> str:
    ctx.emit("progress", {"done": 0.5})
    ctx.charge("cost", 2.5)
    ctx.logger.info("hello from a Ray worker")
    return "said"


async def waits(ctx: StepContext) -> object:
    return await ctx.wait_for("go")


def fails(ctx: StepContext) -> None:
    raise ValueError("bad thing")


def stuck(ctx: StepContext) -> None:
    """Never ends by itself: sleeps where no cancellation can reach it."""
    time.sleep(3600)
