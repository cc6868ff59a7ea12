"""The LLM example (examples/llm): the seed's feature_development sequence run by the
subagent files of examples/agents through an OpenAI-compatible endpoint. It validates; it
runs offline on its stand-ins (each answer and a ``stand_in`` event say so); and against a
chat-completions server on loopback (tests/agents/llmserver.py) the files' bodies are the
system prompts, structured answers are parsed and checked, and the tokens are charged."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

import counterpoint as cp
from counterpoint.agents.subagents import (
    CLAUDE_MODEL_ALIASES,
    find_subagents,
    load_subagent,
)

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "examples" / "agents"
EXAMPLE = ROOT / "examples" / "llm"
WORKFLOW = EXAMPLE / "feature_development.yaml"
CLI = [sys.executable, "-m", "counterpoint"]
REQUEST = (
    "Add a CSV export button to the reports page, run large exports as background jobs and "
    "show a progress bar while they run"
)
STEPS = ["analyze", "spec", "dependencies", "orchestrate"]
STEP_AGENTS = {
    "analyze": "analyze-product",
    "spec": "smart-spec-generator",
    "dependencies": "dependency-resolver",
    "orchestrate": "workflow-orchestrator",
}
NAMED = [
    "adaptive-learner",
    "analyze-product",
    "context-intelligence",
    "dependency-resolver",
    "execution-monitor",
    "policy-guardian",
    "project-manager",
    "smart-spec-generator",
    "workflow-orchestrator",
]
OFFLINE = "offline, deterministic stand-in for an LLM agent"


def _llmserver() -> ModuleType:
    """tests/agents/llmserver.py, imported once under its own name (as the agent tests do)."""
    if "llmserver" in sys.modules:
        return sys.modules["llmserver"]
    path = ROOT / "tests" / "agents" / "llmserver.py"
    spec = importlib.util.spec_from_file_location("llmserver", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llmserver"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


llmserver = _llmserver()


@pytest.fixture(scope="module", autouse=True)
def _own_stand_ins_module() -> Iterator[None]:
    """The example's stand-ins are the module ``stand_ins`` beside it: import it from there
    while these tests run, and forget it afterwards (another ``stand_ins`` may exist)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLE))
        mp.delitem(sys.modules, "stand_ins", raising=False)
        yield
        sys.modules.pop("stand_ins", None)


@pytest.fixture(autouse=True)
def _no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenAI endpoint, key or model of the developer's; no proxy for loopback; a home
    folder of the test's own (never the developer's ~/.claude/agents)."""
    for name in list(os.environ):
        if (
            name.upper().startswith("OPENAI_")
            or name == "COUNTERPOINT_MODEL"
            or name.lower() in ("http_proxy", "https_proxy", "all_proxy")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def llm() -> Iterator[Any]:
    with llmserver.serve() as server:
        yield server


def _run(**inputs: object) -> cp.RunResult:
    return cp.run_sync(WORKFLOW, inputs={"request": REQUEST, **inputs}, store=None)


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], check=False, capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def _events(result: cp.RunResult, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.step_id, dict(e.data)) for e in result.events if e.name == name]


def _schemas() -> dict[str, dict[str, Any] | None]:
    """Each step's output_schema, as the workflow declares it."""
    wf = cp.load(WORKFLOW)
    return {s: wf.agents[a].options.get("output_schema") for s, a in STEP_AGENTS.items()}


# --- the subagent files --------------------------------------------------------------------


def test_every_named_agent_of_the_seed_is_a_claude_code_subagent_file() -> None:
    assert sorted(p.stem for p in AGENTS.iterdir()) == NAMED  # nothing else in the folder
    found = find_subagents(EXAMPLE, folder="../agents")  # every file reads without a mistake
    for name in NAMED:
        sub = load_subagent(AGENTS / f"{name}.md")
        assert found[name].path == sub.path
        assert sub.name == name
        assert len(sub.description) > 80, name
        assert sub.tools and set(sub.tools) <= {"Read", "Grep", "Glob", "Bash", "Write", "Edit"}
        assert sub.model in CLAUDE_MODEL_ALIASES - {"inherit"}, name
        assert sub.extra == {}
        prompt = sub.system_prompt
        assert prompt.startswith(f"You are {name}"), name
        assert len(prompt) > 1200, name
        assert "JSON schema" in prompt, name  # says how to answer a structured step


