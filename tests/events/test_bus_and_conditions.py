"""The event bus (numbering, `*` first, nested publishes queued), event kinds, conditions
(what they accept and refuse, missing keys, type mismatches), and trigger mistakes in YAML
reported with their positions."""

from __future__ import annotations

import pytest

import counterpoint as cp
from counterpoint.events import KINDS, Event, EventBus, compile_condition, kind_of
from counterpoint.events.conditions import ConditionError

# --- the bus ----------------------------------------------------------------------------------


def test_events_are_numbered_in_the_order_published_and_kept() -> None:
    bus = EventBus()
    first = bus.publish(Event("a", {"n": 1}, "x", 1.5))
    second = bus.publish(Event("b"))
    assert (first.seq, second.seq) == (1, 2)
    assert [(e.name, e.seq) for e in bus.history] == [("a", 1), ("b", 2)]
    # everything but the number is kept as given
    assert (first.name, dict(first.data), first.source, first.time) == ("a", {"n": 1}, "x", 1.5)
    assert second.source == "api"  # the default source


def test_a_given_seq_is_replaced_by_the_bus_own_number() -> None:
    bus = EventBus()
    assert bus.publish(Event("a", seq=42)).seq == 1
    assert bus.publish(Event("b", seq=1)).seq == 2


def test_handlers_for_every_event_come_first_then_those_for_the_name() -> None:
    bus = EventBus()
    log: list[str] = []
    bus.subscribe("go", lambda e: log.append(f"go-1:{e.name}"))
    bus.subscribe("*", lambda e: log.append(f"star-1:{e.name}"))
    bus.subscribe("go", lambda e: log.append(f"go-2:{e.name}"))
    bus.subscribe("*", lambda e: log.append(f"star-2:{e.name}"))
    bus.subscribe("other", lambda e: log.append(f"other:{e.name}"))
    bus.publish(Event("go"))
    assert log == ["star-1:go", "star-2:go", "go-1:go", "go-2:go"]
    log.clear()
    bus.publish(Event("unheard"))
    assert log == ["star-1:unheard", "star-2:unheard"]


def test_events_published_while_delivering_are_queued_not_delivered_recursively() -> None:
    bus = EventBus()
    log: list[tuple[str, str, int]] = []
    returned: list[Event] = []

    def star(e: Event) -> None:
        log.append(("*", e.name, e.seq))

    def on_a(e: Event) -> None:
        log.append(("a-handler", e.name, e.seq))
        returned.append(bus.publish(Event("b")))  # delivered after every handler of `a`
        returned.append(bus.publish(Event("c")))
        log.append(("a-handler-done", e.name, e.seq))

    def on_a_late(e: Event) -> None:
        log.append(("a-late", e.name, e.seq))

    def on_b(e: Event) -> None:
        log.append(("b-handler", e.name, e.seq))
        bus.publish(Event("d"))  # after c, which was queued before it

    bus.subscribe("*", star)
    bus.subscribe("a", on_a)
    bus.subscribe("a", on_a_late)
    bus.subscribe("b", on_b)
    top = bus.publish(Event("a"))
    assert top.seq == 1
    assert [e.seq for e in returned] == [2, 3]  # numbered when published, not when delivered
    assert log == [
        ("*", "a", 1),
        ("a-handler", "a", 1),
        ("a-handler-done", "a", 1),
        ("a-late", "a", 1),
        ("*", "b", 2),
        ("b-handler", "b", 2),
        ("*", "c", 3),
        ("*", "d", 4),
    ]
    assert [e.name for e in bus.history] == ["a", "b", "c", "d"]
    # the queue is empty afterwards: the next event is delivered alone
    log.clear()
    bus.publish(Event("e"))
    assert log == [("*", "e", 5)]


def test_stopping_a_subscription_and_what_listens_means() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("*", lambda e: seen.append("*"))
    assert not bus.listens("go")  # a handler of every event does not count as one for "go"
    stop = bus.subscribe("go", lambda e: seen.append("go"))
    stop_too = bus.subscribe("go", lambda e: seen.append("go-2"))
    assert bus.listens("go")
    stop()
    stop()  # twice: harmless
    assert bus.listens("go")
    bus.publish(Event("go"))
    assert seen == ["*", "go-2"]
    stop_too()
    assert not bus.listens("go")
    seen.clear()
    bus.publish(Event("go"))
    assert seen == ["*"]


