"""The engine on the virtual clock: exact start and finish times for every rule."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.backends import Job, VirtualBackend
from counterpoint.graph import analyse
from counterpoint.model.workflow import RetryPolicy
from counterpoint.scheduler.engine import Engine, shape_pattern

OK = cp.StepState.SUCCEEDED
FAILED = cp.StepState.FAILED
SKIPPED = cp.StepState.SKIPPED
CANCELLED = cp.StepState.CANCELLED


def workflow(*steps: tuple[str, float | None, list[str]], **kw: object) -> cp.Workflow:
    """Steps as (id, estimate, needs), all on one noop agent."""
    b = cp.WorkflowBuilder("t", max_concurrency=kw.pop("max_concurrency", None))  # type: ignore[arg-type]
    b.agent("nop", kind="noop")
    if kw:
        b.defaults(**kw)
    for sid, est, needs in steps:
        b.step(sid, agent="nop", needs=needs, estimate=est)
    return b.build()


def times(result: cp.RunResult) -> dict[str, tuple[float | None, float | None]]:
    return {sid: (r.start, r.end) for sid, r in result.steps.items()}


def sim(wf: cp.Workflow, workers: int | None = None, **kw: object) -> cp.RunResult:
    return asyncio.run(cp.simulate(wf, workers=workers, **kw))  # type: ignore[arg-type]


class Recorder(cp.RunObserver):
    """Every callback with the virtual time it came at."""

    def __init__(self, clock: cp.VirtualClock) -> None:
        self.clock = clock
        self.log: list[tuple[object, ...]] = []

    def run_started(self, run_id: str, workflow: str, steps: list[cp.StepRecord]) -> None:
        self.log.append((self.clock.now(), "run_started", workflow, [r.id for r in steps]))

    def step_started(self, record: cp.StepRecord, attempt: int) -> None:
        self.log.append((self.clock.now(), "started", record.id, attempt))

    def step_retrying(self, record: cp.StepRecord, error: str, delay: float) -> None:
        self.log.append((self.clock.now(), "retrying", record.id, error, delay))

    def step_finished(self, record: cp.StepRecord) -> None:
        self.log.append((self.clock.now(), "finished", record.id, record.status.value))

    def event(self, time: float, step_id: str, name: str, data: Mapping[str, object]) -> None:
        self.log.append((time, "event", step_id, name, dict(data)))

    def run_finished(self, result: cp.RunResult) -> None:
        self.log.append((self.clock.now(), "run_finished", result.status.value))


def vrun(
    wf: cp.Workflow,
    *,
    duration: Callable[[Job], float] | None = None,
    fail: Callable[[Job], str | None] | None = None,
    observe: bool = False,
    at: Mapping[float, Callable[[Engine], None]] | None = None,
    **kw: object,
) -> tuple[cp.RunResult, Recorder]:
    """Run ``wf`` on a virtual clock with the virtual backend; ``at`` acts on the engine."""
    clock = cp.VirtualClock()
    rec = Recorder(clock)

    def on_engine(engine: Engine) -> None:
        for t, act in (at or {}).items():
            clock.call_later(t, lambda act=act: act(engine))

    result = asyncio.run(
        cp.run(
            wf,
            clock=clock,
            backend=lambda c: VirtualBackend(c, duration=duration, fail=fail),  # type: ignore[arg-type]
            observers=[rec] if observe else [],
            on_engine=on_engine,
            **kw,  # type: ignore[arg-type]
        )
    )
    return result, rec


# --- no level barrier -------------------------------------------------------------------


def test_a_slow_branch_never_delays_an_unrelated_one() -> None:
    wf = workflow(
        ("slow", 5.0, []),
        ("a", 1.0, []),
        ("b", 1.0, ["a"]),
        ("c", 1.0, ["b"]),
        ("after", 1.0, ["slow"]),
    )
    result = sim(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {
        "slow": (0.0, 5.0),
        "a": (0.0, 1.0),
        "b": (1.0, 2.0),  # not 5.0: no waiting for the level to finish
        "c": (2.0, 3.0),
        "after": (5.0, 6.0),
    }
    assert result.makespan_s == 6.0
    assert result.pattern == "hybrid"
    assert result.virtual


def test_a_join_starts_when_its_last_need_finishes() -> None:
    wf = workflow(
        ("a", 1.0, []),
        ("b", 4.0, []),
        ("c", 1.5, ["a"]),
        ("d", 2.0, ["c", "b"]),
        ("e", 0.5, ["c"]),
    )
    assert times(sim(wf)) == {
        "a": (0.0, 1.0),
        "b": (0.0, 4.0),
        "c": (1.0, 2.5),
        "d": (4.0, 6.0),
        "e": (2.5, 3.0),
    }


def test_simulate_uses_estimates_and_defaults() -> None:
    wf = workflow(("a", None, []), ("b", 2.0, ["a"]), ("c", None, ["b"]))
    assert times(sim(wf)) == {"a": (0.0, 1.0), "b": (1.0, 3.0), "c": (3.0, 4.0)}
    wf2 = workflow(("a", None, []), ("b", 2.0, ["a"]), estimate="30s")
    result = sim(wf2)
    assert times(result) == {"a": (0.0, 30.0), "b": (30.0, 32.0)}
    assert result.pattern == "sequential"


def test_simulate_from_a_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: p\nagents:\n  a: {kind: noop}\nsteps:\n"
        "  - {id: x, agent: a, estimate: 250ms}\n  - {id: y, agent: a, estimate: 2m}\n"
    )
    result = sim(path)  # type: ignore[arg-type]
    assert times(result) == {"x": (0.0, 0.25), "y": (0.0, 120.0)}
    assert result.pattern == "parallel"
    assert result.makespan_s == 120.0


# --- concurrency ------------------------------------------------------------------------


def max_overlap(result: cp.RunResult) -> int:
    points = []
    for r in result.steps.values():
        assert r.start is not None and r.end is not None
        points += [(r.start, 1), (r.end, -1)]
    running = peak = 0
    for _, d in sorted(points, key=lambda p: (p[0], p[1])):
        running += d
        peak = max(peak, running)
    return peak


def test_workers_limit_concurrency() -> None:
    wf = workflow(*[(f"s{i}", 1.0, []) for i in range(5)])
    result = sim(wf, workers=2)
    assert times(result) == {
        "s0": (0.0, 1.0),
        "s1": (0.0, 1.0),
        "s2": (1.0, 2.0),
        "s3": (1.0, 2.0),
        "s4": (2.0, 3.0),
    }
    assert result.makespan_s == 3.0
    assert max_overlap(result) == 2
    unlimited = sim(wf)
    assert unlimited.makespan_s == 1.0
    assert max_overlap(unlimited) == 5


def test_workflow_max_concurrency_and_the_run_option() -> None:
    wf = workflow(*[(f"s{i}", 1.0, []) for i in range(4)], max_concurrency=3)
    by_workflow, _ = vrun(wf)
    assert by_workflow.makespan_s == 2.0
    assert max_overlap(by_workflow) == 3
    by_option, _ = vrun(wf, max_concurrency=1)
    assert times(by_option) == {
        "s0": (0.0, 1.0),
        "s1": (1.0, 2.0),
        "s2": (2.0, 3.0),
        "s3": (3.0, 4.0),
    }


# --- priority ---------------------------------------------------------------------------


def priority_dag() -> cp.Workflow:
    # b, c: short and alone; a is short but d (3 s) waits for it. Listed so that FIFO takes
    # b and c first.
    return workflow(("b", 1.0, []), ("c", 1.0, []), ("a", 1.0, []), ("d", 3.0, ["a"]))


def test_critical_path_priority() -> None:
    result = sim(priority_dag(), workers=2, priority="critical-path")
    assert times(result) == {
        "a": (0.0, 1.0),
        "b": (0.0, 1.0),
        "c": (1.0, 2.0),
        "d": (1.0, 4.0),
    }
    assert result.makespan_s == 4.0
    stats = analyse(priority_dag().graph)
    assert stats.lower_bound(2) == 4.0  # optimal


def test_fifo_priority() -> None:
    result = sim(priority_dag(), workers=2, priority="fifo")
    assert times(result) == {
        "b": (0.0, 1.0),
        "c": (0.0, 1.0),
        "a": (1.0, 2.0),
        "d": (2.0, 5.0),
    }
    assert result.makespan_s == 5.0


def test_priority_is_the_default_critical_path_in_run() -> None:
    result, _ = vrun(priority_dag(), max_concurrency=2)
    assert result.makespan_s == 4.0
    fifo, _ = vrun(priority_dag(), max_concurrency=2, priority="fifo")
    assert fifo.makespan_s == 5.0


# --- retries ----------------------------------------------------------------------------


def test_retry_policy_delay() -> None:
    p = RetryPolicy(max=5, backoff=1.0, factor=2.0, max_backoff=3.0, jitter=0.5)
    assert p.delay(1, 0.0) == 1.0
    assert p.delay(2, 0.0) == 2.0
    assert p.delay(3, 0.0) == 3.0  # capped
    assert p.delay(9, 0.0) == 3.0
    assert p.delay(1, 0.5) == 0.75
    assert p.delay(2, 0.999) == pytest.approx(2.0 * (1 - 0.5 * 0.999))


def retrying_step(policy: dict[str, object], est: float = 1.0) -> cp.Workflow:
    b = cp.WorkflowBuilder("r")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", estimate=est, retries=policy)
    b.step("b", agent="nop", estimate=1.0, needs="a")
    return b.build()


def fail_attempts(*attempts: int, step: str = "a") -> Callable[[Job], str | None]:
    def fail(job: Job) -> str | None:
        if job.step_id == step and job.attempt in attempts:
            return f"boom {job.attempt}"
        return None

    return fail


def test_retries_with_backoff_without_jitter() -> None:
    wf = retrying_step({"max": 3, "backoff": 1, "factor": 2, "max_backoff": 3, "jitter": 0})
    result, rec = vrun(wf, fail=fail_attempts(1, 2, 3), observe=True)
    # attempt 1: 0-1, wait 1; attempt 2: 2-3, wait 2; attempt 3: 5-6, wait 3 (capped);
    # attempt 4: 9-10; then b: 10-11
    starts = [x for x in rec.log if x[1] == "started"]
    assert starts == [
        (0.0, "started", "a", 1),
        (2.0, "started", "a", 2),
        (5.0, "started", "a", 3),
        (9.0, "started", "a", 4),
        (10.0, "started", "b", 1),
    ]
    assert [x for x in rec.log if x[1] == "retrying"] == [
        (1.0, "retrying", "a", "boom 1", 1.0),
        (3.0, "retrying", "a", "boom 2", 2.0),
        (6.0, "retrying", "a", "boom 3", 3.0),
    ]
    a = result.steps["a"]
    assert a.status is OK
    assert a.attempts == 4
    assert (a.start, a.end) == (0.0, 10.0)
    assert a.errors == ["boom 1", "boom 2", "boom 3"]
    assert times(result)["b"] == (10.0, 11.0)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.makespan_s == 11.0


def test_retries_with_seeded_jitter_are_exact() -> None:
    policy = {"max": 2, "backoff": 2, "factor": 3, "max_backoff": 60, "jitter": 0.5}
    wf = retrying_step(policy)
    rng = random.Random(7)
    d1 = 2.0 * (1 - 0.5 * rng.random())
    d2 = 6.0 * (1 - 0.5 * rng.random())
    result, rec = vrun(wf, fail=fail_attempts(1, 2), seed=7, observe=True)
    starts = [x[0] for x in rec.log if x[1] == "started" and x[2] == "a"]
    t2 = 1.0 + d1
    t3 = t2 + 1.0 + d2
    assert starts == [0.0, t2, t3]
    delays = [x[4] for x in rec.log if x[1] == "retrying"]
    assert delays == [d1, d2]
    assert result.steps["a"].end == t3 + 1.0
    assert result.makespan_s == t3 + 2.0
    # the same seed gives the same schedule
    again, _ = vrun(wf, fail=fail_attempts(1, 2), seed=7)
    assert times(again) == times(result)


def test_retries_exhausted_fail_the_step() -> None:
    wf = retrying_step({"max": 1, "backoff": 0.5, "jitter": 0})
    result, _ = vrun(wf, fail=fail_attempts(1, 2))
    a = result.steps["a"]
    assert a.status is FAILED
    assert a.attempts == 2
    assert (a.start, a.end) == (0.0, 2.5)
    assert a.error == "boom 2"
    assert a.errors == ["boom 1", "boom 2"]
    assert result.steps["b"].status is SKIPPED
    assert result.status is cp.RunStatus.FAILED


def test_default_retries_and_a_step_override() -> None:
    b = cp.WorkflowBuilder("d")
    b.agent("nop", kind="noop")
    b.defaults(retries={"max": 2, "backoff": 1, "jitter": 0})
    b.step("a", agent="nop")
    b.step("z", agent="nop", retries=0)
    result, _ = vrun(b.build(), fail=lambda job: "no")
    assert result.steps["a"].attempts == 3
    assert (result.steps["a"].start, result.steps["a"].end) == (0.0, 6.0)  # 0-1, 2-3, 5-6
    assert result.steps["z"].attempts == 1
    assert (result.steps["z"].start, result.steps["z"].end) == (0.0, 1.0)


def test_a_retrying_step_frees_its_slot() -> None:
    b = cp.WorkflowBuilder("slot")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", estimate=1.0, retries={"max": 1, "backoff": 3, "jitter": 0})
    b.step("x", agent="nop", estimate=2.0)
    result, _ = vrun(b.build(), fail=fail_attempts(1), max_concurrency=1)
    # x has the larger rank (2 > 1): x 0-2; a 2-3 fails, waits 3 s; a again 6-7
    assert times(result) == {"a": (2.0, 7.0), "x": (0.0, 2.0)}

    b2 = cp.WorkflowBuilder("slot2")
    b2.agent("nop", kind="noop")
    b2.step("a", agent="nop", estimate=3.0, retries={"max": 1, "backoff": 3, "jitter": 0})
    b2.step("x", agent="nop", estimate=2.0)
    result2, _ = vrun(b2.build(), fail=fail_attempts(1), max_concurrency=1)
    # a 0-3 fails; while it waits (3-6) x runs 3-5; a again 6-9
    assert times(result2) == {"a": (0.0, 9.0), "x": (3.0, 5.0)}


# --- timeouts ---------------------------------------------------------------------------


def test_timeout_ends_the_attempt_at_the_timeout() -> None:
    b = cp.WorkflowBuilder("to")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", estimate=5.0, timeout=2.0)
    b.step("b", agent="nop", needs="a")
    b.step("c", agent="nop", estimate=2.0, timeout=2.0)  # exactly on time is fine
    result, _ = vrun(b.build())
    a = result.steps["a"]
    assert a.status is FAILED
    assert (a.start, a.end) == (0.0, 2.0)
    assert a.error == "timed out after 2s"
    assert result.steps["b"].status is SKIPPED
    assert result.steps["c"].status is OK
    assert result.makespan_s == 2.0


def test_timeouts_are_retried() -> None:
    b = cp.WorkflowBuilder("to")
    b.agent("nop", kind="noop")
    b.defaults(timeout="1.5s")
    b.step("a", agent="nop", estimate=5.0, retries={"max": 1, "backoff": 1, "jitter": 0})
    durations = {1: 5.0, 2: 1.0}
    result, _ = vrun(b.build(), duration=lambda job: durations[job.attempt])
    a = result.steps["a"]
    assert a.status is OK
    assert a.attempts == 2
    assert (a.start, a.end) == (0.0, 3.5)  # 0-1.5 timed out, wait 1, 2.5-3.5
    assert a.errors == ["timed out after 1.5s"]


# --- failures ---------------------------------------------------------------------------


def test_failure_skips_dependents_and_independent_branches_continue() -> None:
    wf = workflow(
        ("a", 1.0, []),
        ("b", 1.0, ["a"]),
        ("c", 1.0, ["b"]),
        ("d", 2.0, []),
        ("e", 1.0, ["d"]),
        ("f", 1.0, ["a", "d"]),
    )
    result, rec = vrun(wf, fail=lambda job: "broken" if job.step_id == "a" else None, observe=True)
    assert result.status is cp.RunStatus.FAILED
    assert {k: r.status for k, r in result.steps.items()} == {
        "a": FAILED,
        "b": SKIPPED,
        "c": SKIPPED,
        "d": OK,
        "e": OK,
        "f": SKIPPED,
    }
    assert times(result) == {
        "a": (0.0, 1.0),
        "b": (None, None),
        "c": (None, None),
        "d": (0.0, 2.0),
        "e": (2.0, 3.0),
        "f": (None, None),
    }
    assert result.steps["a"].error == "broken"
    for sid in "bcf":
        assert result.steps[sid].error == "not run: 'a' failed"
        assert result.steps[sid].attempts == 0
    assert result.makespan_s == 3.0
    assert result.outputs == {"d": None, "e": None}
    skipped_at = {x[2]: x[0] for x in rec.log if x[1] == "finished" and x[3] == "skipped"}
    assert skipped_at == {"b": 1.0, "c": 1.0, "f": 1.0}
    assert result.count(SKIPPED) == 3
    assert cp.RunStatus.FAILED.exit_code == 1


def test_fail_fast_cancels_running_and_unstarted_steps() -> None:
    wf = workflow(
        ("a", 1.0, []),
        ("b", 5.0, []),
        ("c", 1.0, ["b"]),
        ("d", 0.5, []),
        ("e", 2.0, ["d"]),
    )
    fail = fail_attempts(1)
    result, _ = vrun(wf, fail=fail, fail_fast=True)
    assert result.status is cp.RunStatus.FAILED
    assert {k: (r.status, r.start, r.end) for k, r in result.steps.items()} == {
        "a": (FAILED, 0.0, 1.0),
        "b": (CANCELLED, 0.0, 1.0),
        "c": (CANCELLED, None, None),
        "d": (OK, 0.0, 0.5),
        "e": (CANCELLED, 0.5, 1.0),
    }
    assert result.steps["b"].error == "cancelled"
    assert result.steps["c"].error == "not run: stopped by fail-fast"
    assert result.makespan_s == 1.0
    # without fail-fast the rest runs to the end
    slow, _ = vrun(wf, fail=fail)
    assert slow.makespan_s == 6.0
    assert slow.steps["c"].status is OK


def waiting_workflow() -> cp.Workflow:
    b = cp.WorkflowBuilder("wait")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", estimate=1.0, retries={"max": 3, "backoff": 10, "jitter": 0})
    b.step("z", agent="nop", estimate=2.0)
    return b.build()


def test_fail_fast_cancels_a_step_waiting_to_retry() -> None:
    # a fails at 1 and waits 10 s to retry; z fails for good at 2: fail-fast cancels a then,
    # and nothing is left running, so the run ends at 2.
    result, _ = vrun(waiting_workflow(), fail=lambda job: "x", fail_fast=True)
    a = result.steps["a"]
    assert a.status is CANCELLED
    assert a.attempts == 1
    assert a.error == "x"
    assert result.steps["z"].status is FAILED
    assert result.makespan_s == 2.0
    assert result.status is cp.RunStatus.FAILED


def test_without_fail_fast_the_waiting_step_is_retried() -> None:
    result, _ = vrun(waiting_workflow(), fail=lambda job: "x")
    a = result.steps["a"]
    assert a.status is FAILED
    assert a.attempts == 4
    assert (a.start, a.end) == (0.0, 74.0)  # 0-1, wait 10, 11-12, wait 20, 32-33, wait 40, 73-74
    assert result.makespan_s == 74.0


# --- interrupt --------------------------------------------------------------------------


def test_interrupt_cancels_everything_and_ends_interrupted() -> None:
    wf = workflow(
        ("a", 1.0, []),
        ("b", 3.0, ["a"]),
        ("c", 10.0, []),
        ("d", 1.0, ["b"]),
    )
    result, rec = vrun(wf, at={2.5: Engine.interrupt}, observe=True)
    assert result.status is cp.RunStatus.INTERRUPTED
    assert result.status.exit_code == 130
    assert {k: (r.status, r.start, r.end) for k, r in result.steps.items()} == {
        "a": (OK, 0.0, 1.0),
        "b": (CANCELLED, 1.0, 2.5),
        "c": (CANCELLED, 0.0, 2.5),
        "d": (CANCELLED, None, None),
    }
    assert result.steps["d"].error == "not run: interrupted"
    assert result.steps["b"].error == "cancelled"
    assert result.makespan_s == 2.5
    assert rec.log[-1] == (2.5, "run_finished", "interrupted")


def test_interrupt_while_only_a_retry_is_waiting() -> None:
    # a fails at 1 and waits until 11 to retry; the interrupt at 5 finds nothing running.
    result, _ = vrun(
        waiting_workflow(),
        fail=lambda job: "x" if job.step_id == "a" else None,
        at={5.0: Engine.interrupt},
    )
    assert result.status is cp.RunStatus.INTERRUPTED
    assert result.steps["a"].status is CANCELLED
    assert result.steps["a"].attempts == 1
    assert result.steps["z"].status is OK
    assert result.makespan_s == 5.0


# --- observers --------------------------------------------------------------------------


def test_observers_see_every_callback_in_order() -> None:
    b = cp.WorkflowBuilder("obs")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", estimate=1.0, retries={"max": 1, "backoff": 0.5, "jitter": 0})
    b.step("b", agent="nop", estimate=2.0, needs="a")
    b.step("c", agent="nop", estimate=1.0, needs="a")
    b.step("x", agent="nop", estimate=1.0)
    b.step("y", agent="nop", needs="x")
    result, rec = vrun(
        b.build(),
        fail=lambda job: "bad" if (job.step_id, job.attempt) in {("a", 1), ("x", 1)} else None,
        observe=True,
    )
    assert rec.log == [
        (0.0, "run_started", "obs", ["a", "b", "c", "x", "y"]),
        (0.0, "started", "a", 1),
        (0.0, "started", "x", 1),
        (1.0, "retrying", "a", "bad", 0.5),
        (1.0, "finished", "x", "failed"),
        (1.0, "finished", "y", "skipped"),
        (1.5, "started", "a", 2),
        (2.5, "finished", "a", "succeeded"),
        (2.5, "started", "b", 1),
        (2.5, "started", "c", 1),
        (3.5, "finished", "c", "succeeded"),
        (4.5, "finished", "b", "succeeded"),
        (4.5, "run_finished", "failed"),
    ]
    assert result.makespan_s == 4.5


def test_agent_events_reach_observers_and_the_result() -> None:
    async def talk(ctx: cp.StepContext) -> object:
        ctx.emit("progress", {"done": 1})
        ctx.emit("bare")
        return ctx.attempt

    b = cp.WorkflowBuilder("ev")
    b.agent("talk", function=talk)
    b.step("s", agent="talk")
    clock = cp.VirtualClock()
    rec = Recorder(clock)
    result = asyncio.run(cp.run(b.build(), clock=clock, observers=[rec]))
    assert result.outputs == {"s": 1}
    assert [(e.time, e.step_id, e.name, e.data) for e in result.events] == [
        (0.0, "s", "progress", {"done": 1}),
        (0.0, "s", "bare", {}),
    ]
    assert (0.0, "event", "s", "progress", {"done": 1}) in rec.log
    assert result.to_json()["events"] == [
        {"time_s": 0.0, "step": "s", "name": "progress", "data": {"done": 1}},
        {"time_s": 0.0, "step": "s", "name": "bare", "data": {}},
    ]


# --- what agents are given --------------------------------------------------------------


def test_context_carries_ids_upstream_and_the_effective_settings() -> None:
    seen: dict[str, cp.StepContext] = {}

    async def look(ctx: cp.StepContext) -> object:
        seen[ctx.step_id] = ctx
        return ctx.step_id.upper()

    b = cp.WorkflowBuilder("ctx")
    b.agent("look", function=look)
    b.defaults(estimate="30s", timeout="1m")
    b.step("a", agent="look")
    b.step("b", agent="look", estimate=5, timeout=10)
    b.step("c", agent="look", needs=["a", "b"])
    result = cp.run_sync(b.build(), run_id="run-1")
    assert result.run_id == "run-1"
    c = seen["c"]
    assert c.run_id == "run-1"
    assert c.workflow == "ctx"
    assert c.attempt == 1
    assert c.upstream == {"a": "A", "b": "B"}
    assert c.idempotency_key == seen["c"].idempotency_key != seen["a"].idempotency_key
    assert seen["b"].estimate == 5.0
    assert seen["b"].timeout == 10.0
    assert seen["a"].timeout == 60.0
    # the defaults apply to every step "unless it says otherwise", the estimate too
    assert seen["a"].estimate == 30.0


def test_non_retryable_failure_skips_remaining_retries() -> None:
    calls: list[int] = []

    async def give_up(ctx: cp.StepContext) -> object:
        calls.append(ctx.attempt)
        raise cp.StepFailed("no point", retryable=False)

    async def crash(ctx: cp.StepContext) -> object:
        raise KeyError("k")

    b = cp.WorkflowBuilder("nr")
    b.agent("give_up", function=give_up)
    b.agent("crash", function=crash)
    b.step("a", agent="give_up", retries=5)
    b.step("z", agent="crash")
    result = asyncio.run(cp.run(b.build(), clock=cp.VirtualClock()))
    assert calls == [1]
    assert result.steps["a"].status is FAILED
    assert result.steps["a"].error == "no point"
    error = result.steps["z"].error
    assert error is not None
    assert error.startswith("KeyError: 'k'")


# --- shapes and the JSON result ---------------------------------------------------------


def test_shape_patterns() -> None:
    assert shape_pattern(workflow(("a", 1, []), ("b", 1, ["a"]), ("c", 1, ["b"])).graph) == (
        "sequential"
    )
    assert shape_pattern(workflow(("a", 1, []), ("b", 1, [])).graph) == "parallel"
    assert shape_pattern(workflow(("a", 1, []), ("b", 1, ["a"]), ("c", 1, ["a"])).graph) == (
        "hybrid"
    )


def test_run_result_to_json_shape() -> None:
    from datetime import datetime

    wf = workflow(("a", 1.0, []), ("b", 2.0, ["a"]), ("c", 1.0, ["b"]), ("d", 0.5, []))
    result, _ = vrun(
        wf,
        fail=lambda job: "bad" if job.step_id == "b" else None,
        run_id="r-1",
    )
    data = result.to_json()
    assert set(data) == {
        "run_id",
        "workflow",
        "status",
        "pattern",
        "virtual_clock",
        "store",
        "error",
        "started_at",
        "finished_at",
        "makespan_s",
        "counts",
        "parts",
        "planning",
        "selection",
        "adaptations",
        "steps",
        "events",
    }
    assert data["run_id"] == "r-1"
    assert data["workflow"] == "t"
    assert data["status"] == "failed"
    assert data["pattern"] == "parallel"  # selected: as fast as the others, and simplest
    assert data["virtual_clock"] is False
    assert data["makespan_s"] == 3.0
    assert data["counts"] == {"succeeded": 2, "failed": 1, "skipped": 1}
    assert data["events"] == []
    steps = data["steps"]
    assert isinstance(steps, dict)
    assert list(steps) == ["a", "b", "c", "d"]
    a = steps["a"]
    assert set(a) == {
        "status",
        "agent",
        "attempts",
        "started_at",
        "finished_at",
        "start_s",
        "end_s",
        "output",
    }
    assert (a["status"], a["agent"], a["attempts"], a["start_s"], a["end_s"]) == (
        "succeeded",
        "nop",
        1,
        0.0,
        1.0,
    )
    assert a["output"] is None
    b = steps["b"]
    assert (b["status"], b["attempts"], b["start_s"], b["end_s"], b["error"]) == (
        "failed",
        1,
        1.0,
        3.0,
        "bad",
    )
    assert "output" not in b
    c = steps["c"]
    assert (c["status"], c["attempts"], c["started_at"], c["finished_at"]) == (
        "skipped",
        0,
        None,
        None,
    )
    assert c["error"] == "not run: 'b' failed"

    def at(text: object) -> datetime:
        assert isinstance(text, str)
        return datetime.fromisoformat(text)

    run_start = at(data["started_at"])
    assert (at(data["finished_at"]) - run_start).total_seconds() == pytest.approx(3.0, abs=1e-3)
    assert (at(b["started_at"]) - run_start).total_seconds() == pytest.approx(1.0, abs=1e-3)
    assert (at(b["finished_at"]) - run_start).total_seconds() == pytest.approx(3.0, abs=1e-3)
    assert "output" not in result.to_json(outputs=False)["steps"]["a"]  # type: ignore[index]
    import json

    assert json.loads(result.dumps()) == json.loads(json.dumps(data))


def test_simulated_result_says_virtual_clock() -> None:
    result = sim(workflow(("a", 1.0, [])))
    assert result.to_json()["virtual_clock"] is True
    assert repr(result).endswith("'t' succeeded steps=1 makespan=1.000s>")


def test_a_workflow_without_steps_is_rejected() -> None:
    with pytest.raises(cp.WorkflowInvalid) as info:
        workflow()
    assert [str(p) for p in info.value.problems] == [
        "<python>: steps: a workflow needs at least one step"
    ]


def test_virtual_clock_jumps_and_fires_in_order() -> None:
    clock = cp.VirtualClock(start=10.0)
    fired: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: fired.append(("b", clock.now())))
    clock.call_later(1.0, lambda: fired.append(("a", clock.now())))
    clock.call_later(2.0, lambda: fired.append(("c", clock.now())))
    cancelled = clock.call_later(1.5, lambda: fired.append(("x", clock.now())))
    cancelled.cancel()
    assert clock.advance()
    assert fired == [("a", 11.0)]
    assert clock.advance()
    assert fired == [("a", 11.0), ("b", 12.0), ("c", 12.0)]
    assert not clock.advance()
    assert clock.now() == 12.0
