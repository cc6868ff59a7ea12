"""Triggers on the virtual clock: held steps started by events (task completions, errors,
events sent in), held steps no event started skipped at the end, `end: true`, `*`, and the
journal of a run's events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from evkit import load_module_with, load_with, names, send, statuses, times, vrun

import counterpoint as cp
from counterpoint.backends import VirtualBackend
from counterpoint.scheduler.engine import Engine

NOT_STARTED = "not run: no event started it"


# --- task_completion starts held steps ------------------------------------------------------

ON_COMPLETION = """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: task_completion, when: "event.data.step == 'a'", run: [x]}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: b, agent: n, estimate: 5}
  - {id: x, agent: n, estimate: 1}
  - {id: after-x, agent: n, estimate: 1, needs: x}
"""


def test_a_trigger_on_the_completion_of_a_step_starts_a_held_step() -> None:
    result = vrun(cp.loads(ON_COMPLETION))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {
        "a": (0.0, 2.0),
        "b": (0.0, 5.0),
        "x": (2.0, 3.0),  # held at 0 although it needs nothing; started when a completed
        "after-x": (3.0, 4.0),
    }
    assert [(e.time, e.step_id, e.name, e.data) for e in result.events] == [
        (2.0, "a", "task_completion", {"step": "a"}),
        (2.0, "", "triggered", {"on": "task_completion", "seq": 1, "steps": ["x"]}),
        (3.0, "x", "task_completion", {"step": "x"}),
        (4.0, "after-x", "task_completion", {"step": "after-x"}),
        (5.0, "b", "task_completion", {"step": "b"}),
    ]


def test_a_held_step_starts_only_once_its_needs_are_done_too() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: x}
steps:
  - {id: slow, agent: n, estimate: 6}
  - {id: x, agent: n, estimate: 1, needs: slow}
  - {id: y, agent: n, estimate: 1, needs: slow}
"""
    )
    result = vrun(wf, at={1.0: send("go")})  # the trigger fires long before slow is done
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"slow": (0.0, 6.0), "x": (6.0, 7.0), "y": (6.0, 7.0)}
    assert [(e.time, e.name) for e in result.events] == [(1.0, "go"), (1.0, "triggered")]


def test_a_condition_that_does_not_match_leaves_the_step_held_and_it_is_skipped() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: feedback_received, when: "event.data.sentiment == 'negative'", run: [rewrite]}
steps:
  - {id: draft, agent: n, estimate: 3}
  - {id: rewrite, agent: n, estimate: 2}
  - {id: publish, agent: n, estimate: 1, needs: rewrite}
"""
    )
    result = vrun(
        wf,
        at={
            1.0: send("feedback_received", {"sentiment": "positive"}, "cli"),
            2.0: send("feedback_received", {"score": 3}),  # the key is missing: no match
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.status.exit_code == 0
    assert statuses(result) == {"draft": "succeeded", "rewrite": "skipped", "publish": "skipped"}
    assert result.steps["rewrite"].error == NOT_STARTED
    assert result.steps["publish"].error == (
        "not run: a step it needs was never started by an event"
    )
    assert result.steps["rewrite"].attempts == 0
    assert "triggered" not in names(result)
    assert result.makespan_s == 3.0  # skipped as soon as nothing else could happen


def test_the_matching_event_among_others_starts_the_step() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: feedback_received, when: "event.data.sentiment == 'negative'", run: [rewrite]}
steps:
  - {id: draft, agent: n, estimate: 3}
  - {id: rewrite, agent: n, estimate: 2}
"""
    )
    result = vrun(
        wf,
        at={
            1.0: send("feedback_received", {"sentiment": "positive"}),
            2.0: send("feedback_received", {"sentiment": "negative"}, "cli"),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"draft": (0.0, 3.0), "rewrite": (2.0, 4.0)}
    triggered = [e for e in result.events if e.name == "triggered"]
    assert [(e.time, e.data) for e in triggered] == [
        (2.0, {"on": "feedback_received", "seq": 2, "steps": ["rewrite"]})
    ]


def test_a_condition_may_read_the_run_inputs() -> None:
    wf = cp.loads(
        """\
name: t
inputs:
  mode: careful
agents:
  n: {kind: noop}
triggers:
  - {on: task_completion, when: "inputs.mode == 'careful'", run: review}
steps:
  - {id: build, agent: n, estimate: 1}
  - {id: review, agent: n, estimate: 1}
"""
    )
    assert statuses(vrun(wf)) == {"build": "succeeded", "review": "succeeded"}
    assert statuses(vrun(wf, inputs={"mode": "quick"})) == {
        "build": "succeeded",
        "review": "skipped",
    }


def test_a_run_of_held_steps_only_ends_at_once_skipping_them_all() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: [a, b]}
steps:
  - {id: a, agent: n}
  - {id: b, agent: n, needs: a}
