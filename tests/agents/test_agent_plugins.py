"""Third-party agent kinds through the ``counterpoint.agents`` entry point group."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.agents import registry

PLUGIN_SOURCE = """
from pydantic import BaseModel, ConfigDict

BUILT = []


class ShoutOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suffix: str = "!"
    times: int = 1


class _Shout:
    def __init__(self, options):
        self.options = options

    async def __call__(self, ctx):
        return (str(ctx.input).upper() + self.options.suffix) * self.options.times


class ShoutKind:
    options = ShoutOptions

    def build(self, spec, options, base_dir):
        BUILT.append((spec.kind, str(base_dir)))
        return _Shout(options)


SHOUT = ShoutKind()
"""


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty the registry's caches, so that plugins are looked up again (and again after)."""
    monkeypatch.setattr(registry, "_kinds", {})
    monkeypatch.setattr(registry, "_plugins", {"loaded": False})


@pytest.fixture
def install_plugin(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated_imports: list[str],
    fresh_registry: None,
) -> Callable[..., str]:
    """Install a distribution in tmp_path publishing ``entry points``; returns its module."""

    def install(entry_points: dict[str, str], source: str = PLUGIN_SOURCE) -> str:
        tag = uuid.uuid4().hex[:8]
        module = f"cp_plugin_{tag}"
        root = tmp_path / f"site_{tag}"
        root.mkdir()
        (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        dist = root / f"cp_plugin_{tag}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: cp-plugin-{tag}\nVersion: 1.0\n", encoding="utf-8"
        )
        lines = [
            f"{name} = {target.format(module=module)}" for name, target in entry_points.items()
        ]
        (dist / "entry_points.txt").write_text(
            "[counterpoint.agents]\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
        monkeypatch.syspath_prepend(str(root))
        isolated_imports.append(module)
        return module

    return install


def _workflow(tmp_path: Path, agents: str, steps: str) -> cp.Workflow:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: plugins\nagents:\n"
        + textwrap.indent(textwrap.dedent(agents).lstrip("\n"), "  ")
        + "steps:\n"
        + textwrap.indent(textwrap.dedent(steps).lstrip("\n"), "  "),
        encoding="utf-8",
    )
    return cp.load(path)


def test_plugin_kinds_are_known(install_plugin: Callable[..., str]) -> None:
    install_plugin({"shout": "{module}:ShoutKind", "yell": "{module}:SHOUT"})
    kinds = registry.known_kinds()
    assert {"shout", "yell", "noop", "sleep", "python", "program"} <= set(kinds)
    assert kinds == sorted(kinds)


def test_a_plugin_kind_runs_in_a_workflow(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    module = install_plugin({"shout": "{module}:ShoutKind", "yell": "{module}:SHOUT"})
    wf = _workflow(
        tmp_path,
        """
        loud: {kind: shout, suffix: "?!", times: 2}
        plain: {kind: yell}
        """,
        """
        - {id: a, agent: loud, input: hello}
        - {id: b, agent: plain, input: "${{ steps.a.output }}", needs: [a]}
        """,
    )
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"a": "HELLO?!HELLO?!", "b": "HELLO?!HELLO?!!"}
    # A class is instantiated, an instance is used as it is; build() gets the workflow's folder.
    assert isinstance(registry.get_kind("shout"), sys.modules[module].ShoutKind)
    assert registry.get_kind("yell") is sys.modules[module].SHOUT
    assert sorted(sys.modules[module].BUILT) == [
        ("shout", str(tmp_path.resolve())),
        ("yell", str(tmp_path.resolve())),
    ]


def test_plugin_options_are_checked_with_positions(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    install_plugin({"shout": "{module}:ShoutKind"})
    with pytest.raises(cp.WorkflowInvalid) as info:
        _workflow(
            tmp_path,
            """
            loud: {kind: shout, sufix: "?"}
            many: {kind: shout, times: lots}
            """,
            """
            - {id: a, agent: loud}
            - {id: b, agent: many}
            """,
        )
    messages = [(p.line, p.message) for p in info.value.problems]
    assert len(messages) == 2
    assert messages[0][0] == 3
    assert messages[0][1] == "agent 'loud' (shout): unknown key 'sufix' (did you mean 'suffix'?)"
    assert messages[1][0] == 4
    assert messages[1][1].startswith("agent 'many' (shout): times: ")
    assert "whole number" in messages[1][1]


def test_unknown_kind_suggests_a_plugin_kind(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    install_plugin({"shout": "{module}:ShoutKind"})
    with pytest.raises(cp.WorkflowInvalid) as info:
        _workflow(tmp_path, "loud: {kind: shuot}\n", "- {id: a, agent: loud}\n")
    (problem,) = info.value.problems
    assert problem.message.startswith("agent 'loud': unknown kind 'shuot' (did you mean 'shout'?)")
    assert "shout" in problem.message.split("known kinds: ")[1].split(", ")


def test_a_plugin_cannot_replace_a_builtin_kind(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    install_plugin({"noop": "{module}:ShoutKind"})
    registry.known_kinds()
    wf = _workflow(tmp_path, "n: {kind: noop}\n", "- {id: a, agent: n, input: quiet}\n")
    assert cp.run_sync(wf).outputs == {"a": "quiet"}


def test_a_plugin_that_fails_to_load_is_reported(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    install_plugin({"ghost": "{module}:NoSuchKind"})
    with pytest.raises(cp.WorkflowInvalid) as info:
        _workflow(tmp_path, "g: {kind: ghost}\n", "- {id: a, agent: g}\n")
    (problem,) = info.value.problems
    assert problem.line == 3
    assert "the agent kind plugin 'ghost'" in problem.message
    assert "failed to load" in problem.message


def test_a_broken_plugin_does_not_hide_a_working_one(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    # Two distributions: one whose entry point cannot load, one that works. An agent of the
    # working kind must still be usable, whatever order the entry points come in.
    install_plugin({"ghost": "{module}:NoSuchKind"})
    install_plugin({"shout": "{module}:ShoutKind"})
    wf = _workflow(tmp_path, "loud: {kind: shout}\n", "- {id: a, agent: loud, input: hi}\n")
    assert cp.run_sync(wf).outputs == {"a": "HI!"}


def test_builtin_kinds_do_not_need_plugins_to_load(
    tmp_path: Path, install_plugin: Callable[..., str]
) -> None:
    install_plugin({"ghost": "{module}:NoSuchKind"})
    wf = _workflow(tmp_path, "n: {kind: noop}\n", "- {id: a, agent: n, input: 1}\n")
    assert cp.run_sync(wf).outputs == {"a": 1}
