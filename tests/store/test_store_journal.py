"""The engine's journal: every transition of a run, in order, in a MemoryStore and a
SqliteStore; the Journal and encode_output on their own; replay of hand-written journals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.errors import StoreError
from counterpoint.store import Entry, MemoryStore, RunInfo, SqliteStore, StepReplay, Store, replay
from counterpoint.store.journal import Journal, OutputNotStorable, encode_output


def shape(entries: Sequence[Entry]) -> list[tuple[str, str | None, int]]:
    return [(e.kind, e.step, e.attempt) for e in entries]


def run(wf: cp.Workflow, store: Store, **kw: object) -> tuple[cp.RunResult, list[Entry]]:
    async def body() -> tuple[cp.RunResult, list[Entry]]:
        result = await cp.run(wf, store=store, **kw)  # type: ignore[arg-type]
        return result, await store.entries(result.run_id)

    return asyncio.run(body())


def test_a_chain_is_journaled_in_order(store: Store) -> None:
    async def work(ctx: cp.StepContext) -> object:
        if ctx.step_id == "b":
            ctx.emit("progress", {"done": 1, "of": "✓"})
        return {"id": ctx.step_id, "input": ctx.input}

    b = cp.WorkflowBuilder("chain")
    b.agent("work", function=work)
    b.step("a", agent="work", input="héllo")
    b.step("b", agent="work", needs="a", input=2)
    wf = b.build()
    before = time.time()
    result, entries = run(wf, store)
    after = time.time()

    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.store == store.location
    assert shape(entries) == [
        ("run-started", None, 1),
        ("started", "a", 1),
        ("succeeded", "a", 1),
        ("started", "b", 1),
        ("event", "b", 0),
        ("succeeded", "b", 1),
        ("run-finished", None, 0),
    ]
    assert [e.seq for e in entries] == list(range(1, 8))
    assert all(before - 1 <= e.time <= after + 1 for e in entries)
    data = [None if e.data is None else json.loads(e.data) for e in entries]
    assert data == [
        {
            "max_concurrency": 1,  # a chain: the sequential pattern
            "fail_fast": False,
            "priority": "critical-path",
            "seed": None,
            "cache": True,
            "wall_start": None,
            "planning_budget_s": 0.1,
            "pattern": "sequential",
            "barriers": False,
            "ask_early": False,
            "hedge": [],
            "adapt": True,
        },
        None,
        {"id": "a", "input": "héllo"},
        None,
        {
            "name": "progress",
            "kind": "custom",
            "data": {"done": 1, "of": "✓"},
            "source": "b",
            "seq": 1,
        },
        {"id": "b", "input": 2},
        {"status": "succeeded", "error": None},
    ]

    info = asyncio.run(store.get_run(result.run_id))
    assert (info.workflow, info.source, info.status, info.pattern, info.error) == (
        "chain",
        "<python>",
        "succeeded",
        "sequential",
        None,
    )
    assert info.agents == {"a": "work", "b": "work"}
    assert info.inputs == {}
    assert info.options == {**data[0], "selection": info.options["selection"]}
    selection = info.options["selection"]
    assert isinstance(selection, dict)
    assert (selection["chosen"], selection["recommended"], selection["how"]) == (
        "sequential",
        "sequential",
        "selected",
    )
    assert info.fingerprint == hashlib.sha256(info.definition.encode()).hexdigest()
    assert (info.pid, info.version) == (os.getpid(), cp.__version__)
    assert info.finished_at is not None and before <= info.created_at <= info.finished_at <= after
    assert info.makespan_s == pytest.approx(result.makespan_s)


def test_inputs_and_options_are_kept(store: Store) -> None:
    async def echo(ctx: cp.StepContext) -> object:
        return ctx.input

    b = cp.WorkflowBuilder("inputs")
    name = b.input("name", type="string")
    b.input("count", default=3, type="integer")
    b.agent("echo", function=echo)
    b.step("a", agent="echo", input={"who": name})
    result, entries = run(
        b.build(),
        store,
        inputs={"name": "Zoë"},
        max_concurrency=3,
        seed=11,
        priority="fifo",
        pattern="parallel",
    )
    assert result.outputs == {"a": {"who": "Zoë"}}
    info = asyncio.run(store.get_run(result.run_id))
    assert info.inputs == {"name": "Zoë", "count": 3}
    expected = {
        "max_concurrency": 3,
        "fail_fast": False,
        "priority": "fifo",
        "seed": 11,
        "cache": True,
        "wall_start": None,
        "planning_budget_s": 0.1,
        "pattern": "parallel",
        "barriers": False,
        "ask_early": False,
        "hedge": [],
        "adapt": False,  # a pattern you fix does not adapt
    }
    selection = info.options["selection"]
    assert isinstance(selection, dict)
    assert (selection["chosen"], selection["how"]) == ("parallel", "override")
    assert selection["recommended"] == "sequential"  # one step: what selection would run
    assert info.options == {**expected, "selection": selection}
    assert json.loads(entries[0].data or "") == expected


def test_a_step_released_but_not_started_is_journaled_ready(store: Store) -> None:
    async def work(ctx: cp.StepContext) -> object:
        return ctx.step_id

    b = cp.WorkflowBuilder("ready")
    b.agent("work", function=work)
    b.step("a", agent="work")
    b.step("b", agent="work")
    result, entries = run(b.build(), store, max_concurrency=1, priority="fifo")
    assert result.status is cp.RunStatus.SUCCEEDED
    assert shape(entries) == [
        ("run-started", None, 1),
        ("ready", "b", 0),
        ("started", "a", 1),
        ("succeeded", "a", 1),
        ("started", "b", 1),
        ("succeeded", "b", 1),
        ("run-finished", None, 0),
    ]


def test_a_flaky_step_is_retried_then_succeeds(store: Store) -> None:
    tries: list[int] = []

    async def flaky(ctx: cp.StepContext) -> object:
        tries.append(ctx.attempt)
        if ctx.attempt < 3:
            raise cp.StepFailed(f"flake {ctx.attempt}")
        return "finally"

    b = cp.WorkflowBuilder("flaky")
    b.agent("flaky", function=flaky)
    b.step("a", agent="flaky", retries={"max": 3, "backoff": 0})
    result, entries = run(b.build(), store)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert tries == [1, 2, 3]
    assert shape(entries) == [
        ("run-started", None, 1),
        ("started", "a", 1),
        ("retried", "a", 1),
        ("started", "a", 2),
        ("retried", "a", 2),
        ("started", "a", 3),
        ("succeeded", "a", 3),
        ("run-finished", None, 0),
    ]
    assert json.loads(entries[2].data or "") == {"error": "flake 1", "delay": 0.0}
    assert json.loads(entries[4].data or "") == {"error": "flake 2", "delay": 0.0}
    assert entries[6].data == '"finally"'
    states = replay(entries)
    assert (states["a"].status, states["a"].attempts, states["a"].errors) == (
        "succeeded",
        3,
        ["flake 1", "flake 2"],
    )


def test_a_failure_skips_its_dependents(store: Store) -> None:
    called: list[str] = []

    async def work(ctx: cp.StepContext) -> object:
        called.append(ctx.step_id)
        if ctx.step_id == "a":
            raise cp.StepFailed("broken ✗")
        return ctx.step_id

    b = cp.WorkflowBuilder("fails")
    b.agent("work", function=work)
    b.step("a", agent="work")
    b.step("b", agent="work", needs="a")
    b.step("c", agent="work", needs="b")
    result, entries = run(b.build(), store, max_concurrency=1)
    assert result.status is cp.RunStatus.FAILED
    assert called == ["a"]
    assert shape(entries) == [
        ("run-started", None, 1),
        ("started", "a", 1),
        ("failed", "a", 1),
        ("skipped", "b", 0),
        ("skipped", "c", 0),
        ("run-finished", None, 0),
    ]
    assert [json.loads(e.data or "") for e in entries[2:5]] == [
        "broken ✗",
        "not run: 'a' failed",
        "not run: 'a' failed",
    ]
    assert json.loads(entries[-1].data or "") == {"status": "failed", "error": None}
    info = asyncio.run(store.get_run(result.run_id))
    assert info.status == "failed"
    assert {k: v.status for k, v in replay(entries).items()} == {
        "a": "failed",
        "b": "skipped",
        "c": "skipped",
    }


def test_fail_fast_cancels_running_and_waiting_steps(store: Store) -> None:
    async def work(ctx: cp.StepContext) -> object:
        if ctx.step_id == "bad":
            raise cp.StepFailed("bad!")
        await asyncio.Event().wait()  # until cancelled
        return None

    b = cp.WorkflowBuilder("fast")
    b.agent("work", function=work)
    b.step("bad", agent="work")
    b.step("block", agent="work")
    b.step("later", agent="work")
    b.step("dep", agent="work", needs="bad")
    result, entries = run(b.build(), store, max_concurrency=2, priority="fifo", fail_fast=True)
    assert result.status is cp.RunStatus.FAILED
    assert shape(entries) == [
        ("run-started", None, 1),
        ("ready", "later", 0),
        ("started", "bad", 1),
        ("started", "block", 1),
        ("failed", "bad", 1),
        ("skipped", "dep", 0),
        ("cancelled", "later", 0),
        ("cancelled", "block", 1),
        ("run-finished", None, 0),
    ]
    assert json.loads(entries[6].data or "") == "not run: stopped by fail-fast"
    assert {k: v.status for k, v in replay(entries).items()} == {
        "later": "cancelled",
        "bad": "failed",
        "block": "cancelled",
        "dep": "skipped",
    }


def test_successes_are_durable_before_dependents_start(
    store: Store, store_kind: str, tmp_path: Path
) -> None:
    """Diamond a -> (b, c) -> d: every agent sees, in the store, its own attempt and the
    successes of the steps it needs (for SQLite, through another connection)."""
    seen: dict[str, list[tuple[str, str | None, int]]] = {}

    async def work(ctx: cp.StepContext) -> object:
        if store_kind == "sqlite":
            reader = SqliteStore(tmp_path / "s.db")
            try:
                seen[ctx.step_id] = shape(await reader.entries(ctx.run_id))
            finally:
                await reader.close()
        else:
            seen[ctx.step_id] = shape(await store.entries(ctx.run_id))
        return ctx.step_id

    b = cp.WorkflowBuilder("diamond")
    b.agent("work", function=work)
    b.step("a", agent="work")
    b.step("b", agent="work", needs="a")
    b.step("c", agent="work", needs="a")
    b.step("d", agent="work", needs=["b", "c"])
    result, entries = run(b.build(), store)
    assert result.status is cp.RunStatus.SUCCEEDED

    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    seq = {(e.kind, e.step): e.seq for e in entries}
    for step, preds in needs.items():
        assert ("started", step, 1) in seen[step], step
        for p in preds:
            assert ("succeeded", p, 1) in seen[step], (step, p)
            assert seq[("succeeded", p)] < seq[("started", step)]
    assert shape(entries)[-1] == ("run-finished", None, 0)


@pytest.mark.parametrize(
    "output",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(object(), id="object"),
        pytest.param({"x": float("nan")}, id="nan"),
        pytest.param({(1, 2): "tuple key"}, id="tuple-key"),
    ],
)
def test_an_output_that_is_not_json_fails_the_step_in_a_durable_store(
    sqlite_factory: Callable[..., SqliteStore], output: object
) -> None:
    called: list[str] = []

    async def work(ctx: cp.StepContext) -> object:
        called.append(ctx.step_id)
        return output if ctx.step_id == "odd" else "fine"

    b = cp.WorkflowBuilder("odd")
    b.agent("work", function=work)
    b.step("odd", agent="work", retries={"max": 2, "backoff": 0})
    b.step("after", agent="work", needs="odd")
    b.step("other", agent="work")
    s = sqlite_factory()
    result, entries = run(b.build(), s)
    assert result.status is cp.RunStatus.FAILED
    odd = result.steps["odd"]
    assert odd.status is cp.StepState.FAILED
    assert odd.attempts == 1  # not retried: it would fail the same way
    assert sorted(called) == ["odd", "other"]
    assert odd.error is not None and "cannot be stored" in odd.error
    assert result.steps["after"].status is cp.StepState.SKIPPED
    assert result.steps["other"].status is cp.StepState.SUCCEEDED
    failed = [e for e in entries if e.kind == "failed"]
    assert [(e.step, e.attempt) for e in failed] == [("odd", 1)]
    assert "cannot be stored" in json.loads(failed[0].data or "")
    assert not any(e.kind == "succeeded" and e.step == "odd" for e in entries)


def test_an_output_that_cannot_be_written_as_utf8_fails_the_step(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    """A lone surrogate is not Unicode text: the step fails, the run does not crash."""

    async def work(ctx: cp.StepContext) -> object:
        return "bad \ud800 surrogate" if ctx.step_id == "odd" else "fine"

    b = cp.WorkflowBuilder("surrogate")
    b.agent("work", function=work)
    b.step("odd", agent="work")
    b.step("other", agent="work")
    s = sqlite_factory()
    result, entries = run(b.build(), s, max_concurrency=1, priority="fifo")
    assert result.status is cp.RunStatus.FAILED
    odd = result.steps["odd"]
    assert odd.status is cp.StepState.FAILED
    assert odd.error is not None and "cannot be stored" in odd.error
    assert result.steps["other"].status is cp.StepState.SUCCEEDED
    assert shape(entries)[-1] == ("run-finished", None, 0)


def test_an_output_that_is_not_json_is_fine_in_memory() -> None:
    async def work(ctx: cp.StepContext) -> object:
        return {1, 2}

    b = cp.WorkflowBuilder("odd")
    b.agent("work", function=work)
    b.step("odd", agent="work")
    s = MemoryStore()
    result, entries = run(b.build(), s)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"odd": {1, 2}}
    assert ("succeeded", "odd", 1) in shape(entries)


def test_inputs_that_are_not_json_are_refused_by_a_durable_store(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    async def work(ctx: cp.StepContext) -> object:
        return None

    b = cp.WorkflowBuilder("inputs")
    b.input("things")
    b.agent("work", function=work)
    b.step("a", agent="work")
    s = sqlite_factory()
    with pytest.raises(cp.WorkflowInvalid, match="things"):
        asyncio.run(cp.run(b.build(), store=s, inputs={"things": {1, 2}}))
    assert asyncio.run(s.list_runs()) == []


def test_event_data_that_is_not_json_is_written_as_text(store: Store) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing 7>"

    async def work(ctx: cp.StepContext) -> object:
        ctx.emit("odd", {"thing": Thing(), "n": 1})
        ctx.emit("plain")
        return None

    b = cp.WorkflowBuilder("events")
    b.agent("work", function=work)
    b.step("a", agent="work")
    result, entries = run(b.build(), store)
    assert result.status is cp.RunStatus.SUCCEEDED
    events = [json.loads(e.data or "") for e in entries if e.kind == "event"]
    assert [(e["name"], e["data"], e["seq"]) for e in events] == [
        ("odd", {"thing": "<Thing 7>", "n": 1}, 1),
        ("plain", {}, 2),
    ]


class FailingStore:
    """A MemoryStore whose appends fail once a batch holds a 'started' entry for ``step``."""

    def __init__(self, step: str) -> None:
        self.inner = MemoryStore()
        self.step = step
        self.batches: list[list[Entry]] = []

    location = "<failing>"
    durable = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def append(self, run_id: str, entries: Sequence[Entry]) -> None:
        if any(e.kind == "started" and e.step == self.step for e in entries):
            raise StoreError("<failing>: cannot journal: the disk is full")
        self.batches.append(list(entries))
        await self.inner.append(run_id, entries)


def test_a_store_failure_stops_the_run_before_the_next_step_starts() -> None:
    called: list[str] = []

    async def work(ctx: cp.StepContext) -> object:
        called.append(ctx.step_id)
        return ctx.step_id

    b = cp.WorkflowBuilder("stops")
    b.agent("work", function=work)
    b.step("a", agent="work")
    b.step("b", agent="work", needs="a")
    b.step("c", agent="work", needs="b")
    s = FailingStore("b")

    async def body() -> tuple[cp.RunResult, list[Entry], str]:
        result = await cp.run(b.build(), store=s)  # type: ignore[arg-type]
        info = await s.inner.get_run(result.run_id)
        return result, await s.inner.entries(result.run_id), info.status

    result, entries, status = asyncio.run(body())
    assert called == ["a"]  # b's attempt could not be journaled, so its agent never ran
    assert result.status is cp.RunStatus.FAILED
    assert result.error is not None and "disk is full" in result.error
    assert result.steps["a"].status is cp.StepState.SUCCEEDED
    assert result.steps["b"].status is cp.StepState.CANCELLED
    assert result.steps["c"].status is not cp.StepState.SUCCEEDED
    # a's success went in the same group commit as b's start: both were refused together
    assert shape(entries) == [("run-started", None, 1), ("started", "a", 1)]
    assert status == "failed"


# --- Journal and encode_output ---------------------------------------------------------------


class RecordingStore(MemoryStore):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.batches: list[list[int]] = []
        self.fail = fail

    async def append(self, run_id: str, entries: Sequence[Entry]) -> None:
        if self.fail:
            raise StoreError("nope")
        self.batches.append([e.seq for e in entries])
        await super().append(run_id, entries)


def _run_info(run_id: str) -> RunInfo:
    return RunInfo(run_id, "wf", "<python>", "f", "{}")


def test_the_journal_numbers_entries_and_commits_them_in_groups() -> None:
    s = RecordingStore()

    async def body() -> None:
        await s.create_run(_run_info("r"))
        j = Journal(s, "r", seq=10)
        j.add("ready", "a")
        j.add("started", "a", 1, None, when=5.0)
        await j.commit()
        await j.commit()  # nothing pending: nothing written
        j.event("a", "event", {"name": "x", "data": {"v": "é"}})
        j.add("succeeded", "a", 1, '"out"', when=6.0)
        await j.commit()
        got = await s.entries("r")
        assert s.batches == [[11, 12], [13, 14]]
        assert [e[:4] for e in got] == [
            (11, "ready", "a", 0),
            (12, "started", "a", 1),
            (13, "event", "a", 0),
            (14, "succeeded", "a", 1),
        ]
        assert (got[1].time, got[3].time, got[3].data) == (5.0, 6.0, '"out"')
        assert got[2].data == '{"name": "x", "data": {"v": "é"}}'
        assert j.pending == [] and j.seq == 14 and not j.broken

    asyncio.run(body())


def test_a_journal_that_failed_writes_nothing_more() -> None:
    s = RecordingStore(fail=True)

    async def body() -> None:
        await s.create_run(_run_info("r"))
        j = Journal(s, "r")
        j.add("started", "a", 1)
        with pytest.raises(StoreError, match="nope"):
            await j.commit()
        assert j.broken
        s.fail = False
        j.add("succeeded", "a", 1, "1")
        await j.commit()
        assert s.batches == []
        assert await s.entries("r") == []

    asyncio.run(body())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        ("héllo ✓", '"héllo ✓"'),
        ({"a": [1, 2.5, True, None]}, '{"a": [1, 2.5, true, null]}'),
        ((1, 2), "[1, 2]"),
        (0, "0"),
    ],
)
def test_encode_output(value: object, text: str) -> None:
    assert encode_output(value) == text


@pytest.mark.parametrize("value", [{1, 2}, object(), float("inf"), {"k": b"bytes"}])
def test_encode_output_refuses_what_is_not_json(value: object) -> None:
    with pytest.raises(OutputNotStorable, match="the output cannot be stored"):
        encode_output(value)


def test_encode_output_refuses_a_cycle() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(OutputNotStorable, match="cannot be stored"):
        encode_output(loop)


# --- replay ----------------------------------------------------------------------------------


def E(seq: int, kind: str, step: str | None, attempt: int = 0, data: object = None) -> Entry:
    return Entry(seq, kind, step, attempt, 100.0 + seq, None if data is None else json.dumps(data))


def test_replay_of_a_hand_written_journal() -> None:
    journal = [
        E(1, "run-started", None, 1, {"fail_fast": False}),
        E(2, "ready", "wait"),
        E(3, "started", "ok", 1),
        E(4, "started", "flaky", 1),
        E(5, "event", "ok", 0, {"name": "progress", "data": {}}),
        E(6, "succeeded", "ok", 1, {"answer": [1, "二"]}),
        E(7, "retried", "flaky", 1, {"error": "timeout", "delay": 1.5}),
        E(8, "started", "flaky", 2),
        E(9, "succeeded", "flaky", 2, "second time"),
        E(10, "started", "bad", 1),
        E(11, "retried", "bad", 1, {"error": "e1", "delay": 0.0}),
        E(12, "started", "bad", 2),
        E(13, "failed", "bad", 2, "e2"),
        E(14, "skipped", "after", 0, "not run: 'bad' failed"),
        E(15, "started", "slow", 1),
        E(16, "cancelled", "slow", 1, "cancelled"),
        E(17, "cancelled", "wait", 0, "not run: interrupted"),
        E(18, "started", "crashed", 1),
        E(19, "started", "again", 1),
        E(20, "retried", "again", 1, {"error": "later", "delay": 3.0}),
        E(21, "run-finished", None, 0, {"status": "interrupted", "error": None}),
    ]
    states = replay(journal)
    assert list(states) == ["wait", "ok", "flaky", "bad", "after", "slow", "crashed", "again"]
    summary = {
        k: (s.status, s.attempts, s.output_json, s.error, s.errors) for k, s in states.items()
    }
    assert summary == {
        "wait": ("cancelled", 0, None, "not run: interrupted", []),
        "ok": ("succeeded", 1, '{"answer": [1, "\\u4e8c"]}', None, []),
        "flaky": ("succeeded", 2, '"second time"', None, ["timeout"]),
        "bad": ("failed", 2, None, "e2", ["e1", "e2"]),
        "after": ("skipped", 0, None, "not run: 'bad' failed", []),
        "slow": ("cancelled", 1, None, "cancelled", []),
        "crashed": ("running", 1, None, None, []),
        "again": ("waiting", 1, None, "later", ["later"]),
    }
    assert states["ok"].output == {"answer": [1, "二"]}
    assert states["flaky"].output == "second time"
    assert states["bad"].output is None
    # times: first attempt's start, and the end of the last
    assert (states["flaky"].started_at, states["flaky"].finished_at) == (104.0, 109.0)
    assert states["flaky"].duration_s == 5.0
    assert (states["bad"].started_at, states["bad"].finished_at) == (110.0, 113.0)
    assert states["crashed"].duration_s is None
    assert states["again"].finished_at is None
    assert states["wait"].started_at is None


def test_replay_across_sessions() -> None:
    """A second session: cancelled steps become ready again, attempts go on, a success wins."""
    journal = [
        E(1, "run-started", None, 1),
        E(2, "started", "a", 1),
        E(3, "cancelled", "a", 1, "cancelled"),
        E(4, "cancelled", "b", 0, "not run: interrupted"),
        E(5, "run-finished", None, 0, {"status": "interrupted", "error": None}),
        E(6, "run-started", None, 2, {"resumed": True}),
        E(7, "ready", "b"),
        E(8, "started", "a", 2),
        E(9, "succeeded", "a", 2, None),  # output None, as a memory store writes a non-JSON one
    ]
    states = replay(journal)
    assert (states["b"].status, states["b"].attempts, states["b"].error) == (
        "ready",
        0,
        "not run: interrupted",
    )
    a = states["a"]
    assert (a.status, a.attempts, a.output_json, a.output, a.error) == (
        "succeeded",
        2,
        None,
        None,
        None,
    )
    assert a.started_at == 102.0 and a.finished_at == 109.0


def test_replay_ready_does_not_undo_a_final_state() -> None:
    journal = [
        E(1, "started", "a", 1),
        E(2, "succeeded", "a", 1, 5),
        E(3, "ready", "a"),
        E(4, "failed", "b", 1, {"error": "as a mapping"}),
        E(5, "ready", "b"),
    ]
    states = replay(journal)
    assert (states["a"].status, states["a"].output) == ("succeeded", 5)
    assert (states["b"].status, states["b"].error, states["b"].errors) == (
        "failed",
        "as a mapping",
        ["as a mapping"],
    )


def test_replay_of_nothing() -> None:
    assert replay([]) == {}
    assert replay([E(1, "run-started", None, 1), E(2, "event", "a", 0, {})]) == {}
    assert StepReplay("x").output is None
