"""Conditions on events: small, safe expressions.

``event.data.sentiment == 'negative'``, ``event.data.score < 0.5 and event.source != 'cli'``,
``'urgent' in event.data.tags``, ``not event.data.approved``. Written bare or inside
``${{ ... }}``. Names: ``event`` (name, kind, data, source, time), ``inputs``; attribute
access and ``[key]`` read mappings and lists (a missing key is ``None``); comparisons,
``and``, ``or``, ``not``, ``in``, literals (numbers, strings, true/false/null, lists).
Nothing else: no calls, no arithmetic, no attributes of Python objects.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Condition", "ConditionError", "compile_condition"]

Condition = Callable[[Mapping[str, object]], bool]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False}
_NAMES = ("event", "inputs")


class ConditionError(ValueError):
    """A condition that is not one (its text and why)."""


def compile_condition(text: str) -> Condition:
    """The condition written in ``text``; raises ``ConditionError``."""
    body = text.strip()
    if body.startswith("${{") and body.endswith("}}"):
        body = body[3:-2].strip()
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {text!r} is not an expression: {exc.msg}") from None
    _check(tree.body, text)
    node = tree.body

    def condition(scope: Mapping[str, object]) -> bool:
        try:
            return bool(_eval(node, scope))
        except TypeError:  # comparing values of different types: the condition does not hold
            return False

    return condition


def _check(node: ast.AST, text: str) -> None:
    allowed = (
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.Compare,
        ast.Name,
        ast.Load,
        ast.Attribute,
        ast.Subscript,
        ast.Constant,
        ast.List,
        ast.Tuple,
        *_COMPARE,
    )
    for sub in ast.walk(node):
        if not isinstance(sub, allowed):
            what = type(sub).__name__
            raise ConditionError(
                f"condition {text!r}: {what} is not allowed (use comparisons, and, or, not, "
                "in, event.data.KEY and literals)"
            )
        if (
            isinstance(sub, ast.UnaryOp)
            and isinstance(sub.op, ast.USub)
            and not isinstance(sub.operand, ast.Constant)
        ):
            raise ConditionError(f"condition {text!r}: '-' only before a number")
        if isinstance(sub, ast.Name) and sub.id not in (*_NAMES, *_LITERALS):
            raise ConditionError(
                f"condition {text!r}: unknown name {sub.id!r} (use event.… or inputs.…)"
            )
        if isinstance(sub, ast.Attribute) and sub.attr.startswith("_"):
            raise ConditionError(f"condition {text!r}: no names starting with '_'")


def _eval(node: ast.AST, scope: Mapping[str, object]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _LITERALS:
            return _LITERALS[node.id]
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        return _get(_eval(node.value, scope), node.attr)
    if isinstance(node, ast.Subscript):
        return _get(_eval(node.value, scope), _eval(node.slice, scope))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, scope) for v in node.values)
        return any(_eval(v, scope) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope)
        return (not value) if isinstance(node.op, ast.Not) else -value  # type: ignore[operator]
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, scope)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, scope) for e in node.elts]
    raise ConditionError(f"cannot evaluate {type(node).__name__}")  # ruled out by _check


def _get(value: object, key: object) -> object:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list | tuple) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    return None
