"""Waits and approvals: in one process (events sent on the loop or by agents, timeouts, the
run shown paused), from other processes (`counterpoint send` and `approve` into a running
run), and across a crash (`resume` after SIGKILL, with the answer given meanwhile)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from evkit import Popen, cli, cli_all, names, send, statuses, times, vrun, wait_until_paused

import counterpoint as cp
from counterpoint.events import compile_condition
from counterpoint.scheduler.engine import Engine
from counterpoint.store import SqliteStore

APPROVAL = """\
name: release
agents:
  n: {kind: noop}
  ap: {kind: approval, prompt: "ship it?"}
steps:
  - {id: build, agent: n, estimate: 2}
  - {id: gate, agent: ap, needs: build, input: {version: 3}, retries: 3}
  - {id: ship, agent: n, estimate: 1, needs: gate}
"""


def answer(
    step: str, approved: bool = True, comment: str | None = None, source: str = "api"
) -> Callable[[Engine], None]:
    """Act on the engine: approve (or reject) ``step``, as ``source``."""

    def act(engine: Engine) -> None:
        data: dict[str, object] = {"step": step, "approved": approved}
        if comment is not None:
            data["comment"] = comment
        engine.send("approval_given", data, source)

    return act


# --- approvals in one process -----------------------------------------------------------------


def test_an_approval_sent_on_the_loop_approves_the_step() -> None:
    result = vrun(
        cp.loads(APPROVAL),
        agents={"gate"},
        at={7.0: answer("gate", comment="fine", source="alice")},
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"build": (0.0, 2.0), "gate": (2.0, 7.0), "ship": (7.0, 8.0)}
    assert result.steps["gate"].output == {"approved": True, "comment": "fine", "by": "alice"}
    assert [(e.time, e.step_id, e.name, e.data) for e in result.events] == [
        (2.0, "gate", "approval-requested", {"prompt": "ship it?", "input": {"version": 3}}),
        (2.0, "", "paused", {"waiting": 1}),
        (7.0, "", "approval_given", {"step": "gate", "approved": True, "comment": "fine"}),
        (7.0, "", "resumed", {"waiting": 0}),
    ]


def test_a_rejection_fails_the_step_with_the_comment_and_is_not_retried() -> None:
    result = vrun(
        cp.loads(APPROVAL),
        agents={"gate"},
        at={4.0: answer("gate", approved=False, comment="too risky", source="bob")},
    )
    assert result.status is cp.RunStatus.FAILED
    assert statuses(result) == {"build": "succeeded", "gate": "failed", "ship": "skipped"}
    gate = result.steps["gate"]
    assert gate.error == "rejected by bob: too risky"
    assert gate.attempts == 1  # retries: 3, but a rejection is final
    assert gate.end == 4.0


def test_a_rejection_without_a_comment() -> None:
    result = vrun(cp.loads(APPROVAL), agents={"gate"}, at={4.0: answer("gate", approved=False)})
    assert result.steps["gate"].error == "rejected by api"


def test_an_answer_for_another_step_or_none_leaves_the_approval_waiting() -> None:
    wf = cp.loads(
        """\
name: two
agents:
  ap: {kind: approval}
steps:
  - {id: legal, agent: ap}
  - {id: security, agent: ap}
