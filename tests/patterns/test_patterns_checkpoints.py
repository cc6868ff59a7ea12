"""Validation checkpoints (``validate:``): each kind fails the attempt with a message naming the
checkpoint and the reason and showing the output; a retry gets the errors as feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace

CODE = """\
import pydantic

SEEN = []

class Spec(pydantic.BaseModel):
    n: int
    name: str

async def give(ctx):
    return ctx.input

def long_enough(output):
    return True if len(output.get("text", "")) >= 5 else "text is too short"

def never(output):
    return False

def score(output):
    return output["a"] + output["b"]

async def improve(ctx):
    errors = tuple(ctx.handoff.errors) if ctx.handoff is not None else None
    SEEN.append((ctx.step_id, ctx.attempt, errors))
    return {"confidence": 0.4 if ctx.attempt == 1 else 0.9}
"""


def one_step(validate: str, output: str) -> str:
    return f"""\
name: t
agents:
  give: {{kind: python, function: MOD:give}}
steps:
  - id: s
    agent: give
    input: {output}
    validate: {validate}
  - {{id: after, agent: give, needs: s, input: 1}}
"""


CASES = [
    pytest.param(
        "{required: [requirements, risks]}",
        "{requirements: [r1], risks: []}",
        "missing or empty: risks",
        '{"requirements": ["r1"], "risks": []}',
        id="required",
    ),
    pytest.param(
        "{required: [requirements]}",
        "just text",
        "expected a mapping with requirements",
        '"just text"',
        id="required-not-a-mapping",
    ),
    pytest.param(
        "{schema: {type: object, properties: {n: {type: integer}}, required: [n, m]}}",
        "{n: three}",
        "schema: n: 'three' is not of type 'integer'",
        '{"n": "three"}',
        id="schema",
    ),
    pytest.param(
        "{schema: {type: object, required: [n, m]}}",
        "{n: 1}",
        "schema: the output: 'm' is a required property",
        '{"n": 1}',
        id="schema-required",
    ),
    pytest.param(
        "{model: MOD:Spec}",
        "{n: x, name: a}",
        "model Spec: n: Input should be a valid integer",
        '{"n": "x", "name": "a"}',
        id="model",
    ),
    pytest.param(
        "{model: MOD:Spec}",
        "{n: 1}",
        "model Spec: name: Field required",
        '{"n": 1}',
        id="model-missing-field",
    ),
    pytest.param(
        '{quality: {score: "${{ output.confidence }}", at_least: 0.7}}',
        "{confidence: 0.5}",
        "quality score 0.5 is below 0.7",
        '{"confidence": 0.5}',
        id="quality-score",
    ),
    pytest.param(
        '{quality: {score: "${{ output.confidence }}", at_least: 0.7}}',
        "{other: 1}",
        "quality score is not a number: None",
        '{"other": 1}',
        id="quality-score-missing",
    ),
    pytest.param(
        "{quality: {score: MOD:score, at_least: 10}}",
        "{a: 2, b: 3}",
        "quality score 5 is below 10",
        '{"a": 2, "b": 3}',
        id="quality-score-function",
    ),
    pytest.param(
        "{quality: {check: MOD:long_enough}}",
        "{text: abc}",
        "quality check: text is too short",
        '{"text": "abc"}',
        id="quality-check",
    ),
    pytest.param(
        "{quality: {check: MOD:never}}",
        "{text: abc}",
        "quality check: failed",
        '{"text": "abc"}',
        id="quality-check-false",
    ),
    pytest.param(
        "{}",
        "{result: 1, blocking_errors: [db is down]}",
        "the agent reported blocking errors: ['db is down']",
        '"blocking_errors": ["db is down"]',
        id="blocking-errors",
    ),
]


@pytest.mark.parametrize(("validate", "output", "reason", "shown"), CASES)
def test_a_failing_checkpoint_fails_the_step(
    ws: Workspace, validate: str, output: str, reason: str, shown: str
) -> None:
    result = ws.run(ws.load(one_step(validate, output), CODE))
    assert result.status is cp.RunStatus.FAILED
    step = result.steps["s"]
    assert step.status is cp.StepState.FAILED
    assert step.error is not None
    assert step.error.startswith("checkpoint after 's' failed: ")
    assert reason in step.error
    assert "the output was" in step.error and shown in step.error
    assert step.output is None  # nothing downstream sees an output that failed
    assert result.steps["after"].status is cp.StepState.SKIPPED


PASSING = [
    pytest.param("{required: [requirements, risks]}", "{requirements: [r], risks: [x]}"),
    pytest.param("{schema: {type: object, required: [n]}}", "{n: 1}"),
    pytest.param("{model: MOD:Spec}", "{n: 1, name: a}"),
    pytest.param(
        '{quality: {score: "${{ output.confidence }}", at_least: 0.7}}', "{confidence: 0.7}"
    ),
    pytest.param("{quality: {score: MOD:score, at_least: 5}}", "{a: 2, b: 3}"),
    pytest.param("{quality: {check: MOD:long_enough}}", "{text: abcdef}"),
    pytest.param("{}", "{blocking_errors: []}"),
    pytest.param("{blocking_errors: false}", "{blocking_errors: [ignored]}"),
]


@pytest.mark.parametrize(("validate", "output"), PASSING)
def test_a_passing_checkpoint_lets_the_output_through(
    ws: Workspace, validate: str, output: str
) -> None:
    result = ws.run(ws.load(one_step(validate, output), CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["s"].error
    assert result.steps["s"].attempts == 1
    assert result.outputs["s"] is not None


def test_every_reason_is_given(ws: Workspace) -> None:
    validate = (
        "{required: [a], schema: {type: object, required: [b]}, "
        'quality: {score: "${{ output.c }}", at_least: 1}}'
    )
    result = ws.run(ws.load(one_step(validate, "{c: 0, blocking_errors: [x]}"), CODE))
    error = result.steps["s"].error or ""
    assert "blocking errors" in error
    assert "missing or empty: a" in error
    assert "'b' is a required property" in error
    assert "quality score 0 is below 1" in error


def test_a_checkpoint_failure_is_retried_and_the_retry_sees_why(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      give: {kind: python, function: MOD:give}
      improve: {kind: python, function: MOD:improve}
    steps:
      - sequence:
          id: spec
          steps:
            - {id: analyze, agent: give, input: {facts: [1]}}
            - id: write
              agent: improve
              retries: {max: 2, backoff: 0}
              validate: {quality: {score: "${{ output.confidence }}", at_least: 0.7}}
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["write"].error
    write = result.steps["write"]
    assert write.attempts == 2
    assert result.outputs["write"] == {"confidence": 0.9}
    seen = ws.mod().SEEN  # type: ignore[attr-defined]
    assert [(s, a) for s, a, _ in seen] == [("write", 1), ("write", 2)]
    assert seen[0][2] == ()
    (feedback,) = seen[1][2]
    assert feedback.startswith("checkpoint after 'write' failed: quality score 0.4 is below 0.7")
    assert '{"confidence": 0.4}' in feedback
    assert write.errors == [feedback]


def test_a_checkpoint_failure_counts_as_an_attempt_on_the_clock(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      improve: {kind: python, function: MOD:improve}
    steps:
      - id: write
        agent: improve
        estimate: 2s
        retries: {max: 1, backoff: 1s, jitter: 0}
        validate: {quality: {score: "${{ output.confidence }}", at_least: 0.7}}
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert ws.backend is not None
    assert ws.backend.started == [("write", 1, 0.0), ("write", 2, 3.0)]
    assert result.steps["write"].end == 5.0
    # outside a sequence there is no handoff package
    assert ws.mod().SEEN == [("write", 1, None), ("write", 2, None)]  # type: ignore[attr-defined]


def test_an_unusable_checkpoint_is_reported_when_loading(ws: Workspace) -> None:
    with pytest.raises(cp.WorkflowInvalid, match="not a pydantic model"):
        ws.load(one_step("{model: MOD:give}", "{}"), CODE)
    with pytest.raises(cp.WorkflowInvalid, match="schema is not valid"):
        ws.load(one_step("{schema: {type: 12}}", "{}"), CODE)
    with pytest.raises(cp.WorkflowInvalid, match="needs at_least"):
        ws.load(one_step('{quality: {score: "${{ output.x }}"}}', "{}"), CODE)


def test_validate_is_the_yaml_name_of_validate_() -> None:
    from counterpoint.model.workflow import Step, Validation

    step = Step.model_validate(
        {"id": "s", "agent": "a", "validate": {"required": ["k"], "schema": {"type": "object"}}}
    )
    assert step.validate_ == Validation(required=("k",), schema={"type": "object"})
    assert step.validate_ is not None and step.validate_.json_schema == {"type": "object"}
    assert step.validate_.blocking_errors is True


def test_a_simulation_does_not_check_outputs_it_never_made(ws: Workspace) -> None:
    # simulate calls no agent: there is no output to check, so checkpoints and gates cannot
    # fail a simulated run
    text = """\
    name: t
    agents:
      give: {kind: python, function: MOD:give}
    steps:
      - sequence:
          id: seq
          steps:
            - {id: a, agent: give, estimate: 1s, validate: {required: [x]}}
            - id: b
              agent: give
              estimate: 2s
              validate: {quality: {score: "${{ output.c }}", at_least: 0.5}}
          gate: {required: [y]}
      - {id: c, agent: give, needs: seq, estimate: 1s}
    """
    result = ws.simulate(ws.load(text, CODE))
    assert ws.statuses(result) == dict.fromkeys(["a", "b", "seq", "c"], "succeeded")
    assert ws.times(result) == {
        "a": (0.0, 1.0),
        "b": (1.0, 3.0),
        "seq": (3.0, 3.0),
        "c": (3.0, 4.0),
    }
