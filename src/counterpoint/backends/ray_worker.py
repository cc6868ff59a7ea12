"""What runs on a Ray worker: one attempt of one step, for the Ray backend.

The driver sends the agent (pickled once, cached here by digest), the step context's plain
fields and, as top-level arguments, the object refs of large upstream outputs, which Ray
hands over resolved from its object store. What the agent publishes (``ctx.emit``) or
reports (``ctx.charge``) is recorded and given back with the result, for the driver to
replay; a large output stays in the object store (and, for a durable run, in a file this
worker writes), and only its size and digest go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import orjson

from counterpoint.agents.base import Agent, StepContext
from counterpoint.backends.local import where
from counterpoint.errors import StepFailed

__all__ = ["FileSlot", "Slot", "run_step"]

_AGENTS: dict[str, Agent] = {}
_PATHS: set[tuple[str, ...]] = set()
_LOOPS: list[asyncio.AbstractEventLoop] = []


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """Stands for the ``n``-th extra argument of the task: a large output, resolved by Ray."""

    n: int


@dataclasses.dataclass(frozen=True, slots=True)
class FileSlot:
    """Stands for a large output that only a file still holds (after a resume)."""

    path: str
    sha256: str


class _Recorder:
    __slots__ = ("charges", "events")

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []
        self.charges: list[tuple[str, dict[str, float]]] = []

    def emit(self, step_id: str, name: str, data: Mapping[str, object]) -> None:
        self.events.append((name, dict(data)))

    def charge(self, step_id: str, resource: str, amounts: Mapping[str, float]) -> None:
        self.charges.append((resource, dict(amounts)))


async def _no_wait(*_args: object) -> object:
    raise RuntimeError(
        "ctx.wait_for: this step runs on a Ray worker, which cannot wait for the run's events; "
        "let a `kind: wait` step wait, and this step need it"
    )


def run_step(
    static: tuple[str, bytes, tuple[str, ...], int, str | None],
    fields: tuple[object, ...],
    *refs: object,
) -> tuple[dict[str, object], object]:
    """Run one attempt; returns (what the driver needs, the output if it is large).

    ``static``: the agent's digest and pickle, the driver's import paths, from how many
    bytes an output is large, and where large outputs go; ``fields``: the step context's."""
    key, blob, paths, large, storage = static
    if paths not in _PATHS:  # the driver's import paths that exist here too
        _PATHS.add(paths)
        sys.path.extend(p for p in paths if p not in sys.path and os.path.isdir(p))
    agent = _AGENTS.get(key)
    if agent is None:
        from ray import cloudpickle

        agent = _AGENTS[key] = cloudpickle.loads(blob)
    (run_id, step_id, attempt, value, upstream, estimate, timeout, workflow, base_dir, handoff,
     instructions) = fields  # fmt: skip
    if refs or _has_files(value, upstream, handoff):
        value, upstream, handoff = cast(
            tuple[object, object, object], _fill((value, upstream, handoff), refs)
        )
    base = Path(str(base_dir))
    if not base.is_dir():  # another machine: the workflow's folder is this job's working dir
        base = _rebased(agent, base)
    recorder = _Recorder()
    ctx = StepContext(
        str(run_id),
        str(step_id),
        attempt,  # type: ignore[arg-type]
        value,
        upstream,  # type: ignore[arg-type]
        estimate,  # type: ignore[arg-type]
        timeout,  # type: ignore[arg-type]
        str(workflow),
        base,
        handoff,  # type: ignore[arg-type]
        instructions,  # type: ignore[arg-type]
        recorder.emit,
        recorder.charge,
        _no_wait,  # type: ignore[arg-type]
    )
    meta: dict[str, object] = {"events": recorder.events, "charges": recorder.charges}
    try:
        output = _call(agent, ctx)
    except StepFailed as exc:
        meta.update(error=str(exc), retryable=exc.retryable)
        return meta, None
    except Exception as exc:
        meta.update(error=f"{type(exc).__name__}: {exc}{where(exc)}", retryable=True)
        return meta, None
    try:
        text = orjson.dumps(output)
    except TypeError:  # not JSON to orjson (big integers, say): small enough to send back
        text = b""
    if len(text) < large:
        meta["output"] = output
        return meta, None
    digest = hashlib.sha256(text).hexdigest()
    path = _spill(storage, str(run_id), str(step_id), int(attempt), text)  # type: ignore[call-overload]
    meta.update(large=True, bytes=len(text), sha256=digest, path=path)
    return meta, output


