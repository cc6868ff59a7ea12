"""Per-step overhead on Ray: counterpoint's Ray backend against plain Ray tasks chained by
object references, for the same DAG of trivial steps, on one local Ray started here.

Plain Ray: one ``@ray.remote`` function; the whole DAG is submitted in index order (a
topological order), each task given its upstream tasks' object refs as arguments, then
``ray.get`` of the sinks. counterpoint: the same DAG as a workflow of ``kind: python`` steps
(the function :func:`step` below, which Ray workers import from this module) with ``needs``,
run with ``RayBackend.factory()``; only ``await counterpoint.run(...)`` is timed. For
reference, a third side submits the same plain Ray tasks the way any scheduler in the driver
has to: a task once the values of its needs are back (asyncio, values passed, not refs).
Every side computes :func:`mix` of the step's index and its upstream values, and every rep's
values are compared with the expected ones. The sides alternate rep by rep, after a warm-up
of each (Ray starts its workers lazily).

(The module is not called ``ray.py``: ``bench/`` is first on ``sys.path``, so that file would
shadow the ``ray`` package for every ``import ray`` in the driver.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import common
import counterpoint as cp

TARGET = 1.2
CPUS = 2
MODULUS = 1_000_000_007

_ENV = {
    "RAY_AUTH_MODE": "disabled",  # no token file in the user's home
    # Under `uv run` (as `make bench` runs this), Ray by default starts its workers with that
    # `uv run` command in a copy of the current folder, where `.venv/bin/uv` does not exist:
    # no worker ever starts. Here they run this interpreter, as the driver does.
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
}


# --- the work ---------------------------------------------------------------------------------


def mix(i: int, upstream: Sequence[int]) -> int:
    """A step's trivial work: its index and the sum of its upstream values, mixed."""
    return (i * 7919 + 31 * sum(upstream)) % MODULUS


def step(ctx: Any) -> int:
    """counterpoint's agent (``kind: python``), run on a Ray worker; its input is its index.
    Workers import it from this module: the Ray backend gives them the driver's sys.path,
    where ``bench/`` is."""
    return mix(ctx.input, list(ctx.upstream.values()))


def _plain_step(i: int, *upstream: int) -> int:
    """The plain Ray task: upstream values arrive resolved from their refs (or as values)."""
    return mix(i, upstream)


def expected(preds: common.Preds) -> list[int]:
    values: list[int] = []
    for i, ps in enumerate(preds):
        values.append(mix(i, [values[p] for p in ps]))
    return values


def sinks(preds: common.Preds) -> list[int]:
    needed = {p for ps in preds for p in ps}
    return [i for i in range(len(preds)) if i not in needed]


def _shapes(quick: bool) -> dict[str, common.Preds]:
    """A layered DAG (each step needs 2-3 steps of the level above) and a chain."""
    if quick:
        return {"layered 5x10": common.layered(5, 10, seed=5, lo=2), "chain 50": common.chain(50)}
    return {"layered 20x10": common.layered(20, 10, seed=5, lo=2), "chain 200": common.chain(200)}


# --- the sides ---------------------------------------------------------------------------------


def run_plain(remote: Any, preds: common.Preds, ends: list[int], want: list[int]) -> float:
    """The whole DAG submitted at once, chained by refs; wall time to the sinks' values."""
    import ray

    t0 = common.now()
    refs: list[Any] = []
    for i, ps in enumerate(preds):
        refs.append(remote.remote(i, *[refs[p] for p in ps]))
    ray.get([refs[i] for i in ends])
    took = common.now() - t0
    if ray.get(refs) != want:  # (outside the timing: every value)
        raise AssertionError("plain Ray computed other values than expected")
    return took


def run_on_completion(remote: Any, preds: common.Preds, want: list[int]) -> float:
    """The same tasks, each submitted from asyncio once its needs' values are back."""
    users: list[list[int]] = [[] for _ in preds]
    for i, ps in enumerate(preds):
        for p in ps:
            users[p].append(i)

    async def main() -> tuple[float, list[Any]]:
        loop = asyncio.get_running_loop()
        values: list[Any] = [None] * len(preds)
        left = [len(ps) for ps in preds]
        done = loop.create_future()
        count = 0

        async def go(i: int) -> None:
            nonlocal count
            values[i] = await remote.remote(i, *[values[p] for p in preds[i]])
            count += 1
            for u in users[i]:
                left[u] -= 1
                if not left[u]:
                    tasks.add(loop.create_task(go(u)))
            if count == len(preds):
                done.set_result(None)

        t0 = loop.time()
        tasks = {loop.create_task(go(i)) for i, ps in enumerate(preds) if not ps}
        await done
        return loop.time() - t0, values

    took, values = asyncio.run(main())
    if values != want:
        raise AssertionError("plain Ray (on completion) computed other values than expected")
    return took


