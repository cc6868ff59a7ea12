"""Amounts with units and rates: what ``uses``, pools and rate limits are written with."""

from __future__ import annotations

import math

import pytest

import counterpoint as cp
from counterpoint.model.workflow import Pool, RateLimit, parse_amount, parse_rate

GiB = 2**30


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (2, 2.0),
        (1.5, 1.5),
        (0, 0.0),
        ("0", 0.0),
        ("2", 2.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("90k", 90_000.0),
        ("1.5k", 1_500.0),
        ("2M", 2_000_000.0),
        ("2m", 2_000_000.0),  # mega: there is no milli in amounts
        ("4KB", 4_000.0),
        ("4MB", 4_000_000.0),
        ("4GB", 4_000_000_000.0),
        ("1TB", 1e12),
        ("4KiB", 4 * 1024.0),
        ("512MiB", 512 * 2.0**20),
        ("4GiB", 4 * GiB),
        ("32GiB", 32.0 * GiB),
        ("1.5TiB", 1.5 * 2.0**40),
        ("4gib", 4 * GiB),
        (" 4 GiB ", 4 * GiB),
        ("100b", 100.0),
    ],
)
def test_amounts_with_units(text: object, value: float) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "lots",
            "bad amount 'lots': write a number, or one with a unit (k, M, KB, MB, GB, KiB, "
            "MiB, GiB)",
        ),
        ("1e3", "bad amount '1e3': write a number"),
        ("1,000", "bad amount '1,000': write a number"),
        ("4 GiB per step", "bad amount '4 GiB per step'"),
        ("4XB", "bad amount '4XB'"),
        ("-1", "bad amount '-1'"),
        ("", "bad amount ''"),
        (-1, "bad amount -1: it cannot be negative"),
        (-0.5, "bad amount -0.5: it cannot be negative"),
        (True, "bad amount true: write a number, or one with a unit (4GiB)"),
        (None, "bad amount None"),
        ([1], "bad amount [1]"),
    ],
)
def test_bad_amounts(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_amount(value)
    assert str(info.value).startswith(message)


def test_an_amount_that_is_not_a_number_is_refused() -> None:
    # YAML's .nan: a pool of capacity NaN would admit every demand (n > nan is never true).
    with pytest.raises(ValueError, match=r"^bad amount nan"):
        parse_amount(math.nan)


@pytest.mark.parametrize(
    ("text", "amount", "interval"),
    [
        ("10/s", 10.0, 1.0),
        ("10/sec", 10.0, 1.0),
        ("10/second", 10.0, 1.0),
        ("500/min", 500.0, 60.0),
        ("500/minute", 500.0, 60.0),
        ("90k/min", 90_000.0, 60.0),
        ("90k/h", 90_000.0, 3_600.0),
        ("90k/hour", 90_000.0, 3_600.0),
        ("1M/day", 1e6, 86_400.0),
        ("1M/d", 1e6, 86_400.0),
        ("5/10s", 5.0, 10.0),
        ("100/2min", 100.0, 120.0),
        ("10/1.5s", 10.0, 1.5),
        ("1.5k/min", 1_500.0, 60.0),
        ("10 / s", 10.0, 1.0),
        ("4GiB/h", 4.0 * GiB, 3_600.0),
    ],
)
def test_rates(text: str, amount: float, interval: float) -> None:
    assert parse_rate(text) == (amount, interval)


@pytest.mark.parametrize(
    "text",
    [
        "10 per s",
        "10",
        "10/",
        "/s",
        "10/fortnight",
        "10/S",
        "10/m",  # minutes or mega? neither: min
        "0/s",
        "-5/s",
        "lots/s",
        "10/0s",  # an interval of zero: no limit at all (a bucket divides by it)
        "10/0min",
    ],
)
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rate(text)
    assert str(info.value) == (
        f"bad rate {text!r}: write an amount per interval (500/min, 10/s, 90k/h)"
    )


def test_rate_that_is_not_text() -> None:
    with pytest.raises(ValueError, match=r"^bad rate 10: write an amount per interval"):
        parse_rate(10)


def test_pool_shorthands() -> None:
    assert Pool.model_validate(2).capacity == {"slots": 2.0}
    assert Pool.model_validate("4GiB").capacity == {"slots": 4.0 * GiB}
    assert Pool.model_validate({"cpu": 8, "memory": "32GiB"}).capacity == {
        "cpu": 8.0,
        "memory": 32.0 * GiB,
    }
    described = Pool.model_validate({"cpu": 8, "description": "the build box"})
    assert described.capacity == {"cpu": 8.0}
    assert described.description == "the build box"


def test_rate_limit_shorthands() -> None:
    assert RateLimit.model_validate("10/s").limits == {"requests": (10.0, 1.0)}
    two = RateLimit.model_validate({"requests": "500/min", "tokens": "90k/min"})
    assert two.limits == {"requests": (500.0, 60.0), "tokens": (90_000.0, 60.0)}
    assert two.burst == {}
    one = RateLimit.model_validate({"requests": "100/min", "burst": 20})
    assert one.burst == {"requests": 20.0}
    both = RateLimit.model_validate(
        {"requests": "500/min", "tokens": "90k/min", "burst": {"requests": 50, "tokens": "20k"}}
    )
    assert both.burst == {"requests": 50.0, "tokens": 20_000.0}


def test_loaded_workflow_has_the_numbers() -> None:
    wf = cp.loads(
        """\
name: units
resources:
  pools:
    db: 2
    machine: {cpu: 8, memory: 32GiB}
  rate_limits:
    api: 10/s
    llm: {requests: 500/min, tokens: 90k/min, burst: {tokens: 20k}}
agents:
  w: {kind: noop}
steps:
  - {id: a, agent: w, uses: {db: 1, machine: {cpu: 2, memory: 4GiB}, llm: {tokens: 4k}}}
  - {id: b, agent: w, uses: {api: 1, llm: 1}}
"""
    )
    res = wf.resources
    assert res.pools["db"].capacity == {"slots": 2.0}
    assert res.pools["machine"].capacity == {"cpu": 8.0, "memory": 32.0 * GiB}
    assert res.rate_limits["api"].limits == {"requests": (10.0, 1.0)}
    assert res.rate_limits["llm"].limits == {
        "requests": (500.0, 60.0),
        "tokens": (90_000.0, 60.0),
    }
    assert res.rate_limits["llm"].burst == {"tokens": 20_000.0}
    assert wf.step("a").uses == {
        "db": 1.0,
        "machine": {"cpu": 2.0, "memory": 4.0 * GiB},
        "llm": {"tokens": 4_000.0},
    }
    assert wf.step("b").uses == {"api": 1.0, "llm": 1.0}
