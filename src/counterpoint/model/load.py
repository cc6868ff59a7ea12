"""Load a workflow from YAML, reporting every mistake as ``FILE:LINE:COL: message``.

YAML is read with the YAML 1.2 core rules rather than PyYAML's 1.1 defaults, so ``on``,
``yes`` and ``no`` stay strings and ``1:30`` is not a number in base 60. Parsing uses libyaml
when present; the node tree is kept only to find positions for problems.
"""

from __future__ import annotations

import difflib
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

__all__ = ["load", "loads", "parse_yaml", "workflow_from_data"]

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


def parse_yaml(text: str, file: str, line: int = 1) -> tuple[yaml.Node | None, object]:
    """One YAML 1.2 document: its node tree (``None`` when empty, for positions) and its
    value. Syntax errors, duplicate keys, tags and the like raise ``WorkflowInvalid``, each
    problem placed in ``file`` (``line``: where a document that is part of a file starts)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        problems = _structure_problems(root, file)
        if problems:
            raise WorkflowInvalid(problems)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise WorkflowInvalid([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise WorkflowInvalid([Problem(f"YAML error: {exc}", file, line, 1)]) from None
    finally:
        loader.dispose()


def _loads(text: str, file: str) -> Workflow:
    root, data = parse_yaml(text, file)
    if root is None:
        raise WorkflowInvalid(
            [Problem("the file is empty: a workflow needs at least name and steps", file, 1, 1)]
        )
    base_dir = Path(file).resolve().parent if file != "<string>" else None
    workflow = workflow_from_data(data, YamlPositions(file, root), base_dir)
    workflow._text = text
    return workflow


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
        errors = _without_missing_keys_misspelt(exc.errors())
        problems = [_from_pydantic(e, where, data) for e in errors]
        problems += _problems_beyond(data, errors, where, base_dir or Path.cwd())
        raise WorkflowInvalid(sorted(problems, key=Problem.sort_key)) from None
    problems = check(workflow, where, base_dir or Path.cwd())
    if problems:
        raise WorkflowInvalid(problems)
    workflow._source = where.file
    return workflow


_COLON_HINT = (
    "unexpected ':' (indent this key like the keys above it, or put text that contains ': ' "
    "in quotes)"
)


def _without_missing_keys_misspelt(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop "missing key 'steps'" where an unknown key 'stesp' beside it says why."""
    unknown = {(e["loc"][:-1], str(e["loc"][-1])) for e in errors if e["type"] == "extra_forbidden"}

    def misspelt(err: ErrorDetails) -> bool:
        parent, key = err["loc"][:-1], str(err["loc"][-1])
        near = [u for p, u in unknown if p == parent]
        return err["type"] == "missing" and bool(difflib.get_close_matches(key, near, 1, 0.6))

    return [e for e in errors if not misspelt(e)]


def _problems_beyond(
    data: dict[str, object], errors: list[ErrorDetails], where: Locator, base_dir: Path
) -> list[Problem]:
    """The other mistakes in a workflow whose shape is wrong somewhere, so that one run of
    ``validate`` reports them all.

    The keys at fault in steps are set aside (broken agents become placeholders) and the
    rest is checked as usual; nothing is reported that setting a key aside could cause.
    """
    steps = data.get("steps")
    agents = data.get("agents")
    if not isinstance(steps, list) or not isinstance(agents, dict | None):
        return []
    steps = list(steps)
    agents = dict(agents or {})
    needs_dropped: set[str] = set()
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("@")))
        if loc[:1] == ("steps",) and len(loc) >= 3 and isinstance(loc[1], int):
            step = steps[loc[1]]
            key = loc[2]
            if not isinstance(step, dict) or key in (
                "id",
                "agent",
                "sequence",
                "parallel",
                "phases",
            ):
                return []
            step = steps[loc[1]] = {k: v for k, v in step.items() if k != key}
            if key == "needs" or err["type"] == "extra_forbidden":  # maybe a misspelt needs
                needs_dropped.add(str(step.get("id")))
        elif loc[:1] == ("agents",) and len(loc) >= 2:
            agents[str(loc[1])] = {"kind": "noop"}
        else:
            return []
    try:
        workflow = Workflow.model_validate({**data, "steps": steps, "agents": agents})
    except pydantic.ValidationError:
        return []
    return [
        p
        for p in check(workflow, where, base_dir)
        if not (
            "is not upstream of" in p.message
            and any(p.message.startswith(f"step {sid!r}:") for sid in needs_dropped)
        )
    ]


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """libyaml's errors in plain words, placed where the mistake starts where it can tell."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = exc.context or ""
    what = f"{problem} ({context})" if context else problem
    label = "YAML syntax error"
    here = exc.context_mark
    if problem.startswith("mapping values are not allowed"):
        what = _COLON_HINT
    elif "while scanning a quoted scalar" in context and here is not None:
        mark, what = here, "the quoted text that starts here is never closed"
    elif context.startswith("while parsing a flow") and here is not None and exc.problem_mark:
        opening, closing = ("[", "]") if "sequence" in context else ("{", "}")
        end = exc.problem_mark
        mark = here
        what = (
            f"the {opening!r} here has no matching {closing!r} "
            f"(expected ',' or {closing!r} at line {end.line + 1}, column {end.column + 1})"
        )
    elif problem.startswith("but found another document"):
        what = "a second document starts here; a workflow file holds one document"
    elif problem.startswith("could not determine a constructor for the tag"):
        tag = problem.rsplit(" ", 1)[-1]
        label = "YAML error"
        what = f"unknown tag {tag}; workflows use no YAML tags (quote the value if it is text)"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(f"{label}: {what}", file, line, col)


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
    if err["type"] == "missing" and len(loc) == 2 and loc[0] == "agents":
        from counterpoint.agents.registry import known_kinds

        message = (
            f"agent {loc[1]!r}: missing required key 'kind'; "
            f"known kinds: {', '.join(known_kinds())}"
        )
    if err["type"] == "value_error" and len(loc) >= 2 and loc[0] == "inputs":
        message = f"input {loc[1]!r}: " + message.split(": ", 1)[-1]
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
