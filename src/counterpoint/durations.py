"""Durations as users write them: ``250ms``, ``1.5s``, ``2m``, ``1h30m``, ``1d``, or seconds."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)")
_WHOLE = re.compile(r"\s*(?:(?:\d+(?:\.\d+)?|\.\d+)\s*(?:ms|s|m|h|d)\s*)+")


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds.

    Numbers are seconds. Strings are one or more ``<number><unit>`` parts with units ms, s, m,
    h, d (``1h30m``). Raises ``ValueError`` with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(_explain(value))
    if isinstance(value, int | float):
        if not 0 <= value < float("inf"):
            raise ValueError(f"duration must be a finite number of seconds >= 0, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            return parse_duration(seconds)
        if _WHOLE.fullmatch(text):
            return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    raise ValueError(_explain(value))


def _explain(value: object) -> str:
    return (
        f"bad duration {_yaml_text(value)}: write seconds (30, 1.5) or a number with a unit "
        "(250ms, 10s, 2m, 1h30m, 1d)"
    )


def _yaml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def format_duration(seconds: float) -> str:
    """A short human form: ``420ms``, ``1.5s``, ``12s``, ``4m05s``, ``2h03m``.

    Each form rounds first, so a value never shows as the top of its unit (``60s``).
    """
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    tenths = round(seconds, 1)
    if tenths < 10:
        return f"{tenths:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