"""
    )
    result = vrun(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert statuses(result) == {"a": "skipped", "b": "skipped"}
    assert result.steps["b"].error == NOT_STARTED  # held itself, not only after a held step
    assert result.makespan_s == 0.0


# --- end: true ------------------------------------------------------------------------------

ENDING = """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: direction_change, when: "event.data.action == 'stop'", end: true}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: long, agent: n, estimate: 10}
  - {id: after-a, agent: n, estimate: 1, needs: a}
  - {id: after-long, agent: n, estimate: 1, needs: long}
"""


def test_a_trigger_with_end_stops_new_work_and_lets_running_steps_finish() -> None:
    result = vrun(
        cp.loads(ENDING),
        at={
            0.5: send("direction_change", {"action": "go on"}),  # no match: nothing happens
            1.0: send("direction_change", {"action": "stop"}, "cli"),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert statuses(result) == {
        "a": "succeeded",
        "long": "succeeded",  # not cut: it ran to its end
        "after-a": "skipped",
        "after-long": "skipped",
    }
    assert times(result)["long"] == (0.0, 10.0)
    assert result.makespan_s == 10.0
    reason = "not run: the run was ended by the trigger on 'direction_change' (event 2)"
    assert result.steps["after-a"].error == reason
    assert result.steps["after-long"].error == reason
    assert [(e.time, e.name, e.data) for e in result.events] == [
        (0.5, "direction_change", {"action": "go on"}),
        (1.0, "direction_change", {"action": "stop"}),
        (1.0, "ended", {"on": "direction_change", "seq": 2}),
    ]


def test_an_ended_run_fails_when_a_step_failed() -> None:
    result = vrun(
        cp.loads(ENDING),
        at={1.0: send("direction_change", {"action": "stop"})},
        fail=lambda job: "broken" if job.step_id == "long" else None,
    )
    assert result.status is cp.RunStatus.FAILED
    assert statuses(result) == {
        "a": "succeeded",
        "long": "failed",
        "after-a": "skipped",
        "after-long": "skipped",
    }


def test_a_second_end_is_not_announced_again() -> None:
    result = vrun(
        cp.loads(ENDING),
        at={
            1.0: send("direction_change", {"action": "stop"}),
            3.0: send("direction_change", {"action": "stop"}),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert names(result).count("ended") == 1


def test_an_end_trigger_on_a_task_completion() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: task_completion, when: "event.data.step == 'enough'", end: true}
steps:
  - {id: enough, agent: n, estimate: 1}
  - {id: more, agent: n, estimate: 1, needs: enough}
  - {id: side, agent: n, estimate: 3}
"""
    )
    result = vrun(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert statuses(result) == {"enough": "succeeded", "more": "skipped", "side": "succeeded"}


# --- once per held step ---------------------------------------------------------------------


def test_a_trigger_fires_once_per_held_step_even_if_its_event_repeats() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: [x]}
  - {on: again, run: [x, y]}
steps:
  - {id: base, agent: n, estimate: 10}
  - {id: x, agent: n, estimate: 1}
  - {id: y, agent: n, estimate: 1}
