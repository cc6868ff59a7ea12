"""``kind: python``: module:function agents, sync and async, and what their context holds."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import counterpoint as cp
from counterpoint.agents.base import idempotency_key
from counterpoint.scheduler.core import StepState


def test_async_function_runs_on_the_event_loop_thread(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        import asyncio, threading

        async def where(ctx):
            loop_thread = threading.get_ident()
            await asyncio.sleep(0)
            return {"thread": loop_thread, "running_loop": asyncio.get_running_loop() is not None}
        """
    )
    wf = workflow_file(
        f"""
        name: async-fn
        agents:
          where: {{kind: python, function: "{mod}:where"}}
        steps:
          - {{id: s, agent: where}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs["s"] == {"thread": threading.get_ident(), "running_loop": True}


def test_sync_function_runs_off_the_event_loop_thread(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        import asyncio, threading

        def where(ctx):
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            return {"thread": threading.get_ident(), "on_loop": on_loop}
        """
    )
    wf = workflow_file(
        f"""
        name: sync-fn
        agents:
          where: {{kind: python, function: "{mod}:where"}}
        steps:
          - {{id: s, agent: where}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    out = result.outputs["s"]
    assert isinstance(out, dict)
    assert out["thread"] != threading.get_ident()  # asyncio.run drives the loop on this thread
    assert out["on_loop"] is False


def test_a_blocking_sync_function_does_not_hold_up_async_steps(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    # The sync step blocks until the async step sets the event; on the loop thread it would
    # block the loop, the async step could never run, and the wait would time out.
    mod = pymodule(
        """
        import asyncio, threading

        EVENT = threading.Event()

        def waiter(ctx):
            return EVENT.wait(timeout=10)

        async def setter(ctx):
            await asyncio.sleep(0)
            EVENT.set()
            return "set"
        """
    )
    wf = workflow_file(
        f"""
        name: no-block
        agents:
          waiter: {{kind: python, function: "{mod}:waiter"}}
          setter: {{kind: python, function: "{mod}:setter"}}
        steps:
          - {{id: wait, agent: waiter}}
          - {{id: set, agent: setter}}
        """
    )
    result = cp.run_sync(wf)
    assert result.outputs == {"wait": True, "set": "set"}
    assert result.makespan_s < 5


def test_dotted_module_and_attribute_path(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        class Tools:
            @staticmethod
            def double(ctx):
                return ctx.input * 2
        """
    )
    wf = workflow_file(
        f"""
        name: dotted
        agents:
          double: {{kind: python, function: "{mod}:Tools.double"}}
        steps:
          - {{id: s, agent: double, input: 21}}
        """
    )
    assert cp.run_sync(wf).outputs == {"s": 42}


