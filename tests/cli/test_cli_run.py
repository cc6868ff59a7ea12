"""``counterpoint run``: exit codes, --input, --json, -j and --fail-fast, end to end."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import pytest

Results = dict[str, subprocess.CompletedProcess[str]]

PY = json.dumps(sys.executable)

GREET = f"""
name: hello
inputs:
  who: {{type: string, default: world}}
agents:
  greet:
    kind: program
    argv: [{PY}, -c, "import sys; print('hello ' + sys.argv[1])", "${{{{ input.name }}}}"]
  nop: {{kind: noop}}
steps:
  - {{id: greet, agent: greet, input: {{name: "${{{{ inputs.who }}}}"}}}}
  - {{id: echo, agent: nop, needs: [greet], input: "${{{{ steps.greet.output }}}}"}}
"""

FAILING = f"""
name: failing
agents:
  bad:
    kind: program
    argv: [{PY}, -c, "import sys; sys.stderr.write('warming up\\\\ndisk full\\\\n'); sys.exit(1)"]
  nop: {{kind: noop}}
steps:
  - {{id: bad, agent: bad}}
  - {{id: after, agent: nop, needs: [bad]}}
  - {{id: other, agent: nop, input: 7}}
"""

STEP_KEYS = {"status", "agent", "attempts", "started_at", "finished_at", "start_s", "end_s"}
RUN_KEYS = {
    "run_id",
    "status",
    "pattern",
    "makespan_s",
    "started_at",
    "finished_at",
    "counts",
    "events",
    "steps",
}


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    data = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    assert isinstance(data, dict)
    return data


def _steps(data: dict[str, object]) -> dict[str, dict[str, object]]:
    steps = data["steps"]
    assert isinstance(steps, dict)
    return steps


def test_run_succeeds_with_exit_0_and_a_summary(ran: Results) -> None:
    proc = ran["greet"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = re.search(
        r"^run (\d{8}-\d{6}-[0-9a-f]{6}) succeeded in \S+ \(2 succeeded\); pattern: sequential$",
        proc.stdout,
        re.MULTILINE,
    )
    assert summary, proc.stdout
    table = {line.split()[0]: line.split()[1:4] for line in proc.stdout.splitlines()[1:3]}
    assert table == {"greet": ["greet", "succeeded", "1"], "echo": ["nop", "succeeded", "1"]}
    assert "hello: 2 steps" in proc.stderr  # the header
    assert "✓ greet succeeded" in proc.stderr  # one line per step off a terminal
    assert "✓ echo succeeded" in proc.stderr


def test_run_json_has_the_documented_keys(ran: Results) -> None:
    proc = ran["greet_json"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = _json(proc)
    assert set(data) >= RUN_KEYS
    assert data["status"] == "succeeded"
    assert data["pattern"] == "sequential"
    assert data["workflow"] == "hello"
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", str(data["run_id"]))
    assert data["counts"] == {"succeeded": 2}
    assert data["events"] == []
    makespan = data["makespan_s"]
    assert isinstance(makespan, float)
    assert 0 < makespan < 30
    started = datetime.fromisoformat(str(data["started_at"]))
    finished = datetime.fromisoformat(str(data["finished_at"]))
    assert started.tzinfo is not None
    assert abs((finished - started).total_seconds() - makespan) < 0.002
    steps = _steps(data)
    assert list(steps) == ["greet", "echo"]
    for sid, agent in [("greet", "greet"), ("echo", "nop")]:
        step = steps[sid]
        assert set(step) >= STEP_KEYS
        assert step["status"] == "succeeded"
        assert step["agent"] == agent
        assert step["attempts"] == 1
        assert "error" not in step
        assert step["output"] == "hello Ada Lovelace"
        assert datetime.fromisoformat(str(step["started_at"])) >= started
        assert datetime.fromisoformat(str(step["finished_at"])) <= finished
    greet, echo = steps["greet"], steps["echo"]
    assert 0 <= greet["start_s"] <= greet["end_s"] <= echo["start_s"] <= echo["end_s"]  # type: ignore[operator]


def test_failing_step_exits_1_and_skips_what_needs_it(ran: Results) -> None:
    proc = ran["failing"]
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:4]}
    assert rows["bad"].split()[1:4] == ["bad", "failed", "1"]
    assert "exited with code 1: disk full" in rows["bad"]
    assert rows["after"].split()[1:3] == ["nop", "skipped"]
    assert rows["other"].split()[1:3] == ["nop", "succeeded"]
    assert re.search(
        r"^run \S+ failed in \S+ \(1 succeeded, 1 failed, 1 skipped\); pattern: parallel$",
        proc.stdout,
        re.MULTILINE,
    ), proc.stdout


def test_failing_step_json(ran: Results) -> None:
    proc = ran["failing_json"]
    assert proc.returncode == 1
    data = _json(proc)
    assert data["status"] == "failed"
    assert data["counts"] == {"succeeded": 1, "failed": 1, "skipped": 1}
    steps = _steps(data)
    bad = steps["bad"]
    assert bad["status"] == "failed"
    assert "output" not in bad
    error = str(bad["error"])
    assert error.splitlines()[0] == f"{sys.executable} exited with code 1: disk full"
    assert "warming up" in error
    assert steps["after"]["status"] == "skipped"
    assert steps["after"]["error"] == "not run: 'bad' failed"
    assert steps["after"]["attempts"] == 0
    assert steps["after"]["started_at"] is None
    assert steps["other"]["output"] == 7


def test_invalid_workflow_exits_2_and_runs_nothing(ran: Results, ran_root: Path) -> None:
    proc = ran["invalid"]
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "wf.yaml:6:20: step 'b': unknown agent 'tuch' (did you mean 'touch'?)"
    )
    assert not (ran_root / "invalid" / "RAN").exists()
    assert proc.stdout == ""


INPUTS = """
name: inputs
inputs:
  text: {type: string}
  n: {type: integer, default: 1}
  anything: {default: null, required: false}