"""
    )
    result = vrun(
        wf,
        agents={"legal", "security"},
        at={
            1.0: answer("security", comment="ok"),
            2.0: send("approval_given", {"approved": True}),  # for no step
            3.0: answer("nobody"),
            4.0: answer("legal"),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"legal": (0.0, 4.0), "security": (0.0, 1.0)}
    assert result.steps["legal"].output == {"approved": True, "comment": None, "by": "api"}
    assert result.steps["security"].output == {"approved": True, "comment": "ok", "by": "api"}


def test_an_approval_given_before_the_step_started_counts() -> None:
    result = vrun(cp.loads(APPROVAL), agents={"gate"}, at={1.0: answer("gate")})
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"build": (0.0, 2.0), "gate": (2.0, 2.0), "ship": (2.0, 3.0)}
    assert "paused" not in names(result)  # it never waited


def _reviewed(review: Callable[[cp.StepContext], object]) -> cp.Workflow:
    b = cp.WorkflowBuilder("reviewed")
    b.agent("n", kind="noop")
    b.agent("ap", kind="approval", prompt="merge?")
    b.agent("review", function=review)
    b.step("build", agent="n")
    b.step("gate", agent="ap", needs="build")
    b.step("reviewer", agent="review", needs="build")
    b.step("merge", agent="n", needs="gate")
    return b.build()


def test_an_agent_approves_with_engine_send() -> None:
    engines: list[Engine] = []

    async def review(ctx: cp.StepContext) -> object:
        engines[0].send(
            "approval_given",
            {"step": "gate", "approved": True, "comment": "looks good"},
            source="review-bot",
        )
        return "reviewed"

    result = vrun(_reviewed(review), agents=True, engines=engines)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["gate"].output == {
        "approved": True,
        "comment": "looks good",
        "by": "review-bot",
    }
    assert statuses(result)["merge"] == "succeeded"


def test_an_agent_rejects_with_engine_send() -> None:
    engines: list[Engine] = []

    async def review(ctx: cp.StepContext) -> object:
        engines[0].send(
            "approval_given", {"step": "gate", "approved": False, "comment": "tests fail"}, "ci"
        )
        return "reviewed"

    result = vrun(_reviewed(review), agents=True, engines=engines)
    assert result.status is cp.RunStatus.FAILED
    assert result.steps["gate"].error == "rejected by ci: tests fail"
    assert statuses(result) == {
        "build": "succeeded",
        "gate": "failed",
        "reviewer": "succeeded",
        "merge": "skipped",
    }


def test_a_step_event_approves_and_names_the_step() -> None:
    async def review(ctx: cp.StepContext) -> object:
        ctx.emit("approval_given", {"step": "gate", "approved": True})
        return "reviewed"

    result = vrun(_reviewed(review), agents=True)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["gate"].output == {"approved": True, "comment": None, "by": "reviewer"}


# --- waits in one process ------------------------------------------------------------------------

WINDOW = """\
name: deploy
agents:
  n: {kind: noop}
  w: {kind: wait, event: deploy_window, when: "event.data.env == 'prod'"}
steps:
  - {id: prep, agent: n, estimate: 3}
  - {id: window, agent: w}
  - {id: deploy, agent: n, estimate: 1, needs: [prep, window]}
"""


def test_a_wait_returns_the_first_matching_event_and_the_run_pauses_only_when_only_it_runs() -> (
    None
):
    result = vrun(
        cp.loads(WINDOW),
        agents={"window"},
        at={
            1.0: send("deploy_window", {"env": "staging"}),  # does not match
            2.0: send("other", {"env": "prod"}),  # another event
            5.0: send("deploy_window", {"env": "prod", "slot": 2}, "ops"),
            6.0: send("deploy_window", {"env": "prod", "slot": 3}, "ops"),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"prep": (0.0, 3.0), "window": (0.0, 5.0), "deploy": (5.0, 6.0)}
    assert result.steps["window"].output == {
        "event": "deploy_window",
        "data": {"env": "prod", "slot": 2},
        "source": "ops",
    }
    # not paused while prep ran; paused from when only the wait was left until it got its event
    assert [(e.time, e.name) for e in result.events if e.name in ("paused", "resumed")] == [
        (3.0, "paused"),
        (5.0, "resumed"),
    ]


def test_an_event_that_came_before_the_wait_counts_once() -> None:
    wf = cp.loads(
        """\
name: w
agents:
  n: {kind: noop}
  w: {kind: wait, event: go}
steps:
  - {id: prep, agent: n, estimate: 3}
  - {id: first, agent: w, needs: prep}
  - {id: second, agent: w, needs: first}
"""
    )
    result = vrun(
        wf,
        agents={"first", "second"},
        at={1.0: send("go", {"n": 1}), 8.0: send("go", {"n": 2})},
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    # first takes the event sent while prep ran, at once; second waits for the next one
    assert times(result) == {"prep": (0.0, 3.0), "first": (3.0, 3.0), "second": (3.0, 8.0)}
    assert result.steps["first"].output["data"] == {"n": 1}  # type: ignore[index]
    assert result.steps["second"].output["data"] == {"n": 2}  # type: ignore[index]


def test_one_event_goes_to_one_wait() -> None:
    wf = cp.loads(
        """\
