"""``kind: llm``: real workflows against a real OpenAI-compatible server on loopback
(``llmserver``): what is sent, what comes back, tokens, retries, timeouts, stand-ins, keys."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmserver import PATH, LlmServer, Reply, chat, error, serve

import counterpoint as cp
from counterpoint.scheduler.engine import Engine

MODELS = "llm_test_models_cp7d41"  # the output_model module, a name no other test uses

MODELS_SOURCE = """\
from typing import Literal

from pydantic import BaseModel, Field


class Review(BaseModel):
    verdict: Literal["ship", "hold"]
    score: int = Field(ge=0, le=10)
    notes: list[str] = []


class NotAModel:
    pass


def offline(ctx):
    return {"summary": f"offline stand-in for {ctx.input}", "step": ctx.step_id}
"""


@pytest.fixture(autouse=True)
def _no_developer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the developer's OpenAI settings leaks in, and loopback never goes through a
    proxy."""
    for name in list(os.environ):
        if name.upper().startswith("OPENAI_") or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    with serve() as server:
        yield server


@pytest.fixture
def models(tmp_path: Path, isolated_imports: list[str]) -> str:
    """The module with the pydantic models and the stand-in, in the workflows' folder."""
    (tmp_path / f"{MODELS}.py").write_text(MODELS_SOURCE, encoding="utf-8")
    isolated_imports.append(MODELS)
    return MODELS


def load(tmp_path: Path, text: str) -> cp.Workflow:
    """The workflow from YAML, with tmp_path as its folder (where modules are imported from)."""
    return cp.loads(textwrap.dedent(text), str(tmp_path / "workflow.yaml"))


def one_step(tmp_path: Path, name: str, agent: str) -> cp.Workflow:
    """A workflow called ``name`` of one step, ``s`` (input "hi"), whose agent ``m`` is the
    flow mapping ``{agent}``."""
    return load(
        tmp_path,
        f"""
        name: {name}
        agents:
          m: {{{agent}}}
        steps:
          - {{id: s, agent: m, input: hi}}
        """,
    )


def run(wf: cp.Workflow, **options: object) -> cp.RunResult:
    return asyncio.run(cp.run(wf, **options))  # type: ignore[arg-type]


def events(result: cp.RunResult, name: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.step_id, dict(e.data)) for e in result.events if e.name == name]


# (1) plain text: what is sent