def test_context_carries_ids_input_and_upstream(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        def first(ctx):
            return {"items": [1, 2, 3]}

        async def second(ctx):
            return {
                "run_id": ctx.run_id,
                "step_id": ctx.step_id,
                "attempt": ctx.attempt,
                "input": ctx.input,
                "upstream": dict(ctx.upstream),
                "key": ctx.idempotency_key,
                "workflow": ctx.workflow,
            }
        """
    )
    wf = workflow_file(
        f"""
        name: ctx
        inputs:
          who: {{type: string, default: world}}
        agents:
          first: {{kind: python, function: "{mod}:first"}}
          second: {{kind: python, function: "{mod}:second"}}
        steps:
          - {{id: fetch, agent: first}}
          - id: use
            agent: second
            needs: [fetch]
            input: {{who: "${{{{ inputs.who }}}}", n: "${{{{ steps.fetch.output.items.1 }}}}"}}
        """
    )
    result = cp.run_sync(wf, inputs={"who": "ada"}, run_id="run-ctx-1")
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.run_id == "run-ctx-1"
    expected_key = hashlib.sha256(b"run-ctx-1\x00use").hexdigest()[:32]
    assert result.outputs["use"] == {
        "run_id": "run-ctx-1",
        "step_id": "use",
        "attempt": 1,
        "input": {"who": "ada", "n": 2},
        "upstream": {"fetch": {"items": [1, 2, 3]}},
        "key": expected_key,
        "workflow": "ctx",
    }


def test_idempotency_key_is_stable_across_retries(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        SEEN = []

        def flaky(ctx):
            SEEN.append((ctx.attempt, ctx.idempotency_key))
            if ctx.attempt < 3:
                raise RuntimeError(f"boom {ctx.attempt}")
            return ctx.idempotency_key
        """
    )
    wf = workflow_file(
        f"""
        name: retry
        agents:
          flaky: {{kind: python, function: "{mod}:flaky"}}
        steps:
          - {{id: s, agent: flaky, retries: {{max: 3, backoff: 10ms, jitter: 0}}}}
          - {{id: t, agent: flaky, retries: {{max: 3, backoff: 10ms, jitter: 0}}}}
        """
    )
    result = cp.run_sync(wf, run_id="r-1")
    assert result.status is cp.RunStatus.SUCCEEDED
    key_s, key_t = idempotency_key("r-1", "s"), idempotency_key("r-1", "t")
    assert key_s != key_t
    seen = sys.modules[mod].SEEN
    assert sorted(seen) == sorted([(a, key_s) for a in (1, 2, 3)] + [(a, key_t) for a in (1, 2, 3)])
    assert result.outputs == {"s": key_s, "t": key_t}
    rec = result.steps["s"]
    assert rec.attempts == 3
    assert len(rec.errors) == 2
    assert rec.errors[0].startswith("RuntimeError: boom 1")
    assert rec.errors[1].startswith("RuntimeError: boom 2")