name: w
agents:
  w: {kind: wait, event: go}
steps:
  - {id: a, agent: w}
  - {id: b, agent: w}
"""
    )
    result = vrun(wf, agents=True, at={1.0: send("go", {"n": 1}), 2.0: send("go", {"n": 2})})
    assert result.status is cp.RunStatus.SUCCEEDED
    got = {sid: (r.end, r.output["data"]["n"]) for sid, r in result.steps.items()}  # type: ignore[index]
    assert sorted(got.values()) == [(1.0, 1), (2.0, 2)]


def test_a_wait_for_any_event_takes_the_first_one() -> None:
    wf = cp.loads(
        """\
name: w
agents:
  any: {kind: wait, event: '*', when: "event.source == 'ops'"}
steps:
  - {id: a, agent: any}
"""
    )
    result = vrun(
        wf, agents=True, at={1.0: send("x", {}, "dev"), 2.0: send("quality_issue", {"k": 1}, "ops")}
    )
    assert result.steps["a"].output == {
        "event": "quality_issue",
        "data": {"k": 1},
        "source": "ops",
    }
    assert result.steps["a"].end == 2.0


def test_ctx_wait_for_in_a_python_agent() -> None:
    got: list[cp.Event] = []
    more = compile_condition("event.data.n > 1")

    async def waiter(ctx: cp.StepContext) -> object:
        event = await ctx.wait_for("tick", more)
        got.append(event)
        return dict(event.data)

    b = cp.WorkflowBuilder("w")
    b.agent("wait", function=waiter)
    b.step("s", agent="wait")
    result = vrun(
        b.build(),
        agents=True,
        at={1.0: send("tick", {"n": 1}), 2.0: send("tick", {"n": 2}, "cli")},
    )
    assert result.steps["s"].output == {"n": 2}
    (event,) = got
    assert (event.name, event.source, event.seq, event.time) == ("tick", "cli", 3, 2.0)
    assert event.kind == "custom"


def test_wait_for_outside_a_run_is_an_error() -> None:
    ctx = cp.StepContext(run_id="r", step_id="s")
    with pytest.raises(RuntimeError, match="not part of a run"):
        asyncio.run(ctx.wait_for("go"))


# --- timeouts ------------------------------------------------------------------------------------

TIMEOUTS = """\
name: timeouts
agents:
  fail: {kind: wait, event: go, timeout: 50ms}
  fallback: {kind: wait, event: go, timeout: 50ms, on_timeout: default, default: {use: cache}}
  reject: {kind: approval, timeout: 50ms}
  approve: {kind: approval, timeout: 50ms, on_timeout: approve}
steps:
  - {id: w-fail, agent: fail, retries: 2}
  - {id: w-default, agent: fallback}
  - {id: a-reject, agent: reject, retries: 2}
  - {id: a-approve, agent: approve}
"""


def test_timeouts_fail_or_give_the_default_on_the_real_clock() -> None:
    result = cp.run_sync(cp.loads(TIMEOUTS))
    assert result.status is cp.RunStatus.FAILED
    steps = result.steps
    assert statuses(result) == {
        "w-fail": "failed",
        "w-default": "succeeded",
        "a-reject": "failed",
        "a-approve": "succeeded",
    }
    assert steps["w-fail"].error == "no 'go' event came in 0.05s"
    assert steps["w-fail"].attempts == 1  # not retried
    assert steps["w-default"].output == {"use": "cache"}
    assert steps["a-reject"].error == "rejected by timeout: no answer in 0.05s: reject by default"
    assert steps["a-reject"].attempts == 1
    assert steps["a-approve"].output == {
        "approved": True,
        "comment": "no answer in 0.05s: approve by default",
        "by": "timeout",
    }
    for sid in steps:
        start, end = steps[sid].start, steps[sid].end
        assert start is not None
        assert end is not None
        assert end - start >= 0.05
    timed_out = [(e.step_id, e.data) for e in result.events if e.name == "wait-timed-out"]
    assert timed_out == [("w-default", {"event": "go", "action": "default"})]


WAIT_5S = """\
name: w
agents:
  fail: {kind: wait, event: go, timeout: 5s}
  fallback: {kind: wait, event: go, timeout: 3s, on_timeout: default, default: none came}
