"""Pydantic's validation errors, retold in the words of someone writing a workflow."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from counterpoint.model.locate import format_path

__all__ = ["describe", "did_you_mean", "explain_error"]

Loc = tuple[str | int, ...]

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "callable_type": "a function",
}

# What a field with a shorthand accepts, where the type words alone would mislead.
_ACCEPTS = {
    "retries": "a whole number or a mapping such as {max: 3, backoff: 1s}",
    "needs": "a step id or a list of step ids",
}

# Tags pydantic puts in a location for union members and validators, not part of the data.
_TAGS = {"RetryPolicy", "JsonValue", "str", "int", "float", "bool", "list", "dict", "callable"}


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def explain_error(err: ErrorDetails, root: type[BaseModel]) -> tuple[Loc, str, bool]:
    """``(location, message, points_at_key)`` for one pydantic error under model ``root``."""
    loc: Loc = tuple(p for p in err["loc"] if _is_data(p))
    kind = err["type"]
    field = str(loc[-1]) if loc else "workflow"
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        hint = did_you_mean(field, known)
        message = f"unknown key {field!r}{_where(loc[:-1])}{hint}"
        if not hint and known:
            message += f"; expected one of: {', '.join(sorted(known))}"
        return loc, message, True
    if kind == "missing":
        return loc[:-1], f"missing required key {field!r}{_where(loc[:-1])}", False
    prefix = f"{format_path(loc)}: " if loc else ""
    if kind in _TYPE_WORDS:
        expected = _ACCEPTS.get(field, _TYPE_WORDS[kind])
        message = f"{prefix}expected {expected}, got {describe(err.get('input'))}"
    elif kind == "value_error":
        message = prefix + str(err.get("ctx", {}).get("error", err["msg"]))
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        message = f"{prefix}expected {expected}, got {describe(err.get('input'))}"
    else:
        msg = err["msg"].replace("Input should be", "should be")
        message = f"{prefix}{msg[:1].lower()}{msg[1:]}"
        if "input" in err:
            message += f", got {describe(err['input'])}"
    return loc, message, False


def _is_data(part: object) -> bool:
    return isinstance(part, int) or (
        isinstance(part, str) and "[" not in part and part not in _TAGS and part[:1] != "@"
    )


def _where(loc: Sequence[str | int]) -> str:
    return f" in {format_path(loc)}" if loc else ""


def describe(value: object) -> str:
    """A value as a message names it: nothing, a mapping, a list, or its short repr."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


def _known_keys(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    current: object = root
    for part in loc:
        current = _element(current, part)
        if current is None:
            return []
    model = _as_model(current)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items() if name != "options"]


def _element(tp: object, part: str | int) -> object:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # the member that has this part
        for arg in args:
            found = _element(arg, part)
            if found is not None:
                return found
        return None
    if origin is typing.Annotated:
        return _element(args[0], part)
    model = _as_model(tp)
    if model is not None:
        for name, f in model.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    if origin is dict and isinstance(part, str):
        return args[1]
    if origin in (list, tuple) and isinstance(part, int):
        return args[0]
    if origin is typing.Annotated:
        return _element(args[0], part)
    return None


def _as_model(tp: object) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            model = _as_model(arg)
            if model is not None:
                return model
    if origin is typing.Annotated:
        return _as_model(typing.get_args(tp)[0])
    return None