def test_a_handler_that_raises_does_not_poison_later_events() -> None:
    # (at b90fea8 the failed event stayed queued: every later publish delivered it again and
    # raised again)
    bus = EventBus()
    seen: list[str] = []

    def picky(e: Event) -> None:
        seen.append(e.name)
        if e.name == "bad":
            raise ValueError("cannot take it")

    bus.subscribe("*", picky)
    with pytest.raises(ValueError):
        bus.publish(Event("bad"))
    bus.publish(Event("good"))
    bus.publish(Event("better"))
    assert seen == ["bad", "good", "better"]


def test_events_queued_before_a_handler_raised_are_still_delivered_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, int]] = []

    def picky(e: Event) -> None:
        seen.append((e.name, e.seq))
        if e.name == "bad":
            bus.publish(Event("child"))
            raise ValueError("cannot take it")

    bus.subscribe("*", picky)
    with pytest.raises(ValueError):
        bus.publish(Event("bad"))
    bus.publish(Event("good"))
    # today: [("bad", 1), ("good", 3), ("child", 2)]
    assert [seq for _, seq in seen] == sorted(seq for _, seq in seen)


# --- kinds ------------------------------------------------------------------------------------


def test_the_seed_event_types_have_their_kinds_and_others_are_custom() -> None:
    assert KINDS == {
        "feedback_received": "user",
        "direction_change": "user",
        "approval_given": "user",
        "clarification_request": "user",
        "task_completion": "agent",
        "error_encountered": "agent",
        "dependency_resolved": "agent",
        "resource_available": "agent",
        "external_change": "system",
        "resource_constraint": "system",
        "timeline_pressure": "system",
        "quality_issue": "system",
    }
    for name, kind in KINDS.items():
        assert kind_of(name) == kind
        assert Event(name).kind == kind
    for name in ("deploy", "Task_Completion", "", "*", "paused", "triggered"):
        assert kind_of(name) == "custom"
        assert Event(name).kind == "custom"


def test_what_a_condition_sees_of_an_event() -> None:
    event = Event("feedback_received", {"sentiment": "negative"}, "cli", 2.5, seq=7, inbox=3)
    assert event.scope() == {
        "name": "feedback_received",
        "kind": "user",
        "data": {"sentiment": "negative"},
        "source": "cli",
        "time": 2.5,
    }
    assert cp.Event is Event  # part of the public API


# --- conditions -------------------------------------------------------------------------------

DATA: dict[str, object] = {
    "sentiment": "negative",
    "score": 0.3,
    "n": 3,
    "tags": ["urgent", "ui"],
    "nested": {"deep": {"x": "y"}, "list": [10, 20]},
    "approved": False,
    "text": "hello world",
    "nothing": None,
}