steps:
  - {id: strict, agent: fail}
  - {id: lenient, agent: fallback}
"""


def _with_store(kind: str) -> dict[str, object]:
    return {"store": cp.MemoryStore()} if kind == "memory-store" else {}


@pytest.mark.parametrize("kind", ["no-store", "memory-store"])
def test_a_wait_times_out_exactly_at_its_timeout_on_the_virtual_clock(kind: str) -> None:
    result = vrun(cp.loads(WAIT_5S), agents=True, **_with_store(kind))
    assert times(result) == {"strict": (0.0, 5.0), "lenient": (0.0, 3.0)}
    assert result.steps["strict"].error == "no 'go' event came in 5s"
    assert result.steps["lenient"].output == "none came"


def test_an_event_before_the_timeout_wins_on_the_virtual_clock() -> None:
    wf = cp.loads(
        """\
name: w
agents:
  fail: {kind: wait, event: go, timeout: 5s}
  ap: {kind: approval, timeout: 5s}
steps:
  - {id: strict, agent: fail}
  - {id: gate, agent: ap}
"""
    )
    result = vrun(
        wf, agents=True, at={2.0: send("go", {"n": 1}), 3.0: answer("gate", comment="in time")}
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"strict": (0.0, 2.0), "gate": (0.0, 3.0)}
    assert result.steps["gate"].output == {"approved": True, "comment": "in time", "by": "api"}
    assert result.makespan_s == 3.0  # the timers of the answered waits are gone


# --- paused in the store; events through the store's inbox (one process) --------------------------


async def _until(condition: Callable[[], object], what: str, within_s: float = 10.0) -> None:
    """Poll an async condition (a coroutine function) until it holds."""
    try:
        async with asyncio.timeout(within_s):
            while not await condition():  # type: ignore[misc]
                await asyncio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"never: {what}")


def test_the_store_shows_the_run_paused_while_it_waits_for_an_approval(tmp_path: Path) -> None:
    wf = cp.loads(APPROVAL)

    async def go() -> tuple[cp.RunResult, list[str], str, list[dict[str, object]]]:
        store = SqliteStore(tmp_path / "s.db")
        seen: list[str] = []
        helpers: list[asyncio.Task[None]] = []

        async def approve_once_paused(engine: Engine) -> None:
            async def is_paused() -> bool:
                return (await store.get_run(engine.run_id)).status == "paused"

            await _until(is_paused, "the store shows the run paused")
            seen.append((await store.get_run(engine.run_id)).status)
            seen.append(cp.history.run_state(await store.get_run(engine.run_id)))
            engine.send("approval_given", {"step": "gate", "approved": True}, "tester")

        def on_engine(engine: Engine) -> None:
            helpers.append(asyncio.get_running_loop().create_task(approve_once_paused(engine)))

        try:
            result = await cp.run(wf, store=store, on_engine=on_engine)
            await asyncio.gather(*helpers)
            final = (await store.get_run(result.run_id)).status
            entries = await store.entries(result.run_id)
            events = [json.loads(e.data or "") for e in entries if e.kind == "event"]
            return result, seen, final, events
        finally:
            await store.close()

    result, seen, final, events = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert seen == ["paused", "paused"]
    assert final == "succeeded"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    shown = [e for e in events if e["name"] != "replanned"]  # the real clock's estimates
    assert [(e["name"], e["kind"], e["source"]) for e in shown] == [
        ("approval-requested", "custom", "gate"),
        ("paused", "custom", "engine"),
        ("approval_given", "user", "tester"),
        ("resumed", "custom", "engine"),
    ]
    assert result.steps["gate"].output == {"approved": True, "comment": None, "by": "tester"}


def test_send_event_and_approve_reach_a_running_run_through_the_store(tmp_path: Path) -> None:
    wf = cp.loads(
        """\