def test_a_plain_answer_is_the_output_and_the_request_carries_model_system_and_prompt(
    tmp_path: Path, llm: LlmServer
) -> None:
    llm.reply(
        chat("the moon pulls the sea"),
        chat("Tides rise twice a day."),
        chat("fine"),
    )
    wf = load(
        tmp_path,
        f"""
        name: plain
        agents:
          notes: {{kind: llm, model: gpt-notes, base_url: "{llm.base_url}"}}
          writer:
            kind: llm
            model: gpt-writer
            base_url: "{llm.base_url}"
            system: You are terse.
            prompt: "Summarise ${{{{ input.topic }}}} using: ${{{{ upstream.notes }}}}"
            temperature: 0.2
            max_tokens: 50
          reader: {{kind: llm, model: gpt-reader, base_url: "{llm.base_url}"}}
        steps:
          - {{id: notes, agent: notes, input: what moves the tides?}}
          - {{id: write, agent: writer, needs: notes, input: {{topic: tides}}}}
          - {{id: read, agent: reader, needs: write, input: {{n: 1}}}}
        """,
    )
    result = run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert result.outputs == {
        "notes": "the moon pulls the sea",
        "write": "Tides rise twice a day.",
        "read": "fine",
    }
    assert [r.path for r in llm.requests] == [PATH] * 3
    notes, write, read = (r.body for r in llm.requests)
    # without a prompt, the input itself is the user message
    assert notes == {
        "model": "gpt-notes",
        "messages": [{"role": "user", "content": "what moves the tides?"}],
    }
    assert write == {
        "model": "gpt-writer",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Summarise tides using: the moon pulls the sea"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }
    # without a prompt and with upstream steps: the input with their outputs, as JSON
    assert read is not None and read["model"] == "gpt-reader"
    (message,) = read["messages"]
    assert message["role"] == "user"
    assert json.loads(message["content"]) == {
        "input": {"n": 1},
        "upstream": {"write": "Tides rise twice a day."},
    }
    first = llm.requests[0].headers
    assert first["content-type"] == "application/json"
    assert first["authorization"] == "Bearer not-needed"  # no key: local servers take any


def test_feedback_instructions_are_added_to_the_system_prompt(
    tmp_path: Path, llm: LlmServer
) -> None:
    llm.reply(chat("shorter now"))
    wf = load(
        tmp_path,
        f"""
        name: feedback-llm
        agents:
          listen: {{kind: wait, event: feedback_received, timeout: 60}}
          writer:
            kind: llm
            model: gpt-writer
            base_url: "{llm.base_url}"
            system: You are terse.
            prompt: "Rewrite the draft (${{{{ step.id }}}})."
        triggers:
          - {{on: feedback_received, instruct: rewrite}}
        steps:
          - {{id: ask, agent: listen}}
          - {{id: rewrite, agent: writer, needs: ask}}
        """,
    )

    def send(engine: Engine) -> None:
        data = {"text": "Too long and unclear. Please cut it to one page."}
        asyncio.get_running_loop().call_soon(engine.send, "feedback_received", data, "test")

    result = run(wf, on_engine=send)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert result.outputs["rewrite"] == "shorter now"
    (request,) = llm.requests
    assert request.body["messages"] == [
        {"role": "system", "content": "You are terse.\n\nPlease cut it to one page."},
        {"role": "user", "content": "Rewrite the draft (rewrite)."},
    ]


def test_a_prompt_without_references_is_sent_as_written(tmp_path: Path, llm: LlmServer) -> None:
    llm.reply(chat("ok"))
    wf = load(
        tmp_path,
        f"""
        name: constant-prompt
        agents:
          m: {{kind: llm, model: gpt-x, base_url: "{llm.base_url}", prompt: Say hello.}}
        steps:
          - {{id: s, agent: m, input: {{ignored: true}}}}
        """,
    )
    result = run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    (request,) = llm.requests
    assert request.body["messages"] == [{"role": "user", "content": "Say hello."}]


@pytest.mark.parametrize("named", [False, True], ids=["default-variables", "named-variables"])
def test_the_endpoint_and_key_come_from_the_environment(
    tmp_path: Path, llm: LlmServer, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    url_env, key_env = (
        ("TEAM_LLM_URL", "TEAM_LLM_KEY") if named else ("OPENAI_BASE_URL", "OPENAI_API_KEY")
    )
    names = f", base_url_env: {url_env}, api_key_env: {key_env}" if named else ""
    key = f"sk-env-{uuid.uuid4().hex}"
    monkeypatch.setenv(url_env, llm.base_url)
    monkeypatch.setenv(key_env, key)
    llm.reply(chat("from the environment"))
    wf = one_step(tmp_path, "env", f"kind: llm, model: gpt-env{names}")
    result = run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert result.outputs["s"] == "from the environment"
    (request,) = llm.requests
    assert request.headers["authorization"] == f"Bearer {key}"


# (2) structured output

SCHEMA = """\
            output_schema:
              type: object
              required: [title, tags]
              properties:
                title: {type: string}
                tags: {type: array, items: {type: string}}
              additionalProperties: false
"""


def _structured(tmp_path: Path, llm: LlmServer, retries: int = 0) -> cp.Workflow:
    return load(
        tmp_path,
        f"""
        name: structured
        agents:
          m:
            kind: llm
            model: gpt-json
            base_url: "{llm.base_url}"
{SCHEMA}
        steps:
          - {{id: s, agent: m, input: tag this, retries: {{max: {retries}, backoff: 0}}}}
        """,
    )


def test_a_valid_json_answer_is_the_output_and_the_schema_is_asked_for(
    tmp_path: Path, llm: LlmServer
) -> None:
    llm.reply(chat(json.dumps({"title": "Tides", "tags": ["sea", "moon"]})))
    result = run(_structured(tmp_path, llm))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert result.outputs["s"] == {"title": "Tides", "tags": ["sea", "moon"]}
    (request,) = llm.requests
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "output",
            "schema": {
                "type": "object",
                "required": ["title", "tags"],
                "properties": {
                    "title": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "additionalProperties": False,
            },
        },
    }


def test_an_answer_that_does_not_fit_fails_the_attempt_and_a_retry_that_fits_succeeds(
    tmp_path: Path, llm: LlmServer
) -> None:
    llm.reply(
        chat(json.dumps({"title": 3, "tags": ["sea"]})),
        chat(json.dumps({"title": "Tides", "tags": []})),
    )
    result = run(_structured(tmp_path, llm, retries=1))
    step = result.steps["s"]
    assert result.status is cp.RunStatus.SUCCEEDED, step
    assert step.attempts == 2
    assert step.output == {"title": "Tides", "tags": []}
    assert (
        step.errors[0] == "the answer does not fit output_schema: title: 3 is not of type 'string'"
    )
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "Sure! Here is the JSON you asked for",
            "the answer is not JSON: Sure! Here is the JSON you asked for",
        ),
        (
            json.dumps({"title": "x"}),
            "the answer does not fit output_schema: (top): 'tags' is a required property",
        ),
        (
            json.dumps({"title": "x", "tags": [], "extra": 1}),
            "the answer does not fit output_schema: (top): Additional properties are not "
            "allowed ('extra' was unexpected)",
        ),
    ],
    ids=["not-json", "missing-key", "extra-key"],
)
def test_an_answer_that_does_not_fit_fails_the_step_saying_why(
    tmp_path: Path, llm: LlmServer, content: str, message: str
) -> None:
    llm.reply(chat(content))
    result = run(_structured(tmp_path, llm))
    step = result.steps["s"]
    assert result.status is cp.RunStatus.FAILED
    assert step.status is cp.StepState.FAILED
    assert step.error == message
    assert step.attempts == 1


