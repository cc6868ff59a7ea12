"""Agent definitions that cannot work are reported with their place, never run."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.agents.python import import_function
from counterpoint.agents.registry import build_agent, check_agent, get_kind


def _problems(tmp_path: Path, agents: str) -> list[str]:
    """Load a workflow with these agents (one step using the first); FILE:LINE:COL lines."""
    path = tmp_path / "wf.yaml"
    first = textwrap.dedent(agents).strip().split(":", 1)[0]
    path.write_text(
        "name: bad-agents\nagents:\n"
        + textwrap.indent(textwrap.dedent(agents).strip() + "\n", "  ")
        + f"steps:\n  - {{id: s, agent: {first}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    prefix = f"{path}:"
    lines = [str(p) for p in info.value.problems]
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix) :] for line in lines]


def test_unknown_kind_with_did_you_mean(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "a: {kind: pyhton, function: 'x:y'}")
    assert len(problems) == 1
    line, col, message = problems[0].split(":", 2)
    assert (line, col) == ("3", "7")
    assert message.startswith(" agent 'a': unknown kind 'pyhton' (did you mean 'python'?); ")
    known = message.split("known kinds: ")[1].split(", ")
    assert {"noop", "program", "python", "sleep"} <= set(known)


def test_unknown_kind_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "a: {kind: zzz}")
    assert "unknown kind 'zzz'; known kinds: " in problem
    assert "did you mean" not in problem


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("{kind: program}", "3:6: agent 'a' (program): missing required key 'argv'"),
        ("{kind: python}", "3:6: agent 'a' (python): missing required key 'function'"),
        (
            "{kind: program, argv: [echo], stdin: yaml}",
            "3:36: agent 'a' (program): stdin: expected 'json', 'text' or 'none', got 'yaml'",
        ),
        (
            "{kind: program, argv: [echo, '${{ inputs.x }}']}",
            "3:22: agent 'a' (program): argv: ${{ inputs.x }}: a program template can use "
            "input.KEY, step.id, step.attempt, step.idempotency_key and run.id",
        ),
        (
            "{kind: python, function: nocolon}",
            "3:21: agent 'a' (python): function: expected 'module:function', got 'nocolon'",
        ),
        (
            "{kind: python, function: 'cp_no_such_module_xyz:f'}",
            "3:21: agent 'a' (python): function: cannot import module 'cp_no_such_module_xyz':"
            " No module named 'cp_no_such_module_xyz'",
        ),
    ],
)
def test_bad_options_are_reported_where_they_are(tmp_path: Path, agent: str, expected: str) -> None:
    assert _problems(tmp_path, f"a: {agent}") == [expected]


def test_misspelt_option_suggests_the_right_one(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "a: {kind: program, args: [echo]}")
    assert "3:22: agent 'a' (program): unknown key 'args' (did you mean 'argv'?)" in problems


def test_python_function_that_is_missing_or_not_callable(
    tmp_path: Path, pymodule: Callable[[str], str]
) -> None:
    mod = pymodule("VALUE = 3\n\ndef real(ctx):\n    return 1\n")
    problems = _problems(
        tmp_path,
        f"""
        a: {{kind: python, function: "{mod}:missing"}}
        b: {{kind: python, function: "{mod}:VALUE"}}
        c: {{kind: python, function: "{mod}:real"}}
        """,
    )
    assert problems == [
        f"3:21: agent 'a' (python): function: module '{mod}' has no 'missing'",
        f"4:21: agent 'b' (python): function: '{mod}:VALUE' is not callable",
    ]


@pytest.mark.parametrize(
    "source",
    ["raise RuntimeError('import-time failure')\n", "def f(:\n    pass\n"],
    ids=["raises-on-import", "syntax-error"],
)
def test_python_module_that_fails_to_import_is_a_problem_not_a_crash(
    tmp_path: Path, pymodule: Callable[[str], str], source: str
) -> None:
    mod = pymodule(source)
    problems = _problems(tmp_path, f'a: {{kind: python, function: "{mod}:f"}}')
    assert len(problems) == 1
    assert problems[0].startswith(
        f"3:21: agent 'a' (python): function: cannot import module '{mod}'"
    )


def test_every_bad_agent_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
        a: {kind: noop}
        b: {kind: pyhton}
        c: {kind: program}
        d: {kind: sleep, seconds: soon}
        """,
    )
    assert [p.split(":", 2)[0] for p in problems] == ["4", "5", "6"]
    assert "unknown kind 'pyhton'" in problems[0]
    assert "missing required key 'argv'" in problems[1]
    assert "agent 'd' (sleep): seconds: bad duration 'soon'" in problems[2]


def test_builder_problems_name_the_path() -> None:
    b = cp.WorkflowBuilder("bad")
    b.agent("p", kind="program")
    b.agent("q", kind="pyhton")
    b.step("s", agent="p")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    assert [(p.path, p.line, p.message) for p in info.value.problems] == [
        ("agents.p", None, "agent 'p' (program): missing required key 'argv'"),
        (
            "agents.q.kind",
            None,
            "agent 'q': unknown kind 'pyhton' (did you mean 'python'?); "
            "known kinds: approval, llm, noop, program, python, sleep, subagent, wait",
        ),
    ]


def test_builder_rejects_a_non_callable_function_object() -> None:
    b = cp.WorkflowBuilder("bad")
    b.agent("f", function=42)  # type: ignore[arg-type]
    b.step("s", agent="f")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    problems = info.value.problems
    assert {p.path for p in problems} == {"agents.f.function"}
    assert "agent 'f' (python): function: expected a function, got 42" in [
        p.message for p in problems
    ]


def test_registry_api_errors() -> None:
    with pytest.raises(cp.UnknownAgentKind) as info:
        get_kind("nope")
    assert info.value.kind == "nope"
    assert {"noop", "program", "python", "sleep"} <= set(info.value.known)
    assert isinstance(info.value, cp.AgentConfigError)

    spec = cp.AgentSpec(kind="program", options={})
    assert check_agent("x", spec, Path.cwd()) == [
        ((), "agent 'x' (program): missing required key 'argv'")
    ]
    with pytest.raises(cp.AgentConfigError) as built:
        build_agent("x", spec, Path.cwd())
    assert str(built.value).startswith("agent 'x': ")
    assert "argv" in str(built.value)


def test_import_function_errors_are_agent_config_errors(tmp_path: Path) -> None:
    for target, fragment in [
        ("nocolon", "expected 'module:function'"),
        (":f", "expected 'module:function'"),
        ("os:", "expected 'module:function'"),
        ("os:no_such_function_here", "module 'os' has no 'no_such_function_here'"),
        ("os:sep", "'os:sep' is not callable"),
    ]:
        with pytest.raises(cp.AgentConfigError) as info:
            import_function(target)
        assert fragment in str(info.value), target
    assert import_function("os.path:join") is __import__("os").path.join
