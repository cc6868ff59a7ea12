"""``plan`` and ``simulate`` on small graphs whose numbers are worked out by hand.

The DAG (estimates in seconds)::

    a(2) ─┬─> b(3) ─┬─> d(4)        e(5)
          └─> c(1) ─┘

levels {a, e}, {b, c}, {d}: 3 levels, sizes 2, 2, 1, width 2; 4 dependencies;
critical path a → b → d = 9; total work 15; parallelism 15 / 9.

On 2 workers, critical-path first (upward ranks a 9, b 7, c 5, e 5, d 4): a and e start at 0;
a ends at 2 and b (rank 7) takes its worker until 5; e ends at 5 and c runs 5 to 6; d runs
6 to 10. Makespan 10, lower bound max(9, 15 / 2) = 9. On 1 worker: the work, 15. Unlimited: 9.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

Results = dict[str, subprocess.CompletedProcess[str]]

DAG = """
name: dag
agents:
  w: {kind: noop}
steps:
  - {id: a, agent: w, estimate: 2s}
  - {id: b, agent: w, estimate: 3s, needs: [a]}
  - {id: c, agent: w, estimate: 1s, needs: [a]}
  - {id: d, agent: w, estimate: 4s, needs: [b, c]}
  - {id: e, agent: w, estimate: 5s}
"""

# Five independent 2 s steps: on 2 workers, 2 + 2 + 2 = 6 s; the bound is work / 2 = 5.
WIDE = """
name: wide
agents:
  w: {kind: noop}
steps:
""" + "".join(f"  - {{id: s{i}, agent: w, estimate: 2s}}\n" for i in range(5))


def _rows(stdout: str) -> dict[str, str]:
    """The report's ``name  value`` rows (two or more spaces between them)."""
    rows: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) == 2:
            rows[parts[0]] = parts[1]
    return rows


