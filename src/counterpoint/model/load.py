"""Load a workflow from YAML, reporting every mistake as ``FILE:LINE:COL: message``.

YAML is read with the YAML 1.2 core rules rather than PyYAML's 1.1 defaults, so ``on``,
``yes`` and ``no`` stay strings and ``1:30`` is not a number in base 60. Parsing uses libyaml
when present; the node tree is kept only to find positions for problems.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import yaml
from pydantic_core import ErrorDetails

from counterpoint.errors import Problem, WorkflowInvalid
from counterpoint.gctools import paused_gc
from counterpoint.model.locate import Locator, YamlPositions
from counterpoint.model.messages import explain_error
from counterpoint.model.validate import check
from counterpoint.model.workflow import Workflow

__all__ = ["load", "loads", "workflow_from_data"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type, misc]
    """SafeLoader with YAML 1.2 core-schema scalars."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _regex, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
]:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_regex), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(path: str | Path) -> Workflow:
    """Load and check the workflow in ``path``; raises ``WorkflowInvalid`` listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowInvalid([Problem("no such file", file=file)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowInvalid([Problem(f"cannot read the file: {exc}", file=file)]) from None
    return loads(text, file)


def loads(text: str, file: str = "<string>") -> Workflow:
    """Load and check a workflow from YAML text; ``file`` is the name used in problems."""
    with paused_gc():
        return _loads(text, file)


def _loads(text: str, file: str) -> Workflow:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise WorkflowInvalid(
                [Problem("the file is empty: a workflow needs at least name and steps", file, 1, 1)]
            )
        problems = _structure_problems(root, file)
        if problems:
            raise WorkflowInvalid(problems)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise WorkflowInvalid([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise WorkflowInvalid([Problem(f"YAML error: {exc}", file, 1, 1)]) from None
    finally:
        loader.dispose()
    base_dir = Path(file).resolve().parent if file != "<string>" else None
    return workflow_from_data(data, YamlPositions(file, root), base_dir)


def workflow_from_data(data: object, where: Locator, base_dir: Path | None = None) -> Workflow:
    """Build and check a workflow from plain data (as YAML gives it).

    ``base_dir`` (default: the current directory) is where Python agents may import from.
    """
    if not isinstance(data, dict):
        raise WorkflowInvalid(
            [where.problem((), "a workflow must be a mapping with keys such as name and steps")]
        )
    try:
        workflow = Workflow.model_validate(data)
    except pydantic.ValidationError as exc:
        raise WorkflowInvalid([_from_pydantic(e, where, data) for e in exc.errors()]) from None
    problems = check(workflow, where, base_dir or Path.cwd())
    if problems:
        raise WorkflowInvalid(problems)
    workflow._source = where.file
    return workflow


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "syntax error"
    if exc.context:
        what = f"{what} ({exc.context})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(f"YAML syntax error: {what}", file, line, col)


def _structure_problems(root: yaml.Node, file: str) -> list[Problem]:
    """Duplicate keys and keys that are not strings, which PyYAML would silently accept."""
    problems: list[Problem] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    m = k.start_mark
                    problems.append(
                        Problem("a key must be plain text", file, m.line + 1, m.column + 1)
                    )
                elif k.tag == "tag:yaml.org,2002:merge":
                    pass
                elif k.value in seen:
                    first = seen[k.value].start_mark.line + 1
                    m = k.start_mark
                    problems.append(
                        Problem(
                            f"duplicate key {k.value!r} (first given on line {first})",
                            file,
                            m.line + 1,
                            m.column + 1,
                        )
                    )
                else:
                    seen[k.value] = k
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return problems


def _from_pydantic(err: ErrorDetails, where: Locator, data: dict[str, object]) -> Problem:
    loc, message, key = explain_error(err, Workflow)
    steps = data.get("steps")
    if (
        len(loc) >= 2
        and loc[0] == "steps"
        and isinstance(loc[1], int)
        and isinstance(steps, list)
        and loc[1] < len(steps)
    ):
        step = steps[loc[1]]
        if isinstance(step, dict) and isinstance(step.get("id"), str):
            message = f"step {step['id']!r}: " + message.replace(
                f"steps[{loc[1]}].", "", 1
            ).replace(f" in steps[{loc[1]}]", "", 1)
    return where.problem(loc, message, key=key)
