"""The Ray backend: steps of Python and program agents run as Ray tasks.

Everything that decides stays in the driver (this process): the scheduler with its
priorities, pools, rate limits and patterns, the journal, retries, events and checks. The
backend only changes where an agent's call happens:

* ``kind: python`` and ``kind: program`` agents (and subagents run as a command) run as Ray
  tasks, one per attempt, with the step's demands on ``cpu``, ``gpu``, ``memory`` and any
  resource the cluster declares turned into the task's resource request; Python steps
  with no such demand are calls to a pool of runner actors instead (one per CPU of the
  cluster), as an actor call costs less than a task;
* LLM agents, approvals, waits, joins and plugins' agents run in the driver, as locally.

A task's output comes back to the driver unless it is large (``large_output`` bytes of
JSON, 1 MiB by default): then it stays in Ray's object store, dependents running on Ray get
it from there, and the journal records a file the worker wrote to ``storage`` (when given)
instead of the value. A worker that dies fails only its attempt, which the step's retry
policy retries; Ray itself never retries a task (``max_retries=0``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from ray.exceptions import (
    ObjectLostError,
    RayError,
    RayTaskError,
    TaskCancelledError,
)

import ray
from counterpoint.agents.base import Agent, StepContext
from counterpoint.backends.choose import BackendUnavailable
from counterpoint.backends.local import LocalBackend
from counterpoint.backends.ray_worker import FileSlot, Slot, run_step
from counterpoint.errors import StepFailed
from counterpoint.model.workflow import Step, Workflow
from counterpoint.outputs import LargeOutput, contains_large, materialize
from counterpoint.scheduler.clock import Clock
from ray import cloudpickle

__all__ = ["LARGE_OUTPUT", "RayBackend", "RayFactory", "RayUnavailable", "connect", "ray_options"]

LARGE_OUTPUT = 1 << 20
"""Outputs of at least this many bytes of JSON stay in the object store."""

KILL_GRACE = 5.0
"""Seconds a cancelled task has to stop before its worker is killed."""

_CPU = {"cpu", "cpus", "num_cpus"}
_GPU = {"gpu", "gpus", "num_gpus"}
_MEMORY = {"memory", "mem", "ram"}

_remote_step = ray.remote(max_retries=0, num_returns=2)(run_step)
_REMOTES: dict[tuple[object, ...], Any] = {}  # by name and options: building one costs
REMOTES_KEPT = 10_000


class RayUnavailable(BackendUnavailable):
    """Ray cannot be reached, or the cluster cannot run a step's demands."""


def connect(address: str | None = None, *, working_dir: Path | None = None) -> bool:
    """Join the Ray cluster at ``address`` (else ``$RAY_ADDRESS``; with neither, start a
    local Ray); returns whether this call did it (``False``: this process had joined one
    already). ``working_dir`` is shipped to a cluster joined by address, so that workers can
    import the workflow's modules and run its programs."""
    if ray.is_initialized():
        return False
    _no_uv_hook()
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"log_to_driver": True, "include_dashboard": False}
    if address is None:
        kwargs["address"] = "local"
    else:
        kwargs = {"address": address, "log_to_driver": True}
        if working_dir is not None:
            kwargs["runtime_env"] = {
                "working_dir": str(working_dir),
                "excludes": [".git", ".venv", "__pycache__", ".counterpoint", "node_modules"],
            }
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "locally"
        raise RayUnavailable(f"cannot start or join Ray {where}: {exc}") from None
    return True


def _no_uv_hook() -> None:
    """Under ``uv run``, Ray starts its workers with ``uv run`` in a copy of the current
    folder: slow, it needs the network, and the copy has no ``.venv`` (the workers never
    start). Workers here run this Python, with the workflow's folder shipped by ``connect``.
    ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=1`` gives Ray's behaviour back."""
    if os.environ.get("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0").lower() in ("0", "false"):
        from ray._private import ray_constants

        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False