def _reviewer(tmp_path: Path, llm: LlmServer, model: str, retries: int = 0) -> cp.Workflow:
    return load(
        tmp_path,
        f"""
        name: review
        agents:
          m: {{kind: llm, model: gpt-review, base_url: "{llm.base_url}", output_model: "{model}"}}
        steps:
          - {{id: review, agent: m, input: the diff, retries: {{max: {retries}, backoff: 0}}}}
        """,
    )


def test_output_model_checks_the_answer_with_the_pydantic_model(
    tmp_path: Path, llm: LlmServer, models: str
) -> None:
    import importlib

    llm.reply(
        chat(json.dumps({"verdict": "ship", "score": 11})),
        chat(json.dumps({"verdict": "hold", "score": 4})),
    )
    result = run(_reviewer(tmp_path, llm, f"{models}:Review", retries=1))
    step = result.steps["review"]
    assert result.status is cp.RunStatus.SUCCEEDED, step
    assert step.errors[0] == (
        "the answer does not fit Review: score: Input should be less than or equal to 10"
    )
    assert step.output == {"verdict": "hold", "score": 4, "notes": []}  # the model's defaults
    review = importlib.import_module(models).Review
    schema = llm.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema == review.model_json_schema()


def test_output_model_that_is_not_a_pydantic_model_is_refused_before_the_run(
    tmp_path: Path, llm: LlmServer, models: str
) -> None:
    with pytest.raises(cp.WorkflowInvalid) as info:
        run(_reviewer(tmp_path, llm, f"{models}:NotAModel"))
    assert f"'{models}:NotAModel' is not a pydantic model" in str(info.value)
    assert llm.requests == []


# (3) tokens


TOKENS = """\
        name: tokens
        resources:
          rate_limits:
            llm: {{requests: 100/s, tokens: 1000/0.3s}}
          budgets:
            tokens: {budget}
        agents:
          m: {{kind: llm, model: gpt-count, base_url: "{url}", charge: [tokens]}}
        steps:
          - {{id: a, agent: m, input: one, uses: {{llm: {{requests: 1, tokens: 1}}}}}}
          - {{id: b, agent: m, input: two, needs: a, uses: {{llm: {{tokens: 400}}}}}}
          - {{id: c, agent: m, input: three, needs: b}}
"""


