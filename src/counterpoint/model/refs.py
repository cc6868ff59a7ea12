"""References inside values: ``${{ inputs.repo }}``, ``${{ steps.analyze.output.summary }}``.

A string that is exactly one reference is replaced by the referenced value as it is (a list
stays a list); a reference inside a longer string is interpolated as text (JSON for non-strings).
``$${{`` writes a literal ``${{``.

The same syntax serves step inputs (roots ``inputs`` and ``steps``) and agent templates such as
a program's argv (roots ``input``, ``step``, ``run``); each user says which roots it allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from counterpoint.errors import StepFailed
from counterpoint.outputs import LargeOutput

__all__ = ["Reference", "Template", "compile_template", "find_references", "lookup"]

_REF = re.compile(r"(\$?)\$\{\{(.*?)\}\}")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*|\d+")


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed ``${{ root.a.b }}``; ``path`` holds str keys and int list indexes."""

    text: str
    root: str
    path: tuple[str | int, ...]

    def __str__(self) -> str:
        return "${{ " + self.text + " }}"


def parse_reference(expr: str) -> Reference:
    """Parse the inside of ``${{ ... }}``; raises ``ValueError`` with what is wrong."""
    text = expr.strip()
    if not text:
        raise ValueError("empty reference ${{ }}")
    parts = text.split(".")
    path: list[str | int] = []
    for part in parts:
        if not _SEGMENT.fullmatch(part):
            raise ValueError(
                f"bad reference ${{{{ {text} }}}}: {part!r} is not a name or a list index "
                "(write names and numbers separated by dots, e.g. steps.fetch.output.items.0)"
            )
        path.append(int(part) if part.isdigit() else part)
    root = path[0]
    if not isinstance(root, str):
        raise ValueError(f"bad reference ${{{{ {text} }}}}: it must start with a name")
    return Reference(text, root, tuple(path[1:]))


def find_references(value: object) -> Iterator[tuple[tuple[str | int, ...], Reference | str]]:
    """Yield ``(where, reference)`` for each reference in a JSON-like value.

    ``where`` is the path inside ``value``. A malformed reference is yielded as its error text,
    so a validator can report every one of them with its position.
    """
    stack: list[tuple[tuple[str | int, ...], object]] = [((), value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if "${{" in item:
                covered = 0  # text before this index belongs to a complete ${{ }}
                for m in _REF.finditer(item):
                    covered = m.end()
                    if m.group(1):
                        continue
                    try:
                        yield where, parse_reference(m.group(2))
                    except ValueError as exc:
                        yield where, str(exc)
                start = item.find("${{", covered)
                if start >= 0 and item[start - 1 : start] != "$":
                    yield where, f"bad reference {item[start:]!r}: it has no closing }}}}"
        elif isinstance(item, dict):
            stack.extend(((*where, k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend(((*where, i), v) for i, v in enumerate(item))


def lookup(scope: Mapping[str, object], ref: Reference) -> object:
    """Follow ``ref`` through ``scope``; a missing key fails the step, without retries."""
    if ref.root not in scope:
        raise StepFailed(f"{ref}: nothing is called {ref.root!r} here", retryable=False)
    value = scope[ref.root]
    walked = ref.root
    for key in ref.path:
        if LargeOutput.made and isinstance(value, LargeOutput):
            try:  # a part of an output kept elsewhere: the driver fetches it
                value = value.value()
            except Exception as exc:
                raise StepFailed(f"{ref}: {walked} cannot be read: {exc}") from None
        try:
            if isinstance(value, Mapping):
                value = value[str(key)]
            elif isinstance(value, list | tuple) and isinstance(key, int):
                value = value[key]
            else:
                raise KeyError(key)
        except (KeyError, IndexError):
            shown = _preview(value)
            raise StepFailed(
                f"{ref}: {walked} has no {key!r} (it is {shown})", retryable=False
            ) from None
        walked = f"{walked}.{key}"
    return value


def _preview(value: object, limit: int = 80) -> str:
    try:
        text = json.dumps(value, default=repr)
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


Template = Callable[[Mapping[str, object]], object]


def _constant(value: object) -> Template:
    return lambda _scope: value


def compile_template(value: object) -> Template | None:
    """Compile a JSON-like value with references into a function of a scope.

    Returns ``None`` when ``value`` holds no reference, so callers can pass it on unchanged at
    no cost.
    """
    if value is None or isinstance(value, bool | int | float):
        return None
    if not _has_reference(value):
        if isinstance(value, str) and "$${{" in value:
            return _constant(value.replace("$${{", "${{"))
        return None
    return _compile(value)


def _has_reference(value: object) -> bool:
    return any(True for _ in find_references(value))


def _compile(value: object) -> Template:
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, dict):
        parts = [(k, _compile(v)) for k, v in value.items()]
        return lambda scope: {k: f(scope) for k, f in parts}
    if isinstance(value, list | tuple):
        items = [_compile(v) for v in value]
        return lambda scope: [f(scope) for f in items]
    return _constant(value)


def _compile_string(text: str) -> Template:
    matches = list(_REF.finditer(text))
    live = [m for m in matches if not m.group(1)]
    if not live:
        return _constant(text.replace("$${{", "${{"))
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        ref = parse_reference(live[0].group(2))
        return lambda scope: lookup(scope, ref)
    pieces: list[str | Reference] = []
    pos = 0
    for m in matches:
        pieces.append(text[pos : m.start()])
        pieces.append("${{" + m.group(2) + "}}" if m.group(1) else parse_reference(m.group(2)))
        pos = m.end()
    pieces.append(text[pos:])

    def render(scope: Mapping[str, object]) -> str:
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                got = lookup(scope, piece)
                out.append(got if isinstance(got, str) else json.dumps(got, default=str))
        return "".join(out)

    return render
