"""The seed examples and a 1,000-step DAG give the same outputs on the local and the Ray
backend.

Each workflow runs twice with the same inputs (and the same run id, which the demo's nested
run is named after): on the default local backend, then on the Ray backend joined to the
test session's local Ray. Every step's status, error and output must be equal, types
included (an int is not a float, a tuple is not a list). Each Ray run must also really have
run its Python agents on Ray: the engine's backend is the Ray backend, every Python step's
agent is wrapped as a Ray task (``_RayAgent``), and each of those steps went through it; in
the DAG, agents report their process id, which on Ray is never the driver's.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import same_outputs_dag as dag  # tests/ray is on sys.path (and so on the Ray workers')

import counterpoint as cp
import ray
from counterpoint.backends import ray as ray_backend
from counterpoint.backends.ray import RayBackend
from counterpoint.scheduler.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = ROOT / "examples" / "patterns"
DEMO_DIR = ROOT / "examples" / "demo"
DEMO = DEMO_DIR / "feature_development.yaml"
AGENT_MODULES = ("pattern_agents", "demo_agents")

RUN_LIMIT_S = 300  # runs take about a second: only a hang reaches it
WORKER_LIMIT_S = 120
DAG_STEPS = 1000
DAG_SEED = 20240917


# --- running on both backends ---------------------------------------------------------------


class Observed:
    """What a run's ``on_engine`` saw: the engine, before it started."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def __call__(self, engine: Engine) -> None:
        self.engine = engine


def _run(
    workflow: cp.Workflow | Path,
    inputs: Mapping[str, object],
    run_id: str,
    backend: Callable[..., Any] | None = None,
) -> tuple[cp.RunResult, Engine]:
    seen = Observed()
    run = cp.run(
        workflow, inputs=inputs, store=None, run_id=run_id, backend=backend, on_engine=seen
    )
    try:  # a bound on a hang (a step whose Ray task never starts), not a wait
        result = asyncio.run(asyncio.wait_for(run, RUN_LIMIT_S))
    except TimeoutError:
        pytest.fail(f"run {run_id} ({'Ray' if backend else 'local'}) took over {RUN_LIMIT_S} s")
    assert seen.engine is not None
    return result, seen.engine


@pytest.fixture(scope="module")
def ray_workers(local_ray: str) -> None:
    """Ray can start a worker, in another process: else every test here fails at once,
    instead of each run waiting for a worker that never comes."""

    def worker_pid() -> int:
        return os.getpid()

    ref = ray.remote(worker_pid).remote()
    try:
        pid = ray.get(ref, timeout=WORKER_LIMIT_S)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        pytest.fail(
            f"the session's Ray started no worker in {WORKER_LIMIT_S} s (see the raylet's "
            "log; under `uv run`, RAY_ENABLE_UV_RUN_RUNTIME_ENV must be 0)"
        )
    assert pid != os.getpid()


@pytest.fixture
def on_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ids of the steps whose agent was called as a Ray task (``_RayAgent``), in order."""
    called: list[str] = []
    original = ray_backend._RayAgent.__call__

    async def counting(self: ray_backend._RayAgent, ctx: cp.StepContext) -> object:
        called.append(ctx.step_id)
        return await original(self, ctx)

    monkeypatch.setattr(ray_backend._RayAgent, "__call__", counting)
    yield called


@pytest.fixture(scope="module", autouse=True)
def _example_agent_modules() -> Iterator[None]:
    """The examples import their agents from beside them: put those folders on sys.path
    while these tests run (the Ray backend hands the driver's sys.path to its workers) and
    forget the modules afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PATTERNS))
        mp.syspath_prepend(str(DEMO_DIR))
        for name in AGENT_MODULES:
            mp.delitem(sys.modules, name, raising=False)
        yield
        for name in AGENT_MODULES:
            sys.modules.pop(name, None)


