"""Time windows: when a resource may be used (temporal constraints).

A window is weekly (days of the week and hours of the day, in a time zone) or a calendar
interval (from one date and time to another). A resource with windows admits new work only
while one of them is open; work that started inside a window runs to its end.

Written as text::

    "mon-fri 09:00-17:00"    weekdays, nine to five
    "22:00-06:00"            every night (a window may cross midnight)
    "sat,sun"                all day at weekends
    "2026-12-01T08:00/2026-12-03T20:00"    a calendar interval

or as a mapping: ``{days: mon-fri, hours: "09:00-17:00", timezone: Europe/Berlin}``,
``{from: 2026-12-01T08:00, to: 2026-12-03T20:00}``. Times without an offset are in the
window's time zone, else the resources' ``timezone`` (default UTC).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Window", "WindowSet", "parse_timezone"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_FAR = 9  # days looked ahead for a weekly window (a week and a day, and one that starts the
# night before)
_WEEK_S = 7 * 86400.0


def parse_timezone(name: str) -> tzinfo:
    """``UTC``, ``Europe/Berlin``, ``+02:00``: the zone; raises ``ValueError``."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        from datetime import timezone

        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: write UTC, an offset (+02:00) or an IANA name "
            "(Europe/Berlin)"
        ) from None


def _days(value: object) -> tuple[int, ...]:
    """``mon-fri``, ``sat,sun``, ``[mon, wed]``: weekday numbers (Monday 0)."""
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    out: set[int] = set()
    for part in parts:
        text = str(part).strip().lower()
        a, sep, b = text.partition("-")
        names = (a[:3], b[:3]) if sep else (a[:3], a[:3])
        if not all(n in _DAYS for n in names) or not text:
            raise ValueError(
                f"bad days {value!r}: write day names (mon, tue, ... sun), ranges (mon-fri) or "
                "lists (sat,sun)"
            )
        first, last = _DAYS.index(names[0]), _DAYS.index(names[1])
        k = first
        while True:
            out.add(k)
            if k == last:
                break
            k = (k + 1) % 7
    return tuple(sorted(out))


def _hours(value: object) -> tuple[time, time]:
    m = _HOURS.fullmatch(str(value).strip())
    if m:
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 < 24 and m1 < 60 and (h2 < 24 or (h2 == 24 and m2 == 0)) and m2 < 60:
            end = time(0, 0) if h2 == 24 else time(h2, m2)
            return time(h1, m1), end
    raise ValueError(f"bad hours {value!r}: write HH:MM-HH:MM (09:00-17:00, 22:00-06:00)")


