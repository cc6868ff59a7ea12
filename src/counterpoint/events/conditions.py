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
    compiled = _compile(tree.body)

    def condition(scope: Mapping[str, object]) -> bool:
        try:
            return bool(compiled(scope))
        except TypeError:  # comparing values of different types: the condition does not hold
            return False

    return condition


Getter = Callable[[Mapping[str, object]], Any]


def _compile(node: ast.AST) -> Getter:
    """The expression as nested closures (checked by ``_check`` first): evaluated without
    walking the tree each time."""
    if isinstance(node, ast.Constant):
        value = node.value
        return lambda scope: value
    if isinstance(node, ast.Name):
        name = node.id
        if name in _LITERALS:
            literal = _LITERALS[name]
            return lambda scope: literal
        return lambda scope: scope.get(name)
    if isinstance(node, ast.Attribute):
        path: list[str] = []  # event.data.key: one walk down the keys
        inner: ast.AST = node
        while isinstance(inner, ast.Attribute):
            path.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id not in _LITERALS:
            root, keys = inner.id, tuple(reversed(path))

            def walk(scope: Mapping[str, object]) -> object:
                value = scope.get(root)
                for key in keys:
                    value = value.get(key) if type(value) is dict else _get(value, key)
                return value

            return walk
        base, attr = _compile(node.value), node.attr
        return lambda scope: _get(base(scope), attr)
    if isinstance(node, ast.Subscript):
        base, key = _compile(node.value), _compile(node.slice)
        return lambda scope: _get(base(scope), key(scope))
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda scope: all(p(scope) for p in parts)
        return lambda scope: any(p(scope) for p in parts)
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        return lambda scope: -operand(scope)
    if isinstance(node, ast.Compare):
        left = _compile(node.left)
        ops = [_COMPARE[type(op)] for op in node.ops]
        rights = [_compile(r) for r in node.comparators]
        if len(ops) == 1:
            op, right = ops[0], rights[0]
            return lambda scope: op(left(scope), right(scope))

        def chain(scope: Mapping[str, object]) -> bool:
            a = left(scope)
            for op, right in zip(ops, rights, strict=True):
                b = right(scope)
                if not op(a, b):
                    return False
                a = b
            return True

        return chain
    if isinstance(node, ast.List | ast.Tuple):
        items = [_compile(e) for e in node.elts]
        return lambda scope: [i(scope) for i in items]
    raise ConditionError(f"cannot evaluate {type(node).__name__}")  # ruled out by _check


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


def _get(value: object, key: object) -> object:
    if type(value) is dict:  # the common case, without the ABC check
        return value.get(key)
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list | tuple) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    return None