def ray_options(step: Step, workflow: Workflow, known: set[str]) -> dict[str, Any]:
    """The Ray resource request of ``step``: its demands on dimensions called cpu, gpu and
    memory (or pools of one dimension called so), and on resources the cluster declares
    (``known``), summed over the pools it uses. Other demands stay the driver's alone."""
    cpus = gpus = memory = 0.0
    has_cpu = False
    custom: dict[str, float] = {}
    for pool_name, demand in step.uses.items():
        pool = workflow.resources.pools.get(pool_name)
        if pool is None:
            continue
        amounts = demand if isinstance(demand, dict) else {next(iter(pool.capacity)): demand}
        for dim, amount in amounts.items():
            name = pool_name if dim == "slots" and len(pool.capacity) == 1 else dim
            low = name.lower()
            if low in _CPU:
                cpus += amount
                has_cpu = True
            elif low in _GPU:
                gpus += amount
            elif low in _MEMORY:
                memory += amount
            elif name in known:
                custom[name] = custom.get(name, 0.0) + amount
    options: dict[str, Any] = {}
    if has_cpu:
        options["num_cpus"] = cpus
    if gpus:
        options["num_gpus"] = gpus
    if memory:
        options["memory"] = int(memory)
    if custom:
        options["resources"] = custom
    return options


@dataclasses.dataclass(frozen=True)
class RayFactory:
    """Makes the Ray backend of a run; ``spec`` is journaled, so that resume goes on there."""

    address: str | None = None
    storage: str | None = None
    large_output: int = LARGE_OUTPUT

    def __call__(self, clock: Clock) -> RayBackend:
        storage = Path(self.storage) if self.storage is not None else None
        return RayBackend(
            clock, address=self.address, storage=storage, large_output=self.large_output
        )

    @property
    def spec(self) -> dict[str, object]:
        return {"kind": "ray", "address": self.address, "storage": self.storage}