class Window(BaseModel):
    """Weekly (``days`` and/or ``hours``) or a calendar interval (``from``/``to``)."""

    days: tuple[int, ...] = ()  # weekdays, Monday 0; empty: every day
    hours: tuple[time, time] | None = None  # start, end (an end at or before start: next day)
    start: datetime | None = Field(None, alias="from")
    end: datetime | None = Field(None, alias="to")
    timezone: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        texts = _split_text(value)
        if len(texts) > 1:
            raise ValueError(
                f"{value!r} is {len(texts)} windows: write them as a list "
                f"({', '.join(repr(t) for t in texts)})"
            )
        return texts[0]

    @field_validator("days", mode="before")
    @classmethod
    def _parse_days(cls, value: object) -> object:
        return _days(value) if value not in ((), None) else ()

    @field_validator("hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: object) -> object:
        return _hours(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timezone(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> Window:
        weekly = bool(self.days) or self.hours is not None
        calendar = self.start is not None or self.end is not None
        if weekly and calendar:
            raise ValueError("a window is weekly (days, hours) or a calendar interval (from, to)")
        if not weekly and not calendar:
            raise ValueError("a window needs days, hours, or from and to")
        if calendar and (self.start is None or self.end is None):
            raise ValueError("a calendar window needs both from and to")
        if self.start is not None and self.end is not None:
            mixed = (self.start.tzinfo is None) != (self.end.tzinfo is None)
            if self.timezone is not None or not mixed:  # else the resources' zone decides
                self.check_order(UTC)
        return self

    def check_order(self, default_zone: tzinfo) -> None:
        """A calendar window must end after it starts (times without an offset read in the
        window's zone, else ``default_zone``); raises ``ValueError``."""
        if self.start is None or self.end is None:
            return
        zone = parse_timezone(self.timezone) if self.timezone else default_zone
        if _aware(self.end, zone) <= _aware(self.start, zone):
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")


def _split_text(text: str) -> list[dict[str, object]]:
    """A window as text, as mappings: the day words together (``sat, sun``, ``sat sun``),
    and one window per hour range (``mon-fri 09:00-12:00 13:00-17:00`` is two)."""
    text = text.strip()
    if "/" in text:
        a, _, b = text.partition("/")
        return [{"from": a.strip(), "to": b.strip()}]
    days: list[str] = []
    hours: list[str] = []
    for word in text.replace(",", " ").split():
        (hours if any(c.isdigit() for c in word) else days).append(word)
    base: dict[str, object] = {"days": ",".join(days)} if days else {}
    if not hours:
        return [base or {"days": text}]
    return [{**base, "hours": h} for h in hours]


def _aware(moment: datetime, zone: tzinfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


class WindowSet:
    """When a resource is open: the union of its windows, asked for at epoch seconds."""

    __slots__ = ("_calendar", "_weekly", "_zones")

    def __init__(self, windows: Sequence[Window], timezone: str | None = None) -> None:
        default = parse_timezone(timezone) if timezone else UTC
        self._calendar: list[tuple[float, float]] = []
        self._weekly: list[tuple[frozenset[int], time, time, tzinfo]] = []
        for w in windows:
            zone = parse_timezone(w.timezone) if w.timezone else default
            if w.start is not None and w.end is not None:
                self._calendar.append(
                    (_aware(w.start, zone).timestamp(), _aware(w.end, zone).timestamp())
                )
            else:
                start, end = w.hours if w.hours is not None else (time(0), time(0))
                self._weekly.append((frozenset(w.days or range(7)), start, end, zone))

    def state(self, at: float) -> tuple[bool, float | None]:
        """Whether some window is open at ``at``, and when that changes: the time the open
        windows all close (``None``: the weekly ones never do), or the next opening
        (``None``: never again)."""
        open_until, opens = _merge(self._intervals(at, calendar=True), at)
        if open_until is None:
            return False, opens
        if open_until - at >= _WEEK_S:  # perhaps the weekly windows alone are always open
            weekly_until, _ = _merge(self._intervals(at, calendar=False), at)
            if weekly_until is not None and weekly_until - at >= _WEEK_S:
                return True, None
        return True, open_until

    def _intervals(self, at: float, *, calendar: bool) -> list[tuple[float, float]]:
        """The windows' intervals around ``at`` (weekly ones for the next ``_FAR`` days)."""
        intervals = list(self._calendar) if calendar else []
        for days, start, end, zone in self._weekly:
            today = datetime.fromtimestamp(at, zone).date()
            for k in range(-1, _FAR):
                day = today + timedelta(days=k)
                if day.weekday() not in days:
                    continue
                opens = datetime.combine(day, start, zone)
                last = day + timedelta(days=1) if end <= start else day
                intervals.append((opens.timestamp(), datetime.combine(last, end, zone).timestamp()))
        intervals.sort()
        return intervals


def _merge(intervals: list[tuple[float, float]], at: float) -> tuple[float | None, float | None]:
    """For sorted intervals: when the ones open at ``at`` (merged with those overlapping or
    touching them) close, else ``None`` and the next opening after ``at`` (``None``: none)."""
    open_until: float | None = None
    for a, b in intervals:
        if open_until is None:
            if a <= at < b:
                open_until = b
        elif a <= open_until:
            open_until = max(open_until, b)
    if open_until is not None:
        return open_until, None
    later = [a for a, _ in intervals if a > at]
    return None, min(later) if later else None


def describe(windows: Sequence[Window]) -> str:
    """Windows as people write them, for messages."""
    out: list[str] = []
    for w in windows:
        if w.start is not None:
            out.append(f"{w.start.isoformat()}/{w.end.isoformat() if w.end else ''}")
            continue
        days = ",".join(_DAYS[d] for d in w.days) if w.days else ""
        hours = f"{w.hours[0]:%H:%M}-{w.hours[1]:%H:%M}" if w.hours else ""
        out.append(" ".join(x for x in (days, hours) if x))
    return "; ".join(out)


def as_windows(value: Any) -> Any:
    """One window or a list of them; a text with several hour ranges is several windows."""
    items = [value] if isinstance(value, str | dict | Window) else value
    if not isinstance(items, list | tuple):
        return value
    out: list[Any] = []
    for item in items:
        out.extend(_split_text(item) if isinstance(item, str) else [item])
    return out
