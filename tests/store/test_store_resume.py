"""resume(): a failed, interrupted, crashed or full run goes on where it stopped, in a
MemoryStore and a SqliteStore."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

import counterpoint as cp
from counterpoint.errors import CannotResume, RunNotFound
from counterpoint.runner import resume
from counterpoint.scheduler.engine import Engine
from counterpoint.store import Entry, RunInfo, Store
from counterpoint.store.fingerprint import definition, fingerprint

T = TypeVar("T")


@dataclass
class Call:
    step: str
    attempt: int
    key: str
    input: object
    upstream: dict[str, object]


@dataclass
class Agent:
    """A function agent that records its calls and fails while told to."""

    failing: dict[str, int] = field(default_factory=dict)  # step -> failures left
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, ctx: cp.StepContext) -> object:
        self.calls.append(
            Call(ctx.step_id, ctx.attempt, ctx.idempotency_key, ctx.input, dict(ctx.upstream))
        )
        if self.failing.get(ctx.step_id, 0):
            self.failing[ctx.step_id] -= 1
            raise cp.StepFailed(f"{ctx.step_id} failed at attempt {ctx.attempt}")
        if ctx.step_id == "a":
            return {"pair": (1, 2), "text": "ü"}  # a tuple: JSON makes it a list
        return {"step": ctx.step_id, "input": ctx.input}

    def steps(self) -> list[tuple[str, int]]:
        return [(c.step, c.attempt) for c in self.calls]


def build(agent: Agent, *, b_input: object = 2, b_timeout: float | None = None) -> cp.Workflow:
    """a -> b -> c, and d on its own; b may be retried once."""

    async def work(ctx: cp.StepContext) -> object:
        return await agent(ctx)

    wb = cp.WorkflowBuilder("resumable")
    wb.agent("work", function=work)
    wb.step("a", agent="work", input=1)
    wb.step(
        "b",
        agent="work",
        needs="a",
        input=b_input,
        retries={"max": 1, "backoff": 0},
        timeout=b_timeout,
    )
    wb.step("c", agent="work", needs="b")
    wb.step("d", agent="work")
    return wb.build()


def go(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def shape(entries: Sequence[Entry]) -> list[tuple[str, str | None, int]]:
    return [(e.kind, e.step, e.attempt) for e in entries]


def first_failed_run(store: Store, agent: Agent, wf: cp.Workflow) -> cp.RunResult:
    agent.failing["b"] = 2  # both attempts of the first session fail
    result = go(cp.run(wf, store=store, max_concurrency=1, priority="fifo"))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.FAILED
    assert agent.steps() == [("a", 1), ("d", 1), ("b", 1), ("b", 2)]
    assert result.steps["c"].status is cp.StepState.SKIPPED
    return result


def test_resume_after_a_failure_runs_only_what_did_not_succeed(store: Store) -> None:
    agent = Agent()
    wf = build(agent)
    first = first_failed_run(store, agent, wf)
    first_b = [c for c in agent.calls if c.step == "b"]
    assert len({c.key for c in first_b}) == 1
    first_key = first_b[0].key
    assert first_b[0].upstream == {"a": {"pair": (1, 2), "text": "ü"}}
    before = go(store.entries(first.run_id))
    assert isinstance(before, list)
    agent.calls.clear()

    result = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.run_id == first.run_id
    # a and d succeeded before: not called again
    assert agent.steps() == [("b", 3), ("c", 1)]
    b_call = agent.calls[0]
    assert b_call.key == first_key
    # a's output comes from the journal (as JSON: the tuple is now a list)
    assert b_call.upstream == {"a": {"pair": [1, 2], "text": "ü"}}
    assert agent.calls[1].upstream == {"b": {"step": "b", "input": 2}}

    assert result.steps["a"].restored and result.steps["d"].restored
    assert not result.steps["b"].restored
    assert result.steps["a"].output == {"pair": [1, 2], "text": "ü"}
    assert result.steps["d"].output == {"step": "d", "input": None}
    assert result.steps["b"].attempts == 3
    assert result.steps["b"].errors == ["b failed at attempt 1", "b failed at attempt 2"]
    assert result.outputs["c"] == {"step": "c", "input": None}

    after = go(store.entries(first.run_id))
    assert isinstance(after, list)
    assert after[: len(before)] == before  # the first session's journal is untouched
    new = after[len(before) :]
    assert [e.seq for e in new] == list(range(len(before) + 1, len(after) + 1))
    assert shape(new) == [
        ("run-started", None, 2),
        ("started", "b", 3),
        ("succeeded", "b", 3),
        ("started", "c", 1),
        ("succeeded", "c", 1),
        ("run-finished", None, 0),
    ]
    assert json.loads(new[0].data or "") == {
        "max_concurrency": 1,
        "fail_fast": False,
        "priority": "fifo",
        "seed": None,
        "cache": True,
        "wall_start": None,
        "planning_budget_s": 0.1,
        "pattern": "sequential",
        "barriers": False,
        "ask_early": False,
        "hedge": [],
        "adapt": True,
        "resumed": True,
    }
    info = go(store.get_run(first.run_id))
    assert isinstance(info, RunInfo)
    assert (info.status, info.error, info.pid) == ("succeeded", None, os.getpid())
    assert info.finished_at is not None


def test_retries_count_afresh_in_a_resumed_session(store: Store) -> None:
    agent = Agent()
    wf = build(agent)
    first = first_failed_run(store, agent, wf)
    agent.calls.clear()
    agent.failing["b"] = 1  # the resumed session's first attempt fails too; its retry works
    result = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert agent.steps() == [("b", 3), ("b", 4), ("c", 1)]
    assert len({c.key for c in agent.calls if c.step == "b"}) == 1
    entries = go(store.entries(first.run_id))
    assert isinstance(entries, list)
    b_entries = [(e.kind, e.attempt) for e in entries if e.step == "b" and e.kind != "ready"]
    assert b_entries == [
        ("started", 1),
        ("retried", 1),
        ("started", 2),
        ("failed", 2),
        ("started", 3),
        ("retried", 3),
        ("started", 4),
        ("succeeded", 4),
    ]


def test_a_run_that_fails_again_can_be_resumed_again(store: Store) -> None:
    agent = Agent()
    wf = build(agent)
    first = first_failed_run(store, agent, wf)
    agent.calls.clear()
    agent.failing["b"] = 2
    second = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(second, cp.RunResult)
    assert second.status is cp.RunStatus.FAILED
    assert agent.steps() == [("b", 3), ("b", 4)]
    agent.calls.clear()
    third = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(third, cp.RunResult)
    assert third.status is cp.RunStatus.SUCCEEDED
    assert agent.steps() == [("b", 5), ("c", 1)]
    entries = go(store.entries(first.run_id))
    assert isinstance(entries, list)
    assert [e.attempt for e in entries if e.kind == "run-started"] == [1, 2, 3]


def test_references_to_restored_outputs_resolve(store: Store) -> None:
    calls: list[tuple[str, object]] = []
    failing = {"b": 1}

    async def work(ctx: cp.StepContext) -> object:
        calls.append((ctx.step_id, ctx.input))
        if failing.get(ctx.step_id):
            failing[ctx.step_id] -= 1
            raise cp.StepFailed("not yet")
        return ctx.input

    wb = cp.WorkflowBuilder("refs")
    wb.agent("work", function=work)
    wb.step("a", agent="work", input={"items": ["first", "second"]})
    wb.step("b", agent="work", needs="a", input={"got": wb.output("a", "items", 1)})
    wf = wb.build()
    first = go(cp.run(wf, store=store))
    assert isinstance(first, cp.RunResult)
    assert first.status is cp.RunStatus.FAILED
    calls.clear()
    result = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert calls == [("b", {"got": "second"})]


def test_a_run_whose_steps_all_succeeded_finishes_without_calls(store: Store) -> None:
    """Every step succeeded but the run was not marked so (its last write was lost)."""
    agent = Agent()
    wf = build(agent)
    first = go(cp.run(wf, store=store))
    assert isinstance(first, cp.RunResult)
    go(store.update_run(first.run_id, status="failed"))
    agent.calls.clear()
    result = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert agent.calls == []
    assert all(r.restored for r in result.steps.values())
    entries = go(store.entries(first.run_id))
    assert isinstance(entries, list)
    assert shape(entries[-2:]) == [("run-started", None, 2), ("run-finished", None, 0)]
    assert go(store.get_run(first.run_id)).status == "succeeded"


def test_resuming_a_succeeded_run_is_refused(store: Store) -> None:
    agent = Agent()
    wf = build(agent)
    result = go(cp.run(wf, store=store))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    count = len(go(store.entries(result.run_id)))
    calls = len(agent.calls)
    with pytest.raises(CannotResume, match="succeeded already") as caught:
        go(resume(result.run_id[:12], store=store, workflow=wf))  # a prefix will do
    assert result.run_id in str(caught.value)
    assert len(agent.calls) == calls
    assert len(go(store.entries(result.run_id))) == count
    assert go(store.get_run(result.run_id)).status == "succeeded"


def test_resuming_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(RunNotFound, match="nope"):
        go(resume("nope", store=store, workflow=build(Agent())))


def test_a_changed_workflow_is_refused_unless_forced(store: Store) -> None:
    agent = Agent()
    first = first_failed_run(store, agent, build(agent))
    agent.calls.clear()
    changed = build(agent, b_input=5)
    with pytest.raises(CannotResume) as caught:
        go(resume(first.run_id, store=store, workflow=changed))
    message = str(caught.value)
    assert f"the workflow changed since run {first.run_id} started" in message
    assert '"id": "b"' in message
    assert '"input": 2' in message and '"input": 5' in message
    assert "force" in message
    assert agent.calls == []
    assert go(store.get_run(first.run_id)).status == "failed"

    result = go(resume(first.run_id, store=store, workflow=changed, force=True))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert agent.steps() == [("b", 3), ("c", 1)]
    assert agent.calls[0].input == 5


def test_the_change_message_names_the_changed_step(store: Store) -> None:
    """Whatever setting of a step changed, the message says which step it was."""
    agent = Agent()
    first = first_failed_run(store, agent, build(agent))
    with pytest.raises(CannotResume) as caught:
        go(resume(first.run_id, store=store, workflow=build(agent, b_timeout=30.0)))
    message = str(caught.value)
    assert "timeout" in message
    # "steps changed: b", as for a workflow file, or at least the step's id in the diff
    assert re.search(r"steps changed: b\b|step '?b'? |\"id\": \"b\"", message), message


def test_an_unchanged_workflow_rebuilt_resumes_without_force(store: Store) -> None:
    agent = Agent()
    first = first_failed_run(store, agent, build(agent))
    agent.calls.clear()
    result = go(resume(first.run_id, store=store, workflow=build(agent)))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED


def test_a_python_workflow_must_be_passed_to_resume(store: Store) -> None:
    agent = Agent()
    first = first_failed_run(store, agent, build(agent))
    with pytest.raises(CannotResume, match="built in Python"):
        go(resume(first.run_id, store=store))


class InterruptAfter(cp.RunObserver):
    """Interrupts the engine once the step ``after`` has finished."""

    def __init__(self, after: str) -> None:
        self.after = after
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def step_finished(self, record: cp.StepRecord) -> None:
        if record.id == self.after and self.engine is not None:
            self.engine.interrupt()


def test_an_interrupted_run_goes_on(store: Store) -> None:
    agent = Agent()

    async def work(ctx: cp.StepContext) -> object:
        return await agent(ctx)

    wb = cp.WorkflowBuilder("interrupted")
    wb.agent("work", function=work)
    wb.step("a", agent="work")
    wb.step("b", agent="work", needs="a")
    wb.step("c", agent="work", needs="b")
    wf = wb.build()
    stopper = InterruptAfter("a")
    first = go(cp.run(wf, store=store, observers=[stopper], on_engine=stopper.attach))
    assert isinstance(first, cp.RunResult)
    assert first.status is cp.RunStatus.INTERRUPTED
    assert agent.steps() == [("a", 1)]
    assert first.steps["b"].status is cp.StepState.CANCELLED
    info = go(store.get_run(first.run_id))
    assert info.status == "interrupted"
    entries = go(store.entries(first.run_id))
    assert isinstance(entries, list)
    assert ("succeeded", "a", 1) in shape(entries)
    assert json.loads(entries[-1].data or "") == {"status": "interrupted", "error": None}

    agent.calls.clear()
    result = go(resume(first.run_id, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert agent.steps() == [("b", 1), ("c", 1)]
    assert agent.calls[0].upstream == {"a": {"pair": [1, 2], "text": "ü"}}
    assert go(store.get_run(first.run_id)).status == "succeeded"


def _crashed_run(store: Store, wf: cp.Workflow, *, pid: int | None, host: str) -> str:
    """A run as a killed process leaves it: status running, a step started and never ended."""
    text = definition(wf)
    rid = "20260101-000000-c0ffee"

    async def body() -> None:
        await store.create_run(
            RunInfo(
                run_id=rid,
                workflow=wf.name,
                source="<python>",
                fingerprint=fingerprint(text),
                definition=text,
                options={"max_concurrency": None, "fail_fast": False, "priority": "fifo"},
                agents={s.id: s.agent for s in wf.steps},
                created_at=1.0,
                pid=pid,
                host=host,
            )
        )
        await store.append(
            rid,
            [
                Entry(1, "run-started", None, 1, 1.0, "{}"),
                Entry(2, "started", "a", 1, 1.1, None),
                Entry(3, "succeeded", "a", 1, 1.2, json.dumps({"from": "journal"})),
                Entry(4, "started", "d", 1, 1.2, None),
                Entry(5, "started", "b", 1, 1.3, None),
            ],
        )

    go(body())
    return rid


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_crashed_run_goes_on_with_the_next_attempt(store: Store) -> None:
    agent = Agent()
    wf = build(agent)
    rid = _crashed_run(store, wf, pid=_dead_pid(), host=socket.gethostname())
    result = go(resume(rid, store=store, workflow=wf))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert sorted(agent.steps()) == [("b", 2), ("c", 1), ("d", 2)]
    b_call = next(c for c in agent.calls if c.step == "b")
    assert b_call.upstream == {"a": {"from": "journal"}}
    assert b_call.key == cp.agents.base.idempotency_key(rid, "b")
    entries = go(store.entries(rid))
    assert isinstance(entries, list)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[5][:4] == (6, "run-started", None, 2)


@pytest.mark.parametrize(
    ("pid", "host"),
    [
        pytest.param(os.getpid(), socket.gethostname(), id="this-process"),
        pytest.param(1, "another-host.example", id="another-host"),
    ],
)
def test_a_run_still_running_is_not_resumed(store: Store, pid: int, host: str) -> None:
    agent = Agent()
    wf = build(agent)
    rid = _crashed_run(store, wf, pid=pid, host=host)
    with pytest.raises(CannotResume, match="still running") as caught:
        go(resume(rid, store=store, workflow=wf))
    assert str(pid) in str(caught.value) and host in str(caught.value)
    assert agent.calls == []
    assert len(go(store.entries(rid))) == 5


YAML = """\
name: from-file
agents:
  pass: {kind: noop}
