"""Validation: every mistake at once, each as FILE:LINE:COL: message."""

from __future__ import annotations

from pathlib import Path

import pytest

import counterpoint as cp


def problems(text: str, file: str = "wf.yaml") -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, file)
    return [str(p) for p in info.value.problems]


def test_unknown_key_points_at_the_key_with_a_suggestion() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    nedds: [b]
"""
    assert problems(text) == [
        "wf.yaml:7:5: step 'a': unknown key 'nedds' (did you mean 'needs'?)",
    ]


def test_unknown_top_level_key() -> None:
    assert problems("name: x\nstesp: []\n") == [
        "wf.yaml:2:1: unknown key 'stesp' (did you mean 'steps'?)",
    ]


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    zzzzzz: 1
"""
    (only,) = problems(text)
    assert only.startswith("wf.yaml:7:5: step 'a': unknown key 'zzzzzz'; expected one of: ")
    assert (
        "agent, cache, compensate, critical, deadline, description, estimate, id, input, "
        "needs, priority, race, recovery, retries, risk, timeout, uses, validate" in only
    )


def test_wrong_types_point_at_the_value() -> None:
    text = """\
name: x
max_concurrency: lots
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    needs: {x: 1}
"""
    got = problems(text)
    assert got[0] == "wf.yaml:2:18: max_concurrency: expected a whole number, got 'lots'"
    assert len(got) == 2
    assert got[1] == (
        "wf.yaml:8:12: step 'a': needs: expected a step id or a list of step ids, got a mapping"
    )


def test_max_concurrency_must_be_positive() -> None:
    (only,) = problems(
        "name: x\nmax_concurrency: 0\nsteps: [{id: a, agent: n}]\nagents: {n: {kind: noop}}\n"
    )
    assert only.startswith("wf.yaml:2:18: max_concurrency: ")
    assert "1" in only


def test_unknown_agent_with_suggestion() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nopp
"""
    assert problems(text) == [
        "wf.yaml:6:12: step 'a': unknown agent 'nopp' (did you mean 'nop'?)",
    ]


def test_unknown_agent_kind_and_bad_agent_option() -> None:
    text = """\
name: x
agents:
  nop: {kind: nopp}
  sl: {kind: sleep, secnds: 1}
steps: [{id: a, agent: sl}]
"""
    assert problems(text) == [
        "wf.yaml:3:9: agent 'nop': unknown kind 'nopp' (did you mean 'noop'?); "
        "known kinds: approval, llm, noop, program, python, sleep, subagent, wait",
        "wf.yaml:4:21: agent 'sl' (sleep): unknown key 'secnds' (did you mean 'seconds'?)",
    ]


def test_dependency_problems() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    needs: [a, zzz, bb]
  - id: b
    agent: nop
    needs: [a, a]
"""
    assert problems(text) == [
        "wf.yaml:7:13: step 'a' cannot need itself",
        "wf.yaml:7:16: step 'a' needs unknown step 'zzz'",
        "wf.yaml:7:21: step 'a' needs unknown step 'bb' (did you mean 'b'?)",
        "wf.yaml:10:16: step 'b' lists 'a' twice in needs",
    ]


def test_self_dependency_as_a_string() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    needs: a
"""
    assert problems(text) == ["wf.yaml:7:12: step 'a' cannot need itself"]


def test_duplicate_step_id_names_the_first_line() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
  - id: a
    agent: nop
"""
    assert problems(text) == ["wf.yaml:7:9: duplicate step id 'a' (first used at line 5)"]


def test_duplicate_yaml_key() -> None:
    assert problems(
        "name: x\nname: y\nsteps: [{id: a, agent: n}]\nagents: {n: {kind: noop}}\n"
    ) == [
        "wf.yaml:2:1: duplicate key 'name' (first given on line 1)",
    ]