def _typed(value: object) -> object:
    """``value`` with every scalar's type beside it, so that equality also compares types."""
    if isinstance(value, dict):
        return ("dict", {k: _typed(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, value)


def _steps(result: cp.RunResult) -> dict[str, tuple[str, str | None, object]]:
    return {sid: (r.status.value, r.error, _typed(r.output)) for sid, r in result.steps.items()}


def _differences(local: cp.RunResult, on_ray: cp.RunResult) -> list[tuple[str, object, object]]:
    """(step, local, on Ray) for every step whose status, error or output differ."""
    a, b = _steps(local), _steps(on_ray)
    assert sorted(a) == sorted(b)
    return [(sid, a[sid], b[sid]) for sid in a if a[sid] != b[sid]]


def _python_steps(wf: cp.Workflow) -> set[str]:
    return {s.id for s in wf.steps if s.agent in wf.agents and wf.agents[s.agent].kind == "python"}


def _check_placed_on_ray(
    wf: cp.Workflow, engine: Engine, result: cp.RunResult, called: list[str]
) -> None:
    """The run's Python agents were Ray tasks, and every Python step that ran called one."""
    backend = engine.backend
    assert isinstance(backend, RayBackend), backend
    assert backend.started_ray is False  # it joined the session's Ray (no other to stop)
    python = _python_steps(wf)
    assert python
    placed = {
        s.id
        for s, agent in zip(engine._steps, engine._agents, strict=True)
        if isinstance(agent, ray_backend._RayAgent)
    }
    assert placed == python
    ran = {sid for sid in python if result.steps[sid].attempts > 0}
    assert set(called) == ran
    assert len(called) == sum(result.steps[sid].attempts for sid in ran)


# --- the seed examples --------------------------------------------------------------------


EXAMPLES = {
    "feature_development": (PATTERNS / "feature_development.yaml", {}),
    # a spec that traces only half of a vague request: rolled back to a broader analysis
    "feature_development-rollback": (
        PATTERNS / "feature_development.yaml",
        {"request": "Let people export what they see, with progress feedback"},
    ),
    "full_stack_development": (PATTERNS / "full_stack_development.yaml", {}),
    "enterprise_integration": (PATTERNS / "enterprise_integration.yaml", {}),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_a_pattern_example_gives_the_same_outputs_on_ray(
    name: str, local_ray: str, ray_workers: None, on_ray: list[str]
) -> None:
    path, inputs = EXAMPLES[name]
    wf = cp.load(path)
    run_id = f"same-{name}"
    local, local_engine = _run(wf, inputs, run_id)
    assert not on_ray
    assert not isinstance(local_engine.backend, RayBackend)
    ray_result, ray_engine = _run(wf, inputs, run_id, RayBackend.factory())

    assert local.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in local.steps.items()}
    assert ray_result.status is local.status
    assert ray_result.pattern == local.pattern
    assert all(r.status is cp.StepState.SUCCEEDED for r in local.steps.values())
    assert _differences(local, ray_result) == []
    # the same rollbacks, retries and conflicts
    assert [r.attempts for r in ray_result.steps.values()] == [
        r.attempts for r in local.steps.values()
    ]
    _check_placed_on_ray(wf, ray_engine, ray_result, on_ray)


MAKESPAN_TEXT = re.compile(r"audited in \d+\.\d\d s")


def _without_makespan(output: object) -> object:
    """The orchestrator's output with the nested run's measured makespan (a wall-clock
    duration, different on every run) left out; nothing else is touched."""
    assert isinstance(output, dict)
    nested = dict(output["nested_run"])
    assert isinstance(nested.pop("makespan_s"), float)
    return {**output, "nested_run": nested}


def test_the_demo_gives_the_same_outputs_on_ray(
    tmp_path: Path, demo_repo: Path, local_ray: str, ray_workers: None, on_ray: list[str]
) -> None:
    inputs = {"repo": str(demo_repo), "out": str(tmp_path / "out")}
    wf = cp.load(DEMO)
    local, _ = _run(wf, inputs, "same-demo")
    local_files = {f: (tmp_path / "out" / f).read_text() for f in ("spec.md", "report.md")}
    for f in local_files:
        (tmp_path / "out" / f).unlink()
    ray_result, ray_engine = _run(wf, inputs, "same-demo", RayBackend.factory())
    ray_files = {f: (tmp_path / "out" / f).read_text() for f in ("spec.md", "report.md")}

    assert local.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in local.steps.items()}
    assert ray_result.status is local.status
    assert ray_result.pattern == local.pattern
    # the nested run's makespan (measured) is the only run-dependent value: in the
    # orchestrator's output and in the report's first line
    for result in (local, ray_result):
        result.steps["orchestrate"].output = _without_makespan(result.steps["orchestrate"].output)
    assert _differences(local, ray_result) == []
    assert ray_files["spec.md"] == local_files["spec.md"]
    assert MAKESPAN_TEXT.search(local_files["report.md"])
    assert MAKESPAN_TEXT.sub("audited in - s", ray_files["report.md"]) == MAKESPAN_TEXT.sub(
        "audited in - s", local_files["report.md"]
    )
    # the nested plan's progress, relayed as events by the orchestrator (on a Ray worker)
    progress = [e.data for e in ray_result.events if e.name == "nested-progress"]
    assert progress == [e.data for e in local.events if e.name == "nested-progress"]
    assert progress
    _check_placed_on_ray(wf, ray_engine, ray_result, on_ray)


# --- a 1,000-step DAG ---------------------------------------------------------------------


def _pids(result: cp.RunResult) -> dict[str, int]:
    pids = {e.step_id: e.data["pid"] for e in result.events if e.name == dag.PID_EVENT}
    assert all(isinstance(p, int) for p in pids.values())
    return pids  # type: ignore[return-value]


def test_a_1000_step_dag_gives_the_same_outputs_on_ray(
    local_ray: str, ray_workers: None, on_ray: list[str]
) -> None:
    nodes = dag.make_dag(DAG_STEPS, DAG_SEED)
    # the DAG is what it should be: 1,000 steps, each needing 0-3 earlier ones, of every
    # shape and both agents, some given an upstream output by reference
    assert len(nodes) == DAG_STEPS
    assert {len(n.needs) for n in nodes} == {0, 1, 2, 3}
    assert all(int(d[1:]) < n.index for n in nodes for d in n.needs)
    assert {n.shape for n in nodes} == set(dag.SHAPES)
    assert {n.agent for n in nodes} == set(dag.AGENTS)
    assert sum(n.via_ref is not None for n in nodes) > 100
    want = dag.expected(nodes)
    wf = dag.workflow(nodes)

    started = time.perf_counter()
    local, _ = _run(wf, {}, "same-dag")
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    ray_result, ray_engine = _run(wf, {}, "same-dag", RayBackend.factory())
    ray_s = time.perf_counter() - started
    print(f"1,000-step DAG: local {local_s:.2f} s, Ray {ray_s:.2f} s")

    for result in (local, ray_result):
        assert result.status is cp.RunStatus.SUCCEEDED, [
            (k, r.error) for k, r in result.steps.items() if r.error
        ][:5]
        assert len(result.steps) == DAG_STEPS
        assert all(r.status is cp.StepState.SUCCEEDED for r in result.steps.values())
        assert all(r.attempts == 1 for r in result.steps.values())
    assert ray_result.pattern == local.pattern
    diffs = _differences(local, ray_result)
    assert diffs == [], f"{len(diffs)} steps differ, the first: {diffs[:3]}"
    wrong = [k for k, v in want.items() if _typed(local.steps[k].output) != _typed(v)]
    assert wrong == [], f"{len(wrong)} outputs are not the expected ones: {wrong[:5]}"

    _check_placed_on_ray(wf, ray_engine, ray_result, on_ray)
    assert len(on_ray) == DAG_STEPS
    # where the coroutine agents ran: here locally, in Ray's worker processes on Ray
    coroutines = {n.id for n in nodes if n.agent == "fold-async"}
    local_pids, ray_pids = _pids(local), _pids(ray_result)
    assert set(local_pids) == set(ray_pids) == coroutines
    assert set(local_pids.values()) == {os.getpid()}
    assert os.getpid() not in set(ray_pids.values())