@pytest.mark.parametrize(
    ("budget", "status"),
    [("{limit: 1000, when_spent: fail}", cp.RunStatus.FAILED), ("1000", cp.RunStatus.PAUSED)],
    ids=["fail", "pause"],
)
def test_reported_tokens_are_charged_to_the_rate_limit_and_the_budget(
    tmp_path: Path, llm: LlmServer, budget: str, status: cp.RunStatus
) -> None:
    llm.reply(
        chat("first", prompt_tokens=600, completion_tokens=100),
        chat("second", prompt_tokens=300, completion_tokens=100),
        chat("never asked"),
    )
    result = run(load(tmp_path, TOKENS.format(budget=budget, url=llm.base_url)))
    a, b, c = (result.steps[k] for k in "abc")
    assert (a.status, b.status) == (cp.StepState.SUCCEEDED, cp.StepState.SUCCEEDED)
    # 700 + 400 tokens reported: the budget of 1000 is spent, c never starts
    assert result.status is status
    assert c.status is cp.StepState.CANCELLED
    assert len(llm.requests) == 2 and llm.pending == 1
    assert result.error is not None
    assert result.error.startswith("budget 'tokens' is spent (1100 of 1000)")
    assert events(result, "llm_usage") == [
        (
            "a",
            {
                "model": "gpt-count",
                "prompt_tokens": 600,
                "completion_tokens": 100,
                "total_tokens": 700,
            },
        ),
        (
            "b",
            {
                "model": "gpt-count",
                "prompt_tokens": 300,
                "completion_tokens": 100,
                "total_tokens": 400,
            },
        ),
    ]
    # the rate limit: a took 1 token at admission and 699 more when the answer came, so b's
    # 400 fit only once those left the 0.3 s window
    assert a.end is not None and b.start is not None
    assert b.start - a.end >= 0.25
    assert llm.requests[1].at - llm.requests[0].at >= 0.25


def test_without_usage_nothing_is_charged(tmp_path: Path, llm: LlmServer) -> None:
    llm.reply(chat("a", usage=False), chat("b", usage=False), chat("c", usage=False))
    budget = "{limit: 1000, when_spent: fail}"
    result = run(load(tmp_path, TOKENS.format(budget=budget, url=llm.base_url)))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert events(result, "llm_usage") == []
    a, b = result.steps["a"], result.steps["b"]
    assert a.end is not None and b.start is not None
    assert b.start - a.end < 0.29  # nothing held b back


def test_tokens_count_against_a_limit_the_step_uses_only_by_requests(
    tmp_path: Path, llm: LlmServer
) -> None:
    llm.reply(chat("first", prompt_tokens=800, completion_tokens=100), chat("second"))
    wf = load(
        tmp_path,
        f"""
        name: tokens-by-requests
        resources:
          rate_limits:
            llm: {{requests: 100/s, tokens: 1000/0.3s}}
        agents:
          m: {{kind: llm, model: gpt-count, base_url: "{llm.base_url}"}}
        steps:
          - {{id: a, agent: m, input: one, uses: {{llm: 1}}}}
          - {{id: b, agent: m, input: two, needs: a, uses: {{llm: {{tokens: 400}}}}}}
        """,
    )
    result = run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    a, b = result.steps["a"], result.steps["b"]
    assert a.end is not None and b.start is not None
    assert b.start - a.end >= 0.25  # 900 tokens of 1000 were used in the window


# (4) 429 and Retry-After


def test_a_429_with_retry_after_ms_is_retried_after_that_delay(
    tmp_path: Path, llm: LlmServer
) -> None:
    # 600 ms: longer than the client's own first backoff (at most 500 ms), so the gap shows
    # the header was honoured
    llm.reply(error(429, "Rate limit reached", retry_after_ms="600"), chat("at last"))
    wf = one_step(
        tmp_path,
        "retry-after",
        f'kind: llm, model: gpt-busy, base_url: "{llm.base_url}", retries: 2',
    )
    result = run(wf)
    step = result.steps["s"]
    assert result.status is cp.RunStatus.SUCCEEDED, step
    assert step.output == "at last"
    assert step.attempts == 1  # the client retried within one attempt
    first, second = llm.requests
    assert second.at - first.at >= 0.59
    assert second.body == first.body


@pytest.mark.parametrize(("step_retries", "requests", "attempts"), [(0, 2, 1), (1, 4, 2)])
def test_429_every_time_fails_the_step_naming_429(
    tmp_path: Path, llm: LlmServer, step_retries: int, requests: int, attempts: int
) -> None:
    llm.otherwise = error(429, "Rate limit reached for gpt-busy", retry_after_ms="10")
    wf = load(
        tmp_path,
        f"""
        name: always-429
        agents:
          m: {{kind: llm, model: gpt-busy, base_url: "{llm.base_url}", retries: 1}}
        steps:
          - {{id: s, agent: m, input: hi, retries: {{max: {step_retries}, backoff: 0}}}}
        """,
    )
    result = run(wf)
    step = result.steps["s"]
    assert result.status is cp.RunStatus.FAILED
    assert step.status is cp.StepState.FAILED
    assert step.error is not None
    assert step.error.startswith(f"the endpoint {llm.base_url} answered 429: ")
    assert "Rate limit reached for gpt-busy" in step.error
    assert step.attempts == attempts  # a 429 is retryable: the step's retries apply
    assert len(llm.requests) == requests  # the client's retry in each attempt