def holds(text: str, data: dict[str, object] | None = None, **scope: object) -> bool:
    event = Event("feedback_received", DATA if data is None else data, "cli", 4.0)
    return compile_condition(text)({"event": event.scope(), **scope})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("event.data.sentiment == 'negative'", True),
        ("event.data.sentiment != 'negative'", False),
        ('event.data.sentiment == "positive"', False),
        ("event.data.score < 0.5", True),
        ("event.data.score <= 0.3", True),
        ("event.data.score > 0.3", False),
        ("event.data.n >= 3", True),
        ("1 < event.data.n < 5", True),  # chained
        ("1 < event.data.n < 3", False),
        ("event.data.n == -3", False),
        ("event.data.n > -1", True),
        ("event.data.score < 0.5 and event.source != 'cli'", False),
        ("event.data.score < 0.5 or event.source != 'cli'", True),
        ("not event.data.approved", True),
        ("not (event.data.n == 3)", False),
        ("'urgent' in event.data.tags", True),
        ("'later' in event.data.tags", False),
        ("'later' not in event.data.tags", True),
        ("'world' in event.data.text", True),  # substring
        ("event.data.n in [1, 2, 3]", True),
        ("event.data.n in (4, 5)", False),
        ("event.data.sentiment in ['negative', 'neutral']", True),
        ("event.data.nested.deep.x == 'y'", True),  # attributes read mappings
        ("event.data['nested']['deep']['x'] == 'y'", True),  # and so do subscripts
        ("event.data.tags[0] == 'urgent'", True),  # lists by index
        ("event.data.tags[-1] == 'ui'", True),
        ("event.data.nested.list[1] == 20", True),
        ("event.name == 'feedback_received'", True),
        ("event.kind == 'user'", True),
        ("event.source == 'cli'", True),
        ("event.time == 4.0", True),
        ("event.data.approved == false", True),  # YAML-style literals
        ("event.data.approved == False", True),  # and Python's
        ("event.data.nothing == null", True),
        ("event.data.nothing == None", True),
        ("event.data.sentiment", True),  # a bare value: truthiness
        ("event.data.approved", False),
        ("true", True),
        ("false", False),
        ("${{ event.data.sentiment == 'negative' }}", True),  # the reference form, too
        ("  ${{event.data.n == 3}}  ", True),
    ],
)
def test_accepted_conditions(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_inputs_are_visible_to_conditions() -> None:
    assert holds("inputs.mode == 'fast' and event.data.n == 3", inputs={"mode": "fast"})
    assert not holds("inputs.mode == 'fast'", inputs={"mode": "slow"})
    assert holds("inputs.missing == null", inputs={})
    assert holds("inputs.mode == null")  # no inputs in the scope at all


@pytest.mark.parametrize(
    "text",
    [
        "event.data.missing == null",
        "event.data.missing.deeper.still == null",
        "event.data.nested.nope == null",
        "event.data.tags[5] == null",  # past the end of a list
        "event.data.tags[-9] == null",
        "event.data.tags.first == null",  # an attribute of a list
        "event.data.n.real == null",  # no attributes of Python objects: an int has none
        "event.name.upper == null",  # nor a string
        "event.data.nested['list']['x'] == null",  # a key of a list
        "not event.data.missing",
        "'x' not in event.data.missing",
        "event.nope == null",
        "inputs.nope == null",
    ],
)
def test_missing_keys_are_none(text: str) -> None:
    assert holds(text, inputs={})


@pytest.mark.parametrize(
    "text",
    [
        "event.data.missing",
        "event.data.missing == 0",
        "event.data.missing == ''",
        "'x' in event.data.missing",  # in None: false, not an error
        "event.data.missing in event.data.tags",
    ],
)
def test_missing_keys_do_not_match_values(text: str) -> None:
    assert not holds(text)


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("event.data.n < 5", {"n": "three"}),
        ("event.data.n > 'a'", {"n": 3}),
        ("event.data.n >= 1", {"n": None}),
        ("event.data.n <= 1", {"n": [1]}),
        ("event.data.n < 1", {"n": {"a": 1}}),
        ("1 in event.data.n", {"n": 5}),  # `in` an int
        ("event.data.n in event.data.m", {"n": [1], "m": {"a": 1}}),  # unhashable key
        ("event.data.n == 3", {"n": "3"}),
        ("event.data.n == '3'", {"n": 3}),
        ("event.data.n == [3]", {"n": 3}),
    ],
)
def test_type_mismatches_are_false(text: str, data: dict[str, object]) -> None:
    assert holds(text, data) is False


def test_a_type_mismatch_makes_the_whole_condition_false() -> None:
    # as documented: "comparing values of different types: the condition does not hold"
    assert holds("event.data.n < 5 or event.data.ok", {"n": "x", "ok": True}) is False
    assert holds("event.data.ok or event.data.n < 5", {"n": "x", "ok": True}) is True


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("len(event.data.tags) > 1", "Call is not allowed"),
        ("event.data.text.upper() == 'X'", "Call is not allowed"),
        ("__import__('os')", "Call is not allowed"),
        ("event.data.n + 1 == 4", "BinOp is not allowed"),
        ("event.data.n * 2 > 1", "BinOp is not allowed"),
        ("event.data.n % 2 == 1", "BinOp is not allowed"),
        ("~event.data.n", "Invert is not allowed"),
        ("+event.data.n", "UAdd is not allowed"),
        ("-event.data.n < 0", "'-' only before a number"),
        ("os.system == 1", "unknown name 'os'"),
        ("data.x == 1", "unknown name 'data'"),
        ("steps.a.output == 1", "unknown name 'steps'"),
        ("__builtins__ == 1", "unknown name '__builtins__'"),
        ("event.__class__", "no names starting with '_'"),
        ("event.data._private == 1", "no names starting with '_'"),
        ("inputs.__dict__", "no names starting with '_'"),
        ("(lambda: 1) == 1", "Lambda is not allowed"),
        ("[x for x in event.data.tags]", "ListComp is not allowed"),
        ("{'a': 1} == event.data", "Dict is not allowed"),
        ("{1} == event.data", "Set is not allowed"),
        ("f'{event.name}' == 'x'", "JoinedStr is not allowed"),
        ("event.data.tags[0:1] == ['urgent']", "Slice is not allowed"),
        ("event.data.n is None", "Is is not allowed"),
        ("event.data.n is not None", "IsNot is not allowed"),
        ("1 if event.data.n else 2", "IfExp is not allowed"),
        ("(x := 1)", "NamedExpr is not allowed"),
        ("event.data.n ==", "is not an expression"),
        ("event.data.n = 3", "is not an expression"),
        ("import os", "is not an expression"),
        ("", "is not an expression"),
        ("${{ }}", "is not an expression"),
    ],
)
def test_refused_conditions(text: str, why: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(text)
    assert why in str(info.value)
    assert repr(text) in str(info.value)  # the message quotes the condition
    assert isinstance(info.value, ValueError)


# --- trigger mistakes in YAML, with their positions ---------------------------------------------


def problems(text: str, file: str = "wf.yaml") -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, file)
    return [str(p) for p in info.value.problems]


