"""Time windows: when a pool or rate limit admits new work.

Parsing (every written form, time zones, the mistakes and where they are), the exact answers
of ``WindowSet.state`` (crossing midnight, daylight saving time, calendar intervals, unions),
and scheduling on the virtual clock with ``start_at``: work waits until a window opens, at
that exact time; a running step is never cut; steps waiting for a window do not hold up
others; a window that never opens again fails the step.

Dates used below: 2026-11-27 is a Friday; Europe/Berlin moves to summer time on Sunday
2026-03-29 (02:00 CET -> 03:00 CEST, 01:00 UTC) and back on Sunday 2026-10-25 (03:00 CEST
-> 02:00 CET, 01:00 UTC).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import counterpoint as cp
from counterpoint.model.windows import Window, WindowSet

GUARD_S = 2.0  # real seconds: a simulation that livelocks fails instead of hanging
HANG_S = 0.5  # for the tests that show a livelock
BERLIN = ZoneInfo("Europe/Berlin")
FRI_14 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
FRI_18 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: tzinfo = UTC) -> float:
    """Epoch seconds of a wall time."""
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def utc(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def state(ws: WindowSet, *when: int) -> tuple[bool, str | None]:
    """Whether ``ws`` is open at a UTC wall time (year, month, day[, hour[, minute]]), and when
    that changes (UTC)."""
    is_open, change = ws.state(datetime(*when, tzinfo=UTC).timestamp())  # type: ignore[arg-type, misc]
    return is_open, utc(change)


def workflow(
    steps: list[dict[str, Any]],
    pools: Mapping[str, object] | None = None,
    rates: Mapping[str, object] | None = None,
    tz: str = "UTC",
) -> cp.Workflow:
    resources: dict[str, object] = {"timezone": tz}
    if pools:
        resources["pools"] = dict(pools)
    if rates:
        resources["rate_limits"] = dict(rates)
    data = {
        "name": "windows",
        "resources": resources,
        "agents": {"w": {"kind": "noop"}},
        "steps": steps,
    }
    return cp.loads(json.dumps(data))


def simulate(
    wf: cp.Workflow, start: datetime, workers: int | None = None, guard: float = GUARD_S
) -> cp.RunResult:
    async def go() -> cp.RunResult:
        return await asyncio.wait_for(cp.simulate(wf, workers=workers, start_at=start), guard)

    return asyncio.run(go())


def starts(result: cp.RunResult) -> dict[str, float | None]:
    return {k: r.start for k, r in result.steps.items()}


def succeeded(result: cp.RunResult) -> cp.RunResult:
    assert result.status is cp.RunStatus.SUCCEEDED, result.error
    for rec in result.steps.values():
        assert rec.status is cp.StepState.SUCCEEDED, rec
    return result


# --- parsing: every written form ---------------------------------------------------------------

TEMPLATE = """\
name: windows
resources:
  timezone: {tz}
  pools:
    db:
      capacity: 1
      available: {window}
agents:
  w: {{kind: noop}}
steps:
  - {{id: a, agent: w, uses: {{db: 1}}}}