def test_a_5xx_is_retried_and_a_4xx_is_not(tmp_path: Path, llm: LlmServer) -> None:
    llm.reply(
        error(503, "overloaded", retry_after_ms="10"),
        chat("after the 503"),
        error(400, "bad request: unknown model"),
    )
    wf = load(
        tmp_path,
        f"""
        name: statuses
        agents:
          m: {{kind: llm, model: gpt-x, base_url: "{llm.base_url}", retries: 2}}
        steps:
          - {{id: ok, agent: m, input: hi}}
          - {{id: bad, agent: m, input: hi, needs: ok, retries: {{max: 3, backoff: 0}}}}
        """,
    )
    result = run(wf)
    assert result.outputs["ok"] == "after the 503"
    bad = result.steps["bad"]
    assert bad.status is cp.StepState.FAILED
    assert bad.error is not None
    assert bad.error.startswith(f"the endpoint {llm.base_url} answered 400: ")
    assert bad.attempts == 1  # a 400 is not retryable, by the client or by the step
    assert len(llm.requests) == 3


# (5) malformed answers

_MALFORMED = [
    pytest.param(Reply(200, b"<html>gateway</html>", content_type="text/html"), id="not-json"),
    pytest.param(Reply(200, {"id": "chatcmpl-1", "object": "chat.completion"}), id="no-choices"),
    pytest.param(Reply(200, {**chat(), "choices": []}), id="empty-choices"),
    pytest.param(Reply(200, chat(None)), id="content-null"),
    pytest.param(
        Reply(200, b"<html>gateway</html>"),
        id="not-json-labelled-json",
    ),
    pytest.param(
        Reply(200, b""),
        id="empty-body",
    ),
    pytest.param(
        Reply(200, {**chat(), "choices": [None]}),
        id="choice-null",
    ),
    pytest.param(
        Reply(200, {**chat(), "usage": {"prompt_tokens": 1, "total_tokens": "many"}}),
        id="usage-not-numbers",
    ),
]


@pytest.mark.parametrize("reply", _MALFORMED)
def test_a_malformed_answer_fails_the_step_with_a_clear_message(
    tmp_path: Path, llm: LlmServer, reply: Reply
) -> None:
    llm.reply(reply)
    wf = one_step(
        tmp_path, "malformed", f'kind: llm, model: gpt-x, base_url: "{llm.base_url}", retries: 0'
    )
    result = run(wf)
    step = result.steps["s"]
    assert result.status is cp.RunStatus.FAILED
    assert step.status is cp.StepState.FAILED
    assert step.error is not None
    assert step.error.startswith(f"the endpoint {llm.base_url} gave a malformed answer")
    assert "Traceback" not in step.error and "\n" not in step.error
    assert len(llm.requests) == 1


# (6) timeout


def test_an_endpoint_slower_than_the_timeout_fails_the_step(tmp_path: Path, llm: LlmServer) -> None:
    llm.reply(Reply(200, chat("too late"), delay=5.0))  # cut short when the server stops
    wf = one_step(
        tmp_path,
        "slow",
        f'kind: llm, model: gpt-slow, base_url: "{llm.base_url}", timeout: 200ms, retries: 0',
    )
    result = run(wf)
    step = result.steps["s"]
    assert result.status is cp.RunStatus.FAILED
    assert step.status is cp.StepState.FAILED
    assert step.error == f"the endpoint {llm.base_url} did not answer within 0.2s"
    assert step.start is not None and step.end is not None
    assert 0.15 <= step.end - step.start < 2.0
    assert len(llm.requests) == 1


# (7) no endpoint


