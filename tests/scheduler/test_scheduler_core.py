"""The pure scheduler: releases, priorities, the concurrency limit, and state transitions."""

from __future__ import annotations

import pytest

from counterpoint.graph import Graph, upward_ranks
from counterpoint.scheduler.core import Scheduler, StepState, TransitionError

P, R, X, W = StepState.PENDING, StepState.READY, StepState.RUNNING, StepState.WAITING
OK, BAD, SKIP, CANC = (
    StepState.SUCCEEDED,
    StepState.FAILED,
    StepState.SKIPPED,
    StepState.CANCELLED,
)


def diamond() -> Graph:
    # a -> b -> d; a -> c -> d; e alone
    return Graph(["a", "b", "c", "d", "e"], [[], [0], [0], [1, 2], []])


def test_final_states() -> None:
    assert {s for s in StepState if s.final} == {OK, BAD, SKIP, CANC}


def test_initial_state_releases_roots() -> None:
    s = Scheduler(diamond())
    assert s.state == [R, P, P, P, R]
    assert s.waiting_on == [0, 1, 1, 2, 0]
    assert s.ready == 2
    assert s.running == 0
    assert s.open == 5
    assert not s.finished
    assert s.limit == 5
    assert repr(s) == "<Scheduler open=5 running=0 ready=2 limit=5>"


def test_a_step_is_released_only_when_its_last_need_succeeds() -> None:
    s = Scheduler(diamond())
    assert s.take() == [0, 4]
    assert s.state == [X, P, P, P, X]
    s.succeeded(0)
    assert s.state[1:3] == [R, R]
    assert s.take() == [1, 2]
    s.succeeded(1)
    assert s.state[3] is P
    assert s.waiting_on[3] == 1
    assert s.take() == []
    s.succeeded(2)
    assert s.state[3] is R
    assert s.take() == [3]
    s.succeeded(3)
    s.succeeded(4)
    assert s.state == [OK] * 5
    assert s.finished
    assert s.open == 0
    assert s.running == 0


def test_concurrency_limit() -> None:
    g = Graph([f"s{i}" for i in range(5)], [[] for _ in range(5)])
    s = Scheduler(g, max_concurrency=2)
    assert s.limit == 2
    assert s.take() == [0, 1]
    assert s.take() == []
    assert s.running == 2
    assert s.ready == 3
    s.succeeded(1)
    assert s.take() == [2]
    assert s.take() == []
    s.succeeded(0)
    s.succeeded(2)
    assert s.take() == [3, 4]


def test_priority_order_and_fifo_ties() -> None:
    g = Graph(["a", "b", "c", "d"], [[], [], [], []])
    s = Scheduler(g, priority=[1.0, 5.0, 3.0, 5.0], max_concurrency=1)
    order = []
    while not s.finished:
        (i,) = s.take()
        order.append(i)
        s.succeeded(i)
    # highest first; b and d tie at 5: the one released first goes first
    assert order == [1, 3, 2, 0]


def test_priority_among_steps_released_later() -> None:
    # r needs nothing; x (rank low) and y (rank high) both need r
    g = Graph(["r", "x", "y", "y2"], [[], [0], [0], [2]], [1.0, 1.0, 1.0, 1.0])
    s = Scheduler(g, priority=upward_ranks(g), max_concurrency=1)
    assert s.take() == [0]
    s.succeeded(0)
    assert s.take() == [2]


def test_failure_skips_every_downstream_step_once() -> None:
    s = Scheduler(diamond())
    s.take()
    s.succeeded(0)
    assert s.take() == [1, 2]
    skipped = s.failed(1)
    assert skipped == [3]
    assert s.state == [OK, BAD, X, SKIP, X]
    assert s.open == 2
    # c still finishes, and d stays skipped (not released)
    s.succeeded(2)
    assert s.state[3] is SKIP
    assert s.take() == []
    s.succeeded(4)
    assert s.finished
    assert s.open == 0


def test_failure_of_a_root_skips_the_whole_subtree() -> None:
    s = Scheduler(diamond())
    s.take()
    assert sorted(s.failed(0)) == [1, 2, 3]
    assert s.state == [BAD, SKIP, SKIP, SKIP, X]
    assert s.open == 1


def test_retry_frees_the_slot_and_requeues() -> None:
    g = Graph(["a", "b"], [[], []])
    s = Scheduler(g, max_concurrency=1)
    assert s.take() == [0]
    s.retry_later(0)
    assert s.state[0] is W
    assert s.running == 0
    assert s.open == 2
    assert s.take() == [1]
    s.retry_now(0)
    assert s.state[0] is R
    assert s.take() == []
    s.succeeded(1)
    assert s.take() == [0]
    s.succeeded(0)
    assert s.finished


def test_retry_now_after_cancel_is_ignored() -> None:
    g = Graph(["a"], [[]])
    s = Scheduler(g)
    s.take()
    s.retry_later(0)
    assert s.cancel_unstarted() == [0]
    s.retry_now(0)
    assert s.state == [CANC]
    assert s.ready == 0
    assert s.finished


def test_cancelled_running_step_skips_dependents() -> None:
    s = Scheduler(diamond())
    s.take()
    assert sorted(s.cancelled(0)) == [1, 2, 3]
    assert s.state == [CANC, SKIP, SKIP, SKIP, X]


def test_cancel_unstarted() -> None:
    g = Graph(["a", "b", "c", "d"], [[], [], [0], []])
    s = Scheduler(g, max_concurrency=1)
    assert s.take() == [0]
    # a running, b and d ready, c pending
    assert s.cancel_unstarted() == [1, 2, 3]
    assert s.state == [X, CANC, CANC, CANC]
    assert s.ready == 0
    assert s.open == 1
    assert s.take() == []
    s.succeeded(0)
    assert s.finished


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ((), "succeeded"),  # READY, not running
        ((), "failed"),
        ((), "retry_later"),
        ((), "cancelled"),
        (("take", "succeeded"), "succeeded"),  # already final
        (("take", "failed"), "failed"),
        (("take", "retry_later"), "succeeded"),  # waiting, not running
    ],
)
def test_transition_errors(setup: tuple[str, ...], action: str) -> None:
    s = Scheduler(Graph(["a", "b"], [[], [0]]))
    for step in setup:
        if step == "take":
            assert s.take() == [0]
        else:
            getattr(s, step)(0)
    before = list(s.state)
    with pytest.raises(TransitionError, match=r"step 'a' is \w+, expected running"):
        getattr(s, action)(0)
    assert s.state == before


def test_transition_error_on_a_pending_step() -> None:
    s = Scheduler(Graph(["a", "b"], [[], [0]]))
    with pytest.raises(TransitionError) as info:
        s.succeeded(1)
    assert str(info.value) == "step 'b' is pending, expected running"


def test_empty_graph_is_finished() -> None:
    s = Scheduler(Graph([], []))
    assert s.finished
    assert s.take() == []
    assert s.limit == 1