def test_bad_trigger_conditions_and_a_trigger_that_does_nothing_are_reported_at_once() -> None:
    text = """\
name: t
agents:
  n: {kind: noop}
triggers:
  - on: feedback_received
    when: "len(event.data.x) > 1"
    run: [a]
  - {on: go}
  - {on: go, when: "event.data.x ==", end: true}
  - {on: go, when: "event.__class__ == 1", run: a}
  - {on: go, when: "nope == 1", end: true}
steps:
  - {id: a, agent: n}
"""
    found = problems(text)
    assert len(found) == 5
    assert found[0] == (
        "wf.yaml:6:11: triggers[0].when: condition 'len(event.data.x) > 1': Call is not "
        "allowed (use comparisons, and, or, not, in, event.data.KEY and literals)"
    )
    # a trigger without anything to do: at the trigger (the wording lists what it may do)
    assert found[1].startswith("wf.yaml:8:5: triggers[1]: a trigger needs `run` (steps to start)")
    assert "`end: true`" in found[1]
    assert found[2:] == [
        "wf.yaml:9:20: triggers[2].when: condition 'event.data.x ==' is not an expression: "
        "invalid syntax",
        "wf.yaml:10:20: triggers[3].when: condition 'event.__class__ == 1': no names "
        "starting with '_'",
        "wf.yaml:11:20: triggers[4].when: condition 'nope == 1': unknown name 'nope' "
        "(use event.… or inputs.…)",
    ]


def test_a_trigger_that_runs_an_unknown_step_points_at_it() -> None:
    text = """\
name: t
agents:
  n: {kind: noop}
triggers:
  - on: go
    run: [build, bulid, nothing]
  - {on: '*', run: tset}
steps:
  - {id: build, agent: n}
  - {id: test, agent: n}
"""
    found = problems(text)
    assert [p.split(": ", 1)[0] for p in found] == ["wf.yaml:6:18", "wf.yaml:6:25", "wf.yaml:7:20"]
    assert "trigger on 'go'" in found[0]
    assert "unknown step 'bulid'" in found[0]
    assert found[0].endswith("(did you mean 'build'?)")
    assert "unknown step 'nothing'" in found[1]
    assert "did you mean" not in found[1]
    assert "trigger on '*'" in found[2]
    assert "unknown step 'tset'" in found[2]
    assert found[2].endswith("(did you mean 'test'?)")


def test_bad_conditions_and_options_of_wait_and_approval_agents_are_load_errors() -> None:
    text = """\
name: t
agents:
  w: {kind: wait, event: go, when: "event.data.n + 1"}
  w2: {kind: wait, on_timeout: never}
  ap: {kind: approval, on_timeout: maybe, timeout: soon}
steps:
  - {id: a, agent: w}
  - {id: b, agent: w2}
  - {id: c, agent: ap}
"""
    found = problems(text)
    assert found[0] == (
        "wf.yaml:3:30: agent 'w' (wait): when: condition 'event.data.n + 1': BinOp is not "
        "allowed (use comparisons, and, or, not, in, event.data.KEY and literals)"
    )
    assert any(p.startswith("wf.yaml:4:") and "missing required key 'event'" in p for p in found)
    assert any(p.startswith("wf.yaml:4:") and "on_timeout" in p for p in found)
    assert any(p.startswith("wf.yaml:5:") and "on_timeout" in p for p in found)
    assert any(p.startswith("wf.yaml:5:") and "timeout" in p for p in found)


def test_good_triggers_load() -> None:
    wf = cp.loads(
        """\
name: t
agents:
  n: {kind: noop}
triggers:
  - {on: feedback_received, when: "${{ event.data.sentiment == 'negative' }}", run: [a, b]}
  - {on: '*', run: b, description: any event}
  - {on: stop, end: true}
steps:
  - {id: a, agent: n}
  - {id: b, agent: n, needs: a}
"""
    )
    assert [(t.on, t.run, t.end) for t in wf.triggers] == [
        ("feedback_received", ("a", "b"), False),
        ("*", ("b",), False),
        ("stop", (), True),
    ]
    assert isinstance(wf.triggers[0], cp.Trigger)