# --- offline: the stand-ins -------------------------------------------------------------------


def test_the_example_validates() -> None:
    wf = cp.load(WORKFLOW)  # raises WorkflowInvalid listing every mistake
    assert wf.name == "feature-development-llm"
    steps = {s.id: s for s in wf.steps}
    assert list(steps) == [*STEPS, "feature"]  # one sequence
    for step, agent in STEP_AGENTS.items():
        assert (steps[step].agent, steps[step].uses) == (agent, {"llm": 1.0})
    for name in STEP_AGENTS.values():
        options = wf.agents[name].options
        assert wf.agents[name].kind == "subagent"
        assert (options["name"], options["folder"]) == (name, "../agents")
        assert options["charge"] == ["llm-tokens"]
    assert sorted(wf.inputs) == ["deadline_days", "project", "request", "workers"]
    assert wf.inputs["request"].default is None  # the only input without a default


def test_offline_every_answer_is_a_stand_in_and_says_so() -> None:
    result = _run()
    assert result.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in result.steps.items()}
    assert result.pattern == "sequential"
    assert _events(result, "stand_in") == [
        (s, {"model": "gpt-4o-mini", "reason": "no endpoint configured"}) for s in STEPS
    ]
    assert _events(result, "llm_usage") == [] and _events(result, "charged") == []
    outputs = {s: result.steps[s].output for s in STEPS}
    for step in ("analyze", "spec", "dependencies"):
        output = outputs[step]
        assert isinstance(output, dict) and output["stand_in"].startswith(OFFLINE), step
    strategy = outputs["orchestrate"]
    assert isinstance(strategy, str)
    assert strategy.splitlines()[0] == f"> Written by an {OFFLINE} (no endpoint configured)."
    assert result.outputs["feature"] == strategy  # the sequence's output is its last item's


def test_offline_the_stand_ins_do_the_work_of_each_agent() -> None:
    out = {s: _run().steps[s].output for s in STEPS}
    analysis, spec, plan, strategy = (out[s] for s in STEPS)
    assert isinstance(analysis, dict) and isinstance(spec, dict) and isinstance(plan, dict)
    assert [c["name"] for c in analysis["components"]] == ["exporter", "jobs", "reports", "ui"]
    assert [(r["id"], r["components"]) for r in spec["requirements"]] == [
        ("R1", ["exporter", "reports", "ui"]),
        ("R2", ["exporter", "jobs"]),
        ("R3", ["jobs", "ui"]),
    ]
    assert spec["confidence"] == 1.0
    assert [(t["id"], t["needs"], t["estimate_days"]) for t in plan["tasks"]] == [
        ("change-jobs", [], 2.0),
        ("change-ui", [], 2.0),
        ("change-exporter", ["change-jobs"], 2.0),
        ("change-reports", ["change-exporter", "change-ui"], 1.5),
    ]
    assert isinstance(strategy, str)
    assert "**parallel**: up to 2 independent tasks and 2 workers" in strategy
    assert "change-jobs → change-exporter → change-reports (5.5 days)." in strategy
    assert "Expected finish: day 5.5 on 2 workers; it meets the deadline of 10 days." in strategy
    one = _run(workers=1, deadline_days=5).steps["orchestrate"].output
    assert isinstance(one, str)
    assert "**resource-aware**: up to 2 tasks could run at once but there are 1 workers" in one
    assert "Expected finish: day 7.5 on 1 workers; it misses the deadline of 5 days" in one


def test_offline_answers_fit_the_schemas_the_model_is_given() -> None:
    result = _run()
    schemas = _schemas()
    assert schemas["orchestrate"] is None  # the strategy is Markdown text
    for step in ("analyze", "spec", "dependencies"):
        schema = schemas[step]
        assert schema is not None
        jsonschema.validate(result.steps[step].output, schema)


def test_offline_a_request_that_matches_no_component_fails_its_checkpoint() -> None:
    wf = cp.loads(
        WORKFLOW.read_text(encoding="utf-8").replace("retries: 1 ", "retries: 0 "),
        file=str(WORKFLOW),
    )
    result = cp.run_sync(wf, inputs={"request": "Make everything faster"}, store=None)
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["analyze"].error
    assert error is not None
    assert error.startswith("checkpoint after 'analyze' failed: missing or empty: components")
    assert result.steps["spec"].status is cp.StepState.SKIPPED