"""
# ``available`` is on line 7, its value at column 18; ``timezone`` on line 3, its value at 13


def windows_of(window: str, tz: str = "UTC") -> tuple[Window, ...]:
    wf = cp.loads(TEMPLATE.format(window=window, tz=tz), "wf.yaml")
    return tuple(wf.resources.pools["db"].available)


def problems(window: str, tz: str = "UTC") -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(TEMPLATE.format(window=window, tz=tz), "wf.yaml")
    return [str(p) for p in info.value.problems]


WEEKDAYS = (0, 1, 2, 3, 4)


@pytest.mark.parametrize(
    ("text", "days", "hours"),
    [
        ('"mon-fri 09:00-17:00"', WEEKDAYS, (time(9), time(17))),
        ('"22:00-06:00"', (), (time(22), time(6))),  # every night, crossing midnight
        ('"sat,sun"', (5, 6), None),
        ('"fri-mon"', (0, 4, 5, 6), None),  # a range may wrap around the week
        ('"tue 9:00-17:30"', (1,), (time(9), time(17, 30))),
        ('"09:00-24:00"', (), (time(9), time(0))),  # 24:00: the end of the day
        ('"SAT,Sun"', (5, 6), None),
        ("{days: mon-fri, hours: '09:00-17:00'}", WEEKDAYS, (time(9), time(17))),
        ("{days: [mon, wed]}", (0, 2), None),
        ("{hours: '22:00-06:00'}", (), (time(22), time(6))),
    ],
)
def test_weekly_forms(text: str, days: tuple[int, ...], hours: tuple[time, time] | None) -> None:
    (w,) = windows_of(text)
    assert (w.days, w.hours, w.start, w.end, w.timezone) == (days, hours, None, None, None)


def test_calendar_text_and_mapping_give_the_same_window() -> None:
    (text,) = windows_of('"2026-12-01T08:00/2026-12-03T20:00"')
    (mapping,) = windows_of("{from: 2026-12-01T08:00, to: 2026-12-03T20:00}")
    assert text == mapping
    assert (text.start, text.end) == (datetime(2026, 12, 1, 8), datetime(2026, 12, 3, 20))
    assert (text.days, text.hours) == ((), None)


def test_calendar_times_may_carry_their_own_offsets() -> None:
    (w,) = windows_of('"2026-12-01T08:00+02:00/2026-12-01T07:00Z"')  # 06:00Z to 07:00Z
    assert w.start == datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert w.end == datetime(2026, 12, 1, 7, tzinfo=UTC)


def test_one_window_or_a_list() -> None:
    (one,) = windows_of('"sat,sun"')
    listed = windows_of('["mon 09:00-10:00", "sat,sun", {days: tue, timezone: "+05:30"}]')
    assert len(listed) == 3
    assert listed[1] == one
    assert listed[0].days == (0,)
    assert listed[2].timezone == "+05:30"


@pytest.mark.parametrize("tz", ["UTC", "utc", "Z", "Europe/Berlin", "America/New_York", "+02:00"])
def test_zones_that_are_accepted(tz: str) -> None:
    wf = cp.loads(TEMPLATE.format(window='"mon"', tz=tz), "wf.yaml")
    assert wf.resources.timezone == tz
    wf = cp.loads(TEMPLATE.format(window=f"{{days: mon, timezone: '{tz}'}}", tz="UTC"))
    assert wf.resources.pools["db"].available[0].timezone == tz


def test_the_default_zone_is_utc() -> None:
    wf = workflow([{"id": "a", "agent": "w", "uses": {"db": 1}}], {"db": 1})
    assert wf.resources.timezone == "UTC"


def test_a_rate_limit_takes_windows_too() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "uses": {"api": 1}}],
        rates={"api": {"requests": "10/s", "available": ["22:00-06:00", "sat,sun"]}},
    )
    limit = wf.resources.rate_limits["api"]
    assert limit.limits == {"requests": (10.0, 1.0)}
    assert [w.hours for w in limit.available] == [(time(22), time(6)), None]
    assert limit.available[1].days == (5, 6)


def test_a_pool_written_as_capacities_takes_windows_too() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "uses": {"m": {"cpu": 1}}}],
        {"m": {"cpu": 8, "memory": "32GiB", "available": "mon-fri"}},
    )
    pool = wf.resources.pools["m"]
    assert set(pool.capacity) == {"cpu", "memory"}
    assert pool.available[0].days == WEEKDAYS


# --- parsing: mistakes, each with its place ---------------------------------------------------


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (
            '"mon-fry 09:00-17:00"',
            "wf.yaml:7:18: resources.pools.db.available[0].days: bad days 'mon-fry': write day "
            "names (mon, tue, ... sun), ranges (mon-fri) or lists (sat,sun)",
        ),
        (
            "{days: [mon, funday]}",
            "wf.yaml:7:25: resources.pools.db.available[0].days: bad days ['mon', 'funday']: "
            "write day names (mon, tue, ... sun), ranges (mon-fri) or lists (sat,sun)",
        ),
        (
            '"25:00-26:00"',
            "wf.yaml:7:18: resources.pools.db.available[0].hours: bad hours '25:00-26:00': write "
            "HH:MM-HH:MM (09:00-17:00, 22:00-06:00)",
        ),
        (
            '"mon 09:60-10:00"',
            "wf.yaml:7:18: resources.pools.db.available[0].hours: bad hours '09:60-10:00': write "
            "HH:MM-HH:MM (09:00-17:00, 22:00-06:00)",
        ),
        (
            '"24:00-06:00"',
            "wf.yaml:7:18: resources.pools.db.available[0].hours: bad hours '24:00-06:00': write "
            "HH:MM-HH:MM (09:00-17:00, 22:00-06:00)",
        ),
        (
            "{days: mon, timezone: Mars/Olympus}",
            "wf.yaml:7:40: resources.pools.db.available[0].timezone: unknown time zone "
            "'Mars/Olympus': write UTC, an offset (+02:00) or an IANA name (Europe/Berlin)",
        ),
        (
            '"2026-12-03T08:00/2026-12-01T20:00"',
            "wf.yaml:7:18: resources.pools.db.available[0]: window ends (2026-12-01 20:00:00) "
            "before it starts (2026-12-03 08:00:00)",
        ),
        (
            '"2026-12-01T08:00/2026-12-01T08:00"',
            "wf.yaml:7:18: resources.pools.db.available[0]: window ends (2026-12-01 08:00:00) "
            "before it starts (2026-12-01 08:00:00)",
        ),
        (
            "{days: mon, from: 2026-12-01T08:00, to: 2026-12-03T20:00}",
            "wf.yaml:7:18: resources.pools.db.available[0]: a window is weekly (days, hours) or "
            "a calendar interval (from, to)",
        ),
        (
            "{from: 2026-12-01T08:00}",
            "wf.yaml:7:18: resources.pools.db.available[0]: a calendar window needs both from "
            "and to",
        ),
        (
            "{}",
            "wf.yaml:7:18: resources.pools.db.available[0]: a window needs days, hours, or from "
            "and to",
        ),
        (
            '["mon", "tue 25:00-01:00"]',
            "wf.yaml:7:26: resources.pools.db.available[1].hours: bad hours '25:00-01:00': write "
            "HH:MM-HH:MM (09:00-17:00, 22:00-06:00)",
        ),
    ],
)
def test_a_bad_window_is_reported_where_it_is(window: str, message: str) -> None:
    assert problems(window) == [message]


def test_a_bad_zone_of_the_resources() -> None:
    assert problems('"mon"', tz="Nowhere/Atlantis") == [
        "wf.yaml:3:13: resources.timezone: unknown time zone 'Nowhere/Atlantis': write UTC, an "
        "offset (+02:00) or an IANA name (Europe/Berlin)"
    ]


def test_a_bad_window_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shifts.yaml"
    path.write_text(TEMPLATE.format(window='"mon-fri 9-17"', tz="UTC"))
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    (p,) = info.value.problems
    assert (p.file, p.line, p.column) == (str(path), 7, 18)
    assert p.path == "resources.pools.db.available[0].hours"
    assert "bad hours '9-17'" in str(p)


def test_every_bad_window_is_reported_at_once() -> None:
    text = TEMPLATE.format(window='["mon-fry", "25:00-26:00"]', tz="Mars/Olympus")
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, "wf.yaml")
    got = [(p.line, p.column, p.path) for p in info.value.problems]
    assert sorted(got) == [
        (3, 13, "resources.timezone"),
        (7, 19, "resources.pools.db.available[0].days"),
        (7, 30, "resources.pools.db.available[1].hours"),
    ]


@pytest.mark.parametrize(
    ("text", "open_at"),
    [
        ('"sat, sun"', at(2026, 11, 28, 12)),  # a Saturday noon
        ('"sat sun"', at(2026, 11, 28, 12)),
        ('"mon-fri 09:00-12:00 13:00-17:00"', at(2026, 11, 27, 10)),  # a Friday morning
    ],
)
def test_a_text_window_with_two_words_of_a_kind_is_not_half_kept(text: str, open_at: float) -> None:
    try:
        ws = WindowSet(windows_of(text))
    except cp.WorkflowInvalid:
        return  # refusing it is fine
    assert ws.state(open_at)[0], "a time the window as written covers is closed"


def test_from_after_to_is_checked_in_the_zone_the_window_is_read_in() -> None:
    problems('"2026-12-01T07:00/2026-12-01T07:30Z"', tz='"-02:00"')


# --- WindowSet.state: exact answers ------------------------------------------------------------


def test_a_window_across_midnight() -> None:
    ws = WindowSet([Window.model_validate("22:00-06:00")])
    assert state(ws, 2026, 11, 27, 23) == (True, "2026-11-28 06:00")
    assert state(ws, 2026, 11, 27, 5) == (True, "2026-11-27 06:00")  # the night before
    assert state(ws, 2026, 11, 27, 12) == (False, "2026-11-27 22:00")
    assert state(ws, 2026, 11, 27, 6) == (False, "2026-11-27 22:00")  # the end is not in it
    assert state(ws, 2026, 11, 27, 22) == (True, "2026-11-28 06:00")  # the start is
    assert state(ws, 2026, 11, 27, 21, 59) == (False, "2026-11-27 22:00")


def test_a_night_window_on_some_days_ends_the_next_morning() -> None:
    ws = WindowSet([Window.model_validate("fri 22:00-06:00")])
    assert state(ws, 2026, 11, 28, 3) == (True, "2026-11-28 06:00")  # Saturday 03:00
    assert state(ws, 2026, 11, 28, 23) == (False, "2026-12-04 22:00")  # next Friday
    assert state(ws, 2026, 11, 27, 3) == (False, "2026-11-27 22:00")  # Thursday night is not


def test_weekdays_office_hours_in_a_zone() -> None:
    w = Window.model_validate({"days": "mon-fri", "hours": "09:00-17:00", "timezone": "+01:00"})
    ws = WindowSet([w])
    assert state(ws, 2026, 11, 27, 7, 59) == (False, "2026-11-27 08:00")
    assert state(ws, 2026, 11, 27, 8) == (True, "2026-11-27 16:00")
    assert state(ws, 2026, 11, 27, 16) == (False, "2026-11-30 08:00")  # Friday evening: Monday


def test_the_default_zone_is_the_sets_and_a_window_may_override_it() -> None:
    mine = Window.model_validate("09:00-17:00")
    ist = Window.model_validate({"hours": "09:00-17:00", "timezone": "+05:30"})
    assert state(WindowSet([mine], "Europe/Berlin"), 2026, 11, 27, 7) == (
        False,
        "2026-11-27 08:00",
    )
    assert state(WindowSet([ist], "Europe/Berlin"), 2026, 11, 27, 3) == (
        False,
        "2026-11-27 03:30",
    )
    assert state(WindowSet([mine], "America/New_York"), 2026, 11, 27, 13) == (
        False,
        "2026-11-27 14:00",
    )


def test_summer_time_starts_in_berlin() -> None:
    ws = WindowSet([Window.model_validate("01:00-04:00")], "Europe/Berlin")
    # 01:00 CET is 00:00Z; 04:00 CEST is 02:00Z: two real hours that day
    assert state(ws, 2026, 3, 28, 23) == (False, "2026-03-29 00:00")
    assert state(ws, 2026, 3, 29, 0, 30) == (True, "2026-03-29 02:00")
    assert state(ws, 2026, 3, 29, 2) == (False, "2026-03-29 23:00")  # 01:00 CEST next day
    # times in the hour that does not exist that day are read with the offset before the
    # change (PEP 495, fold=0): 02:15-02:45 CET is 01:15Z-01:45Z (03:15-03:45 summer time)
    gap = WindowSet([Window.model_validate("02:15-02:45")], "Europe/Berlin")
    assert state(gap, 2026, 3, 29, 1) == (False, "2026-03-29 01:15")
    assert state(gap, 2026, 3, 29, 1, 20) == (True, "2026-03-29 01:45")
    assert state(gap, 2026, 3, 29, 1, 45) == (False, "2026-03-30 00:15")


def test_summer_time_ends_in_berlin() -> None:
    ws = WindowSet([Window.model_validate("01:00-04:00")], "Europe/Berlin")
    # 01:00 CEST is 23:00Z the day before; 04:00 CET is 03:00Z: four real hours that day
    assert state(ws, 2026, 10, 24, 22, 59) == (False, "2026-10-24 23:00")
    assert state(ws, 2026, 10, 25, 2, 30) == (True, "2026-10-25 03:00")
    assert state(ws, 2026, 10, 25, 3) == (False, "2026-10-26 00:00")  # 01:00 CET next day


def test_office_hours_follow_summer_time() -> None:
    ws = WindowSet([Window.model_validate("mon-fri 09:00-17:00")], "Europe/Berlin")
    # Friday 2026-03-27 (CET) to Monday 2026-03-30 (CEST)
    assert state(ws, 2026, 3, 27, 12) == (True, "2026-03-27 16:00")
    assert state(ws, 2026, 3, 27, 16) == (False, "2026-03-30 07:00")


def test_calendar_intervals() -> None:
    w = Window.model_validate("2026-12-01T08:00/2026-12-03T20:00")
    ws = WindowSet([w], "+02:00")  # naive times are in the set's zone
    assert state(ws, 2026, 11, 30) == (False, "2026-12-01 06:00")
    assert state(ws, 2026, 12, 1, 6) == (True, "2026-12-03 18:00")
    assert state(ws, 2026, 12, 2) == (True, "2026-12-03 18:00")
    assert state(ws, 2026, 12, 3, 18) == (False, None)  # never again
    assert state(ws, 2027, 1, 1) == (False, None)
    own = WindowSet([Window.model_validate("2026-12-01T08:00Z/2026-12-01T09:00Z")], "+02:00")
    assert state(own, 2026, 12, 1, 7) == (False, "2026-12-01 08:00")


def test_a_calendar_interval_longer_than_a_week() -> None:
    ws = WindowSet([Window.model_validate("2026-11-01T00:00/2026-12-15T00:00")])
    assert state(ws, 2026, 11, 2) == (True, "2026-12-15 00:00")


def test_overlapping_and_touching_windows_are_one() -> None:
    ws = WindowSet(
        [
            Window.model_validate("mon 09:00-12:00"),
            Window.model_validate("mon 11:00-14:00"),  # overlaps
            Window.model_validate("mon 14:00-15:00"),  # touches
            Window.model_validate("mon 16:00-17:00"),  # apart
        ]
    )
    monday = (2026, 11, 30)
    assert state(ws, *monday, 8) == (False, "2026-11-30 09:00")
    assert state(ws, *monday, 10) == (True, "2026-11-30 15:00")
    assert state(ws, *monday, 13) == (True, "2026-11-30 15:00")
    assert state(ws, *monday, 15) == (False, "2026-11-30 16:00")
    assert state(ws, *monday, 17) == (False, "2026-12-07 09:00")


def test_weekly_and_calendar_windows_in_one_set() -> None:
    ws = WindowSet(
        [
            Window.model_validate("sat,sun"),
            Window.model_validate("mon-fri 18:00-08:00"),
            Window.model_validate("2026-11-30T08:00/2026-11-30T12:00"),  # a Monday morning
        ]
    )
    # Friday 19:00: the evening runs into the weekend, Sunday ends at Monday 00:00; Sunday
    # night is not a weekday night, so the set closes then
    assert state(ws, 2026, 11, 27, 19) == (True, "2026-11-30 00:00")
    assert state(ws, 2026, 11, 30, 1) == (False, "2026-11-30 08:00")
    assert state(ws, 2026, 11, 30, 9) == (True, "2026-11-30 12:00")
    assert state(ws, 2026, 11, 30, 12) == (False, "2026-11-30 18:00")
    assert state(ws, 2026, 11, 27, 12) == (False, "2026-11-27 18:00")


def test_windows_in_different_zones_in_one_set() -> None:
    ws = WindowSet(
        [
            Window.model_validate({"hours": "09:00-10:00", "timezone": "Asia/Tokyo"}),  # 00Z
            Window.model_validate({"hours": "09:00-10:00", "timezone": "Europe/London"}),
        ]
    )
    assert state(ws, 2026, 11, 27, 0, 30) == (True, "2026-11-27 01:00")
    assert state(ws, 2026, 11, 27, 1) == (False, "2026-11-27 09:00")
    assert state(ws, 2026, 11, 27, 10) == (False, "2026-11-28 00:00")


def test_an_always_open_set_does_not_claim_to_close() -> None:
    ws = WindowSet([Window.model_validate("sat,sun"), Window.model_validate("mon-fri")])
    is_open, change = ws.state(at(2026, 11, 27, 12))
    assert is_open
    assert change is None or not ws.state(change)[0]


# --- scheduling on the virtual clock --------------------------------------------------------

OFFICE = {"capacity": 1, "available": "mon-fri 09:00-17:00"}


def test_work_waits_for_the_window_to_open_at_that_exact_time() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": HOUR, "uses": {"db": 1}},
            {"id": "free", "agent": "w", "estimate": 60},
        ],
        {"db": OFFICE},
    )
    result = succeeded(simulate(wf, FRI_18))
    monday_9 = (datetime(2026, 11, 30, 9, tzinfo=UTC) - FRI_18).total_seconds()
    assert monday_9 == 63 * HOUR
    assert starts(result) == {"a": monday_9, "free": 0.0}
    assert result.steps["a"].end == monday_9 + HOUR
    assert result.makespan_s == monday_9 + HOUR
    # inside the window: at once
    assert starts(succeeded(simulate(wf, FRI_14))) == {"a": 0.0, "free": 0.0}


def test_start_at_without_a_zone_is_utc_and_with_one_is_that_instant() -> None:
    wf = workflow([{"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}}], {"db": OFFICE})
    naive = simulate(wf, datetime(2026, 11, 27, 18))
    aware = simulate(wf, datetime(2026, 11, 27, 19, tzinfo=timezone(timedelta(hours=1))))
    assert naive.steps["a"].start == aware.steps["a"].start == 63 * HOUR
    assert naive.started_at == aware.started_at == FRI_18.timestamp()


def test_windows_in_a_zone_across_summer_time() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}}],
        {"db": {"capacity": 1, "available": "08:00-09:00"}},
        tz="Europe/Berlin",
    )
    # Saturday noon UTC; Sunday 08:00 in Berlin is 06:00Z in spring, 07:00Z in autumn
    spring = simulate(wf, datetime(2026, 3, 28, 12, tzinfo=UTC))
    autumn = simulate(wf, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert spring.steps["a"].start == 18 * HOUR
    assert autumn.steps["a"].start == 19 * HOUR


def test_a_step_running_when_the_window_closes_is_not_cut() -> None:
    wf = workflow(
        [
            {"id": "long", "agent": "w", "estimate": 2 * HOUR, "uses": {"db": 1}},
            {"id": "next", "agent": "w", "estimate": 60, "uses": {"db": 1}, "needs": "long"},
        ],
        {"db": {"capacity": 1, "available": "mon-fri 09:00-15:00"}},
    )
    result = succeeded(simulate(wf, FRI_14))
    assert (result.steps["long"].start, result.steps["long"].end) == (0.0, 2 * HOUR)
    # 16:00 Friday: closed; it opens again on Monday 09:00, 67 hours after the start
    assert result.steps["next"].start == (2 * 24 + 19) * HOUR


def test_a_step_that_ends_just_before_the_close_lets_the_next_start_just_in_time() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": HOUR - 1, "uses": {"db": 1}},
            {"id": "b", "agent": "w", "estimate": 60, "uses": {"db": 1}, "needs": "a"},
            {"id": "c", "agent": "w", "estimate": 60, "uses": {"db": 1}, "needs": "b"},
        ],
        {"db": {"capacity": 1, "available": "14:00-15:00"}},
    )
    result = succeeded(simulate(wf, FRI_14))
    assert result.steps["b"].start == HOUR - 1  # 14:59:59, inside
    assert result.steps["c"].start == DAY  # 15:00:59 is outside: tomorrow 14:00


def test_steps_waiting_for_a_window_do_not_hold_up_other_ready_steps() -> None:
    night = [
        {"id": f"hi{k}", "agent": "w", "estimate": 60, "priority": 10, "uses": {"night": 1}}
        for k in range(30)  # more than the scan of one take passes over (16)
    ]
    day = [{"id": f"lo{k}", "agent": "w", "estimate": 60, "uses": {"db": 1}} for k in range(5)]
    wf = workflow(night + day, {"night": {"capacity": 40, "available": "22:00-06:00"}, "db": 5})
    result = succeeded(simulate(wf, FRI_14))
    got = starts(result)
    assert all(got[f"lo{k}"] == 0.0 for k in range(5))
    assert all(got[f"hi{k}"] == 8 * HOUR for k in range(30))
    # with 5 workers: the day work first, then the night work five at a time from 22:00
    result = succeeded(simulate(wf, FRI_14, workers=5))
    got = starts(result)
    assert all(got[f"lo{k}"] == 0.0 for k in range(5))
    night_starts = sorted(got[f"hi{k}"] for k in range(30))  # type: ignore[type-var]
    assert night_starts == [8 * HOUR + 60 * (k // 5) for k in range(30)]


def test_a_closed_window_does_not_count_toward_aging() -> None:
    # ``x`` wants the db pool too, but its night window is closed: the day steps that use db
    # are not held behind it however often it would have been passed over
    steps = [
        {"id": "x", "agent": "w", "estimate": 60, "priority": 10, "uses": {"night": 1, "db": 1}}
    ]
    steps += [{"id": f"d{k}", "agent": "w", "estimate": 60, "uses": {"db": 1}} for k in range(20)]
    wf = workflow(steps, {"night": {"capacity": 1, "available": "22:00-06:00"}, "db": 1})
    got = starts(succeeded(simulate(wf, FRI_14)))
    assert sorted(got[f"d{k}"] for k in range(20)) == [60.0 * k for k in range(20)]  # type: ignore[type-var]
    assert got["x"] == 8 * HOUR


def test_a_rate_limit_with_a_window() -> None:
    wf = workflow(
        [{"id": f"c{k}", "agent": "w", "estimate": 1, "uses": {"api": 1}} for k in range(5)],
        rates={"api": {"requests": "2/h", "available": "15:00-16:00"}},
    )
    got = starts(succeeded(simulate(wf, FRI_14)))
    # 2 at 15:00; the limit allows 2 more at 16:00, when the window has closed: the next day
    assert sorted(got.values()) == [HOUR, HOUR, 25 * HOUR, 25 * HOUR, 49 * HOUR]  # type: ignore[type-var]


def test_a_calendar_window_in_the_future_is_waited_for() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}}],
        {"db": {"capacity": 1, "available": "2026-12-01T08:00/2026-12-03T20:00"}},
    )
    result = succeeded(simulate(wf, FRI_14))
    assert (
        result.steps["a"].start == (datetime(2026, 12, 1, 8, tzinfo=UTC) - FRI_14).total_seconds()
    )


PAST = {"capacity": 1, "available": "2026-11-01T08:00/2026-11-03T20:00"}


def test_a_calendar_window_in_the_past_fails_the_step_and_skips_its_dependents() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}},
            {"id": "b", "agent": "w", "estimate": 60, "needs": "a"},
            {"id": "other", "agent": "w", "estimate": 100},
        ],
        {"db": PAST},
    )
    result = simulate(wf, FRI_14)
    assert result.status is cp.RunStatus.FAILED
    a, b, other = (result.steps[k] for k in ("a", "b", "other"))
    assert a.status is cp.StepState.FAILED
    assert a.error == (
        "resource 'db' has no time window open after 2026-11-27T14:00:00+00:00: the step can "
        "never start"
    )
    assert (a.start, a.end) == (None, 0.0)
    assert b.status is cp.StepState.SKIPPED
    assert b.error == "not run: 'a' failed"
    assert other.status is cp.StepState.SUCCEEDED
    assert (other.start, other.end) == (0.0, 100.0)


@pytest.mark.parametrize(
    "steps",
    [
        [{"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}}],
        [
            {"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}},
            {"id": "b", "agent": "w", "estimate": 60, "needs": "a"},
        ],
        [  # ready only after the window has closed
            {"id": "x", "agent": "w", "estimate": 30 * DAY},
            {"id": "a", "agent": "w", "estimate": 60, "uses": {"db": 1}, "needs": "x"},
        ],
    ],
    ids=["alone", "with-a-dependent", "ready-too-late"],
)
def test_a_window_that_never_opens_again_ends_the_run(steps: list[dict[str, Any]]) -> None:
    wf = workflow(steps, {"db": PAST})
    start = datetime(2026, 10, 30, tzinfo=UTC) if steps[0]["id"] == "x" else FRI_14
    result = simulate(wf, start)
    assert result.status is cp.RunStatus.FAILED
    assert result.steps["a"].status is cp.StepState.FAILED


def test_the_message_names_the_resource_that_never_opens() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 60, "uses": {"office": 1, "promo": 1}},
            {"id": "other", "agent": "w", "estimate": 100},
        ],
        {"office": OFFICE},
        {"promo": {"requests": "5/s", "available": "2026-11-01T00:00/2026-11-02T00:00"}},
    )
    result = simulate(wf, FRI_14)
    assert result.steps["a"].status is cp.StepState.FAILED
    assert "'promo'" in (result.steps["a"].error or "")


def test_resources_whose_windows_never_overlap_fail_the_step() -> None:
    wf = workflow(
        [
            {"id": "a", "agent": "w", "estimate": 60, "uses": {"office": 1, "weekend": 1}},
            {"id": "other", "agent": "w", "estimate": 100},
        ],
        {"office": OFFICE},
        {"weekend": {"requests": "10/s", "available": "sat,sun"}},
    )
    result = simulate(wf, FRI_14, guard=HANG_S)
    assert result.steps["a"].status is cp.StepState.FAILED


def test_two_windowed_resources_start_when_both_are_open() -> None:
    wf = workflow(
        [{"id": "a", "agent": "w", "estimate": 60, "uses": {"office": 1, "late": 1}}],
        {"office": OFFICE},
        {"late": {"requests": "10/s", "available": "16:30-23:00"}},
    )
    # Friday 18:00: office closed until Monday 09:00, then late closed until 16:30 Monday
    result = succeeded(simulate(wf, FRI_18))
    assert result.steps["a"].start == (2 * 24 + 22.5) * HOUR


def test_simulate_at_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        """\
name: office
resources:
  timezone: Europe/Berlin
  pools:
    desk: {capacity: 1, available: "mon-fri 09:00-17:00"}
