"""Helpers for the agent tests: Python modules written into tmp_path, workflows on disk; for
the subagent tests, a home folder of their own and a project folder."""

from __future__ import annotations

import os
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import counterpoint as cp


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """sys.path restored after the test, and the modules it named removed from sys.modules.

    ``import_function`` appends the workflow's folder to ``sys.path`` for good; this keeps
    one test's folder and modules from leaking into the next.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def pymodule(tmp_path: Path, isolated_imports: list[str]) -> Callable[[str], str]:
    """Write a module into tmp_path under a unique name; returns the module's name."""

    def write(source: str) -> str:
        name = f"cp_agent_mod_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        isolated_imports.append(name)
        return name

    return write


@pytest.fixture
def workflow_file(tmp_path: Path) -> Callable[[str], cp.Workflow]:
    """Write YAML into tmp_path/workflow.yaml and load it (its folder is the base dir)."""

    def write(text: str) -> cp.Workflow:
        path = tmp_path / "workflow.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return cp.load(path)

    return write


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own (never the developer's ~/.claude), no model chosen
    from the environment, no OpenAI endpoint. The subagent tests use it in every test
    (``pytestmark = pytest.mark.usefixtures("home")``)."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(folder))
    for name in list(os.environ):
        if name == "COUNTERPOINT_MODEL" or name.upper().startswith("OPENAI_"):
            monkeypatch.delenv(name)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp_path as a project: it has a .git folder, and workflows are written in it."""
    (tmp_path / ".git").mkdir()
    return tmp_path
