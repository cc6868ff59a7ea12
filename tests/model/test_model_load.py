"""The YAML loader and the Python builder: same workflow, same objects; shorthands; YAML 1.2."""

from __future__ import annotations

from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.model.workflow import InputSpec, RetryPolicy

HELLO_YAML = """\
name: hello
description: say hello
max_concurrency: 3
inputs:
  who: world
  count: {type: integer, default: 2, description: how many}
agents:
  pass: {kind: noop}
  wait: {kind: sleep, seconds: 10ms}
defaults:
  retries: 1
  timeout: 10m
steps:
  - id: greet
    agent: pass
    input: {name: "${{ inputs.who }}"}
    estimate: 2m
  - id: shout
    agent: wait
    needs: greet
    input: "${{ steps.greet.output.name }}"
    retries: {max: 3, backoff: 250ms, factor: 3, max_backoff: 1m, jitter: 0}
    timeout: 30s
    description: loudly
"""


def hello_builder() -> cp.WorkflowBuilder:
    b = cp.WorkflowBuilder("hello", description="say hello", max_concurrency=3)
    who = b.input("who", default="world")
    b.input("count", type="integer", default=2, description="how many")
    b.agent("pass", kind="noop")
    b.agent("wait", kind="sleep", seconds="10ms")
    b.defaults(retries=1, timeout="10m")
    greet = b.step("greet", agent="pass", input={"name": who}, estimate="2m")
    b.step(
        "shout",
        agent="wait",
        needs=greet,
        input=b.output("greet", "name"),
        retries={"max": 3, "backoff": "250ms", "factor": 3, "max_backoff": "1m", "jitter": 0},
        timeout="30s",
        description="loudly",
    )
    return b


def test_yaml_and_builder_give_the_same_data() -> None:
    from_yaml = cp.loads(HELLO_YAML)
    from_python = hello_builder().build()
    assert from_yaml.model_dump() == from_python.model_dump()


def test_yaml_and_builder_give_equal_workflow_objects() -> None:
    # docs/workflow-format.md: "both give equal `Workflow` objects".
    assert cp.loads(HELLO_YAML) == hello_builder().build()


def test_the_same_yaml_loaded_twice_gives_equal_workflows() -> None:
    assert cp.loads(HELLO_YAML) == cp.loads(HELLO_YAML)


def test_loaded_values() -> None:
    wf = cp.loads(HELLO_YAML)
    assert wf.name == "hello"
    assert wf.description == "say hello"
    assert wf.max_concurrency == 3
    assert wf.inputs["who"] == InputSpec(default="world")
    assert wf.inputs["who"].type == "any"
    assert not wf.inputs["who"].is_required
    assert wf.inputs["count"].type == "integer"
    assert wf.inputs["count"].default == 2
    assert wf.agents["pass"].kind == "noop"
    assert wf.agents["pass"].options == {}
    assert wf.agents["wait"].options == {"seconds": "10ms"}
    assert wf.defaults.retries == RetryPolicy(max=1)
    assert wf.defaults.timeout == 600.0
    assert wf.defaults.estimate is None
    greet, shout = wf.steps
    assert greet.id == "greet"
    assert greet.needs == ()
    assert greet.input == {"name": "${{ inputs.who }}"}
    assert greet.estimate == 120.0
    assert greet.retries is None
    assert greet.timeout is None
    assert shout.needs == ("greet",)
    assert shout.input == "${{ steps.greet.output.name }}"
    assert shout.retries == RetryPolicy(
        max=3, backoff=0.25, factor=3.0, max_backoff=60.0, jitter=0.0
    )
    assert shout.timeout == 30.0
    assert shout.description == "loudly"
    assert wf.step("shout") is shout
    with pytest.raises(KeyError):
        wf.step("nope")