class RayBackend(LocalBackend):
    """Runs Python and program agents as Ray tasks, every other agent here.

    ``address``: the cluster (else ``$RAY_ADDRESS``, else a local Ray started for the run).
    ``storage``: a folder the driver and every worker see at the same path, where workers
    write large outputs so that a resumed run finds them (a local Ray: any folder).
    ``large_output``: from how many bytes of JSON an output stays in the object store.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        address: str | None = None,
        storage: Path | None = None,
        large_output: int = LARGE_OUTPUT,
    ) -> None:
        super().__init__(clock)
        self.address = address
        self.storage = str(storage) if storage is not None else None
        self.large_output = large_output
        self.started_ray = False
        self.paths = tuple(p for p in sys.path if p and os.path.isdir(p))
        self._options: dict[str, dict[str, Any]] = {}
        self._remotes: dict[str, Any] = {}
        self._reaping: set[asyncio.Task[None]] = set()
        self._workflow: Workflow | None = None
        self._steps: dict[str, Step] = {}
        self._known: set[str] = set()

    def __repr__(self) -> str:
        return f"<RayBackend running={len(self._tasks)}>"

    @classmethod
    def factory(
        cls,
        *,
        address: str | None = None,
        storage: Path | None = None,
        large_output: int = LARGE_OUTPUT,
    ) -> RayFactory:
        """What ``run(backend=...)`` takes: a Ray backend for the run's clock."""
        return RayFactory(address, str(storage) if storage is not None else None, large_output)

    # --- placing agents -------------------------------------------------------------------

    def place(self, agents: Mapping[str, Agent], workflow: Workflow) -> dict[str, Agent]:
        """Joins Ray, checks that the cluster can run every step, and wraps each agent:
        Python and program agents as Ray tasks, the others to get large outputs' values."""
        self.started_ray = connect(self.address, working_dir=workflow.base_dir)
        if self.storage is not None:
            Path(self.storage).mkdir(parents=True, exist_ok=True)
        self._workflow = workflow
        self._steps = {s.id: s for s in workflow.steps}
        declared = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self._known = {k for k in declared if k not in ("CPU", "GPU", "memory")}
        self._check_fit(workflow, agents)
        return {
            name: _RayAgent(self, agent) if runs_on_ray(agent) else _Fetching(agent)
            for name, agent in agents.items()
        }

    def _check_fit(self, workflow: Workflow, agents: Mapping[str, Agent]) -> None:
        alive = ray.nodes()  # type: ignore[no-untyped-call]
        nodes = [n.get("Resources", {}) for n in alive if n.get("Alive")]
        for step in workflow.steps:
            if not runs_on_ray(agents.get(step.agent)):
                continue
            opts = self.options_of(step.id)
            need = {"CPU": float(opts.get("num_cpus", 1.0)), "GPU": float(opts.get("num_gpus", 0))}
            need["memory"] = float(opts.get("memory", 0))
            need.update(opts.get("resources", {}))
            need = {k: v for k, v in need.items() if v > 0}
            if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
                continue
            wanted = ", ".join(f"{k} {_amount(k, v)}" for k, v in need.items())
            biggest = ", ".join(
                f"{k} {_amount(k, max((n.get(k, 0.0) for n in nodes), default=0.0))}" for k in need
            )
            raise RayUnavailable(
                f"step {step.id!r} asks Ray for {wanted}, more than any node of the cluster has "
                f"(the largest: {biggest}); lower the step's `uses:` or add a node that fits"
            )

    def options_of(self, step_id: str) -> dict[str, Any]:
        """The Ray options of a step's task (resources, name), computed once per step."""
        opts = self._options.get(step_id)
        if opts is None:
            wf = self._workflow
            step = self._steps.get(step_id)
            opts = ray_options(step, wf, self._known) if step is not None and wf else {}
            self._options[step_id] = opts
        return opts

    def remote_of(self, step_id: str) -> Any:
        """The remote function to call for a step: its options set (shared by runs)."""
        remote = self._remotes.get(step_id)
        if remote is None:
            name = f"{self._workflow.name}:{step_id}" if self._workflow else step_id
            opts = self.options_of(step_id)
            key = (name, *sorted((k, repr(v)) for k, v in opts.items()))
            remote = _REMOTES.get(key)
            if remote is None:
                if len(_REMOTES) >= REMOTES_KEPT:  # a long-lived process: bounded
                    _REMOTES.clear()
                remote = _REMOTES[key] = _remote_step.options(name=name, **opts)
            self._remotes[step_id] = remote
        return remote

    def pool(self) -> _Pool:
        """The runners' pool of this process's Ray job."""
        job = ray.get_runtime_context().get_job_id()
        pool = _POOLS.get(job)
        if pool is None:
            _POOLS.clear()  # (another job's actors are gone with it)
            cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
            pool = _POOLS[job] = _Pool(max(1, int(cpus)))
        return pool

    # --- stopping -------------------------------------------------------------------------

    def reap(self, ref: Any, seat: _Seat | None = None) -> None:
        """Cancel a task; if it has not stopped after ``KILL_GRACE`` s, kill its worker (a
        runner of the pool is restarted by Ray, and back in the pool once its call ended)."""
        ray.cancel(ref, force=False)
        pool = self.pool() if seat is not None else None
        task = asyncio.get_running_loop().create_task(_reap(ref, seat, pool))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def aclose(self) -> None:
        await super().aclose()
        if self._reaping:
            await asyncio.gather(*list(self._reaping), return_exceptions=True)


async def _reap(ref: Any, seat: _Seat | None = None, pool: _Pool | None = None) -> None:
    """Wait for a cancelled call to end; force it after ``KILL_GRACE`` s. A runner of the
    pool keeps running its other calls if this one ended, else it is killed and replaced
    (those calls are sent again, elsewhere)."""
    alive = True
    try:
        await asyncio.wait_for(asyncio.wrap_future(ref.future()), KILL_GRACE)
    except TimeoutError:
        if seat is None:
            ray.cancel(ref, force=True)
        alive = False  # (an actor's running call cannot be forced: the actor is)
    except (RayTaskError, TaskCancelledError):
        pass  # the call ended
    except (RayError, asyncio.CancelledError):
        alive = False
    if pool is not None and seat is not None:
        if not alive:
            pool.drop(seat.runner)
        pool.give(seat)


@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
class _Runner:
    """Runs steps, one at a time, for the pool: an actor call costs less than a task."""

    @ray.method(num_returns=2)
    def run(
        self, static: tuple[str, bytes, tuple[str, ...], int, str | None],
        fields: tuple[object, ...], *refs: object,
    ) -> tuple[dict[str, object], object]:  # fmt: skip
        return run_step(static, fields, *refs)


class _Seat:
    """One call's place on a runner."""

    __slots__ = ("runner",)

    def __init__(self, runner: Any) -> None:
        self.runner = runner