name: both
agents:
  ap: {kind: approval}
  w: {kind: wait, event: deploy_window, when: "event.data.env == 'prod'"}
  n: {kind: noop}
steps:
  - {id: gate, agent: ap}
  - {id: window, agent: w}
  - {id: go, agent: n, needs: [gate, window]}
"""
    )
    path = tmp_path / "s.db"

    async def go() -> tuple[cp.RunResult, list[int], list[dict[str, object]]]:
        store = SqliteStore(path)
        other = SqliteStore(path)  # as another process would: its own connection
        posted: list[int] = []
        helpers: list[asyncio.Task[None]] = []

        async def answer_once_paused(run_id: str) -> None:
            async def is_paused() -> bool:
                return (await other.get_run(run_id)).status == "paused"

            await _until(is_paused, "the run shows paused")
            posted.append(await cp.send_event(other, run_id, "deploy_window", {"env": "qa"}))
            posted.append(
                await cp.send_event(other, run_id, "deploy_window", {"env": "prod"}, source="ops")
            )
            posted.append(await cp.approve(other, run_id, "gate", comment="go ahead"))

        def on_engine(engine: Engine) -> None:
            loop = asyncio.get_running_loop()
            helpers.append(loop.create_task(answer_once_paused(engine.run_id)))

        try:
            result = await cp.run(wf, store=store, on_engine=on_engine)
            await asyncio.gather(*helpers)
            entries = await store.entries(result.run_id)
            events = [json.loads(e.data or "") for e in entries if e.kind == "event"]
            return result, posted, events
        finally:
            await other.close()
            await store.close()

    result, posted, events = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["window"].output == {
        "event": "deploy_window",
        "data": {"env": "prod"},
        "source": "ops",
    }
    assert result.steps["gate"].output == {"approved": True, "comment": "go ahead", "by": "api"}
    assert posted == sorted(posted)
    sent = [e for e in events if "inbox" in e]
    assert [(e["name"], e["source"], e["inbox"]) for e in sent] == [
        ("deploy_window", "api", posted[0]),
        ("deploy_window", "ops", posted[1]),
        ("approval_given", "api", posted[2]),
    ]
    assert sent[2]["data"] == {"step": "gate", "approved": True, "comment": "go ahead"}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)  # type: ignore[type-var]


def test_events_for_unknown_or_finished_runs_are_refused(tmp_path: Path) -> None:
    wf = cp.loads("name: quick\nagents: {n: {kind: noop}}\nsteps: [{id: a, agent: n}]\n")

    async def go() -> None:
        store = SqliteStore(tmp_path / "s.db")
        try:
            result = await cp.run(wf, store=store)
            assert result.status is cp.RunStatus.SUCCEEDED
            with pytest.raises(cp.CannotResume, match=r"has ended \(succeeded\)"):
                await cp.send_event(store, result.run_id, "go")
            with pytest.raises(cp.CannotResume, match="it takes no more events"):
                await cp.approve(store, result.run_id, "a")
            with pytest.raises(cp.RunNotFound):
                await cp.send_event(store, "no-such-run", "go")
            assert await store.inbox(result.run_id) == []  # nothing was posted
        finally:
            await store.close()

    asyncio.run(go())


# --- resume: answers given while the run was down ------------------------------------------------


def test_an_approval_given_while_the_run_was_down_is_read_when_it_resumes() -> None:
    calls: list[str] = []

    async def build(ctx: cp.StepContext) -> object:
        calls.append(ctx.step_id)
        return "artifact"

    b = cp.WorkflowBuilder("release")
    b.agent("build", function=build)
    b.agent("ap", kind="approval", prompt="ship it?")
    b.agent("n", kind="noop")
    b.step("build", agent="build")
    b.step("gate", agent="ap", needs="build")
    b.step("ship", agent="n", needs="gate")
    wf = b.build()

    async def go() -> tuple[cp.RunResult, cp.RunResult, str]:
        store = cp.MemoryStore()
        clock = cp.VirtualClock()

        def on_engine(engine: Engine) -> None:
            clock.call_later(1.0, engine.interrupt)  # the run goes down while it waits

        first = await cp.run(wf, store=store, clock=clock, on_engine=on_engine)
        await cp.approve(store, first.run_id, "gate", comment="while you were out")
        status = (await store.get_run(first.run_id)).status
        second = await cp.resume(first.run_id, store=store, workflow=wf, clock=cp.VirtualClock())
        return first, second, status

    first, second, status_between = asyncio.run(go())
    assert first.status is cp.RunStatus.INTERRUPTED
    assert statuses(first) == {"build": "succeeded", "gate": "cancelled", "ship": "cancelled"}
    assert status_between == "interrupted"
    assert second.status is cp.RunStatus.SUCCEEDED
    assert calls == ["build"]  # not run again
    assert second.steps["build"].restored
    assert second.steps["gate"].attempts == 2
    assert second.steps["gate"].output == {
        "approved": True,
        "comment": "while you were out",
        "by": "api",
    }


def test_an_event_a_wait_took_before_a_resume_is_not_taken_again() -> None:
    wf = cp.loads(
        """\