@pytest.mark.parametrize("named", [False, True], ids=["default-variables", "named-variables"])
def test_without_an_endpoint_or_a_stand_in_the_step_says_what_to_set(
    tmp_path: Path, named: bool
) -> None:
    names = ", base_url_env: TEAM_LLM_URL, api_key_env: TEAM_LLM_KEY" if named else ""
    url, key = ("TEAM_LLM_URL", "TEAM_LLM_KEY") if named else ("OPENAI_BASE_URL", "OPENAI_API_KEY")
    wf = load(
        tmp_path,
        f"""
        name: offline
        agents:
          m: {{kind: llm, model: gpt-offline{names}}}
        steps:
          - {{id: s, agent: m, input: hi, retries: {{max: 2, backoff: 0}}}}
        """,
    )
    result = run(wf)
    step = result.steps["s"]
    assert result.status is cp.RunStatus.FAILED
    assert step.error == (
        f"no endpoint configured for model 'gpt-offline': set ${url} (and ${key} if it needs "
        "a key), or give the agent a base_url or a stand_in"
    )
    assert step.attempts == 1  # retrying cannot help
    assert events(result, "stand_in") == []


def test_without_an_endpoint_the_stand_in_answers_and_says_so(tmp_path: Path, models: str) -> None:
    wf = load(
        tmp_path,
        f"""
        name: offline
        agents:
          m: {{kind: llm, model: gpt-offline, stand_in: "{models}:offline"}}
        steps:
          - {{id: s, agent: m, input: the report}}
        """,
    )
    result = run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps
    assert result.outputs["s"] == {"summary": "offline stand-in for the report", "step": "s"}
    assert events(result, "stand_in") == [
        ("s", {"model": "gpt-offline", "reason": "no endpoint configured"})
    ]
    assert events(result, "llm_usage") == []


def test_with_an_endpoint_the_stand_in_is_not_used(
    tmp_path: Path, llm: LlmServer, models: str
) -> None:
    llm.reply(chat("the real answer"))
    wf = load(
        tmp_path,
        f"""
        name: online
        agents:
          m: {{kind: llm, model: gpt-x, base_url: "{llm.base_url}", stand_in: "{models}:offline"}}
        steps:
          - {{id: s, agent: m, input: the report}}
        """,
    )
    result = run(wf)
    assert result.outputs["s"] == "the real answer"
    assert events(result, "stand_in") == []
    assert len(llm.requests) == 1


# (8) no key in the workflow


def test_an_api_key_in_the_workflow_is_refused_at_validation(tmp_path: Path) -> None:
    secret = "sk-written-in-the-file-0123456789"
    with pytest.raises(cp.WorkflowInvalid) as info:
        load(
            tmp_path,
            f"""
            name: leaky
            agents:
              m: {{kind: llm, model: gpt-x, api_key: {secret}}}
            steps:
              - {{id: s, agent: m}}
            """,
        )
    (problem,) = info.value.problems
    text = str(problem)
    assert text.startswith(f"{tmp_path / 'workflow.yaml'}:4:")
    assert "api_key: a key is not written in the workflow" in text
    assert "name it with api_key_env (default OPENAI_API_KEY)" in text
    assert secret not in text


# (9) the key is sent, never kept


def test_the_key_is_sent_as_authorization_and_never_reaches_the_store(
    tmp_path: Path, llm: LlmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-proj-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    marker = f"answer-{uuid.uuid4().hex}"
    llm.reply(chat(marker, prompt_tokens=5, completion_tokens=5), error(500, "internal error"))
    wf = load(
        tmp_path,
        f"""
        name: keyed
        agents:
          m: {{kind: llm, model: gpt-keyed, base_url: "{llm.base_url}", retries: 0}}
        steps:
          - {{id: ok, agent: m, input: hi}}
          - {{id: broken, agent: m, input: hi, needs: ok}}
        """,
    )
    folder = tmp_path / "s"
    store = cp.open_store(folder)
    try:
        result = run(wf, store=store)
        assert result.steps["ok"].output == marker
        assert result.steps["broken"].status is cp.StepState.FAILED
        assert [r.headers["authorization"] for r in llm.requests] == [f"Bearer {key}"] * 2
        files = sorted(p for p in folder.iterdir() if p.name.startswith("store.db"))
        names = {p.name for p in files}
        assert {"store.db", "store.db-wal"} <= names, names
        raw = b"".join(p.read_bytes() for p in files)
        assert marker.encode() in raw  # the run is in what was read
        for needle in (key, key[-16:], key[:24]):
            assert needle.encode() not in raw
            assert needle.encode("utf-16-le") not in raw
    finally:
        asyncio.run(store.close())
    raw = b"".join(p.read_bytes() for p in folder.iterdir())
    assert key.encode() not in raw and key[-16:].encode() not in raw
