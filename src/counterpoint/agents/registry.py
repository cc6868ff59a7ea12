"""Agent kinds: the built-in ones and plugins from the ``counterpoint.agents`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pydantic

from counterpoint.agents.base import Agent, AgentKind
from counterpoint.errors import AgentConfigError, UnknownAgentKind
from counterpoint.model.messages import Loc, did_you_mean, explain_error
from counterpoint.model.workflow import AgentSpec

__all__ = ["ENTRY_POINT_GROUP", "build_agent", "check_agent", "get_kind", "known_kinds"]

ENTRY_POINT_GROUP = "counterpoint.agents"

_kinds: dict[str, AgentKind] = {}
_plugins: dict[str, bool] = {"loaded": False}
_broken: dict[str, str] = {}  # plugin kinds that failed to load -> why


def _builtins() -> dict[str, AgentKind]:
    from counterpoint.agents.builtin import APPROVE, NOOP, SLEEP, WAIT
    from counterpoint.agents.llm import LLM
    from counterpoint.agents.program import PROGRAM
    from counterpoint.agents.python import PYTHON
    from counterpoint.agents.subagents import SUBAGENT

    return {
        "python": PYTHON,
        "program": PROGRAM,
        "noop": NOOP,
        "sleep": SLEEP,
        "wait": WAIT,
        "approval": APPROVE,
        "llm": LLM,
        "subagent": SUBAGENT,
    }


def _load_plugins() -> None:
    """Load every plugin kind; one that fails is remembered, and only asking for it fails."""
    _plugins["loaded"] = True
    _broken.clear()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _kinds:
            continue
        try:
            kind = ep.load()
            _kinds[ep.name] = kind() if isinstance(kind, type) else kind
        except Exception as exc:
            _broken[ep.name] = (
                f"the agent kind plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            )


def known_kinds() -> list[str]:
    """Names of every agent kind available, plugins included."""
    if not _kinds:
        _kinds.update(_builtins())
    if not _plugins["loaded"]:
        _load_plugins()
    return sorted(_kinds)


def get_kind(name: str) -> AgentKind:
    """The agent kind called ``name``; raises ``UnknownAgentKind``."""
    if not _kinds:
        _kinds.update(_builtins())
    if name not in _kinds and not _plugins["loaded"]:
        _load_plugins()
    if name in _broken and name not in _kinds:
        raise AgentConfigError(_broken[name])
    try:
        return _kinds[name]
    except KeyError:
        raise UnknownAgentKind(name, known_kinds()) from None


def check_agent(name: str, spec: AgentSpec, base_dir: Path) -> list[tuple[Loc, str]]:
    """Problems with one agent definition, each with its place inside the definition."""
    try:
        kind = get_kind(spec.kind)
    except UnknownAgentKind as exc:
        hint = did_you_mean(spec.kind, exc.known)
        return [
            (
                ("kind",),
                f"agent {name!r}: unknown kind {spec.kind!r}{hint}; "
                f"known kinds: {', '.join(exc.known)}",
            )
        ]
    except AgentConfigError as exc:
        return [(("kind",), f"agent {name!r}: {exc}")]
    try:
        kind.options.model_validate(spec.options, context={"base_dir": base_dir})
    except pydantic.ValidationError as exc:
        out: list[tuple[Loc, str]] = []
        for err in exc.errors():
            loc, message, _key = explain_error(err, kind.options)
            out.append((loc, f"agent {name!r} ({spec.kind}): {message}"))
        return out
    return []


def build_agent(name: str, spec: AgentSpec, base_dir: Path) -> Agent:
    """Make the agent that ``spec`` defines; raises ``AgentConfigError`` naming the agent."""
    kind = get_kind(spec.kind)
    try:
        options = kind.options.model_validate(spec.options, context={"base_dir": base_dir})
        return kind.build(spec, options, base_dir)
    except pydantic.ValidationError as exc:
        raise AgentConfigError(f"agent {name!r}: {exc}") from None
    except AgentConfigError as exc:
        raise AgentConfigError(f"agent {name!r}: {exc}") from None