name: two-waits
agents:
  w: {kind: wait, event: go}
  w2: {kind: wait, event: go, timeout: 5s, on_timeout: default, default: none came}
steps:
  - {id: first, agent: w}
  - {id: second, agent: w2, needs: first}
"""
    )

    async def go() -> tuple[cp.RunResult, cp.RunResult]:
        store = cp.MemoryStore()
        clock = cp.VirtualClock()

        def on_engine(engine: Engine) -> None:
            clock.call_later(1.0, lambda: engine.send("go", {"n": 1}))
            clock.call_later(2.0, engine.interrupt)

        first = await cp.run(wf, store=store, clock=clock, on_engine=on_engine)
        second = await cp.resume(first.run_id, store=store, workflow=wf, clock=cp.VirtualClock())
        return first, second

    first, second = asyncio.run(go())
    assert first.steps["first"].output == {"event": "go", "data": {"n": 1}, "source": "api"}
    assert statuses(first)["second"] == "cancelled"
    # the only `go` was first's: second must wait for another (here: time out, default)
    assert second.steps["second"].output == "none came"  # today: first's event, again


def test_in_one_session_a_taken_event_is_not_taken_again() -> None:
    wf = cp.loads(
        """\
name: two-waits
agents:
  w: {kind: wait, event: go}
steps:
  - {id: first, agent: w}
  - {id: second, agent: w, needs: first}
"""
    )
    result = vrun(wf, agents=True, at={1.0: send("go", {"n": 1}), 4.0: send("go", {"n": 2})})
    assert times(result) == {"first": (0.0, 1.0), "second": (1.0, 4.0)}
    assert result.steps["second"].output["data"] == {"n": 2}  # type: ignore[index]


# --- from other processes: `counterpoint send`, `approve`, `resume` ----------------------------

RELEASE = """\
name: release
agents:
  work: {kind: python, function: "ev_agents:work"}
  ap: {kind: approval, prompt: "ship it?"}
  window: {kind: wait, event: deploy_window, when: "event.data.env == 'prod'"}
steps:
  - {id: build, agent: work}
  - {id: gate, agent: ap, needs: build}
  - {id: window, agent: window, needs: build}
  - {id: ship, agent: work, needs: [gate, window]}
"""

AGENTS = """\
from pathlib import Path


async def work(ctx):
    with open(Path(__file__).with_name("calls.txt"), "a") as f:
        f.write(f"{ctx.step_id} {ctx.attempt}\\n")
    return ctx.step_id
