"""``counterpoint explain``, ``run --pattern`` and the selection line, and ``counterpoint
history``, with typer's CliRunner (in this process: no interpreter start-up per command)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

import counterpoint as cp
from counterpoint.cli.app import app
from counterpoint.observe.explain import cost_line
from counterpoint.selection import recommend

FAN = """\
name: fan
agents:
  n: {kind: noop}
steps:
  - {id: root, agent: n, estimate: 1}
  - {id: w1, agent: n, estimate: 2, needs: root}
  - {id: w2, agent: n, estimate: 3, needs: root}
  - {id: w3, agent: n, estimate: 4, needs: root}
  - {id: join, agent: n, estimate: 1, needs: [w1, w2, w3]}
"""

SINGLE = """\
name: single
max_concurrency: 1
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 1}
"""

FIXED = """\
name: fixed
pattern: hybrid
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 2, needs: a}
  - {id: c, agent: n, estimate: 2, needs: a}
"""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Ran:
    """One command's exit code and output (colour codes removed, should there be any)."""

    returncode: int
    stdout: str
    stderr: str


Results = dict[str, Ran]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    """Every command of this module, in a folder of its own, each store a folder there: those
    that need a fresh store, then two runs overriding the pattern, then what they taught."""
    root = tmp_path_factory.mktemp("selection-cli")
    (root / "fan.yaml").write_text(FAN, encoding="utf-8")
    (root / "single.yaml").write_text(SINGLE, encoding="utf-8")
    (root / "fixed.yaml").write_text(FIXED, encoding="utf-8")
    commands = {
        "explain": ["explain", "fan.yaml", "--store", "s-explain"],
        "explain-json": ["explain", "fan.yaml", "--json", "--store", "s-explain"],
        "explain-sequential": ["explain", "fan.yaml", "--pattern", "sequential", "--store", "s-x"],
        "explain-single": ["explain", "single.yaml", "--store", "s-single"],
        "run-hybrid-json": ["run", "fan.yaml", "--pattern", "hybrid", "--json", "--store", "s1"],
        "run": ["run", "fan.yaml", "--store", "s2"],
        "run-sequential": ["run", "fan.yaml", "--pattern", "sequential", "--store", "s3"],
        "history-empty": ["history", "--store", "s-empty"],
        "explain-fixed": ["explain", "fixed.yaml", "--store", "s-fixed"],
        "explain-fixed-json": ["explain", "fixed.yaml", "--json", "--store", "s-fixed"],
        "explain-fixed-parallel": ["explain", "fixed.yaml", "-w", "1", "--pattern", "parallel"],
        "taught-1": ["run", "fan.yaml", "--pattern", "hybrid", "--store", "taught"],
        "taught-2": ["run", "fan.yaml", "--pattern", "hybrid", "--store", "taught"],
        "history": ["history", "--store", "taught"],
        "history-json": ["history", "--json", "--store", "taught"],
        "history-other": ["history", "other", "--store", "taught"],
        "explain-taught": ["explain", "fan.yaml", "--store", "taught"],
    }
    env = {"COUNTERPOINT_HOME": str(root / "home"), "NO_COLOR": "1", "COLUMNS": "200"}
    done: Results = {}
    with contextlib.chdir(root):
        for name, args in commands.items():
            result = CliRunner().invoke(app, args, env=env)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            done[name] = Ran(
                result.exit_code, ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)
            )
    yield done


def ok(proc: Ran) -> Ran:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_explain_prints_the_choice_its_reasons_and_every_alternative(ran: Results) -> None:
    out = ok(ran["explain"]).stdout
    lines = out.splitlines()
    assert lines[0] == "fan: parallel (selected)"
    assert lines[1] == "  every step whose needs are done starts at once, in the order written"
    assert lines[2] == "why:"
    assert lines[3] == (
        "  - 5 steps, 3 levels, widest 3; critical path 6s of 11s work (parallelism 1.83)"
    )
    assert lines[4] == (
        "  - parallel is as fast as hybrid, event-driven, resource-aware (expected 6s); the "
        "simplest coordination wins a tie"
    )
    assert "cost of the choice" not in out
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^(\S+)(?: \*)?\s+(\S+)\s+([+-]\d+%)\s", out, re.MULTILINE)
    }
    assert rows == {
        "sequential": ("11s", "+83%"),
        "parallel": ("6.0s", "+0%"),
        "hybrid": ("6.0s", "+0%"),
        "event-driven": ("6.0s", "+0%"),
        "resource-aware": ("6.0s", "+0%"),
    }
    assert re.search(r"^parallel \*\s+6\.0s", out, re.MULTILINE)  # the chosen one is marked
    assert "analysis: 5 steps (small), depth 3, width 3, critical path 6.0s, work 11s" in out