def _rebased(agent: Agent, base: Path) -> Path:
    """On a node where the driver's workflow folder does not exist, Ray runs the task in the
    copy of it shipped as the job's ``working_dir`` (the current folder): a program agent's
    folder under the workflow's is taken there too. Returns the folder that stands for it."""
    here = Path.cwd()
    for obj in (agent, getattr(agent, "inner", None)):
        cwd = getattr(obj, "cwd", None)
        if isinstance(cwd, Path) and not cwd.is_dir() and cwd.is_relative_to(base):
            obj.cwd = here / cwd.relative_to(base)  # type: ignore[union-attr]
    return here


def _call(agent: Agent, ctx: StepContext) -> object:
    """The agent's output. A plain function runs in this thread, so that a cancellation
    (Ray raises KeyboardInterrupt here) stops it; a coroutine runs on this worker's loop and,
    when cancelled, is given the chance to clean up (a program ends its process group)."""
    if getattr(agent, "blocking", False):
        return agent.fn(ctx)  # type: ignore[attr-defined]
    loop = _LOOPS[0] if _LOOPS and not _LOOPS[0].is_closed() else None
    if loop is None:  # one per worker process, kept for its next steps
        loop = asyncio.new_event_loop()
        _LOOPS[:] = [loop]
    task = loop.create_task(agent(ctx))
    tick = _Tick(loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise
    finally:
        tick.stop()


class _Tick:
    """Wakes the loop every ``TICK_S``: Ray cancels a task by raising KeyboardInterrupt in
    this thread, which happens only when Python code runs, not while the loop sleeps."""

    __slots__ = ("handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handle = loop.call_later(TICK_S, self._again)

    def _again(self) -> None:
        self.handle = self.loop.call_later(TICK_S, self._again)

    def stop(self) -> None:
        self.handle.cancel()


TICK_S = 0.1


def _has_files(*values: object) -> bool:
    for value in values:
        if isinstance(value, FileSlot):
            return True
        if isinstance(value, dict) and _has_files(*value.values()):
            return True
        if isinstance(value, list | tuple) and _has_files(*value):
            return True
        if (
            dataclasses.is_dataclass(value)
            and not isinstance(value, type)  # a handoff
            and _has_files(*(getattr(value, f.name) for f in dataclasses.fields(value)))
        ):
            return True
    return False


def _fill(value: object, refs: tuple[object, ...]) -> object:
    if isinstance(value, Slot):
        return refs[value.n]
    if isinstance(value, FileSlot):
        data = Path(value.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != value.sha256:
            raise StepFailed(f"{value.path}: changed since the step that made it wrote it")
        return json.loads(data)
    if isinstance(value, dict):
        return {k: _fill(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, refs) for v in value]
    if isinstance(value, tuple):
        return tuple(_fill(v, refs) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a handoff
        changes = {f.name: _fill(getattr(value, f.name), refs) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _spill(storage: str | None, run_id: str, step_id: str, attempt: int, text: bytes) -> str | None:
    """Write a large output where the driver (and a resumed run) can read it again."""
    if storage is None:
        return None
    name = _UNSAFE.sub("_", step_id)
    if name != step_id:
        name += "-" + hashlib.sha256(step_id.encode()).hexdigest()[:8]
    folder = Path(storage) / _UNSAFE.sub("_", run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{attempt}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return str(path)