"""


def _release(folder: Path) -> None:
    (folder / "wf.yaml").write_text(RELEASE, encoding="utf-8")
    (folder / "ev_agents.py").write_text(AGENTS, encoding="utf-8")


def _calls(folder: Path) -> list[str]:
    path = folder / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def _journal(path: Path, run_id: str) -> list[cp.store.Entry]:
    async def read() -> list[cp.store.Entry]:
        store = SqliteStore(path)
        try:
            return await store.entries(run_id)
        finally:
            await store.close()

    return asyncio.run(read())


def _start_paused(tmp_path: Path, cli_popen: Popen) -> tuple[subprocess.Popen[str], str]:
    """`counterpoint run` in a subprocess, once the store shows it paused (after `send`)."""
    _release(tmp_path)
    proc = cli_popen("run", "wf.yaml", "--store", "s.db", "--json")
    run_id = wait_until_paused(tmp_path, "s.db", proc)
    sent = cli(
        tmp_path, "send", run_id, "deploy_window", "--data", '{"env": "prod"}', "--store", "s.db"
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent deploy_window (inbox ")
    return proc, run_id


def test_approve_from_another_process_ends_the_run_succeeded(
    tmp_path: Path, cli_popen: Popen
) -> None:
    proc, run_id = _start_paused(tmp_path, cli_popen)
    approved = cli(tmp_path, "approve", run_id, "gate", "--comment", "lgtm", "--store", "s.db")
    sent_at = time.monotonic()
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("sent approval (inbox ")
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent_at
    assert proc.returncode == 0, err
    assert took < 2.0  # a running run reads its inbox every 50 ms
    result = json.loads(out)
    assert result["status"] == "succeeded"
    steps = result["steps"]
    assert {sid: s["status"] for sid, s in steps.items()} == dict.fromkeys(
        ["build", "gate", "window", "ship"], "succeeded"
    )
    assert steps["gate"]["output"] == {"approved": True, "comment": "lgtm", "by": "cli"}
    assert steps["window"]["output"] == {
        "event": "deploy_window",
        "data": {"env": "prod"},
        "source": "cli",
    }
    assert _calls(tmp_path) == ["build 1", "ship 1"]
    events = [
        json.loads(e.data or "") for e in _journal(tmp_path / "s.db", run_id) if e.kind == "event"
    ]
    sent = [(e["name"], e["source"], e["inbox"]) for e in events if "inbox" in e]
    assert sent == [("deploy_window", "cli", 1), ("approval_given", "cli", 2)]
    shown = cli(tmp_path, "runs", "--store", "s.db", "--json")
    assert json.loads(shown.stdout)[0]["status"] == "succeeded"


def test_reject_from_another_process_ends_the_run_failed(tmp_path: Path, cli_popen: Popen) -> None:
    proc, run_id = _start_paused(tmp_path, cli_popen)
    rejected = cli(
        tmp_path, "approve", run_id, "gate", "--reject", "--comment", "not today", "--store", "s.db"
    )
    sent_at = time.monotonic()
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.startswith("sent rejection (inbox ")
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent_at
    assert proc.returncode == 1
    assert took < 2.0
    result = json.loads(out)
    assert result["status"] == "failed"
    steps = result["steps"]
    assert {sid: s["status"] for sid, s in steps.items()} == {
        "build": "succeeded",
        "gate": "failed",
        "window": "succeeded",
        "ship": "skipped",
    }
    assert steps["gate"]["error"] == "rejected by cli: not today"
    assert f"counterpoint resume {run_id}" in err
    assert _calls(tmp_path) == ["build 1"]


def test_send_and_approve_refuse_bad_data_unknown_and_finished_runs(tmp_path: Path) -> None:
    wf = cp.loads(
        """\
name: done
agents:
  n: {kind: noop}
  w: {kind: wait, event: never, timeout: 10ms}
steps:
  - {id: a, agent: n}
  - {id: b, agent: w, needs: a}