steps:
  - id: a
    agent: pass
    input: 1
  - id: b
    agent: pass
    needs: a
    input: {value: INPUT}   # a comment
"""


def test_a_run_from_a_file_resumes_from_that_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(YAML.replace("INPUT", "2"))
    first = go(cp.run(path, store=store, on_engine=lambda engine: engine.interrupt()))
    assert isinstance(first, cp.RunResult)
    assert first.status is cp.RunStatus.INTERRUPTED
    info = go(store.get_run(first.run_id))
    assert isinstance(info, RunInfo)
    assert info.source == str(path.resolve())
    assert info.definition == YAML.replace("INPUT", "2")

    # the step's input changed
    path.write_text(YAML.replace("INPUT", "5"))
    with pytest.raises(CannotResume) as caught:
        go(resume(first.run_id, store=store))
    message = str(caught.value)
    assert "steps changed: b" in message
    assert "steps changed: a" not in message and "a, b" not in message
    assert "force" in message

    result = go(resume(first.run_id, store=store, force=True))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"a": 1, "b": {"value": 5}}


def test_a_comment_change_in_the_file_is_no_change(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(YAML.replace("INPUT", "2"))
    first = go(cp.run(path, store=store, on_engine=lambda engine: engine.interrupt()))
    assert isinstance(first, cp.RunResult)
    path.write_text(YAML.replace("INPUT", "2").replace("a comment", "another comment"))
    result = go(resume(first.run_id, store=store))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"a": 1, "b": {"value": 2}}


def test_a_run_whose_file_is_gone_needs_the_workflow(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(YAML.replace("INPUT", "2"))
    first = go(cp.run(path, store=store, on_engine=lambda engine: engine.interrupt()))
    assert isinstance(first, cp.RunResult)
    path.unlink()
    with pytest.raises(CannotResume, match="gone"):
        go(resume(first.run_id, store=store))
    result = go(resume(first.run_id, store=store, workflow=cp.loads(YAML.replace("INPUT", "2"))))
    assert isinstance(result, cp.RunResult)
    assert result.status is cp.RunStatus.SUCCEEDED