agents:
  nop: {kind: noop}
steps:
  - id: s
    agent: nop
    input: {text: "${{ inputs.text }}", n: "${{ inputs.n }}", anything: "${{ inputs.anything }}"}
"""


INPUT_CASES = {
    "inputs_0": (["text=3"], {"text": "3", "n": 1, "anything": None}),  # a string stays text
    "inputs_1": (
        ["text=a=b c", "n=42", 'anything={"k": [1, true]}'],
        {"text": "a=b c", "n": 42, "anything": {"k": [1, True]}},
    ),
    "inputs_2": (["text=", "anything=not json"], {"text": "", "n": 1, "anything": "not json"}),
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_inputs_from_the_command_line(ran: Results, case: str) -> None:
    expected = INPUT_CASES[case][1]
    proc = ran[case]
    assert proc.returncode == 0, proc.stderr
    assert _steps(_json(proc))["s"]["output"] == expected


def test_missing_unknown_and_mistyped_inputs_exit_2(ran: Results) -> None:
    proc = ran["inputs_bad"]
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    problems = [line for line in proc.stderr.splitlines() if line.startswith("wf.yaml")]
    assert sorted(problems) == [
        "wf.yaml: input 'n' should be integer, got 'many'",
        "wf.yaml: missing input 'text': pass --input text=VALUE",
        "wf.yaml: unknown input 'nope' (inputs: text, n, anything)",
    ]
    assert proc.stdout == ""


def test_malformed_input_flag_exits_2(ran: Results) -> None:
    proc = ran["inputs_malformed"]
    assert proc.returncode == 2
    assert proc.stderr.strip() == "<command line>: --input 'novalue': write NAME=VALUE"


PARALLEL = """
name: parallel
agents:
  nap: {kind: sleep, seconds: 100ms}