"""
    )
    result = vrun(
        wf,
        at={
            1.0: send("go"),
            2.0: send("go"),
            3.0: send("go"),
            4.0: send("again"),  # x was started already: only y is woken
            5.0: send("again"),
        },
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    assert {sid: r.attempts for sid, r in result.steps.items()} == {"base": 1, "x": 1, "y": 1}
    assert times(result) == {"base": (0.0, 10.0), "x": (1.0, 2.0), "y": (4.0, 5.0)}
    triggered = [(e.time, e.data) for e in result.events if e.name == "triggered"]
    assert triggered == [
        (1.0, {"on": "go", "seq": 1, "steps": ["x"]}),
        (4.0, {"on": "again", "seq": 5, "steps": ["y"]}),
    ]


def test_one_event_may_wake_several_held_steps_of_several_triggers() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: [x, y]}
  - {on: go, run: [z]}
steps:
  - {id: base, agent: n, estimate: 5}
  - {id: x, agent: n, estimate: 1}
  - {id: y, agent: n, estimate: 1}
  - {id: z, agent: n, estimate: 1}
"""
    )
    result = vrun(wf, at={1.0: send("go")})
    assert times(result) == {"base": (0.0, 5.0), "x": (1.0, 2.0), "y": (1.0, 2.0), "z": (1.0, 2.0)}
    triggered = [e.data["steps"] for e in result.events if e.name == "triggered"]
    assert triggered == [["x", "y"], ["z"]]


# --- `*` -----------------------------------------------------------------------------------------


def test_a_star_trigger_fires_on_any_event_sent_in() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: '*', when: "event.source == 'cli'", run: x}
steps:
  - {id: base, agent: n, estimate: 5}
  - {id: x, agent: n, estimate: 1}
"""
    )
    result = vrun(
        wf,
        at={1.0: send("whatever", {"k": 1}), 2.0: send("external_change", {}, "cli")},
    )
    assert times(result) == {"base": (0.0, 5.0), "x": (2.0, 3.0)}
    assert [(e.name, e.data) for e in result.events if e.name == "triggered"] == [
        ("triggered", {"on": "external_change", "seq": 2, "steps": ["x"]})
    ]


def test_a_star_trigger_sees_events_that_steps_emit(tmp_path: Path) -> None:
    wf = load_with(
        tmp_path,
        """\
        name: t
        agents:
          talk: {kind: python, function: "MOD:talk"}
          n: {kind: noop}
        triggers:
          - {on: '*', when: "event.name == 'progress' and event.data.pct >= 50", run: x}
        steps:
          - {id: base, agent: talk}
          - {id: x, agent: n}
        """,
        """\
        async def talk(ctx):
            ctx.emit("progress", {"pct": 10})
            ctx.emit("progress", {"pct": 50})
            return "ok"
        """,
    )
    result = vrun(wf, agents=True)
    assert statuses(result) == {"base": "succeeded", "x": "succeeded"}
    # a '*' trigger also sees the completions the engine publishes for it
    assert [(e.step_id, e.name, e.data) for e in result.events] == [
        ("base", "progress", {"pct": 10}),
        ("base", "progress", {"pct": 50}),
        ("", "triggered", {"on": "progress", "seq": 2, "steps": ["x"]}),
        ("base", "task_completion", {"step": "base"}),
        ("x", "task_completion", {"step": "x"}),
    ]


def test_a_star_trigger_sees_task_completions() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: '*', when: "event.name == 'task_completion' and event.data.step == 'a'", run: x}
steps:
  - {id: a, agent: n, estimate: 2}
  - {id: x, agent: n, estimate: 1}
"""
    )
    result = vrun(wf)
    assert statuses(result) == {"a": "succeeded", "x": "succeeded"}


AGENT_EVENTS = """\
name: t
agents:
  n: {kind: noop}
triggers: TRIGGERS
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: bad, agent: n, estimate: 2}
  - {id: held, agent: n, estimate: 1}
"""


@pytest.mark.parametrize(
    ("triggers", "published"),
    [
        ("[{on: go, run: held}]", []),
        ("[{on: task_completion, run: held}]", ["task_completion:a", "task_completion:held"]),
        ("[{on: error_encountered, run: held}]", ["error_encountered:bad"]),
        (
            "[{on: task_completion, end: true}, {on: error_encountered, run: held}]",
            ["task_completion:a", "error_encountered:bad"],
        ),
    ],
)
def test_agent_events_are_published_only_when_a_trigger_listens_for_them(
    triggers: str, published: list[str]
) -> None:
    wf = cp.loads(AGENT_EVENTS.replace("TRIGGERS", triggers))
    result = vrun(wf, fail=lambda job: "no" if job.step_id == "bad" else None)
    assert [f"{e.name}:{e.step_id}" for e in result.events if e.step_id] == published