def test_plan_text(reports: Results) -> None:
    proc = reports["plan_text"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "dag"
    rows = _rows(proc.stdout)
    assert rows["steps"] == "5 (4 dependencies)"
    assert rows["levels"] == "3 (sizes: 2, 2, 1)"
    assert rows["width"] == "2 (the widest level)"
    assert rows["critical path"] == "9.0s (3 steps: a → b → d)"
    assert rows["total work"] == "15s"
    assert rows["parallelism"] == "1.67 (work / critical path)"
    assert rows["lower bound"] == "15s on 1 worker"
    assert "note" not in rows


def test_plan_json(reports: Results) -> None:
    proc = reports["plan_json"]
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    planning = data.pop("planning")
    assert (planning["rule"], planning["expected_makespan_s"]) == ("critical-path", 10.0)
    selection = data.pop("selection")
    expected = {a["pattern"]: a["makespan_s"] for a in selection["alternatives"]}
    # on 2 workers: one at a time takes the whole work; the planned order the best
    assert expected["sequential"] == 15.0 and expected["resource-aware"] == 10.0
    assert selection["pattern"] == selection["recommended"]
    assert expected[selection["pattern"]] == 10.0
    assert data == {
        "workflow": "dag",
        "steps": 5,
        "edges": 4,
        "levels": 3,
        "level_sizes": [2, 2, 1],
        "width": 2,
        "critical_path_s": 9.0,
        "critical_path": ["a", "b", "d"],
        "total_work_s": 15.0,
        "parallelism": pytest.approx(15 / 9),
        "lower_bound_s": 9.0,
        "workers": 2,
        "unestimated_steps": 0,
        "parts": [],
    }


def test_plan_json_counts_steps_without_estimates_as_1s(reports: Results) -> None:
    proc = reports["plan_partly"]
    data = json.loads(proc.stdout)
    assert data["unestimated_steps"] == 2
    assert data["critical_path_s"] == 4.0
    assert data["critical_path"] == ["a", "b"]
    assert data["total_work_s"] == 5.0
    assert data["lower_bound_s"] == 5.0
    assert data["level_sizes"] == [1, 2]


def test_plan_mermaid(reports: Results) -> None:
    proc = reports["plan_mermaid"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "flowchart TD\n"
        '    s0_a["a<br/><i>w</i>"]\n'
        '    s1_b["b<br/><i>w</i>"]\n'
        '    s2_c["c<br/><i>w</i>"]\n'
        '    s3_d["d<br/><i>w</i>"]\n'
        '    s4_e["e<br/><i>w</i>"]\n'
        "    s0_a --> s1_b\n"
        "    s0_a --> s2_c\n"
        "    s1_b --> s3_d\n"
        "    s2_c --> s3_d\n"
        "    classDef critical stroke:#d33,stroke-width:3px\n"
        "    class s0_a,s1_b,s3_d critical\n"
    )


def test_plan_of_an_invalid_workflow_exits_2(reports: Results) -> None:
    proc = reports["plan_invalid"]
    assert proc.returncode == 2
    assert proc.stderr.startswith("bad.yaml:4:")
    assert "needs unknown step 'b'" in proc.stderr
    assert proc.stdout == ""


def test_simulate_two_workers_text(reports: Results) -> None:
    proc = reports["simulate_text"]
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert rows["workers"] == "2"
    assert rows["makespan"] == "10s (10s)"
    assert rows["critical path"] == "9.0s (9s)"
    assert rows["total work"] == "15s (15s)"
    assert rows["lower bound"] == "9.0s (9s) = max(critical path, work / workers)"
    assert rows["makespan / bound"] == "1.1111"


def test_simulate_two_workers_json_schedule(reports: Results) -> None:
    proc = reports["simulate_json"]
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    planning = data.pop("planning")
    assert planning["rule"] == "critical-path"  # nothing the planner tried beats it here
    assert planning["expected_makespan_s"] == 10.0
    assert planning["lower_bound_s"] == 9.0
    assert data == {
        "workflow": "dag",
        "workers": 2,
        "priority": "planned",
        "makespan_s": 10.0,
        "critical_path_s": 9.0,
        "total_work_s": 15.0,
        "lower_bound_s": 9.0,
        "ratio_to_lower_bound": pytest.approx(10 / 9),
        "steps": {
            "a": {"start_s": 0.0, "end_s": 2.0},
            "b": {"start_s": 2.0, "end_s": 5.0},
            "c": {"start_s": 5.0, "end_s": 6.0},
            "d": {"start_s": 6.0, "end_s": 10.0},
            "e": {"start_s": 0.0, "end_s": 5.0},
        },
        "parts": {},
    }


WORKER_CASES = {
    "simulate_1": (["--workers", "1"], 15.0, 15.0),
    "simulate_unlimited": ([], 9.0, 9.0),
    "simulate_3": (["-w", "3"], 9.0, 9.0),
}


@pytest.mark.parametrize("case", sorted(WORKER_CASES))
def test_simulate_dag_other_worker_counts(reports: Results, case: str) -> None:
    _workers, makespan, bound = WORKER_CASES[case]
    data = json.loads(reports[case].stdout)
    assert (data["makespan_s"], data["lower_bound_s"]) == (makespan, bound)
    assert data["critical_path_s"] == 9.0
    assert data["total_work_s"] == 15.0


def test_simulate_work_bound_dominates_on_a_wide_graph(reports: Results) -> None:
    data = json.loads(reports["simulate_wide"].stdout)
    assert data["makespan_s"] == 6.0
    assert data["critical_path_s"] == 2.0
    assert data["total_work_s"] == 10.0
    assert data["lower_bound_s"] == 5.0  # max(2, 10 / 2)
    assert data["ratio_to_lower_bound"] == pytest.approx(1.2)
    ends = sorted(s["end_s"] for s in data["steps"].values())
    assert ends == [2.0, 2.0, 4.0, 4.0, 6.0]


def test_simulate_uses_the_workflow_limit_when_no_workers_given(reports: Results) -> None:
    data = json.loads(reports["simulate_limit"].stdout)
    assert data["workers"] == 5
    assert data["makespan_s"] == 2.0
    assert data["lower_bound_s"] == 2.0


PARTLY = """
name: partly
agents:
  w: {kind: noop}
steps:
  - {id: a, agent: w}
  - {id: b, agent: w, needs: [a], estimate: 3s}
  - {id: c, agent: w, needs: [a]}
"""

INVALID = "name: bad\nagents: {w: {kind: noop}}\nsteps:\n  - {id: a, agent: w, needs: [b]}\n"


@pytest.fixture(scope="module")
def reports(
    cli_batch: Callable[[Path, Mapping[str, object]], Results],
    tmp_path_factory: pytest.TempPathFactory,
) -> Results:
    """Every command of this module, started together (see conftest)."""
    dag, wide = {"dag.yaml": DAG}, {"wide.yaml": WIDE}
    limited = {"wide.yaml": WIDE.replace("name: wide\n", "name: wide\nmax_concurrency: 5\n")}
    cases: dict[str, object] = {
        "plan_text": (dag, ["plan", "dag.yaml", "--workers", "1"]),
        "plan_json": (dag, ["plan", "dag.yaml", "--json", "--workers", "2"]),
        "plan_partly": ({"wf.yaml": PARTLY}, ["plan", "wf.yaml", "--json", "--workers", "1"]),
        "plan_mermaid": (dag, ["plan", "dag.yaml", "--mermaid"]),
        "plan_invalid": ({"bad.yaml": INVALID}, ["plan", "bad.yaml", "--mermaid"]),
        "simulate_text": (dag, ["simulate", "dag.yaml", "--workers", "2"]),
        "simulate_json": (dag, ["simulate", "dag.yaml", "--workers", "2", "--json"]),
        "simulate_wide": (wide, ["simulate", "wide.yaml", "--workers", "2", "--json"]),
        "simulate_limit": (limited, ["simulate", "wide.yaml", "--json"]),
    }
    for name, (workers, _makespan, _bound) in WORKER_CASES.items():
        cases[name] = (dag, ["simulate", "dag.yaml", "--json", *workers])
    return cli_batch(tmp_path_factory.mktemp("plan"), cases)