def test_shorthands() -> None:
    wf = cp.loads(
        """\
name: s
inputs:
  repo: .
  n: 3
  flag: false
  nothing: null
agents:
  a: {kind: noop}
steps:
  - {id: one, agent: a}
  - {id: two, agent: a, needs: one, retries: 2}
  - {id: three, agent: a, needs: [one, two]}
"""
    )
    assert wf.inputs["repo"].default == "."
    assert wf.inputs["n"].default == 3
    assert wf.inputs["flag"].default is False
    assert not wf.inputs["flag"].is_required
    # no default: required
    assert wf.inputs["nothing"].is_required
    assert wf.steps[1].needs == ("one",)
    assert wf.steps[1].retries == RetryPolicy(max=2)
    assert wf.steps[1].retries.backoff == 1.0
    assert wf.steps[1].retries.factor == 2.0
    assert wf.steps[1].retries.jitter == 0.5
    assert wf.steps[2].needs == ("one", "two")


def test_required_input_explicitly() -> None:
    spec = InputSpec.model_validate({"type": "string", "default": "x", "required": True})
    assert spec.is_required
    assert not InputSpec.model_validate({"required": False}).is_required


def test_yaml_1_2_scalars() -> None:
    wf = cp.loads(
        """\
name: y
inputs:
  on: yes
  no: off
  time: 1:30
  octal: 0o17
  hex: 0x1F
  leading: 010
  t: true
  f: False
  pi: 3.5
  null_word: ~
agents:
  a: {kind: noop}
steps:
  - {id: one, agent: a}
"""
    )
    defaults = {k: v.default for k, v in wf.inputs.items()}
    assert defaults == {
        "on": "yes",
        "no": "off",
        "time": "1:30",
        "octal": 15,
        "hex": 31,
        "leading": 10,
        "t": True,
        "f": False,
        "pi": 3.5,
        "null_word": None,
    }


def test_builder_output_and_ref_helpers() -> None:
    b = cp.WorkflowBuilder("r")
    assert b.output("fetch") == "${{ steps.fetch.output }}"
    assert b.output("fetch", "items", 0) == "${{ steps.fetch.output.items.0 }}"
    assert cp.ref("inputs.x") == "${{ inputs.x }}"
    assert b.input("x", default=1) == "${{ inputs.x }}"


def test_builder_agent_needs_a_kind_or_a_function() -> None:
    b = cp.WorkflowBuilder("r")
    with pytest.raises(TypeError):
        b.agent("x")


def test_builder_function_defines_a_python_agent() -> None:
    async def fn(ctx: cp.StepContext) -> object:
        return 1

    b = cp.WorkflowBuilder("f")
    b.agent("f", function=fn)
    b.step("s", agent="f")
    wf = b.build()
    assert wf.agents["f"].kind == "python"
    assert wf.agents["f"].options == {"function": fn}
    assert wf.source == "<python>"


def test_builder_step_returns_its_id_and_accepts_numbers() -> None:
    b = cp.WorkflowBuilder("n")
    b.agent("a", kind="noop")
    assert b.step("x", agent="a", estimate=1.5, timeout=2) == "x"
    wf = b.build()
    assert wf.steps[0].estimate == 1.5
    assert wf.steps[0].timeout == 2.0


def test_load_from_a_file_sets_source_and_base_dir(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(HELLO_YAML, encoding="utf-8")
    wf = cp.load(path)
    assert wf.source == str(path)
    assert wf.base_dir == tmp_path.resolve()
    assert wf.model_dump() == cp.loads(HELLO_YAML).model_dump()


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    assert [str(p) for p in info.value.problems] == [f"{path}: no such file"]


def test_workflow_is_immutable() -> None:
    wf = cp.loads(HELLO_YAML)
    with pytest.raises(ValueError, match="frozen"):
        wf.name = "other"  # type: ignore[misc]


def test_graph_of_a_loaded_workflow() -> None:
    wf = cp.loads(HELLO_YAML)
    g = wf.graph
    assert g is wf.graph
    assert g.ids == ["greet", "shout"]
    assert g.preds == [(), (0,)]
    assert g.estimates == [120.0, 1.0]
    assert g.estimated == [True, False]