def test_agent_events_are_published_for_a_wait_on_them(tmp_path: Path) -> None:
    wf = load_with(
        tmp_path,
        """\
        name: t
        agents:
          w: {kind: wait, event: task_completion, when: "event.data.step == 'a'"}
          n: {kind: noop}
        steps:
          - {id: a, agent: n}
          - {id: watcher, agent: w}
        """,
    )
    result = vrun(wf, agents=True)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.steps["watcher"].output == {
        "event": "task_completion",
        "data": {"step": "a"},
        "source": "a",
    }


# --- error_encountered ---------------------------------------------------------------------------

RECOVERY = """\
name: t
agents:
  n: {kind: noop}
triggers:
  - on: error_encountered
    when: "event.data.step == 'deploy' and 'timeout' not in event.data.error"
    run: [rollback, notify]
steps:
  - {id: build, agent: n, estimate: 1}
  - {id: deploy, agent: n, estimate: 2, needs: build, retries: {max: 1, backoff: 1s, jitter: 0}}
  - {id: smoke, agent: n, estimate: 1, needs: deploy}
  - {id: rollback, agent: n, estimate: 3}
  - {id: notify, agent: n, estimate: 1, needs: rollback}
"""


def test_error_encountered_starts_a_recovery_step() -> None:
    result = vrun(
        cp.loads(RECOVERY), fail=lambda job: "disk full" if job.step_id == "deploy" else None
    )
    # deploy: 1-3, retried after 1 s: 4-6, failed for good at 6; then the recovery
    assert times(result) == {
        "build": (0.0, 1.0),
        "deploy": (1.0, 6.0),
        "smoke": (None, None),
        "rollback": (6.0, 9.0),
        "notify": (9.0, 10.0),
    }
    assert statuses(result) == {
        "build": "succeeded",
        "deploy": "failed",
        "smoke": "skipped",
        "rollback": "succeeded",
        "notify": "succeeded",
    }
    assert result.status is cp.RunStatus.FAILED  # deploy failed: recovering does not hide it
    errors = [e for e in result.events if e.name == "error_encountered"]
    # once, when the step failed for good (not for the attempt that was retried)
    assert [(e.time, e.step_id, e.data) for e in errors] == [
        (6.0, "deploy", {"step": "deploy", "error": "disk full"})
    ]


def test_no_error_no_recovery() -> None:
    result = vrun(cp.loads(RECOVERY))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert statuses(result)["rollback"] == "skipped"
    assert statuses(result)["notify"] == "skipped"
    assert result.makespan_s == 4.0


def test_an_error_the_condition_rules_out_starts_nothing() -> None:
    result = vrun(
        cp.loads(RECOVERY),
        fail=lambda job: "timeout talking to the host" if job.step_id == "deploy" else None,
    )
    assert statuses(result)["rollback"] == "skipped"
    assert result.status is cp.RunStatus.FAILED


# --- the journal ---------------------------------------------------------------------------------


def test_events_are_journaled_in_seq_order_with_kind_and_source() -> None:
    wf = cp.loads(ON_COMPLETION)

    async def go() -> tuple[cp.RunResult, list[dict[str, object]], list[str | None]]:
        store = cp.MemoryStore()
        clock = cp.VirtualClock()

        def on_engine(engine: Engine) -> None:
            clock.call_later(
                1.0, lambda: engine.send("feedback_received", {"sentiment": "ok"}, "cli")
            )

        result = await cp.run(
            wf,
            store=store,
            clock=clock,
            backend=VirtualBackend,  # type: ignore[arg-type]
            on_engine=on_engine,
        )
        entries = [e for e in await store.entries(result.run_id) if e.kind == "event"]
        return result, [json.loads(e.data or "") for e in entries], [e.step for e in entries]

    result, journaled, steps = asyncio.run(go())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert [e["seq"] for e in journaled] == list(range(1, len(journaled) + 1))
    assert [(e["name"], e["kind"], e["source"]) for e in journaled] == [
        ("feedback_received", "user", "cli"),
        ("task_completion", "agent", "a"),
        ("triggered", "custom", "engine"),
        ("task_completion", "agent", "x"),
        ("task_completion", "agent", "after-x"),
        ("task_completion", "agent", "b"),
    ]
    assert steps == [None, "a", None, "x", "after-x", "b"]  # step events belong to their step
    assert journaled[2]["data"] == {"on": "task_completion", "seq": 2, "steps": ["x"]}
    assert all("inbox" not in e for e in journaled)  # none came through the store's inbox
    # the run's events are the same, in the same order
    assert [(e.name, e.data) for e in result.events] == [(e["name"], e["data"]) for e in journaled]


