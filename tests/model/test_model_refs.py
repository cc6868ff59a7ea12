"""References: parsing, templates, and resolution when a workflow runs."""

from __future__ import annotations

import pytest

import counterpoint as cp
from counterpoint.model.refs import (
    Reference,
    compile_template,
    find_references,
    lookup,
    parse_reference,
)


def test_parse_reference() -> None:
    ref = parse_reference("  steps.fetch.output.items.0 ")
    assert ref == Reference("steps.fetch.output.items.0", "steps", ("fetch", "output", "items", 0))
    assert str(ref) == "${{ steps.fetch.output.items.0 }}"


@pytest.mark.parametrize("bad", ["", "   ", "a..b", "0.a", "a.b c", "a.$x"])
def test_parse_reference_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_reference(bad)


def test_find_references_with_paths_and_escapes() -> None:
    value = {
        "a": "${{ inputs.x }}",
        "b": ["plain", "x ${{ steps.s.output.k }} y $${{ inputs.no }}"],
        "c": "$${{ inputs.escaped }}",
        "d": "${{ bad..ref }}",
        "e": 3,
    }
    found = sorted((where, str(r)) for where, r in find_references(value))
    assert found == [
        (("a",), "${{ inputs.x }}"),
        (("b", 1), "${{ steps.s.output.k }}"),
        (
            ("d",),
            "bad reference ${{ bad..ref }}: '' is not a name or a list index (write names and "
            "numbers separated by dots, e.g. steps.fetch.output.items.0)",
        ),
    ]


def test_compile_template_without_references_is_none() -> None:
    assert compile_template(None) is None
    assert compile_template(3) is None
    assert compile_template(True) is None
    assert compile_template("plain") is None
    assert compile_template({"a": [1, "b"]}) is None


def test_compile_template_escape_only() -> None:
    template = compile_template("$${{ inputs.x }}")
    assert template is not None
    assert template({}) == "${{ inputs.x }}"


SCOPE = {
    "inputs": {"who": "world", "n": 3, "cfg": {"name": "c", "tags": ["x", "y"]}},
    "steps": {"fetch": {"output": {"items": [1, 2, 3], "k": None}}},
}


def test_whole_string_reference_keeps_the_type() -> None:
    template = compile_template(
        {
            "n": "${{ inputs.n }}",
            "items": "${{ steps.fetch.output.items }}",
            "first": "${{ steps.fetch.output.items.0 }}",
            "tag": "${{ inputs.cfg.tags.1 }}",
            "none": "${{ steps.fetch.output.k }}",
            "list": ["${{ inputs.who }}", 7, None],
        }
    )
    assert template is not None
    assert template(SCOPE) == {
        "n": 3,
        "items": [1, 2, 3],
        "first": 1,
        "tag": "y",
        "none": None,
        "list": ["world", 7, None],
    }


def test_interpolation_in_longer_strings() -> None:
    template = compile_template(
        "hi ${{ inputs.who }}: n=${{ inputs.n }} items=${{ steps.fetch.output.items }} "
        "cfg=${{ inputs.cfg }} lit=$${{ inputs.who }}"
    )
    assert template is not None
    assert template(SCOPE) == (
        'hi world: n=3 items=[1, 2, 3] cfg={"name": "c", "tags": ["x", "y"]} lit=${{ inputs.who }}'
    )


def test_lookup_failures_are_not_retryable() -> None:
    with pytest.raises(cp.StepFailed) as info:
        lookup(SCOPE, parse_reference("steps.fetch.output.nope"))
    assert not info.value.retryable
    assert str(info.value) == (
        "${{ steps.fetch.output.nope }}: steps.fetch.output has no 'nope' "
        '(it is {"items": [1, 2, 3], "k": null})'
    )
    with pytest.raises(cp.StepFailed, match="items has no 5"):
        lookup(SCOPE, parse_reference("steps.fetch.output.items.5"))
    with pytest.raises(cp.StepFailed, match="nothing is called 'run' here"):
        lookup(SCOPE, parse_reference("run.id"))


# --- at run time --------------------------------------------------------------------------

RUNTIME_YAML = """\
name: refs
inputs:
  who: world
  cfg: {type: object, default: {name: c}}
agents:
  pass: {kind: noop}
steps:
  - id: a
    agent: pass
    input: {items: [1, 2, 3], name: "${{ inputs.who }}"}
  - id: b
    agent: pass
    needs: a
    input:
      first: "${{ steps.a.output.items.0 }}"
      all: "${{ steps.a.output.items }}"
      text: "n=${{ steps.a.output.items }} who=${{ inputs.who }}"
      lit: "$${{ inputs.who }}"
      mixed: "$${{ inputs.who }} and ${{ inputs.who }}"
      cfg: "${{ inputs.cfg.name }}"
  - id: c
    agent: pass
    needs: b
    input: ["${{ steps.a.output.name }}", "${{ steps.b.output.first }}"]
  - id: d
    agent: pass
    input: "$${{ steps.a.output }}"
"""


def test_references_are_resolved_at_run_time() -> None:
    result = cp.run_sync(cp.loads(RUNTIME_YAML))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {
        "a": {"items": [1, 2, 3], "name": "world"},
        "b": {
            "first": 1,
            "all": [1, 2, 3],
            "text": "n=[1, 2, 3] who=world",
            "lit": "${{ inputs.who }}",
            "mixed": "${{ inputs.who }} and world",
            "cfg": "c",
        },
        "c": ["world", 1],
        "d": "${{ steps.a.output }}",
    }


def test_given_inputs_override_defaults() -> None:
    result = cp.run_sync(cp.loads(RUNTIME_YAML), inputs={"who": "bob", "cfg": {"name": "z"}})
    assert result.outputs["a"] == {"items": [1, 2, 3], "name": "bob"}
    assert result.outputs["b"]["cfg"] == "z"  # type: ignore[index]
    assert result.outputs["c"] == ["bob", 1]


def test_bad_inputs_are_rejected_before_running() -> None:
    wf = cp.loads(RUNTIME_YAML)
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.run_sync(wf, inputs={"whom": "x", "cfg": "not an object"})
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [
        "input 'cfg' should be object, got 'not an object'",
        "unknown input 'whom' (inputs: who, cfg)",
    ]


def test_missing_required_input() -> None:
    b = cp.WorkflowBuilder("req")
    b.input("x", type="integer")
    b.agent("pass", kind="noop")
    b.step("a", agent="pass", input=cp.ref("inputs.x"))
    wf = b.build()
    with pytest.raises(cp.WorkflowInvalid, match="missing input 'x': pass --input x=VALUE"):
        cp.run_sync(wf)
    with pytest.raises(cp.WorkflowInvalid, match="input 'x' should be integer, got True"):
        cp.run_sync(wf, inputs={"x": True})
    assert cp.run_sync(wf, inputs={"x": 4}).outputs == {"a": 4}


def test_a_missing_key_fails_the_step_without_retries() -> None:
    b = cp.WorkflowBuilder("miss")
    b.agent("pass", kind="noop")
    b.step("a", agent="pass", input={"k": 1})
    b.step("b", agent="pass", needs="a", input=b.output("a", "nope"), retries=3)
    result = cp.run_sync(b.build())
    assert result.status is cp.RunStatus.FAILED
    rec = result.steps["b"]
    assert rec.status is cp.StepState.FAILED
    assert rec.attempts == 1
    assert rec.error == (
        "${{ steps.a.output.nope }}: steps.a.output has no 'nope' " + '(it is {"k": 1})'
    )
