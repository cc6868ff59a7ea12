"""Durations as users write them: parsing and the short human form."""

from __future__ import annotations

import math

import pytest

from counterpoint.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1d2h", 93600.0),
        ("5m5s", 305.0),
        (".5s", 0.5),
        ("  10s  ", 10.0),
        ("1h 30m", 5400.0),
        ("30", 30.0),
        ("1.25", 1.25),
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: object, seconds: float) -> None:
    got = parse_duration(text)
    assert isinstance(got, float)
    assert got == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    "bad",
    ["", "5 parsecs", "1m30", "m", "10 s s", "-1", "-5s", "inf", "nan", -3, math.inf, math.nan],
)
def test_parse_duration_rejects_bad_values_with_a_helpful_message(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    message = str(info.value)
    assert "duration" in message
    assert repr(bad) in message or str(bad) in message


@pytest.mark.parametrize("bad", [True, False, None, [1], {"s": 1}])
def test_parse_duration_rejects_non_durations(bad: object) -> None:
    with pytest.raises(ValueError, match=r"bad duration .*250ms, 10s, 2m, 1h30m, 1d"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.42, "420ms"),
        (1.0, "1.0s"),
        (1.5, "1.5s"),
        (42.0, "42s"),
        (60.0, "1m00s"),
        (245.0, "4m05s"),
        (3600.0, "1h00m"),
        (3599.6, "1h00m"),
        (7380.0, "2h03m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.9996, "1.0s"), (59.6, "1m00s")],
)
def test_format_duration_rounding_never_overflows_its_unit(seconds: float, text: str) -> None:
    # Rounded up, 0.9996 s is one second and 59.6 s one minute: the short form should switch
    # unit as format_duration(1.0) and format_duration(60) do, not say "1000ms" or "60s".
    assert format_duration(seconds) == text
