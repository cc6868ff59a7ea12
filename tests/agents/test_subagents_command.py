"""``kind: subagent`` via a command, end to end: the prompt on stdin or as an argument, the
output, failures; and the prompt the program is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from subagentkit import BODY, PY, md, put, write_echo, write_workflow

import counterpoint as cp
from counterpoint.agents.base import StepContext
from counterpoint.agents.registry import build_agent, known_kinds
from counterpoint.agents.subagents import SubagentAgent, render_prompt
from counterpoint.model.workflow import AgentSpec
from counterpoint.scheduler.core import StepState

pytestmark = pytest.mark.usefixtures("home")


def test_kind_subagent_is_known() -> None:
    assert "subagent" in known_kinds()


def test_via_command_the_prompt_goes_to_stdin_and_stdout_comes_back(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", tools="Read, Grep"))
    echo = write_echo(project)
    wf_file = write_workflow(
        project,
        f"""
        name: review
        agents:
          pass: {{kind: noop}}
          rev:
            kind: subagent
            name: reviewer
            via: command
            command: ["{PY}", "{echo}", --print]
        steps:
          - {{id: diff, agent: pass, input: "+ x = 1"}}
          - id: review
            agent: rev
            needs: diff
            input: "Review this diff:\\n${{{{ steps.diff.output }}}}"
        """,
    )
    wf = cp.load(wf_file)  # validates, the subagent found
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {
        "stdin": f"{BODY}\n\nReview this diff:\n+ x = 1",
        "argv": ["--print"],
    }


def test_via_command_the_prompt_can_be_an_argument(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    echo = write_echo(project)
    wf_file = write_workflow(
        project,
        f"""
        name: review
        agents:
          rev:
            {{kind: subagent, name: reviewer, via: command,
             command: ["{PY}", "{echo}", -p, "{{prompt}}"]}}
        steps:
          - {{id: review, agent: rev, input: {{file: a.py, lines: [1, 2]}}}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {
        "stdin": "",
        "argv": ["-p", f'{BODY}\n\n{{"file": "a.py", "lines": [1, 2]}}'],
    }


def _command_agent(project: Path, command: list[str], **options: object) -> SubagentAgent:
    spec = AgentSpec.model_validate(
        {"kind": "subagent", "name": "reviewer", "via": "command", "command": command, **options}
    )
    agent = build_agent("rev", spec, project)
    assert isinstance(agent, SubagentAgent)
    return agent


def _run_agent(agent: SubagentAgent, **ctx: object) -> object:
    import asyncio

    return asyncio.run(agent(StepContext(run_id="r", step_id="s", **ctx)))  # type: ignore[arg-type]


def test_via_command_instructions_json_input_and_no_input(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    agent = _command_agent(project, [PY, write_echo(project)])
    out = _run_agent(agent, input={"n": 1}, upstream={"diff": "+x"}, instructions=["Be brief."])
    assert out == {"stdin": f'{BODY}\n\nBe brief.\n\n{{"n": 1}}', "argv": []}
    assert _run_agent(agent) == {"stdin": BODY, "argv": []}


def test_via_command_elements_are_used_as_written(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    agent = _command_agent(
        project, [PY, write_echo(project), "${{ input }}", "$${{ x }}", "{prompt} ", "x{prompt}"]
    )
    assert _run_agent(agent, input="hi") == {
        "stdin": f"{BODY}\n\nhi",
        "argv": ["${{ input }}", "$${{ x }}", "{prompt} ", "x{prompt}"],
    }


def test_via_command_output_text_and_the_file_s_data(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", tools="Read, Grep", model="opus"))
    agent = _command_agent(project, [PY, "-c", "print(42)"], output="text")
    assert _run_agent(agent) == "42\n"
    assert agent.tools == ["Read", "Grep"]
    assert agent.description == "Reviews code."
    assert agent.subagent.model == "opus"
    assert agent.via == "command"


def test_via_command_a_failure_names_the_command(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    tool = project / "review-tool"
    tool.write_text(f"#!{PY}\nimport sys\nsys.stdin.read()\nsys.exit('no diff given')\n")
    tool.chmod(0o755)
    wf_file = write_workflow(
        project,
        f"""
        name: review
        agents:
          rev: {{kind: subagent, name: reviewer, via: command, command: ["{tool}"]}}
        steps:
          - {{id: review, agent: rev, retries: {{max: 1, backoff: 0}}}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    rec = result.steps["review"]
    assert rec.status is StepState.FAILED
    assert rec.attempts == 2  # an ordinary failure is retried
    assert rec.error == f"{tool} exited with code 1: no diff given"


def test_via_command_a_command_that_does_not_exist(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    for command in (["no-such-command-cp7"], ["no-such-command-cp7", "{prompt}"]):
        wf_file = write_workflow(
            project,
            f"""
            name: review
            agents:
              rev: {{kind: subagent, name: reviewer, via: command, command: {json.dumps(command)}}}
            steps:
              - {{id: review, agent: rev, retries: 2}}
            """,
        )
        rec = cp.run_sync(cp.load(wf_file)).steps["review"]
        assert rec.status is StepState.FAILED
        assert rec.attempts == 1  # not worth retrying
        assert rec.error is not None
        assert rec.error.startswith("cannot start 'no-such-command-cp7': "), rec.error


def test_via_command_a_long_prompt_on_stdin(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer"))
    count = [PY, "-c", "import sys; print(len(sys.stdin.read()))"]
    agent = _command_agent(project, count)
    text = "é" * 300_000  # more than a pipe holds
    assert _run_agent(agent, input=text) == len(BODY) + 2 + len(text)


def test_render_prompt_without_input_is_the_system_prompt() -> None:
    ctx = StepContext(run_id="r", step_id="s", input=None)
    assert render_prompt("sys", ctx) == "sys"
    assert render_prompt("sys", StepContext(run_id="r", step_id="s", input=0)) == "sys\n\n0"


def test_render_prompt_says_why_earlier_answers_were_not_accepted() -> None:
    from counterpoint.patterns.runtime import Handoff

    handoff = Handoff("seq", 1, "a", "out", {"a": "out"}, {}, {}, ("too short", "no title"))
    ctx = StepContext(run_id="r", step_id="s", input="write it", handoff=handoff)
    assert render_prompt("sys", ctx) == (
        "sys\n\nwrite it\n\nEarlier answers were not accepted:\n- too short\n- no title\n"
        "Answer again, fixing this."
    )