def test_offline_through_the_cli_in_a_few_seconds(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("OPENAI_") and k != "COUNTERPOINT_MODEL"
    }
    env["COUNTERPOINT_HOME"] = str(tmp_path)
    started = time.monotonic()
    proc = _cli(
        "run", str(WORKFLOW), "--input", f"request={REQUEST}", "--json", cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 10
    data = json.loads(proc.stdout)
    assert data["status"] == "succeeded"
    assert [(e["step"], e["name"]) for e in data["events"]] == [(s, "stand_in") for s in STEPS]
    assert data["steps"]["orchestrate"]["output"].startswith(f"> Written by an {OFFLINE}")
    human = _cli(
        "run",
        str(WORKFLOW),
        "--input",
        f"request={REQUEST}",
        "--store",
        ":memory:",
        cwd=tmp_path,
        env=env,
    )
    assert human.returncode == 0, human.stderr
    for step in STEPS:
        assert (
            f"{step}: stand_in {{'model': 'gpt-4o-mini', 'reason': 'no endpoint configured'}}"
            in human.stderr
        )
    assert "# Coordination strategy" in human.stdout


def test_the_plan_check_refuses_what_cannot_be_scheduled() -> None:
    import stand_ins  # the example's module (see _own_stand_ins_module)

    def plan(*tasks: tuple[str, list[str]]) -> dict[str, Any]:
        return {"tasks": [{"id": i, "needs": n} for i, n in tasks]}

    assert stand_ins.plan_is_sound(plan(("a", []), ("b", ["a"]))) is True
    assert stand_ins.plan_is_sound(plan(("a", ["x"]), ("a", []), ("b", ["b"]))) == (
        "task id 'a' is used twice; a needs 'x', which is no task; b needs itself"
    )
    assert stand_ins.plan_is_sound(plan(("a", ["c"]), ("b", ["a"]), ("c", ["b"]))) == (
        "dependency cycle: a needs c, c needs b, b needs a"
    )


# --- against an endpoint: the loopback server ---------------------------------------------------

ANALYSIS = {
    "summary": "Exports touch the reports page, the exporter and the job queue.",
    "components": [
        {"name": "reports", "why": "the button is on the reports page"},
        {"name": "exporter", "why": "it writes CSV"},
    ],
    "opportunities": ["the exporter already runs on the job queue"],
    "risks": ["large exports may time out"],
}
SPEC = {
    "title": "CSV export",
    "requirements": [
        {
            "id": "R1",
            "text": "The reports page must offer a CSV export.",
            "components": ["reports"],
        },
        {"id": "R2", "text": "Exports must run as background jobs.", "components": ["exporter"]},
    ],
    "acceptance_criteria": ["R1: the button downloads a CSV", "R2: a 1 GB export completes"],
    "risks": ["large exports may time out"],
    "open_questions": [],
    "confidence": 0.9,
}
PLAN = {
    "tasks": [
        {
            "id": "change-exporter",
            "title": "Background CSV export",
            "component": "exporter",
            "needs": [],
            "requirements": ["R2"],
            "estimate_days": 2,
        },
        {
            "id": "change-reports",
            "title": "Export button",
            "component": "reports",
            "needs": ["change-exporter"],
            "requirements": ["R1"],
            "estimate_days": 1,
        },
    ],
    "conflicts": [],
}
STRATEGY = "# Coordination strategy\n\nSequential: change-exporter, then change-reports."
TOKENS = {"analyze": (900, 300), "spec": (1500, 500), "dependencies": (2000, 400)}


def _answers(llm: Any, cycle_first: bool = False) -> None:
    chat = llmserver.chat
    replies = [
        chat(json.dumps(ANALYSIS), prompt_tokens=900, completion_tokens=300),
        chat(json.dumps(SPEC), prompt_tokens=1500, completion_tokens=500),
    ]
    if cycle_first:
        cyclic = copy.deepcopy(PLAN)
        cyclic["tasks"][0]["needs"] = ["change-reports"]
        replies.append(chat(json.dumps(cyclic), prompt_tokens=2000, completion_tokens=400))
    replies += [
        chat(json.dumps(PLAN), prompt_tokens=2000, completion_tokens=400),
        chat(STRATEGY, prompt_tokens=1000, completion_tokens=600),
    ]
    llm.reply(*replies)


def test_against_an_endpoint_the_subagent_files_are_the_system_prompts(
    llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answers(llm)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-test-key")
    monkeypatch.setenv("COUNTERPOINT_MODEL", "llama3.2")  # the environment picks the model
    result = _run()
    assert result.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in result.steps.items()}
    assert _events(result, "stand_in") == []
    assert result.outputs == {
        "analyze": ANALYSIS,
        "spec": SPEC,
        "dependencies": PLAN,
        "orchestrate": STRATEGY,
        "feature": STRATEGY,
    }
    assert len(llm.requests) == 4 and llm.pending == 0
    schemas = _schemas()
    for step, request in zip(STEPS, llm.requests, strict=True):
        body = request.body
        assert request.path == llmserver.PATH
        assert request.headers["authorization"] == "Bearer sk-loopback-test-key"
        assert body["model"] == "llama3.2"
        assert body["temperature"] == 0
        system, user = body["messages"]
        prompt = load_subagent(AGENTS / f"{STEP_AGENTS[step]}.md").system_prompt
        assert system == {"role": "system", "content": prompt}, step
        assert user["role"] == "user"
        if schemas[step] is None:
            assert "response_format" not in body
        else:
            assert body["response_format"] == {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schemas[step]},
            }
    messages = [json.loads(r.body["messages"][1]["content"]) for r in llm.requests]
    project = cp.load(WORKFLOW).inputs["project"].default
    assert messages[0] == {"request": REQUEST, "project": project}  # no upstream: the input
    assert messages[1] == {"input": {"request": REQUEST}, "upstream": {"analyze": ANALYSIS}}
    assert messages[2] == {"input": {"project": project}, "upstream": {"spec": SPEC}}
    assert messages[3] == {
        "input": {"workers": 2, "deadline_days": 10},
        "upstream": {"dependencies": PLAN},
    }