def test_explain_json_has_the_pattern_and_the_alternatives(ran: Results) -> None:
    data = json.loads(ok(ran["explain-json"]).stdout)
    assert data["workflow"] == "fan"
    assert (data["pattern"], data["recommended"], data["how"]) == (
        "parallel",
        "parallel",
        "selected",
    )
    assert data["cost_s"] is None
    assert data["method"] == "exact"
    assert {a["pattern"]: a["makespan_s"] for a in data["alternatives"]} == {
        "sequential": 11.0,
        "parallel": 6.0,
        "hybrid": 6.0,
        "event-driven": 6.0,
        "resource-aware": 6.0,
    }
    assert all(a["admissible"] for a in data["alternatives"])
    assert data["policy"]["pattern"] == "parallel"
    assert data["analysis"]["critical_path_s"] == 6.0
    assert data["preferences"] == [] and data["outcomes"] == []


def test_explain_with_a_pattern_prints_what_it_costs(ran: Results) -> None:
    out = ok(ran["explain-sequential"]).stdout
    assert out.splitlines()[0] == "fan: sequential (your choice)"
    assert (
        "cost of the choice: sequential is expected to take 5.0s longer (+83%) than the "
        "recommended parallel"
    ) in out.splitlines()
    assert re.search(r"^sequential \*\s+11s\s+\+83%", out, re.MULTILINE)


def test_explain_shows_the_patterns_ruled_out(ran: Results) -> None:
    out = ok(ran["explain-single"]).stdout
    assert out.splitlines()[0] == "single: sequential (selected)"
    why = "the workflow allows one step at a time (max_concurrency: 1)"
    assert f"  - not parallel: {why}" in out.splitlines()
    assert re.search(rf"^hybrid\s+-\s+-\s+ruled out: {re.escape(why)}", out, re.MULTILINE)


def test_explain_says_when_the_workflow_fixes_its_pattern(ran: Results) -> None:
    assert (
        ok(ran["explain-fixed"]).stdout.splitlines()[0] == "fixed: hybrid (fixed by the workflow)"
    )
    data = json.loads(ok(ran["explain-fixed-json"]).stdout)
    assert (data["pattern"], data["recommended"], data["how"]) == ("hybrid", "hybrid", "workflow")


def test_explain_with_a_pattern_beats_the_one_the_workflow_fixes(ran: Results) -> None:
    out = ok(ran["explain-fixed-parallel"]).stdout
    lines = out.splitlines()
    assert lines[0] == "fixed: parallel (your choice)"
    assert "  - not parallel: the workflow fixes its pattern: hybrid" in lines
    assert (
        "  - parallel was ruled out (the workflow fixes its pattern: hybrid); run as asked"
    ) in lines


def test_run_with_a_pattern_runs_it_and_keeps_the_selection(ran: Results) -> None:
    data = json.loads(ok(ran["run-hybrid-json"]).stdout)
    assert data["status"] == "succeeded"
    assert data["pattern"] == "hybrid"
    selection = data["selection"]
    assert (selection["pattern"], selection["recommended"], selection["how"]) == (
        "hybrid",
        "parallel",
        "override",
    )
    assert selection["cost_s"] == 0.0
    assert {a["pattern"]: a["makespan_s"] for a in selection["alternatives"]}["sequential"] == 11.0
    assert isinstance(data["adaptations"], list)
    assert ran["run-hybrid-json"].stderr == ""  # nothing but the JSON


def test_run_says_which_pattern_and_why_on_stderr(ran: Results) -> None:
    proc = ok(ran["run"])
    assert (
        "pattern: parallel (selected), expected 6.0s: parallel is as fast as hybrid, "
        "event-driven, resource-aware (expected 6s); the simplest coordination wins a tie"
    ) in proc.stderr.splitlines()
    assert "(selected)" not in proc.stdout  # stdout has the table and the summary only
    assert re.search(
        r"succeeded in \S+ \(5 succeeded\); pattern: parallel$", proc.stdout, re.MULTILINE
    )