agents:
  w: {kind: noop}
steps:
  - {id: a, agent: w, estimate: 1h, uses: {desk: 1}}
  - {id: b, agent: w, estimate: 1h, uses: {desk: 1}, needs: a}
"""
    )
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "counterpoint", "simulate", "wf.yaml", "--json"),
            *("--at", "2026-11-27T15:30:00+01:00"),  # Friday 15:30 in Berlin
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    steps = json.loads(proc.stdout)["steps"]
    assert steps["a"] == {"start_s": 0.0, "end_s": HOUR}
    # 16:30: still open; b runs 16:30 to 17:30
    assert steps["b"] == {"start_s": HOUR, "end_s": 2 * HOUR}


# --- property: nothing that uses a windowed resource starts outside its windows -------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "+05:30", "-03:00"]
STARTS = [
    datetime(2026, 3, 27, tzinfo=UTC),  # the weekend summer time starts in Europe
    datetime(2026, 10, 23, tzinfo=UTC),  # and ends
    datetime(2026, 3, 6, tzinfo=UTC),  # New York's starts on 2026-03-08
    datetime(2026, 11, 27, tzinfo=UTC),
]
DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def random_window(rng: random.Random, start: datetime) -> object:
    kind = rng.randrange(5)
    if kind == 4:  # a calendar interval in the days ahead
        a = start + timedelta(hours=rng.randint(0, 72), minutes=rng.choice([0, 15, 30]))
        b = a + timedelta(hours=rng.randint(1, 30))
        return {"from": a.strftime("%Y-%m-%dT%H:%M"), "to": b.strftime("%Y-%m-%dT%H:%M")}
    h1, h2 = rng.randrange(24), rng.randrange(24)
    hours = f"{h1:02d}:{rng.choice(['00', '30'])}-{h2:02d}:{rng.choice(['00', '15'])}"
    if rng.random() < 0.5:
        first = rng.randrange(7)
        days = f"{DAY_NAMES[first]}-{DAY_NAMES[(first + rng.randint(0, 5)) % 7]}"
    else:
        days = ",".join(rng.sample(DAY_NAMES, rng.randint(1, 3)))
    if kind == 0:
        return f"{days} {hours}"
    if kind == 1:
        return hours
    if kind == 2:
        return days
    return {"days": days, "hours": hours, "timezone": rng.choice(ZONES)}


def random_windowed_workflow(seed: int) -> tuple[cp.Workflow, datetime]:
    rng = random.Random(seed)
    start = rng.choice(STARTS) + timedelta(minutes=15 * rng.randrange(4 * 24 * 3))
    weekly = {"days": "mon-sun", "hours": "12:00-13:00"}  # every day: something reopens
    office = random_window(rng, start)
    if isinstance(office, dict) and "from" in office:  # alone, it may be over too soon
        office = [office, weekly]
    pools: dict[str, object] = {
        "office": {"capacity": rng.randint(1, 3), "available": office},
        "lab": {
            "capacity": 2,
            "available": [random_window(rng, start), random_window(rng, start), weekly],
        },
        "db": 2,
    }
    rates = {"api": {"requests": f"{rng.randint(1, 4)}/h", "available": [weekly]}}
    steps: list[dict[str, Any]] = []
    for i in range(40):
        lo = max(0, i - 8)
        needs = rng.sample(range(lo, i), min(i - lo, rng.randint(0, 2)))
        uses: dict[str, object] = {}
        windowed = rng.choice(["office", "lab", "api", None])  # at most one: see the bug above
        if windowed is not None:
            uses[windowed] = 1
        if rng.random() < 0.4:
            uses["db"] = 1
        step: dict[str, Any] = {
            "id": f"s{i}",
            "agent": "w",
            "estimate": rng.randint(1, 16) * 900,  # quarters of an hour, up to 4 h
            "needs": [f"s{j}" for j in sorted(needs)],
        }
        if uses:
            step["uses"] = uses
        steps.append(step)
    return workflow(steps, pools, rates, tz=rng.choice(ZONES)), start


@pytest.mark.parametrize("seed", range(25))
def test_no_windowed_step_ever_starts_outside_its_windows(seed: int) -> None:
    wf, start = random_windowed_workflow(seed)
    result = succeeded(simulate(wf, start))
    res = wf.resources
    sets = {
        name: WindowSet(windows, res.timezone)
        for name, windows in [
            *((n, p.available) for n, p in res.pools.items()),
            *((n, r.available) for n, r in res.rate_limits.items()),
        ]
        if windows
    }
    t0 = start.timestamp()
    for step in wf.steps:
        rec = result.steps[step.id]
        assert rec.start is not None
        for name in step.uses:
            if name in sets:
                wall = t0 + rec.start
                assert sets[name].state(wall)[0], (
                    f"{step.id} started at {datetime.fromtimestamp(wall, UTC)} outside the "
                    f"windows of {name!r}"
                )
        for need in step.needs:
            end = result.steps[need].end
            assert end is not None and end <= rec.start