steps:
  - {id: a, agent: nap}
  - {id: b, agent: nap}
  - {id: c, agent: nap}
"""


def test_max_concurrency_1_runs_one_step_at_a_time(ran: Results) -> None:
    proc = ran["one_at_a_time"]
    assert proc.returncode == 0, proc.stderr
    data = _json(proc)
    assert data["pattern"] == "sequential"  # the only pattern -j 1 allows
    spans = sorted((s["start_s"], s["end_s"]) for s in _steps(data).values())
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # type: ignore[operator]
    assert data["makespan_s"] >= 0.3  # type: ignore[operator]


FAIL_FAST = f"""
name: fail-fast
agents:
  bad: {{kind: program, argv: [{PY}, -c, "raise SystemExit('broken')"]}}
  nap: {{kind: sleep}}
  nop: {{kind: noop}}
steps:
  - {{id: bad, agent: bad}}
  - {{id: slow, agent: nap, input: {{seconds: "${{{{ inputs.slow }}}}"}}}}
  - {{id: after_slow, agent: nop, needs: [slow]}}
inputs:
  slow: {{type: string}}
"""


def test_fail_fast_cancels_running_and_pending_steps(ran: Results) -> None:
    proc = ran["fail_fast"]
    assert proc.returncode == 1
    data = _json(proc)
    assert data["status"] == "failed"
    steps = _steps(data)
    assert steps["bad"]["status"] == "failed"
    assert steps["slow"]["status"] == "cancelled"
    assert steps["after_slow"]["status"] == "cancelled"
    assert steps["after_slow"]["error"] == "not run: stopped by fail-fast"
    assert data["makespan_s"] < 10  # type: ignore[operator]


def test_without_fail_fast_independent_steps_finish(ran: Results) -> None:
    proc = ran["no_fail_fast"]
    assert proc.returncode == 1
    steps = _steps(_json(proc))
    assert steps["bad"]["status"] == "failed"
    assert steps["slow"]["status"] == "succeeded"
    assert steps["after_slow"]["status"] == "succeeded"


INVALID = f"""
name: invalid
agents:
  touch: {{kind: program, argv: [{PY}, -c, "open('RAN', 'w')"]}}
steps:
  - {{id: a, agent: touch}}
  - {{id: b, agent: tuch}}
"""


@pytest.fixture(scope="module")
def ran_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def ran(cli_batch: Callable[[Path, Mapping[str, object]], Results], ran_root: Path) -> Results:
    """Every command of this module, started together (see conftest)."""
    wf = "wf.yaml"
    cases: dict[str, object] = {
        "greet": ({wf: GREET}, ["run", wf]),
        "greet_json": ({wf: GREET}, ["run", wf, "--json", "--input", "who=Ada Lovelace"]),
        "failing": ({wf: FAILING}, ["run", wf]),
        "failing_json": ({wf: FAILING}, ["run", wf, "--json"]),
        "invalid": ({wf: INVALID}, ["run", wf]),
        "inputs_bad": ({wf: INPUTS}, ["run", wf, "-i", "n=many", "-i", "nope=1"]),
        "inputs_malformed": ({wf: INPUTS}, ["run", wf, "--input", "novalue"]),
        "one_at_a_time": ({wf: PARALLEL}, ["run", wf, "--json", "-j", "1"]),
        "fail_fast": ({wf: FAIL_FAST}, ["run", wf, "--json", "--fail-fast", "-i", "slow=30s"]),
        "no_fail_fast": ({wf: FAIL_FAST}, ["run", wf, "--json", "-i", "slow=300ms"]),
    }
    for name, (args, _expected) in INPUT_CASES.items():
        flags = [part for arg in args for part in ("--input", arg)]
        cases[name] = ({wf: INPUTS}, ["run", wf, "--json", *flags])
    return cli_batch(ran_root, cases)
