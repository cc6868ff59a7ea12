"""``kind: subagent`` in a workflow: an agent's own folder of subagent files in a run, and
mistakes in the agent or in its file placed at FILE:LINE:COL of the workflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from subagentkit import BODY, PY, llm_options, md, put, put_in, write_echo, write_workflow

import counterpoint as cp
from counterpoint.agents.registry import build_agent
from counterpoint.agents.subagents import SubagentAgent
from counterpoint.model.workflow import AgentSpec

pytestmark = pytest.mark.usefixtures("home")


def _problems(path: Path) -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    return [str(p).replace(f"{path}:", "", 1) for p in info.value.problems]


# --- an agent's own folder of subagent files ---------------------------------------------


def test_a_workflow_runs_a_subagent_from_its_own_folder(project: Path) -> None:
    own = put_in(project / "agents", "reviewer.md", md("reviewer", "own", model="gpt-own"))
    put(project, "reviewer.md", md("reviewer", "project", body="Not this one."))
    flows = project / "flows"
    flows.mkdir()
    echo = write_echo(project)
    wf_file = write_workflow(
        flows,
        f"""
        name: review
        agents:
          rev: {{kind: subagent, name: reviewer, folder: ../agents, via: command,
                 command: ["{PY}", "{echo}"]}}
        steps:
          - {{id: review, agent: rev, input: the diff}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {"stdin": f"{BODY}\n\nthe diff", "argv": []}
    # through the llm kind: the file's body is the system prompt, its model the model
    spec = AgentSpec.model_validate(
        {"kind": "subagent", "name": "reviewer", "folder": str(own.parent)}
    )
    agent = build_agent("rev", spec, flows)
    assert isinstance(agent, SubagentAgent)
    assert agent.subagent.path == own
    assert agent.description == "own"
    options = llm_options(agent)
    assert (options.system, options.model) == (BODY, "gpt-own")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "{kind: subagent, name: reviewer, folder: nope}",
            "4:41: agent 'rev' (subagent): folder: the subagent folder {project}/nope does not "
            "exist ('nope', read from {project})",
        ),
        (
            "{kind: subagent, name: reviwer, folder: nope}",  # the name is not checked too
            "4:40: agent 'rev' (subagent): folder: the subagent folder {project}/nope does not "
            "exist ('nope', read from {project})",
        ),
        (
            "{kind: subagent, name: reviewer, folder: ''}",
            "4:41: agent 'rev' (subagent): folder: string should have at least 1 character, got ''",
        ),
        (
            "{kind: subagent, name: writr, folder: agents}",
            "4:25: agent 'rev' (subagent): name: no subagent 'writr' (did you mean 'writer'?); "
            "found: reviewer, writer (looked in {project}/agents, {project}/.claude/agents and "
            "{home}/.claude/agents)",
        ),
    ],
)
def test_mistakes_with_the_own_folder_are_placed_in_the_workflow(
    project: Path, home: Path, agent: str, expected: str
) -> None:
    put(project, "reviewer.md", md("reviewer"))
    put_in(project / "agents", "writer.md", md("writer"))
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        f"name: review\nagents:\n  pass: {{kind: noop}}\n  rev: {agent}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    assert _problems(wf_file) == [expected.format(project=project, home=home.resolve())]


def test_the_own_folder_is_checked_again_when_the_agent_is_built(project: Path) -> None:
    own = put_in(project / "agents", "reviewer.md", md("reviewer", model="gpt-x")).parent
    wf_file = write_workflow(
        project,
        """
        name: review
        agents:
          rev: {kind: subagent, name: reviewer, folder: agents, stand_in: "os:getcwd"}
        steps:
          - {id: review, agent: rev}
        """,
    )
    wf = cp.load(wf_file)  # valid now
    (own / "reviewer.md").unlink()
    own.rmdir()
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.run_sync(wf)
    message = str(info.value)
    assert message.startswith(f"{wf_file}: agent 'rev': ")
    assert f"the subagent folder {own} does not exist ('agents', read from {project})" in message


# --- validation of kind: subagent --------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "{kind: subagent, name: reviwer}",
            "4:25: agent 'rev' (subagent): name: no subagent 'reviwer' (did you mean "
            "'reviewer'?); found: reviewer (looked in {agents} and {home})",
        ),
        ("{kind: subagent}", "4:8: agent 'rev' (subagent): missing required key 'name'"),
        (
            "{kind: subagent, name: reviewer, via: shell}",
            "4:41: agent 'rev' (subagent): via: expected 'llm' or 'command', got 'shell'",
        ),
        (
            "{kind: subagent, name: reviewer, via: command}",
            "4:8: agent 'rev' (subagent): via: command needs command, the program and its "
            "arguments (e.g. [claude, -p])",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: []}",
            "4:55: agent 'rev' (subagent): command: list should have at least 1 item after "
            "validation, not 0, got a list",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: [claude], temperature: 0}",
            "4:8: agent 'rev' (subagent): temperature: for via: llm only",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: [claude], model: opus}",
            "4:8: agent 'rev' (subagent): model is for via: llm; with via: command, give the "
            "model in the command (e.g. [claude, -p, --model, opus])",
        ),
        (
            "{kind: subagent, name: reviewer, command: [claude], cwd: x}",
            "4:8: agent 'rev' (subagent): command, cwd: for via: command only",
        ),
        (
            "{kind: subagent, name: reviewer, api_key: sk-123}",
            "4:8: agent 'rev' (subagent): api_key: a key is not written in the workflow (it "
            "would be kept in the journal): put it in an environment variable and name it with "
            "api_key_env (default OPENAI_API_KEY)",
        ),
        (
            "{kind: subagent, name: reviewer, output_schema: {type: 12}}",
            "4:41: agent 'rev' (subagent): output_schema: output_schema is not a JSON Schema: "
            "12 is not valid under any of the given schemas",
        ),
        (
            "{kind: subagent, name: reviewer, temprature: 0.5}",
            "4:41: agent 'rev' (subagent): unknown key 'temprature' (did you mean 'temperature'?)",
        ),
    ],
)
def test_mistakes_in_the_agent_are_placed_in_the_workflow(
    project: Path, home: Path, agent: str, expected: str
) -> None:
    put(project, "reviewer.md", md("reviewer"))
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        f"name: review\nagents:\n  pass: {{kind: noop}}\n  rev: {agent}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    expected = expected.format(
        agents=project / ".claude" / "agents", home=home.resolve() / ".claude" / "agents"
    )
    assert _problems(wf_file) == [expected]


def test_a_broken_subagent_file_is_reported_from_the_workflow(project: Path) -> None:
    broken = put(project, "reviewer.md", "---\nname: reviewer\ndescription: [a\n---\nbody\n")
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        "name: review\nagents:\n  rev: {kind: subagent, name: reviewer}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    assert _problems(wf_file) == [
        "3:25: agent 'rev' (subagent): name: subagent 'reviewer' cannot be read:\n"
        f"{broken}:3:14: YAML syntax error: the '[' here has no matching ']' (expected ',' or "
        "']' at line 4, column 1)"
    ]
