"""``counterpoint validate``: exit 0 and a one-line summary, or FILE:LINE:COL problems and 2."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

Results = dict[str, subprocess.CompletedProcess[str]]

PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")

OK = """
name: ok
agents:
  nop: {kind: noop}
  nap: {kind: sleep, seconds: 1ms}
steps:
  - {id: a, agent: nop}
  - {id: b, agent: nap, needs: [a]}
  - {id: c, agent: nop, needs: [a]}
"""

BROKEN = """
name: broken
agents:
  nop: {kind: noop}
  bad: {kind: nopp}
  prog: {kind: program}
steps:
  - id: a
    agent: nop
  - id: b
    agent: nopx
    needs: [a, zzz]
"""

# README: "Validation reports every mistake at once": a misspelt key in one step must not
# hide an unknown agent in another.
SHAPE_AND_REFS = """
name: broken
agents:
  nop: {kind: noop}
steps:
  - id: a
    agent: nop
    nedds: [b]
  - id: b
    agent: nopp
"""

CYCLE = """
name: cycle
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, needs: [c]}
  - {id: b, agent: n, needs: [a]}
  - {id: c, agent: n, needs: [b]}
"""

BAD_IMPORT = """
name: bad-import
agents:
  f: {kind: python, function: "cp_cli_badmod:f"}
steps:
  - {id: s, agent: f}
"""


@pytest.fixture(scope="module")
def validated(
    cli_batch: Callable[[Path, Mapping[str, object]], Results],
    tmp_path_factory: pytest.TempPathFactory,
) -> Results:
    root = tmp_path_factory.mktemp("validate")
    return cli_batch(
        root,
        {
            "ok": ({"ok.yaml": OK}, ["validate", "ok.yaml"]),
            "broken": ({"broken.yaml": BROKEN}, ["validate", "broken.yaml"]),
            "shape": ({"broken.yaml": SHAPE_AND_REFS}, ["validate", "broken.yaml"]),
            "cycle": ({"cycle.yaml": CYCLE}, ["validate", "cycle.yaml"]),
            "syntax": ({"syntax.yaml": "name: x\nsteps: [\n"}, ["validate", "syntax.yaml"]),
            "empty": ({"empty.yaml": ""}, ["validate", "empty.yaml"]),
            "missing": ({}, ["validate", "missing.yaml"]),
            "bad_import": (
                {
                    "wf.yaml": BAD_IMPORT,
                    "cp_cli_badmod.py": "raise RuntimeError('broken at import')\n",
                },
                ["validate", "wf.yaml"],
            ),
        },
    )


def _problem_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines, "no problems printed"
    for line in lines:
        assert PROBLEM.match(line), f"not FILE:LINE:COL: message: {line!r}"
    return lines


def test_valid_workflow(validated: Results) -> None:
    proc = validated["ok"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok.yaml: ok (3 steps, 2 agents)"
    assert proc.stderr == ""


def test_broken_workflow_lists_every_problem_with_its_position(validated: Results) -> None:
    assert _problem_lines(validated["broken"]) == [
        "broken.yaml:4:9: agent 'bad': unknown kind 'nopp' (did you mean 'noop'?); "
        "known kinds: approval, llm, noop, program, python, sleep, subagent, wait",
        "broken.yaml:5:9: agent 'prog' (program): missing required key 'argv'",
        "broken.yaml:10:12: step 'b': unknown agent 'nopx' (did you mean 'nop'?)",
        "broken.yaml:11:16: step 'b' needs unknown step 'zzz'",
    ]


def test_shape_mistakes_and_reference_mistakes_are_reported_together(
    validated: Results,
) -> None:
    lines = _problem_lines(validated["shape"])
    assert "broken.yaml:7:5: step 'a': unknown key 'nedds' (did you mean 'needs'?)" in lines
    assert "broken.yaml:9:12: step 'b': unknown agent 'nopp' (did you mean 'nop'?)" in lines


def test_dependency_cycle(validated: Results) -> None:
    (line,) = _problem_lines(validated["cycle"])
    assert line.startswith("cycle.yaml:")
    assert "dependency cycle: a needs c, c needs b, b needs a" in line


def test_yaml_syntax_error(validated: Results) -> None:
    (line,) = _problem_lines(validated["syntax"])
    assert line.startswith("syntax.yaml:3:1: YAML syntax error: ")


def test_empty_file(validated: Results) -> None:
    assert _problem_lines(validated["empty"]) == [
        "empty.yaml:1:1: the file is empty: a workflow needs at least name and steps"
    ]


def test_missing_file(validated: Results) -> None:
    proc = validated["missing"]
    assert proc.returncode == 2
    assert proc.stderr.strip() == "missing.yaml: no such file"


def test_python_agent_whose_module_fails_to_import(validated: Results) -> None:
    (line,) = _problem_lines(validated["bad_import"])
    assert line.startswith("wf.yaml:3:")
    assert "cannot import module 'cp_cli_badmod'" in line