def test_step_failed_not_retryable_skips_remaining_retries(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        import counterpoint as cp

        CALLS = []

        async def refuse(ctx):
            CALLS.append(ctx.attempt)
            raise cp.StepFailed("bad request: no such item", retryable=False)
        """
    )
    wf = workflow_file(
        f"""
        name: refuse
        agents:
          refuse: {{kind: python, function: "{mod}:refuse"}}
          nop: {{kind: noop}}
        steps:
          - {{id: s, agent: refuse, retries: {{max: 5, backoff: 10ms}}}}
          - {{id: after, agent: nop, needs: [s]}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.FAILED
    assert sys.modules[mod].CALLS == [1]
    assert result.steps["s"].status is StepState.FAILED
    assert result.steps["s"].attempts == 1
    assert result.steps["s"].error == "bad request: no such item"
    assert result.steps["after"].status is StepState.SKIPPED


def test_any_exception_fails_the_step_with_its_type_and_message(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        def broken(ctx):
            return {}["missing"]
        """
    )
    wf = workflow_file(
        f"""
        name: broken
        agents:
          broken: {{kind: python, function: "{mod}:broken"}}
        steps:
          - {{id: s, agent: broken}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["s"].error
    assert error is not None
    assert error.startswith("KeyError: 'missing'")


def test_logger_records_carry_run_step_and_attempt(
    pymodule: Callable[[str], str],
    workflow_file: Callable[[str], cp.Workflow],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mod = pymodule(
        """
        def chatty(ctx):
            ctx.logger.info("working on %s", ctx.input)
            return None
        """
    )
    wf = workflow_file(
        f"""
        name: log
        agents:
          chatty: {{kind: python, function: "{mod}:chatty"}}
        steps:
          - {{id: s, agent: chatty, input: files}}
        """
    )
    caplog.set_level(logging.INFO, logger="counterpoint.agent")
    result = cp.run_sync(wf, run_id="log-run")
    assert result.status is cp.RunStatus.SUCCEEDED
    records = [r for r in caplog.records if r.name == "counterpoint.agent"]
    assert [r.getMessage() for r in records] == ["working on files"]
    rec = records[0]
    assert (rec.run_id, rec.step_id, rec.attempt) == ("log-run", "s", 1)  # type: ignore[attr-defined]


def test_emitted_events_appear_in_the_result(
    pymodule: Callable[[str], str], workflow_file: Callable[[str], cp.Workflow]
) -> None:
    mod = pymodule(
        """
        async def emitter(ctx):
            ctx.emit("progress", {"done": 1, "of": 2})
            ctx.emit("ping")
            return "ok"

        def sync_emitter(ctx):
            ctx.emit("from-thread", {"n": 7})
            return "ok"
        """
    )
    wf = workflow_file(
        f"""
        name: events
        agents:
          a: {{kind: python, function: "{mod}:emitter"}}
          b: {{kind: python, function: "{mod}:sync_emitter"}}
        steps:
          - {{id: first, agent: a}}
          - {{id: second, agent: b, needs: [first]}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert [(e.step_id, e.name, e.data) for e in result.events] == [
        ("first", "progress", {"done": 1, "of": 2}),
        ("first", "ping", {}),
        ("second", "from-thread", {"n": 7}),
    ]
    assert all(0 <= e.time <= result.makespan_s for e in result.events)
    as_json = result.to_json()["events"]
    assert isinstance(as_json, list)
    assert as_json[0]["name"] == "progress"
    assert as_json[0]["step"] == "first"
    assert as_json[0]["data"] == {"done": 1, "of": 2}


def test_callables_from_python_sync_async_and_async_objects() -> None:
    loop_threads: list[int] = []

    def sync_total(ctx: cp.StepContext) -> object:
        upstream = ctx.upstream
        return {"thread": threading.get_ident(), "sum": upstream["gen"] + upstream["obj"]}

    async def gen(ctx: cp.StepContext) -> object:
        loop_threads.append(threading.get_ident())
        return 10

    class Adder:
        async def __call__(self, ctx: cp.StepContext) -> object:
            loop_threads.append(threading.get_ident())
            await asyncio.sleep(0)
            return 5

    b = cp.WorkflowBuilder("callables")
    b.agent("gen", function=gen)
    b.agent("obj", function=Adder())
    b.agent("total", function=sync_total)
    b.step("gen", agent="gen")
    b.step("obj", agent="obj")
    b.step("total", agent="total", needs=["gen", "obj"])
    result = cp.run_sync(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    me = threading.get_ident()
    assert loop_threads == [me, me]
    total = result.outputs["total"]
    assert isinstance(total, dict)
    assert total["sum"] == 15
    assert total["thread"] != me


def test_timeout_cancels_an_async_function() -> None:
    state: dict[str, bool] = {"cancelled": False}

    async def hang(ctx: cp.StepContext) -> object:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise
        return None

    b = cp.WorkflowBuilder("timeout")
    b.agent("hang", function=hang)
    b.step("s", agent="hang", timeout="100ms")
    result = cp.run_sync(b.build())
    assert result.status is cp.RunStatus.FAILED
    assert result.steps["s"].error == "timed out after 0.1s"
    assert state["cancelled"] is True
    assert result.makespan_s < 5


def test_a_plain_function_publishes_and_charges_on_the_loop_thread(
    pymodule: Callable[[str], str],
    workflow_file: Callable[[str], cp.Workflow],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a plain function runs in a worker thread; the engine's state belongs to the loop's
    from counterpoint.scheduler.eventing import EventHub

    threads: list[str] = []
    emit = EventHub.emit

    def watched(self: EventHub, *args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread().name)
        emit(self, *args, **kwargs)

    monkeypatch.setattr(EventHub, "emit", watched)
    mod = pymodule(
        """
        def busy(ctx):
            for n in range(50):
                ctx.emit("tick", {"n": n})
            ctx.charge("cost", 1.5)
            return "done"
        """
    )
    wf = workflow_file(
        f"""
        name: thread-safe
        resources:
          budgets:
            cost: 10
        agents:
          busy: {{kind: python, function: "{mod}:busy"}}
        steps:
          - {{id: s, agent: busy, uses: {{cost: 1}}}}
        """
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    ticks = [e.data["n"] for e in result.events if e.name == "tick"]
    assert ticks == list(range(50))  # all of them, in order
    charged = [e.data for e in result.events if e.name == "charged"]
    assert charged == [{"resource": "cost", "amounts": {"": 1.5}}]
    assert set(threads) == {threading.main_thread().name}