class _Pool:
    """Runner actors for Python steps with no resource demands, one per CPU of the cluster,
    started when first needed and kept for the process's later runs on the same cluster.

    A runner runs its calls one at a time, in order; it is given more while it runs one (up
    to ``DEPTH`` in all, every runner's first slot before anyone's second), so that it never
    waits for the driver between steps. Steps wait for a free slot in the order they
    started. When a runner dies, only the call it was running (the first of its calls) had
    started: the others are sent again, elsewhere."""

    DEPTH = 3

    def __init__(self, size: int) -> None:
        self.size = size
        self.runners: list[Any] = []
        self.calls: dict[int, collections.deque[_Seat]] = {}  # id(runner) -> in run order
        self.waiting: collections.deque[asyncio.Future[_Seat]] = collections.deque()

    async def take(self) -> _Seat:
        seat = self._slot()
        if seat is not None:
            return seat
        waiter: asyncio.Future[_Seat] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        return await waiter

    def _slot(self) -> _Seat | None:
        calls = self.calls
        runner = next((r for r in self.runners if not calls[id(r)]), None)
        if runner is None and len(self.runners) < self.size:
            runner = _Runner.options(scheduling_strategy="SPREAD").remote()  # type: ignore[attr-defined]
            self.runners.append(runner)
            calls[id(runner)] = collections.deque()
        if runner is None:
            runner = min(self.runners, key=lambda r: len(calls[id(r)]), default=None)
            if runner is None or len(calls[id(runner)]) >= self.DEPTH:
                return None
        seat = _Seat(runner)
        calls[id(runner)].append(seat)
        return seat

    def running(self, seat: _Seat) -> bool:
        """Whether this call is the one its runner runs (or ran when it died)."""
        queue = self.calls.get(id(seat.runner))
        return bool(queue) and queue[0] is seat  # type: ignore[index]

    def give(self, seat: _Seat) -> None:
        """A call ended (or will not be waited for any more)."""
        queue = self.calls.get(id(seat.runner))
        if queue is not None and seat in queue:
            queue.remove(seat)
        self._wake()

    def drop(self, runner: Any) -> None:
        """A runner that died, or is killed: out of the pool, not restarted."""
        if runner in self.runners:
            self.runners.remove(runner)
            del self.calls[id(runner)]
        with contextlib.suppress(RayError, ValueError):
            ray.kill(runner, no_restart=True)
        self._wake()

    def _wake(self) -> None:
        while self.waiting:
            if self.waiting[0].done():  # (its step was cancelled meanwhile)
                self.waiting.popleft()
                continue
            seat = self._slot()
            if seat is None:
                return
            self.waiting.popleft().set_result(seat)


_POOLS: dict[str, _Pool] = {}  # by Ray job: a new ray.init, a new pool


def runs_on_ray(agent: object) -> bool:
    """Whether the Ray backend sends this agent's calls to Ray: Python functions and
    programs (also a subagent run as a command)."""
    return getattr(agent, "portable", False) is True