def test_a_resumed_run_replays_its_earlier_events_to_the_triggers() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: x}
steps:
  - {id: base, agent: n, estimate: 10}
  - {id: x, agent: n, estimate: 5}
"""
    )

    async def go() -> tuple[cp.RunResult, cp.RunResult, list[str]]:
        store = cp.MemoryStore()
        clock = cp.VirtualClock()

        def on_engine(engine: Engine) -> None:
            clock.call_later(1.0, lambda: engine.send("go", {"n": 1}))
            clock.call_later(2.0, engine.interrupt)

        first = await cp.run(
            wf,
            store=store,
            clock=clock,
            backend=VirtualBackend,  # type: ignore[arg-type]
            on_engine=on_engine,
        )
        second = await cp.resume(
            first.run_id,
            store=store,
            workflow=wf,
            clock=cp.VirtualClock(),
            backend=VirtualBackend,  # type: ignore[arg-type]
        )
        entries = await store.entries(first.run_id)
        events = [json.loads(e.data or "")["name"] for e in entries if e.kind == "event"]
        return first, second, events

    first, second, journaled = asyncio.run(go())
    assert first.status is cp.RunStatus.INTERRUPTED
    assert statuses(first) == {"base": "cancelled", "x": "cancelled"}
    # the `go` of the first session wakes x again: it runs instead of being skipped
    assert second.status is cp.RunStatus.SUCCEEDED
    assert times(second) == {"base": (0.0, 10.0), "x": (0.0, 5.0)}
    # replayed events are not journaled (nor listed) a second time, and the trigger firing
    # again says nothing new (its `triggered` is in the journal from the first session)
    assert journaled.count("go") == 1
    assert journaled.count("triggered") == 1
    assert "go" not in names(second)
    assert second.events == []


def test_event_numbers_stay_unique_across_the_sessions_of_a_run() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: go, run: x}
steps:
  - {id: base, agent: n, estimate: 10}
  - {id: x, agent: n, estimate: 5}
"""
    )

    async def go() -> list[int]:
        store = cp.MemoryStore()
        clock = cp.VirtualClock()

        def on_engine(engine: Engine) -> None:
            clock.call_later(1.0, lambda: engine.send("go"))
            clock.call_later(2.0, engine.interrupt)

        first = await cp.run(
            wf,
            store=store,
            clock=clock,
            backend=VirtualBackend,  # type: ignore[arg-type]
            on_engine=on_engine,
        )
        clock2 = cp.VirtualClock()

        def later(engine: Engine) -> None:
            clock2.call_later(1.0, lambda: engine.send("note"))

        await cp.resume(
            first.run_id,
            store=store,
            workflow=wf,
            clock=clock2,
            backend=VirtualBackend,  # type: ignore[arg-type]
            on_engine=later,
        )
        entries = await store.entries(first.run_id)
        return [json.loads(e.data or "")["seq"] for e in entries if e.kind == "event"]

    seqs = asyncio.run(go())
    # go, triggered; then, after the resume, note (the replay says nothing new)
    assert seqs == [1, 2, 3]


def test_a_trigger_fired_by_a_running_step_starts_the_held_step_at_once(tmp_path: Path) -> None:
    # (at b90fea8 the woken step waited for the loop's next wake-up: here t=5, not 0)
    wf, mod = load_module_with(
        tmp_path,
        """\
        name: t
        agents:
          talk: {kind: python, function: "MOD:talk"}
          n: {kind: noop}
        triggers:
          - {on: ready, run: x}
        steps:
          - {id: talker, agent: talk}
          - {id: x, agent: n, estimate: 1}
        """,
        """\
        import asyncio

        RELEASE = []


        async def talk(ctx):
            ctx.emit("ready", {})
            done = asyncio.get_running_loop().create_future()
            RELEASE.append(done)
            await done  # still running, and not talking to the engine
            return "talked"
        """,
    )

    def release(engine: Engine) -> None:
        mod.RELEASE[0].set_result(None)
        engine.send("tick")  # wakes the engine on the virtual clock

    result = vrun(wf, agents={"talker"}, at={5.0: release})
    assert result.status is cp.RunStatus.SUCCEEDED
    assert times(result) == {"talker": (0.0, 5.0), "x": (0.0, 1.0)}