def test_cycle_names_its_steps_in_needs_order() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - {id: a, agent: nop, needs: c}
  - {id: b, agent: nop, needs: a}
  - {id: c, agent: nop, needs: b}
  - {id: d, agent: nop}
"""
    assert problems(text) == [
        "wf.yaml:5:32: dependency cycle: a needs c, c needs b, b needs a "
        "(remove one of these needs to break it)",
    ]


def test_cycle_is_found_even_with_duplicate_ids() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - {id: a, agent: nop, needs: b}
  - {id: b, agent: nop, needs: a}
  - {id: b, agent: nop}
"""
    assert problems(text) == [
        "wf.yaml:5:32: dependency cycle: a needs b, b needs a "
        "(remove one of these needs to break it)",
        "wf.yaml:7:10: duplicate step id 'b' (first used at line 6)",
    ]


def test_reference_problems() -> None:
    text = """\
name: x
inputs:
  who: world
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
  - id: b
    agent: nop
  - id: c
    agent: nop
    needs: b
    input:
      x: "${{ steps.a.output }}"
      y: "${{ inputs.whom }}"
      z: "${{ steps.c.output }}"
      w: "${{ steps.b.result }}"
      v: "${{ foo.bar }}"
      u: "${{ steps.a..x }}"
      t: "$${{ steps.a.output }}"
      s: "${{ steps.zz.output }}"
"""
    assert problems(text) == [
        "wf.yaml:15:10: step 'c': ${{ steps.a.output }} uses the output of 'a', which is not "
        "upstream of 'c'; add 'a' to its needs",
        "wf.yaml:16:10: step 'c': ${{ inputs.whom }} refers to unknown input 'whom' "
        "(did you mean 'who'?)",
        "wf.yaml:17:10: step 'c': ${{ steps.c.output }}: a step cannot use its own output",
        "wf.yaml:18:10: step 'c': ${{ steps.b.result }}: write ${{ steps.ID.output }} or "
        "${{ steps.ID.output.KEY }}",
        "wf.yaml:19:10: step 'c': ${{ foo.bar }}: unknown name 'foo'; use inputs.NAME or "
        "steps.ID.output",
        "wf.yaml:20:10: step 'c': bad reference ${{ steps.a..x }}: '' is not a name or a list "
        "index (write names and numbers separated by dots, e.g. steps.fetch.output.items.0)",
        "wf.yaml:22:10: step 'c': ${{ steps.zz.output }} refers to unknown step 'zz'",
    ]


def test_reference_to_a_transitive_upstream_step_is_fine() -> None:
    wf = cp.loads(
        """\
name: x
agents:
  nop: {kind: noop}
steps:
  - {id: a, agent: nop}
  - {id: b, agent: nop, needs: a}
  - {id: c, agent: nop, needs: b, input: ["${{ steps.a.output }}"]}
"""
    )
    assert wf.steps[2].input == ["${{ steps.a.output }}"]


def test_reference_in_a_nested_list_points_at_the_item() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    input:
      items:
        - ok
        - "${{ inputs.missing }}"
"""
    assert problems(text) == [
        "wf.yaml:10:11: step 'a': ${{ inputs.missing }} refers to unknown input 'missing'",
    ]


def test_bad_durations() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    estimate: 5 parsecs
    timeout: -3
"""
    assert problems(text) == [
        "wf.yaml:7:15: step 'a': estimate: bad duration '5 parsecs': write seconds (30, 1.5) "
        "or a number with a unit (250ms, 10s, 2m, 1h30m, 1d)",
        "wf.yaml:8:14: step 'a': timeout: duration must be a finite number of seconds >= 0, got -3",
    ]


def test_bad_duration_in_defaults() -> None:
    (only,) = problems(
        "name: x\ndefaults:\n  timeout: soon\n"
        "steps: [{id: a, agent: n}]\nagents: {n: {kind: noop}}\n"
    )
    assert only.startswith("wf.yaml:3:12: defaults.timeout: bad duration 'soon'")