class _RayAgent:
    """An agent whose every call runs on Ray: a call to a runner of the pool, or a task."""

    __slots__ = ("backend", "inner", "pooled", "static")

    def __init__(self, backend: RayBackend, inner: Agent) -> None:
        self.backend = backend
        self.inner = inner
        # a Python function: its steps without resource demands go to the runners' pool
        self.pooled = getattr(inner, "fn", None) is not None
        blob: bytes = cloudpickle.dumps(inner)  # type: ignore[no-untyped-call]
        key = hashlib.sha256(blob).hexdigest()[:24]
        # what every call sends alike, in one argument
        self.static = (key, blob, backend.paths, backend.large_output, backend.storage)

    def __repr__(self) -> str:
        return f"<on Ray: {self.inner!r}>"

    async def _once(
        self, ctx: StepContext, fields: tuple[object, ...], refs: list[object]
    ) -> tuple[dict[str, Any], Any]:
        """Submit one call (to a runner, for a Python step with no resource demands; else
        as a task) and wait for what it reports; returns that and its output's ref."""
        backend = self.backend
        seat = None
        pool = None
        handed = False  # to the reaper, or already given back
        if self.pooled and not backend.options_of(ctx.step_id):
            pool = backend.pool()
            seat = await pool.take()
            meta_ref, value_ref = seat.runner.run.remote(self.static, fields, *refs)
        else:
            meta_ref, value_ref = backend.remote_of(ctx.step_id).remote(self.static, fields, *refs)
        try:
            meta = await meta_ref
        except asyncio.CancelledError:
            backend.reap(meta_ref, seat)
            handed = True
            raise
        except TaskCancelledError:
            raise asyncio.CancelledError from None
        except RayTaskError as exc:  # the task's own code failed (not the agent: it is caught)
            raise StepFailed(f"the Ray task failed: {exc.cause or exc}") from None
        except ObjectLostError as exc:
            raise StepFailed(
                f"an input of the step was lost from Ray's object store: {exc}"
            ) from None
        except RayError as exc:  # the worker or its node died: this attempt only
            if seat is not None and pool is not None:
                ran = pool.running(seat)
                pool.give(seat)
                handed = True
                if not ran:  # queued behind the call its runner died in: never started
                    raise _Requeue from None
                pool.drop(seat.runner)  # a new runner takes its place, when one is needed
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise StepFailed(
                f"the Ray worker running it died ({type(exc).__name__}: {first})"
            ) from None
        finally:
            if seat is not None and pool is not None and not handed:
                pool.give(seat)
        return meta, value_ref

    async def __call__(self, ctx: StepContext) -> object:
        refs: list[object] = []
        handoff = ctx.handoff
        if handoff is not None:  # (its mappings may be views of the run's state)
            handoff = dataclasses.replace(
                handoff,
                results=dict(handoff.results),
                context=dict(handoff.context),
                validation=dict(handoff.validation),
            )
        value, upstream = ctx.input, dict(ctx.upstream)
        if LargeOutput.made:
            value, upstream, handoff = cast(
                tuple[Any, Any, Any], _lift((value, upstream, handoff), refs)
            )
        fields = (
            ctx.run_id,
            ctx.step_id,
            ctx.attempt,
            value,
            upstream,
            ctx.estimate,
            ctx.timeout,
            ctx.workflow,
            str(ctx.base_dir),
            handoff,
            list(ctx.instructions),
        )
        while True:
            try:
                meta, value_ref = await self._once(ctx, fields, refs)
                break
            except _Requeue:
                continue  # queued behind a call that would not stop: it never ran
        for name, data in meta["events"]:
            ctx.emit(name, data)
        for resource, amounts in meta["charges"]:
            ctx.charge(resource, amounts)
        if "error" in meta:
            raise StepFailed(str(meta["error"]), retryable=bool(meta["retryable"]))
        if meta.get("large"):
            return LargeOutput(
                int(meta["bytes"]),
                str(meta["sha256"]),
                meta["path"],
                ref=value_ref,
                fetch=lambda: ray.get(value_ref),
            )
        return meta["output"]


class _Requeue(Exception):
    """A call queued on a runner that died (or was killed) before it could start it."""


def _lift(value: object, refs: list[object]) -> object:
    """``value`` with large outputs replaced by slots (their refs appended to ``refs``)."""
    if isinstance(value, LargeOutput):
        if value.ref is not None:
            refs.append(value.ref)
            return Slot(len(refs) - 1)
        if value.path is not None:
            return FileSlot(value.path, value.sha256)
        raise StepFailed("an input of the step (a large output) is gone", retryable=False)
    if isinstance(value, dict):
        return {k: _lift(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_lift(v, refs) for v in value]
    if isinstance(value, tuple):
        return tuple(_lift(v, refs) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _lift(getattr(value, f.name), refs) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


class _Fetching:
    """An agent that runs in the driver: given large outputs' values, not references."""

    __slots__ = ("inner",)

    def __init__(self, inner: Agent) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return repr(self.inner)

    async def __call__(self, ctx: StepContext) -> object:
        if LargeOutput.made and (contains_large(ctx.input) or contains_large(dict(ctx.upstream))):
            got = await asyncio.to_thread(materialize, [ctx.input, dict(ctx.upstream)])
            value, upstream = cast(list[Any], got)
            ctx = dataclasses.replace(ctx, input=value, upstream=upstream)
        return await self.inner(ctx)


def _amount(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / 2**30:.1f} GiB"
    return f"{value:g}"
