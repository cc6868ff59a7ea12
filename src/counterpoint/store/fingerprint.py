"""What a run was started from: a workflow's definition text and its hash, and what changed."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from pydantic_core import to_jsonable_python

from counterpoint.model.workflow import Workflow

__all__ = ["callable_name", "changes", "definition", "fingerprint"]


def callable_name(value: object) -> object:
    if callable(value):
        module = getattr(value, "__module__", "?")
        return f"{module}:{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def definition(workflow: Workflow) -> str:
    """The YAML text the workflow came from, or its definition as JSON (built in Python;
    functions appear as ``module:name``)."""
    if workflow.text is not None:
        return workflow.text
    data = to_jsonable_python(workflow, fallback=callable_name, by_alias=True)
    # compact, so that the C encoder does it; pretty-printed only to show a difference
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _readable(text: str) -> list[str]:
    if text.startswith("{"):
        try:
            return json.dumps(json.loads(text), indent=1, sort_keys=True).splitlines()
        except ValueError:
            pass
    return text.splitlines()


def fingerprint(text: str) -> str:
    """The hash that says whether a definition changed."""
    return hashlib.sha256(text.encode()).hexdigest()


def _semantic(workflow: Workflow) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable_python(workflow, fallback=callable_name, by_alias=True)
    return data


def _old_semantic(old_text: str, source: str) -> dict[str, Any] | None:
    """The definition a run started from, as data (``None`` if it cannot be read now)."""
    from counterpoint.errors import WorkflowInvalid
    from counterpoint.model.load import loads

    if old_text.startswith("{"):
        try:
            data = json.loads(old_text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    try:
        return _semantic(loads(old_text, source))
    except WorkflowInvalid:
        return None


def _walk(items: object) -> Iterator[tuple[str, object]]:
    """(id, definition) of every step and construct in a list of items, nested ones too."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in ("sequence", "parallel", "phases"):
            block = item.get(key)
            if isinstance(block, dict):
                inner = {k: v for k, v in block.items() if k not in ("steps", "streams", "phases")}
                yield str(block.get("id")), inner
                yield from _walk(block.get("steps"))
                for stream in (block.get("streams") or {}).values():
                    yield from _walk(stream)
                for phase in block.get("phases") or []:
                    if isinstance(phase, dict):
                        yield from _walk(phase.get("steps"))
                        for stream in (phase.get("streams") or {}).values():
                            yield from _walk(stream)
                break
        else:
            yield str(item.get("id")), item


def changes(old_text: str, new: Workflow, source: str, limit: int = 40) -> list[str]:
    """What differs between the definition a run started from and ``new``: a summary of the
    steps, agents and inputs that changed, then a unified diff. Empty when only comments or
    layout changed."""
    old = _old_semantic(old_text, source)
    now = _semantic(new)
    summary: list[str] = []
    if old is not None:
        if old == now:
            return []
        old_steps = dict(_walk(old.get("steps", [])))
        new_steps = dict(_walk(now["steps"]))
        added = [s for s in new_steps if s not in old_steps]
        removed = [s for s in old_steps if s not in new_steps]
        changed = [s for s in new_steps if s in old_steps and old_steps[s] != new_steps[s]]
        for label, names in (("added", added), ("removed", removed), ("changed", changed)):
            if names:
                summary.append(f"steps {label}: {', '.join(names)}")
        old_agents, new_agents = old.get("agents", {}), now["agents"]
        changed_agents = sorted(
            a for a in set(old_agents) | set(new_agents) if old_agents.get(a) != new_agents.get(a)
        )
        if changed_agents:
            summary.append(f"agents changed: {', '.join(changed_agents)}")
        if old.get("inputs") != now["inputs"]:
            summary.append("inputs changed")
        other = ("name", "description", "defaults", "max_concurrency")
        if any(old.get(f) != now[f] for f in other):
            summary.append("workflow settings changed")
    diff = list(
        difflib.unified_diff(
            _readable(old_text),
            _readable(definition(new)),
            "when the run started",
            "now",
            lineterm="",
        )
    )
    if len(diff) > limit:
        diff = [*diff[:limit], f"... {len(diff) - limit} more lines"]
    return summary + diff
