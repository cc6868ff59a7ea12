"""Positions of the parts of a workflow, so that every problem can say FILE:LINE:COL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import yaml

from counterpoint.errors import Problem

__all__ = ["Locator", "NoPositions", "YamlPositions", "format_path"]

Path = Sequence[str | int]


def format_path(path: Path) -> str:
    """``("steps", 3, "agent")`` -> ``steps[3].agent``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Locator(Protocol):
    """Turns a path inside the workflow into a ``Problem`` that says where it is."""

    file: str

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem: ...


class NoPositions:
    """For workflows built in Python: problems name the path instead of a line."""

    def __init__(self, file: str = "<python>") -> None:
        self.file = file

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        return Problem(message, file=self.file, path=format_path(path))


class YamlPositions:
    """Finds positions by walking the YAML node tree along a path.

    Path parts that the YAML does not have (such as the ``options`` that the model gathers
    from an agent's keys) are passed over, so a path from the model still finds its text.
    """

    def __init__(self, file: str, root: yaml.Node | None) -> None:
        self.file = file
        self.root = root

    def node(self, path: Path, *, key: bool = False) -> yaml.Node | None:
        node = self.root
        last = len(path) - 1
        for i, part in enumerate(path):
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == str(part):
                        node = k if (key and i == last) else v
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                node = node.value[part]
        return node

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        node = self.node(path, key=key)
        if node is None:
            return Problem(message, file=self.file, line=1, column=1, path=format_path(path))
        mark = node.start_mark
        return Problem(
            message,
            file=self.file,
            line=mark.line + 1,
            column=mark.column + 1,
            path=format_path(path),
        )