def run_counterpoint(wf: cp.Workflow, backend: Any, want: list[int]) -> float:
    async def main() -> tuple[float, cp.RunResult]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await cp.run(wf, backend=backend)
        return loop.time() - t0, result

    took, result = asyncio.run(main())
    if result.status is not cp.RunStatus.SUCCEEDED:
        raise RuntimeError(f"counterpoint run {result.status}: {result.error}")
    outputs = result.outputs
    if [outputs[f"s{i}"] for i in range(len(want))] != want:
        raise AssertionError("counterpoint on Ray computed other values than plain Ray")
    return took


def start_ray() -> tuple[Any, Callable[[], None]]:
    """One local Ray of ``CPUS`` CPUs in a short temporary folder (it holds Unix sockets);
    returns the ``ray`` module and what stops Ray and removes the folder."""
    old = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    import ray

    # (the variable is read when ray is imported, which may have happened before)
    ray._private.ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
    temp = tempfile.mkdtemp(prefix="cpbr", dir="/tmp")

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(temp, ignore_errors=True)

    try:
        ray.init(
            num_cpus=CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,  # (no "Started a local Ray instance" line)
            _temp_dir=temp,
        )
    except BaseException:
        stop()
        raise
    return ray, stop


# --- the benchmark -----------------------------------------------------------------------------


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    reps = 3 if quick else 9
    warmup = 1 if quick else 2
    try:
        import ray
    except ImportError:
        out: dict[str, Any] = {"skipped": "ray is not installed (the `ray` extra)"}
        return out, f"\n== ray: skipped, {out['skipped']}"
    from counterpoint.backends.ray import RayBackend

    t0 = common.now()
    ray, stop = start_ray()
    start_s = common.now() - t0
    rows: list[list[object]] = []
    shapes: dict[str, Any] = {}
    try:
        remote = ray.remote(max_retries=0)(_plain_step)  # (as the backend's: no Ray retries)
        backend = RayBackend.factory()
        for name, preds in _shapes(quick).items():
            n = len(preds)
            want, ends = expected(preds), sinks(preds)
            wf = common.workflow(
                f"ray-{name.replace(' ', '-')}",
                preds,
                {"function": step},
                inputs=list(range(n)),
            )
            times = common.interleaved(
                {
                    "counterpoint": partial(run_counterpoint, wf, backend, want),
                    "plain": partial(run_plain, remote, preds, ends, want),
                    "on_completion": partial(run_on_completion, remote, preds, want),
                },
                reps,
                warmup=warmup,
            )
            cp_s, plain_s, oc_s = times["counterpoint"], times["plain"], times["on_completion"]
            per_rep = [c / p for c, p in zip(cp_s, plain_s, strict=True)]
            ratio = common.median(per_rep)
            best_ratio = min(cp_s) / min(plain_s)
            oc_ratio = common.median([o / p for o, p in zip(oc_s, plain_s, strict=True)])
            cp_ms = common.median(cp_s) / n * 1e3
            plain_ms = common.median(plain_s) / n * 1e3
            oc_ms = common.median(oc_s) / n * 1e3
            shapes[name] = {
                "steps": n,
                "edges": common.edges(preds),
                "sinks": len(ends),
                "counterpoint_ms_per_step": cp_ms,
                "plain_ray_ms_per_step": plain_ms,
                "on_completion_ms_per_step": oc_ms,
                "ratio": ratio,
                "best_ratio": best_ratio,
                "on_completion_ratio": oc_ratio,
                "ratio_per_rep": per_rep,
                "counterpoint_s": cp_s,
                "plain_ray_s": plain_s,
                "on_completion_s": oc_s,
            }
            rows.append(
                [
                    name,
                    n,
                    common.edges(preds),
                    cp_ms,
                    plain_ms,
                    ratio,
                    best_ratio,
                    oc_ms,
                    oc_ratio,
                    f"<= {TARGET:g}",
                    common.verdict(ratio, TARGET),
                ]
            )
    finally:
        t1 = common.now()
        stop()
        stop_s = common.now() - t1
    worst = max(s["ratio"] for s in shapes.values())
    out = {
        "reps": reps,
        "warmup": warmup,
        "cpus": CPUS,
        "ray": ray.__version__,
        "ray_start_s": start_s,
        "ray_stop_s": stop_s,
        "target_ratio": TARGET,
        "worst_ratio": worst,
        "ratio_ok": worst <= TARGET,
        "shapes": shapes,
    }
    text = common.table(
        f"ray: ms per trivial step on a local Ray ({CPUS} CPUs), counterpoint's Ray backend "
        f"against plain Ray tasks chained by refs (median of {reps} interleaved reps; ratio: "
        "median of the per-rep ratios, and of the fastest reps; for reference, the plain "
        "tasks each submitted once its needs' values are back)",
        [
            "shape",
            "steps",
            "edges",
            "counterpoint ms",
            "plain Ray ms",
            "ratio",
            "ratio of bests",
            "on completion ms",
            "on completion / plain",
            "target",
            "",
        ],
        rows,
    )
    text += f"\n(Ray {ray.__version__}: started in {start_s:.1f} s, stopped in {stop_s:.1f} s)"
    return out, text