def test_run_with_another_pattern_says_what_it_costs(ran: Results) -> None:
    lines = ok(ran["run-sequential"]).stderr.splitlines()
    assert (
        "pattern: sequential (your choice), expected 11s: parallel is as fast as hybrid, "
        "event-driven, resource-aware (expected 6s); the simplest coordination wins a tie"
    ) in lines
    assert (
        "sequential is expected to take 5.0s longer (+83%) than the recommended parallel" in lines
    )


def test_history_of_an_empty_store(ran: Results) -> None:
    out = ok(ran["history-empty"]).stdout
    assert out.startswith("no runs in ")


def test_history_shows_learned_estimates_outcomes_and_preferences(ran: Results) -> None:
    for k in (1, 2):
        ok(ran[f"taught-{k}"])
    out = ok(ran["history"]).stdout
    lines = out.splitlines()
    assert lines[0] == "fan"
    assert re.search(r"^agent\s+steps\s+failure rate\s+median\s+estimate used", out, re.MULTILINE)
    row = re.search(r"^n\s+(\d+)\s+0%\s+\S+\s+(\S+)", out, re.MULTILINE)
    assert row is not None
    assert row.group(1) == "10"
    assert row.group(2) != "declared"  # ten steps: the median is used
    assert "patterns on each definition (fingerprint):" in lines
    assert re.search(
        r"^  [0-9a-f]{10}  hybrid\s+2 run\(s\), 2 succeeded, median \S+$", out, re.MULTILINE
    )
    assert (
        "preference: hybrid, chosen over the recommendation in 2 of 2 runs, confidence 0.67: "
        "suggest"
    ) in lines


def test_history_json(ran: Results) -> None:
    data = json.loads(ok(ran["history-json"]).stdout)
    assert list(data) == ["fan"]
    fan = data["fan"]
    assert set(fan) == {"agents", "learned_estimates_s", "outcomes", "preferences"}
    assert fan["agents"]["n"]["steps"] == 10
    assert fan["agents"]["n"]["failure_rate"] == 0.0
    assert set(fan["learned_estimates_s"]) == {"n"}
    assert fan["learned_estimates_s"]["n"] == fan["agents"]["n"]["median_s"]
    (outcome,) = fan["outcomes"]
    assert (outcome["pattern"], outcome["runs"], outcome["succeeded"]) == ("hybrid", 2, 2)
    assert len(outcome["fingerprint"]) == 64
    assert outcome["median_makespan_s"] > 0
    (pref,) = fan["preferences"]
    assert {k: pref[k] for k in ("workflow", "pattern", "chosen", "runs", "level")} == {
        "workflow": "fan",
        "pattern": "hybrid",
        "chosen": 2,
        "runs": 2,
        "level": "suggest",
    }
    assert pref["confidence"] == pytest.approx(2 / 3)


def test_history_of_a_workflow_never_run(ran: Results) -> None:
    out = ok(ran["history-other"]).stdout
    assert out.startswith("no runs in ") and out.rstrip().endswith(" of other")


def test_explain_after_runs_shows_what_they_taught(ran: Results) -> None:
    out = ok(ran["explain-taught"]).stdout
    lines = out.splitlines()
    assert lines[0] == "fan: parallel (selected)"
    assert "  - durations learned from past runs for 1 agent(s)" in lines
    assert (
        "  - suggestion: you chose hybrid in 2 of the last 2 runs (confidence 0.67); it is "
        "applied from 0.85"
    ) in lines
    assert re.search(r"^hybrid\s+\S+\s+\S+\s+2 run\(s\), median \S+", out, re.MULTILINE)
    assert "preference: hybrid, chosen in 2 of 2 runs, confidence 0.67 (suggest)" in lines


def test_a_choice_as_fast_as_the_recommended_one_is_not_called_shorter() -> None:
    wf = cp.loads(FAN)
    rec = asyncio.run(recommend(wf, pattern="hybrid"))
    assert (rec.recommended, rec.cost_s) == ("parallel", 0.0)
    line = cost_line(rec)
    assert line is None or ("shorter" not in line and "longer" not in line)
