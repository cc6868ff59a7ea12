"""``kind: subagent`` via the llm kind, as built (no network): the file's body as the system
prompt, which model is chosen, the options passed on, and a run offline with a stand-in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from subagentkit import BODY, llm_options, md, put, write_workflow

import counterpoint as cp
from counterpoint.agents.base import StepContext
from counterpoint.agents.llm import LlmOptions
from counterpoint.agents.registry import build_agent
from counterpoint.agents.subagents import Subagent, SubagentAgent, choose_model
from counterpoint.errors import AgentConfigError
from counterpoint.model.workflow import AgentSpec

pytestmark = pytest.mark.usefixtures("home")


def _llm_agent(project: Path, **options: object) -> SubagentAgent:
    spec = AgentSpec.model_validate({"kind": "subagent", "name": "reviewer", **options})
    agent = build_agent("rev", spec, project)
    assert isinstance(agent, SubagentAgent)
    return agent


def test_via_llm_the_body_is_the_system_prompt(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", model="gpt-4o-mini", tools="Read"))
    agent = _llm_agent(project)
    options = llm_options(agent)
    assert agent.via == "llm"
    assert (options.model, options.system, options.prompt) == ("gpt-4o-mini", BODY, None)
    assert agent.tools == ["Read"]
    ctx = StepContext(run_id="r", step_id="s", input="diff", instructions=["Be brief."])
    request = agent.inner.request(ctx)  # type: ignore[attr-defined]
    assert request["messages"] == [
        {"role": "system", "content": f"{BODY}\n\nBe brief."},
        {"role": "user", "content": "diff"},
    ]


@pytest.mark.parametrize(
    ("file_model", "option", "env", "expected"),
    [
        ("gpt-4o-mini", None, None, "gpt-4o-mini"),
        ("claude-sonnet-4-5", None, None, "claude-sonnet-4-5"),
        ("gpt-4o-mini", None, "llama3.1", "llama3.1"),
        ("gpt-4o-mini", "qwen2.5", "llama3.1", "llama3.1"),  # the environment wins
        ("gpt-4o-mini", "qwen2.5", None, "qwen2.5"),
        ("sonnet", None, "llama3.1", "llama3.1"),
        ("Opus", "qwen2.5", None, "qwen2.5"),
        (None, None, "llama3.1", "llama3.1"),
        ("haiku", None, "  ", None),
        ("inherit", None, None, None),
        (None, None, None, None),
    ],
)
def test_via_llm_the_environment_then_the_model_option_then_the_file(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_model: str | None,
    option: str | None,
    env: str | None,
    expected: str | None,
) -> None:
    more = {"model": file_model} if file_model else {}
    put(project, "reviewer.md", md("reviewer", **more))
    if env is not None:
        monkeypatch.setenv("COUNTERPOINT_MODEL", env)
    options = {"model": option} if option else {}
    if expected is not None:
        assert llm_options(_llm_agent(project, **options)).model == expected
        return
    why = (
        f"its file says model {file_model!r}, a Claude Code alias an OpenAI-compatible "
        "endpoint does not know"
        if file_model
        else "its file names none"
    )
    with pytest.raises(AgentConfigError) as info:
        _llm_agent(project, **options)
    assert str(info.value) == (
        f"agent 'rev': no model for subagent 'reviewer' ({why}): set the agent's model option "
        "or $COUNTERPOINT_MODEL"
    )


def test_choose_model_reads_the_environment_it_is_given() -> None:
    sub = Subagent("a", "b", "c", Path("a.md"), model="sonnet")
    assert choose_model(None, sub, {"COUNTERPOINT_MODEL": "m"}) == "m"
    with pytest.raises(AgentConfigError):
        choose_model(None, sub, {})


def test_via_llm_options_are_passed_on_and_the_rest_keep_the_llm_defaults(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", model="gpt-x"))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    options = llm_options(
        _llm_agent(
            project,
            base_url="http://127.0.0.1:9/v1",
            api_key_env="TEAM_KEY",
            temperature=0.2,
            max_tokens=300,
            timeout="90s",
            retries=0,
            charge=["llm"],
            output_schema=schema,
        )
    )
    assert options.base_url == "http://127.0.0.1:9/v1"
    assert (options.api_key_env, options.temperature, options.max_tokens) == ("TEAM_KEY", 0.2, 300)
    assert (options.timeout, options.retries, options.charge) == (90.0, 0, ["llm"])
    assert options.output_schema == schema
    defaults = LlmOptions(model="x")
    plain = llm_options(_llm_agent(project))
    for key in (
        "base_url",
        "base_url_env",
        "api_key_env",
        "temperature",
        "max_tokens",
        "timeout",
        "retries",
        "charge",
        "stand_in",
        "output_schema",
    ):
        assert getattr(plain, key) == getattr(defaults, key), key


def test_description_comes_from_the_file_unless_the_workflow_gives_one(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", model="gpt-x"))
    assert _llm_agent(project).description == "Reviews code."
    assert _llm_agent(project, description="Our reviewer.").description == "Our reviewer."


def test_via_llm_runs_offline_with_a_stand_in(
    project: Path, pymodule: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = pymodule(
        """
        def offline(ctx):
            return f"offline answer to {ctx.input}"
        """
    )
    put(project, "reviewer.md", md("reviewer", model="sonnet"))
    monkeypatch.setenv("COUNTERPOINT_MODEL", "llama3.1")
    wf_file = write_workflow(
        project,
        f"""
        name: review
        description: a subagent through the llm kind
        agents:
          rev: {{kind: subagent, name: reviewer, stand_in: "{module}:offline"}}
        steps:
          - {{id: review, agent: rev, input: the diff}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == "offline answer to the diff"
    stand_ins = [e.data for e in result.events if e.name == "stand_in"]
    assert stand_ins == [{"model": "llama3.1", "reason": "no endpoint configured"}]


def test_a_run_without_a_model_is_refused_before_it_starts(project: Path) -> None:
    put(project, "reviewer.md", md("reviewer", model="sonnet"))
    wf_file = write_workflow(
        project,
        """
        name: review
        agents:
          rev: {kind: subagent, name: reviewer}
        steps:
          - {id: review, agent: rev}
        """,
    )
    wf = cp.load(wf_file)  # valid: the model is chosen when the agent is built
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.run_sync(wf)
    assert str(info.value) == (
        f"{wf_file}: agent 'rev': no model for subagent 'reviewer' (its file says model "
        "'sonnet', a Claude Code alias an OpenAI-compatible endpoint does not know): set the "
        "agent's model option or $COUNTERPOINT_MODEL"
    )
