"""Built-in kinds ``noop`` and ``sleep``."""

from __future__ import annotations

import time

import pytest

import counterpoint as cp
from counterpoint.agents.builtin import NOOP, SLEEP, SleepOptions
from counterpoint.agents.registry import known_kinds


def test_builtin_kinds_are_always_known() -> None:
    assert {"noop", "sleep", "python", "program"} <= set(known_kinds())


def test_noop_returns_its_input_unchanged() -> None:
    b = cp.WorkflowBuilder("noop")
    b.input("cfg", default={"a": [1, 2]})
    b.agent("nop", kind="noop")
    b.step("first", agent="nop", input={"cfg": "${{ inputs.cfg }}", "n": 1.5})
    b.step("second", agent="nop", needs=["first"], input=b.output("first", "cfg", "a"))
    b.step("empty", agent="nop")
    result = cp.run_sync(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {
        "first": {"cfg": {"a": [1, 2]}, "n": 1.5},
        "second": [1, 2],
        "empty": None,
    }


def test_noop_takes_no_options() -> None:
    b = cp.WorkflowBuilder("noop")
    b.agent("nop", kind="noop", seconds=1)
    b.step("s", agent="nop")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    (problem,) = info.value.problems
    assert "agent 'nop' (noop)" in problem.message
    assert "unknown key 'seconds'" in problem.message


def _timed(wf: cp.Workflow) -> tuple[cp.RunResult, float]:
    t0 = time.monotonic()
    result = cp.run_sync(wf)
    return result, time.monotonic() - t0


@pytest.mark.parametrize(
    ("options", "step_input", "estimate", "expected_s"),
    [
        ({"seconds": "120ms"}, None, None, 0.12),  # its own option
        ({}, {"seconds": "120ms"}, None, 0.12),  # else the input's seconds
        ({}, None, "120ms", 0.12),  # else the step's estimate
        ({"seconds": 120, "scale": 0.001}, None, None, 0.12),  # scaled: ms per s
        ({"scale": 0.001}, None, 120, 0.12),  # the estimate is scaled too
        ({"seconds": "120ms"}, {"seconds": 30}, "30s", 0.12),  # the option wins
    ],
)
def test_sleep_waits_for_the_chosen_duration(
    options: dict[str, object], step_input: object, estimate: object, expected_s: float
) -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep", **options)
    b.step("s", agent="wait", input=step_input, estimate=estimate)  # type: ignore[arg-type]
    result, took = _timed(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"s": None}
    rec = result.steps["s"]
    assert rec.start is not None
    assert rec.end is not None
    assert rec.end - rec.start >= expected_s * 0.95
    assert took < expected_s + 2.0  # not the unscaled 120 s, nor the 30 s of the input


def test_sleep_without_any_duration_returns_at_once() -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep")
    b.step("s", agent="wait")
    result, took = _timed(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert took < 1.0


def test_sleep_steps_run_in_parallel() -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep", seconds="200ms")
    for i in range(5):
        b.step(f"s{i}", agent="wait")
    result = cp.run_sync(b.build())
    assert result.status is cp.RunStatus.SUCCEEDED
    assert 0.19 <= result.makespan_s < 0.9  # together, not one after another (1 s)


def test_sleep_is_cancelled_by_its_timeout() -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep", seconds="30s")
    b.step("s", agent="wait", timeout="100ms")
    result, took = _timed(b.build())
    assert result.steps["s"].error == "timed out after 0.1s"
    assert took < 2.0


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"second": 1}, "unknown key 'second'"),
        ({"scale": -1}, "scale"),
        ({"seconds": "soon"}, "seconds"),
    ],
)
def test_sleep_rejects_bad_options(options: dict[str, object], fragment: str) -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep", **options)
    b.step("s", agent="wait")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    (problem,) = info.value.problems
    assert problem.message.startswith("agent 'wait' (sleep): ")
    assert fragment in problem.message


def test_sleep_option_typo_suggests_the_right_name() -> None:
    b = cp.WorkflowBuilder("sleep")
    b.agent("wait", kind="sleep", second=1)
    b.step("s", agent="wait")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    assert "(did you mean 'seconds'?)" in str(info.value)


def test_builtin_kinds_have_strict_option_models() -> None:
    assert SleepOptions.model_validate({"seconds": "1m30s"}).seconds == 90.0
    assert SleepOptions.model_validate({}).scale == 1.0
    for kind in (NOOP, SLEEP):
        assert kind.options.model_config.get("extra") == "forbid"