def test_bad_step_ids() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: 1abc
    agent: nop
  - id: "a b"
    agent: nop
"""
    assert problems(text) == [
        "wf.yaml:5:9: step '1abc': id: bad step id '1abc': use letters, digits, '_' and '-', "
        "starting with a letter or '_'",
        "wf.yaml:7:9: step 'a b': id: bad step id 'a b': use letters, digits, '_' and '-', "
        "starting with a letter or '_'",
    ]


def test_missing_required_keys() -> None:
    text = """\
agents:
  nop: {kind: noop}
steps:
  - agent: nop
"""
    assert problems(text) == [
        "wf.yaml:1:1: missing required key 'name'",
        "wf.yaml:4:5: missing required key 'id' in steps[0]",
    ]


def test_bad_input_type_lists_the_choices() -> None:
    (only,) = problems(
        "name: x\ninputs:\n  n: {type: strng}\n"
        "steps: [{id: a, agent: n}]\nagents: {n: {kind: noop}}\n"
    )
    assert only == (
        "wf.yaml:3:13: inputs.n.type: expected 'string', 'integer', 'number', 'boolean', "
        "'object', 'array' or 'any', got 'strng'"
    )


def test_yaml_syntax_error_empty_file_and_non_mapping() -> None:
    (syntax,) = problems("name: x\nsteps: [\n")
    assert syntax.startswith("wf.yaml:3:1: YAML syntax error: ")
    assert problems("") == [
        "wf.yaml:1:1: the file is empty: a workflow needs at least name and steps",
    ]
    (listing,) = problems("- a\n- b\n")
    assert listing.startswith("wf.yaml:1:1: a workflow must be a mapping")


def test_many_problems_are_reported_at_once_in_file_order() -> None:
    text = """\
name: x
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nopp
  - id: b
    agent: nop
    needs: zzz
"""
    got = problems(text)
    assert got == [
        "wf.yaml:6:12: step 'a': unknown agent 'nopp' (did you mean 'nop'?)",
        "wf.yaml:9:12: step 'b' needs unknown step 'zzz'",
    ]


def test_problem_fields_and_file_name_from_load(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nagents:\n  nop: {kind: noop}\nsteps:\n  - {id: a, agent: nopp}\n")
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    (p,) = info.value.problems
    assert p.file == str(path)
    assert (p.line, p.column) == (5, 20)
    assert p.path == "steps[0].agent"
    assert str(info.value) == f"{path}:5:20: step 'a': unknown agent 'nopp' (did you mean 'nop'?)"
    assert isinstance(info.value, cp.CounterpointError)


def test_builder_problems_name_paths_instead_of_lines() -> None:
    b = cp.WorkflowBuilder("x")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", needs=["zz"])
    b.step("b", agent="nopp")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    got = info.value.problems
    assert [(p.file, p.line, p.column, p.path) for p in got] == [
        ("<python>", None, None, "steps[0].needs[0]"),
        ("<python>", None, None, "steps[1].agent"),
    ]
    assert [str(p) for p in got] == [
        "<python>: steps[0].needs[0]: step 'a' needs unknown step 'zz'",
        "<python>: steps[1].agent: step 'b': unknown agent 'nopp' (did you mean 'nop'?)",
    ]


def test_builder_cycle_is_reported() -> None:
    b = cp.WorkflowBuilder("x")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", needs="b")
    b.step("b", agent="nop", needs="a")
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    (p,) = info.value.problems
    assert p.message == (
        "dependency cycle: a needs b, b needs a (remove one of these needs to break it)"
    )
    assert p.path == "steps[0].needs"


def test_builder_type_errors() -> None:
    b = cp.WorkflowBuilder("x")
    b.agent("nop", kind="noop")
    b.step("a", agent="nop", retries="lots", estimate=-1)  # type: ignore[arg-type]
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    paths = sorted(p.path for p in info.value.problems)
    assert paths == ["steps[0].estimate", "steps[0].retries"]