def test_against_an_endpoint_the_tokens_are_charged(
    llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answers(llm)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)  # a local server: no key needed
    result = _run()
    assert result.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in result.steps.items()}
    assert llm.requests[0].headers["authorization"] == "Bearer not-needed"
    usage = {**TOKENS, "orchestrate": (1000, 600)}
    assert _events(result, "llm_usage") == [
        (
            s,
            {
                "model": "gpt-4o-mini",
                "prompt_tokens": usage[s][0],
                "completion_tokens": usage[s][1],
                "total_tokens": sum(usage[s]),
            },
        )
        for s in STEPS
    ]
    # to the rate limit each step uses (its tokens dimension), and to the budget named in charge
    assert _events(result, "charged") == [
        (s, {"resource": r, "amounts": {"tokens": float(sum(usage[s]))}})
        for s in STEPS
        for r in ("*", "llm-tokens")
    ]


def test_against_an_endpoint_a_spent_token_budget_pauses_the_run(
    llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm.reply(
        llmserver.chat(json.dumps(ANALYSIS), prompt_tokens=45_000, completion_tokens=6_000),
        llmserver.chat("never asked"),
    )
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    result = _run()
    assert result.status is cp.RunStatus.PAUSED
    assert result.error is not None
    assert result.error.startswith("budget 'llm-tokens' is spent (51000 of 50000)"), result.error
    assert result.steps["analyze"].status is cp.StepState.SUCCEEDED  # a running step finishes
    assert result.steps["spec"].status is cp.StepState.CANCELLED
    assert len(llm.requests) == 1 and llm.pending == 1


def test_against_an_endpoint_a_plan_with_a_cycle_is_checked_and_asked_again(
    llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answers(llm, cycle_first=True)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    result = _run()
    assert result.status is cp.RunStatus.SUCCEEDED, {k: r.error for k, r in result.steps.items()}
    rec = result.steps["dependencies"]
    assert rec.attempts == 2
    (error,) = rec.errors
    assert error.startswith(
        "checkpoint after 'dependencies' failed: quality check: dependency cycle: "
        "change-exporter needs change-reports, change-reports needs change-exporter; "
    )
    assert result.outputs["dependencies"] == PLAN
    assert len(llm.requests) == 5
    first, second = (r.body for r in llm.requests[2:4])
    # asked again, the agent is told why its answer was not accepted
    assert second["messages"][:-1] == first["messages"]
    assert second["messages"][-1] == {
        "role": "user",
        "content": f"Earlier answers were not accepted:\n- {error}\nAnswer again, fixing this.",
    }