"""
    )
    path = tmp_path / "s.db"

    async def finished() -> tuple[str, str]:
        store = SqliteStore(path)
        try:
            ok = await cp.run(wf, store=store, run_id="run-ok")
            assert ok.status is cp.RunStatus.FAILED  # b timed out
            other = cp.loads("name: fine\nagents: {n: {kind: noop}}\nsteps: [{id: a, agent: n}]\n")
            good = await cp.run(other, store=store, run_id="run-good")
            assert good.status is cp.RunStatus.SUCCEEDED
            return ok.run_id, good.run_id
        finally:
            await store.close()

    failed_run, good_run = asyncio.run(finished())
    s = ["--store", "s.db"]
    done = cli_all(
        tmp_path,
        {
            "bad-json": ["send", good_run, "go", "--data", "{bad", *s],
            "list": ["send", good_run, "go", "--data", "[1, 2]", *s],
            "text": ["send", good_run, "go", "--data", '"hello"', *s],
            "number": ["send", good_run, "go", "--data", "3", *s],
            "unknown-run": ["send", "no-such-run", "go", *s],
            "succeeded": ["send", good_run, "go", "--data", "{}", *s],
            "failed": ["send", failed_run, "go", *s],
            "approve-succeeded": ["approve", good_run, "a", *s],
            "approve-unknown-step": ["approve", good_run, "gaet", *s],
            "approve-unknown-run": ["approve", "no-such-run", "a", *s],
        },
    )
    for name, proc in done.items():
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert proc.stdout == "", name  # nothing claims it was sent
        assert proc.stderr.startswith("error: "), (name, proc.stderr)
        assert proc.stderr.count("\n") == 1, (name, proc.stderr)  # one line, no traceback
    err = {name: proc.stderr.strip() for name, proc in done.items()}
    assert err["bad-json"].startswith("error: --data is not JSON: ")
    for name in ("list", "text", "number"):
        assert err[name] == 'error: --data must be a JSON object ({"key": ...})'
    assert err["unknown-run"].startswith("error: no run 'no-such-run' in ")
    assert err["approve-unknown-run"].startswith("error: no run 'no-such-run' in ")
    assert err["succeeded"] == (
        f"error: run {good_run} has ended (succeeded): it takes no more events"
    )
    assert err["approve-succeeded"] == err["succeeded"]
    assert err["failed"] == f"error: run {failed_run} has ended (failed): it takes no more events"
    assert err["approve-unknown-step"] == f"error: run {good_run} has no step 'gaet' (steps: a)"

    async def inboxes() -> list[object]:
        store = SqliteStore(path)
        try:
            return [*await store.inbox(good_run), *await store.inbox(failed_run)]
        finally:
            await store.close()

    assert asyncio.run(inboxes()) == []


def test_a_run_killed_while_paused_resumes_with_the_answer_given_meanwhile(
    tmp_path: Path, cli_popen: Popen
) -> None:
    proc, run_id = _start_paused(tmp_path, cli_popen)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # no process runs the run now: the answer waits in the store's inbox
    approved = cli(
        tmp_path, "approve", run_id, "gate", "--comment", "back later", "--store", "s.db"
    )
    assert approved.returncode == 0, approved.stderr
    resumed = cli(tmp_path, "resume", run_id, "--store", "s.db", "--json")
    assert resumed.returncode == 0, (resumed.stdout, _journal(tmp_path / "s.db", run_id))
    result = json.loads(resumed.stdout)
    assert result["status"] == "succeeded"
    steps = result["steps"]
    assert steps["gate"]["output"] == {"approved": True, "comment": "back later", "by": "cli"}
    # the wait took the event sent in the first session (replayed), not a new one
    assert steps["window"]["output"]["data"] == {"env": "prod"}
    assert steps["build"]["attempts"] == 1
    # build ran once, in the first session; ship once, in the second
    assert _calls(tmp_path) == ["build 1", "ship 1"]
    started = [e.step for e in _journal(tmp_path / "s.db", run_id) if e.kind == "started"]
    assert started.count("build") == 1
    assert started.count("ship") == 1
    shown = cli(tmp_path, "runs", "--store", "s.db", "--json")
    assert json.loads(shown.stdout)[0]["status"] == "succeeded"


def test_resume_refuses_a_run_that_is_paused_in_a_live_process(
    tmp_path: Path, cli_popen: Popen
) -> None:
    proc, run_id = _start_paused(tmp_path, cli_popen)

    async def try_resume() -> cp.RunResult:
        store = SqliteStore(tmp_path / "s.db")
        try:
            # if it goes ahead, stop it at once (the live run is killed at the end anyway)
            return await cp.resume(run_id, store=store, on_engine=lambda e: e.interrupt())
        finally:
            await store.close()

    try:
        with pytest.raises(cp.CannotResume, match="still paused in process"):
            asyncio.run(try_resume())
    finally:
        assert proc.poll() is None  # the first process was still there, paused
