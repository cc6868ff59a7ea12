"""Helpers for the subagent tests: subagent files written into a folder's .claude/agents (or
any folder), workflows on disk, a command that echoes back what it was given, and the llm
options a ``kind: subagent`` agent was built with. The fixtures ``home`` and ``project`` are
in conftest.py."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from counterpoint.agents.llm import LlmOptions
from counterpoint.agents.subagents import SubagentAgent

PY = sys.executable

BODY = "You are a careful reviewer.\nName the worst problem first."

ECHO = """\
import json, sys
print(json.dumps({"stdin": sys.stdin.read(), "argv": sys.argv[1:]}))
"""


def md(
    name: str = "reviewer", description: str = "Reviews code.", body: str = BODY, **more: str
) -> str:
    front = [
        f"name: {name}",
        f"description: {description}",
        *(f"{k}: {v}" for k, v in more.items()),
    ]
    return "---\n" + "\n".join(front) + "\n---\n" + body + "\n"


def put(folder: Path, file: str, text: str) -> Path:
    agents = folder / ".claude" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    path = agents / file
    path.write_text(text, encoding="utf-8")
    return path


def put_in(folder: Path, file: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(text, encoding="utf-8")
    return path


def write_workflow(folder: Path, text: str) -> Path:
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_echo(folder: Path) -> str:
    path = folder / "echo.py"
    path.write_text(ECHO, encoding="utf-8")
    return str(path)


def llm_options(agent: SubagentAgent) -> LlmOptions:
    options = getattr(agent.inner, "options", None)
    assert isinstance(options, LlmOptions)
    return options
